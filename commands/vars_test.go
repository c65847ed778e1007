package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
)

// The fake's variables: two fixed ones; calls are recorded with the length
// of a secret, never its value.

func (f *fakeService) ListVariables(_ context.Context, app, env string) ([]release.VariableView, error) {
	if _, err := f.env(app, env); err != nil {
		return nil, err
	}
	return []release.VariableView{
		{Name: "API_URL", Value: "https://x.example", InRelbot: true, InApp: true, UpdatedBy: "alice", UpdatedAt: t0},
		{Name: "LEGACY", InApp: true},
		{Name: "TOKEN", Secret: true, Value: release.Masked, InRelbot: true, UpdatedBy: "bob", UpdatedAt: t0},
	}, nil
}

func (f *fakeService) SetVariable(_ context.Context, actor, app, env, name, value string) (*release.VariableView, error) {
	if _, err := f.env(app, env); err != nil {
		return nil, err
	}
	f.record("var set %s %s %s %s=%s", actor, app, env, name, value)
	return &release.VariableView{Name: name, Value: value, InRelbot: true, UpdatedBy: actor, UpdatedAt: t0}, nil
}

func (f *fakeService) UnsetVariable(_ context.Context, actor, app, env, name string) error {
	f.record("var unset %s %s %s %s", actor, app, env, name)
	return nil
}

func (f *fakeService) SetSecret(_ context.Context, actor, app, env, name, value string) (*release.VariableView, error) {
	f.record("secret set %s %s %s %s (%d bytes)", actor, app, env, name, len(value))
	return &release.VariableView{Name: name, Secret: true, Value: release.Masked, InRelbot: true, InApp: true, UpdatedBy: actor, UpdatedAt: t0}, nil
}

func (f *fakeService) UnsetSecret(_ context.Context, actor, app, env, name string) error {
	f.record("secret unset %s %s %s %s", actor, app, env, name)
	return nil
}

func (f *fakeService) env(app, env string) (*release.Environment, error) {
	a, err := f.App(app)
	if err != nil {
		return nil, err
	}
	return a.Env(env)
}

func TestVarCommands(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	d := newDispatcher(f)
	r, err := d.Handle(ctx, Request{User: "alice", Text: "var list crm staging"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Name", "Kind", "Value", "Where", "Updated", "API_URL", "https://x.example", "both",
		"LEGACY", "(set in the app)", "TOKEN", "secret", "********", "relbot", "2026-03-10 12:00 UTC by bob"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("var list lacks %q:\n%s", want, r.Text)
		}
	}
	if views, ok := r.Data.([]VarView); !ok || len(views) != 3 || views[2].Value == nil || *views[2].Value != release.Masked || views[1].UpdatedAt != nil {
		t.Errorf("var list data: %#v", r.Data)
	}
	// --json says where a value lives: LEGACY's is in the app's table only,
	// where relbot reads no values, so it has no "value" but kept_in_app.
	b, _ := json.Marshal(r.Data)
	var views []map[string]any
	if err := json.Unmarshal(b, &views); err != nil || len(views) != 3 {
		t.Fatalf("--json: %v %s", err, b)
	}
	if v := views[1]; v["name"] != "LEGACY" || v["kept_in_app"] != true || v["where"] != "app" {
		t.Errorf("app-only variable: %v", v)
	} else if _, has := v["value"]; has {
		t.Errorf("app-only variable has a value: %v", v)
	}
	if v := views[0]; v["value"] != "https://x.example" || v["kept_in_app"] != nil {
		t.Errorf("variable kept in relbot: %v", v)
	}
	if v := views[2]; v["value"] != release.Masked || v["kept_in_app"] != nil {
		t.Errorf("secret kept in relbot: %v", v)
	}

	r, err = d.Handle(ctx, Request{User: "alice", Text: `var set crm staging GREETING="hello world"`})
	if err != nil || !strings.Contains(r.Text, "Variable GREETING of crm staging set") || !strings.Contains(r.Text, "hello world") || !r.Public {
		t.Fatalf("var set: %q %v", r.Text, err)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "var set crm staging 1BAD=x"}); ExitCode(err) != 2 {
		t.Fatalf("invalid name: %v", err)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "var set crm staging NOVALUE"}); ExitCode(err) != 2 || !strings.Contains(err.Error(), "NAME=VALUE") {
		t.Fatalf("missing value: %v", err)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "var unset crm staging GREETING"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "secret unset crm staging TOKEN"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"var set alice crm staging GREETING=hello world", "var unset alice crm staging GREETING", "secret unset alice crm staging TOKEN"}
	if fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Fatalf("calls %q, want %q", f.calls, want)
	}
}

func TestSecretSet(t *testing.T) {
	ctx := context.Background()
	const value = "canary-Zq81"

	// Without a reader (Slack) the transport is asked to open a form, and
	// nothing changes.
	f := newFake()
	r, err := newDispatcher(f).Handle(ctx, Request{User: "alice", Text: "secret set crm production TOKEN"})
	if err != nil || r.Prompt == nil || *r.Prompt != (SecretPrompt{"crm", "production", "TOKEN"}) || len(f.calls) != 0 {
		t.Fatalf("prompt: %+v %v calls %q", r, err, f.calls)
	}

	// With a reader, the value goes to the service and nowhere else.
	var prompt string
	req := Request{User: "alice", Text: "secret set crm production TOKEN", Secret: func(_ context.Context, p string) (string, error) {
		prompt = p
		return value, nil
	}}
	r, err = newDispatcher(f).Handle(ctx, req)
	if err != nil || !strings.Contains(r.Text, "Secret TOKEN of crm production set") || strings.Contains(r.Text, value) ||
		strings.Contains(fmt.Sprintf("%#v", r.Data), value) || !strings.Contains(prompt, "TOKEN") {
		t.Fatalf("secret set: %q %v", r.Text, err)
	}
	if len(f.calls) != 1 || f.calls[0] != "secret set alice crm production TOKEN (11 bytes)" {
		t.Fatalf("calls %q", f.calls)
	}

	// An unknown environment is refused before the value is asked for.
	asked := false
	req.Text = "secret set crm nowhere TOKEN"
	req.Secret = func(context.Context, string) (string, error) { asked = true; return value, nil }
	if _, err := newDispatcher(f).Handle(ctx, req); release.ErrorCode(err) != release.CodeNotFound || asked {
		t.Fatalf("unknown env: %v, asked %v", err, asked)
	}

	// A failing reader stores nothing.
	req.Text = "secret set crm production TOKEN"
	req.Secret = func(context.Context, string) (string, error) { return "", errors.New("stdin closed") }
	f = newFake()
	if _, err := newDispatcher(f).Handle(ctx, req); ExitCode(err) != 1 || len(f.calls) != 0 {
		t.Fatalf("reader error: %v calls %q", err, f.calls)
	}
}
