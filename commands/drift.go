package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/relbot/relbot/release"
)

func (d *Dispatcher) drift(ctx context.Context, _ Request, c Drift) (Reply, error) {
	dr, err := d.Versions.Drift(ctx, c.App, c.From, c.To)
	if err != nil {
		return Reply{}, err
	}
	vars := 0
	for _, names := range dr.VariablesOnlyIn {
		vars += len(names)
	}
	pair := fmt.Sprintf("%s %s and %s", dr.App, dr.From, dr.To)
	if dr.Empty() {
		title := "No drift between " + pair + ": schema, versions and variable names agree"
		if !dr.VariablesChecked {
			title = "No drift between " + pair + ": schema and versions agree (variables are not managed by relbot)"
		}
		return newReply(title, nil, nil, dr), nil
	}
	title := fmt.Sprintf("Drift between %s: %s, %s, %s",
		pair, release.Count(len(dr.Schema), "table differs|tables differ"),
		release.Count(len(dr.Versions), "version difference"), release.Count(vars, "variable name"))
	var lines []string
	lines = append(lines, "", "Schema:")
	if len(dr.Schema) == 0 {
		lines = append(lines, "  same in both")
	}
	for _, t := range dr.Schema {
		if len(t.Differences) == 1 {
			lines = append(lines, "  "+t.Table+": "+t.Differences[0])
			continue
		}
		lines = append(lines, "  "+t.Table+":")
		for _, diff := range t.Differences {
			lines = append(lines, "    - "+diff)
		}
	}
	lines = append(lines, "", "Versions:")
	if len(dr.Versions) == 0 {
		lines = append(lines, "  same core and plugins")
	}
	for _, v := range dr.Versions {
		lines = append(lines, "  - "+v)
	}
	lines = append(lines, "", "Variables (names only):")
	switch {
	case !dr.VariablesChecked:
		lines = append(lines, "  not compared: relbot does not manage variables here")
	case vars == 0:
		lines = append(lines, "  the same names in both")
	default:
		for _, env := range []string{dr.From, dr.To} {
			if names := dr.VariablesOnlyIn[env]; len(names) > 0 {
				lines = append(lines, fmt.Sprintf("  only in %s: %s", env, strings.Join(names, ", ")))
			}
		}
	}
	return newReply(title, nil, nil, dr, lines...), nil
}
