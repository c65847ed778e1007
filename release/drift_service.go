package release

import (
	"context"
	"sort"
)

// Drift compares two environments of an app: the structure of every table
// in migration scope, core and plugin versions, and which variable names
// only one of them has. Variable values are never read for this.
func (s *VersionService) Drift(ctx context.Context, app, from, to string) (*Drift, error) {
	a, ea, err := s.appEnv(app, from)
	if err != nil {
		return nil, err
	}
	eb, err := a.Env(to)
	if err != nil {
		return nil, err
	}
	if ea == eb {
		return nil, Errorf(CodeInvalid, "drift compares two different environments; both are %s", ea.Name)
	}
	d, err := s.Engine.Drift(ctx, a, ea, eb)
	if err != nil {
		return nil, wrapUser(err, "drift between %s and %s failed", ea.Name, eb.Name)
	}
	d.VariablesOnlyIn = map[string][]string{ea.Name: {}, eb.Name: {}}
	na, err := s.Variables.VariableNames(ctx, a.Name, ea.Name)
	if err != nil {
		return nil, err
	}
	nb, err := s.Variables.VariableNames(ctx, a.Name, eb.Name)
	if err != nil {
		return nil, err
	}
	d.VariablesOnlyIn[ea.Name] = onlyIn(na, nb)
	d.VariablesOnlyIn[eb.Name] = onlyIn(nb, na)
	d.VariablesChecked = true
	return d, nil
}

func onlyIn(a, b map[string]bool) []string {
	out := []string{}
	for n := range a {
		if _, ok := b[n]; !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
