package commands

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// The fake's restart runs when the environment defines the hook.
func (f *fakeService) Restart(_ context.Context, actor, app, env string) (*release.RestartResult, error) {
	e, err := f.env(app, env)
	if err != nil {
		return nil, err
	}
	if !e.HasRestartHook() {
		return nil, release.Errorf(release.CodeConflict, "%s %s has no restart hook in apps.yaml", app, env)
	}
	f.record("restart %s %s by %s", app, env, actor)
	return &release.RestartResult{App: app, Env: env, By: actor, Output: "deployment.apps/crm restarted\n", Duration: 1500 * time.Millisecond}, nil
}

func TestRestartAfterVariableChanges(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.apps[0].Builtin = release.BuiltinNocoBase
	// newFake's crm production has a restart hook, staging none.
	d := &Dispatcher{Services: all(f)}

	// With a restart hook: the reply says why and offers it.
	for _, text := range []string{"secret set crm production TOKEN", "secret unset crm production TOKEN", "var unset crm production API_URL"} {
		req := Request{User: "alice", Text: text, Secret: func(context.Context, string) (string, error) { return "s3cr3t-value", nil }}
		r, err := d.Handle(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if r.Restart == nil || *r.Restart != (RestartOffer{App: "crm", Env: "production"}) || !strings.Contains(r.Text, "must be restarted to see the change") ||
			!strings.Contains(r.Text, "restart crm production runs its restart hook") {
			t.Fatalf("%s: no restart offered:\n%s\n%+v", text, r.Text, r.Restart)
		}
	}
	// Without one: said plainly, nothing offered.
	r, err := d.Handle(ctx, Request{User: "alice", Text: "var unset crm staging API_URL"})
	if err != nil || r.Restart != nil || !strings.Contains(r.Text, "must be restarted to see the change") || !strings.Contains(r.Text, "crm staging has no restart hook in apps.yaml, so restart it yourself") {
		t.Fatalf("no hook: %v %+v\n%s", err, r.Restart, r.Text)
	}
	// A variable relbot alone keeps (the fake's var set does not reach the
	// app) needs no restart where none is configured.
	r, err = d.Handle(ctx, Request{User: "alice", Text: "var set crm staging API_URL=https://x"})
	if err != nil || r.Restart != nil || strings.Contains(r.Text, "restart") {
		t.Fatalf("relbot-only variable: %v\n%s", err, r.Text)
	}

	// The restart command runs the hook and says so in the channel.
	r, err = d.Handle(ctx, Request{User: "alice", Text: "restart crm production"})
	if err != nil || !r.Public || !strings.Contains(r.Text, "crm production restarted by alice") || !strings.Contains(r.Text, "deployment.apps/crm restarted") {
		t.Fatalf("restart: %v\n%s", err, r.Text)
	}
	if v, ok := r.Data.(RestartView); !ok || v.DurationMS != 1500 || !strings.Contains(r.Text, "1.5s") {
		t.Fatalf("restart data: %#v", r.Data)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "restart crm staging"}); release.ErrorCode(err) != release.CodeConflict ||
		!strings.Contains(err.Error(), "no restart hook") {
		t.Fatalf("restart without hook: %v", err)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "restart crm nowhere"}); err == nil {
		t.Fatal("restart of an unknown environment succeeded")
	}
}

func TestDeployNewPlugins(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.newPlugins = []release.NewPlugin{{Name: "workflow-json-query", PackageName: "@nocobase/plugin-workflow-json-query", Version: "2.2.15", InTarget: "not registered"}}
	d := &Dispatcher{Services: all(f)}

	r, err := d.Handle(ctx, Request{User: "alice", Text: "deploy crm-m1 production --at 22:00"})
	var refusal *release.NewPluginsRefusal
	if !errors.As(err, &refusal) || r.NewPlugins == nil || r.NewPlugins.Migration != "crm-m1" || r.NewPlugins.Env != "production" ||
		r.NewPlugins.At != "22:00" || len(r.NewPlugins.Plugins) != 1 {
		t.Fatalf("refusal: %v %+v", err, r.NewPlugins)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "deploy crm-m1 production --allow-new-plugins"})
	if err != nil || r.NewPlugins != nil || !strings.Contains(r.Text, "crm-r1") {
		t.Fatalf("allowed: %v\n%s", err, r.Text)
	}

	r, err = d.Handle(ctx, Request{User: "alice", Text: "migration plan crm-m1 production"})
	if err != nil || !strings.Contains(r.Text, "Plugins production does not have:") ||
		!strings.Contains(r.Text, "workflow-json-query (@nocobase/plugin-workflow-json-query 2.2.15): not registered in the target") ||
		!strings.Contains(r.Text, "needs --allow-new-plugins") {
		t.Fatalf("plan: %v\n%s", err, r.Text)
	}
}

func TestPlanAlreadyApplied(t *testing.T) {
	f := newFake()
	f.applied = &release.AppliedBy{Migration: "crm-m1", At: t0, By: "bob"}
	d := &Dispatcher{Services: all(f), Location: time.UTC}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "migration plan crm-m1 production"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"crm-m1 was applied to crm production already, on 2026-03-10 12:00 UTC by bob", "No changes"} {
		if !strings.Contains(r.Text, want) {
			t.Fatalf("plan lacks %q:\n%s", want, r.Text)
		}
	}
	for _, lacks := range []string{"DESTRUCTIVE", "Statements", "Rows:"} {
		if strings.Contains(r.Text, lacks) {
			t.Fatalf("an applied file's plan lists changes (%s):\n%s", lacks, r.Text)
		}
	}
}
