package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/relbot/relbot/release"
)

// VarView is what --json prints for one variable. Value is masked for a
// secret: no reply ever carries a secret's value.
type VarView struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "variable" or "secret"
	// Value is nil for a plain variable only the app's own table has:
	// relbot reads only the names there, so it does not know the value
	// (KeptInApp says so). "" is a value relbot keeps that is empty.
	Value *string `json:"value,omitempty"`
	// KeptInApp: the value lives in the app's own variables table only
	// (where is "app"), not in relbot.
	KeptInApp bool       `json:"kept_in_app,omitempty"`
	Where     string     `json:"where"` // "relbot", "app" or "both"
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

func varView(v release.VariableView) VarView {
	out := VarView{Name: v.Name, Kind: "variable", Where: where(v), UpdatedBy: v.UpdatedBy, KeptInApp: !v.InRelbot}
	value := v.Value
	switch {
	case v.Secret:
		out.Kind, value = "secret", release.Masked
		out.Value = &value
	case v.InRelbot:
		out.Value = &value
	}
	if !v.UpdatedAt.IsZero() {
		at := v.UpdatedAt
		out.UpdatedAt = &at
	}
	return out
}

func where(v release.VariableView) string {
	switch {
	case v.InRelbot && v.InApp:
		return "both"
	case v.InApp:
		return "app"
	}
	return "relbot"
}

func (d *Dispatcher) varList(ctx context.Context, _ Request, c VarList) (Reply, error) {
	vs, err := d.Variables.ListVariables(ctx, c.App, c.Env)
	if err != nil {
		return Reply{}, err
	}
	views := make([]VarView, 0, len(vs))
	table := &Table{Columns: []string{"Name", "Kind", "Value", "Where", "Updated"}}
	for _, v := range vs {
		view := varView(v)
		views = append(views, view)
		value := "(set in the app)" // relbot reads only names from the app's table
		switch {
		case view.Value != nil && *view.Value == "":
			value = "(empty)"
		case view.Value != nil:
			value = *view.Value
		}
		updated := "-"
		if view.UpdatedAt != nil {
			updated = d.when(*view.UpdatedAt) + " by " + view.UpdatedBy
		}
		table.Rows = append(table.Rows, []string{view.Name, view.Kind, value, view.Where, updated})
	}
	if len(views) == 0 {
		return newReply(fmt.Sprintf("No variables in %s %s yet.", c.App, c.Env), nil, nil, views,
			fmt.Sprintf("Set one with: var set %s %s NAME=VALUE, or secret set %s %s NAME", c.App, c.Env, c.App, c.Env)), nil
	}
	title := fmt.Sprintf("%s of %s %s (secrets masked)", release.Count(len(views), "variable"), c.App, c.Env)
	return newReply(title, nil, table, views), nil
}

func (d *Dispatcher) setReply(kind, app, env string, v *release.VariableView) (Reply, error) {
	if v == nil {
		return Reply{}, release.Errorf(release.CodeInternal, "%s set in %s %s: no record returned", kind, app, env)
	}
	view := varView(*v)
	fields := []Field{{"Where", whereText(view.Where)}}
	if !v.Secret {
		fields = append([]Field{{"Value", v.Value}}, fields...)
	}
	r := newReply(fmt.Sprintf("%s %s of %s %s set", capital(kind), v.Name, app, env), fields, nil, view)
	r.Public = true
	d.restartNote(&r, app, env, v.InApp)
	return r, nil
}

func whereText(w string) string {
	switch w {
	case "both":
		return "relbot and the app's own variables table"
	case "app":
		return "the app's own variables table"
	}
	return "relbot only"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func (d *Dispatcher) varSet(ctx context.Context, req Request, c VarSet) (Reply, error) {
	v, err := d.Variables.SetVariable(ctx, req.User, c.App, c.Env, c.Var, c.Value)
	if err != nil {
		return Reply{}, err
	}
	return d.setReply("variable", c.App, c.Env, v)
}

func (d *Dispatcher) secretSet(ctx context.Context, req Request, c SecretSet) (Reply, error) {
	// Check the place and the user's role first, so nobody types a secret
	// for nothing.
	if err := d.Core.Permit(ctx, req.User, release.ActSecretSet, c.App, c.Env); err != nil {
		return Reply{}, err
	}
	if req.Secret == nil {
		r := newReply(fmt.Sprintf("Enter the value of secret %s of %s %s in the private form.", c.Var, c.App, c.Env), nil, nil,
			map[string]string{"prompt": "secret", "app": c.App, "env": c.Env, "name": c.Var})
		r.Prompt = &SecretPrompt{App: c.App, Env: c.Env, Var: c.Var}
		return r, nil
	}
	value, err := req.Secret(ctx, fmt.Sprintf("Value of secret %s for %s %s: ", c.Var, c.App, c.Env))
	if err != nil {
		// The reader's error is about the stream, never the value.
		return Reply{}, release.Errorf(release.CodeInvalid, "could not read the value of secret %s: %v (nothing was stored)", c.Var, err)
	}
	v, err := d.Variables.SetSecret(ctx, req.User, c.App, c.Env, c.Var, value)
	if err != nil {
		return Reply{}, err
	}
	return d.setReply("secret", c.App, c.Env, v)
}

func (d *Dispatcher) unsetReply(kind, app, env, name string) Reply {
	r := newReply(fmt.Sprintf("%s %s removed from %s %s", capital(kind), name, app, env), nil, nil,
		map[string]any{"app": app, "env": env, "name": name, "kind": kind, "removed": true})
	r.Public = true
	// The app's table is written for NocoBase apps: the running app still
	// has the value it read at start.
	if a, err := d.Core.App(app); err == nil {
		d.restartNote(&r, app, env, a.Builtin == release.BuiltinNocoBase)
	}
	return r
}

func (d *Dispatcher) varUnset(ctx context.Context, req Request, c VarUnset) (Reply, error) {
	if err := d.Variables.UnsetVariable(ctx, req.User, c.App, c.Env, c.Var); err != nil {
		return Reply{}, err
	}
	return d.unsetReply("variable", c.App, c.Env, c.Var), nil
}

func (d *Dispatcher) secretUnset(ctx context.Context, req Request, c SecretUnset) (Reply, error) {
	if err := d.Variables.UnsetSecret(ctx, req.User, c.App, c.Env, c.Var); err != nil {
		return Reply{}, err
	}
	return d.unsetReply("secret", c.App, c.Env, c.Var), nil
}
