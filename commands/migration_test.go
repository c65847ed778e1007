package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

var fakeMigration = &release.Migration{ID: "crm-m1", App: "crm", SourceEnv: "development", CreatedBy: "alice", CreatedAt: t0, SHA256: "abc",
	Summary: release.MigrationSummary{Variables: []string{"API_BASE_URL"}, Tables: []release.TableSummary{
		{Table: "uiSchemas", Rule: release.RuleOverwrite, Reason: "NocoBase system table", Rows: 93, Carried: true},
		{Table: "customers", Rule: release.RuleSchemaOnly, Reason: "user table", Rows: 5},
	}, Layout: &release.Layout{Schema: "nocobase", TablePrefix: "nb_"}, Warnings: []string{"PRESET MATCHED ONLY 2 TABLES: ..."}}}

func (f *fakeService) CreateMigration(_ context.Context, actor, app, version, note string) (*release.Migration, error) {
	f.record("create migration %s by %s note %q", app, actor, note)
	if _, err := f.App(app); err != nil {
		return nil, err
	}
	return fakeMigration, nil
}

func (f *fakeService) ListMigrations(_ context.Context, app string) ([]*release.Migration, error) {
	return []*release.Migration{fakeMigration}, nil
}

func (f *fakeService) ShowMigration(_ context.Context, id string) (*release.Migration, []*release.MigrationRun, error) {
	if id != fakeMigration.ID {
		return nil, nil, release.Errorf(release.CodeNotFound, "no migration %s", id)
	}
	if f.runs != nil {
		return fakeMigration, f.runs, nil
	}
	return fakeMigration, []*release.MigrationRun{{Migration: id, Env: "staging", By: "bob", StartedAt: t0, OK: true}}, nil
}

func (f *fakeService) NextChanges(_ context.Context, m *release.Migration, runs []*release.MigrationRun) *release.Changes {
	return &release.Changes{Against: "production", Items: []release.Change{
		{Kind: release.ChangePage, Action: "added", Name: "“Contracts”", Detail: "in “CRM”"},
		{Kind: release.ChangeRole, Action: "menu access", Name: "“Sales” (sales)", Detail: "now sees “Contracts”"}}}
}

func (f *fakeService) PlanMigration(_ context.Context, id, env string) (*release.Migration, *release.MigrationPlan, error) {
	if f.applied != nil {
		return fakeMigration, &release.MigrationPlan{Migration: id, Env: env, AlreadyApplied: f.applied}, nil
	}
	return fakeMigration, &release.MigrationPlan{Migration: id, Env: env,
		Destructive:      []string{"column customers.fax is not in development: kept"},
		Statements:       []string{"DROP TABLE \"public\".\"uiSchemas\"", "-- load 93 rows into uiSchemas (overwrite)"},
		Tables:           []release.TablePlan{{Table: "uiSchemas", Rule: release.RuleOverwrite, Insert: 20, Update: 3, Delete: 1}},
		MissingVariables: []string{"API_BASE_URL"}, VersionChanges: []string{"core: 2.2.12 -> 2.2.15"},
		NewPlugins: f.newPlugins,
		Changes:    &release.Changes{Against: env, Items: []release.Change{{Kind: release.ChangeWorkflow, Action: "new version", Name: "“Notify on urgent ticket”"}}}}, nil
}

func TestMigrationReplies(t *testing.T) {
	d := &Dispatcher{Services: all(newFake())}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: `migration create crm --note "new contracts page"`})
	if err != nil || !strings.Contains(r.Text, "crm-m1") || !strings.Contains(r.Text, "overwrite") || !strings.Contains(r.Text, "API_BASE_URL") {
		t.Fatalf("create: %v\n%s", err, r.Text)
	}
	r, err = d.Handle(context.Background(), Request{User: "alice", Text: "migration show crm-m1"})
	if err != nil || !strings.Contains(r.Text, "staging by bob") || !strings.Contains(r.Text, "schema-only") ||
		!strings.Contains(r.Text, "PRESET MATCHED ONLY 2 TABLES") || !strings.Contains(r.Text, "schema nocobase, table prefix nb_, camelCase names") ||
		!strings.Contains(r.Text, "Changes in production, as it is now: 1 page, 1 role\n  - page added: “Contracts” — in “CRM”\n  - role menu access: “Sales” (sales) — now sees “Contracts”") {
		t.Fatalf("show: %v\n%s", err, r.Text)
	}
	if v := r.Data.(MigrationView); v.Changes == nil || len(v.Changes.Items) != 2 {
		t.Fatalf("show's JSON lacks the change summary: %+v", v.Changes)
	}
	r, err = d.Handle(context.Background(), Request{User: "alice", Text: "migration plan crm-m1 production"})
	if err != nil {
		t.Fatal(err)
	}
	destructive := strings.Index(r.Text, "DESTRUCTIVE")
	statements := strings.Index(r.Text, "Statements")
	if destructive < 0 || statements < 0 || destructive > statements || !strings.Contains(r.Text, "customers.fax") || !strings.Contains(r.Text, "API_BASE_URL") {
		t.Fatalf("plan must list destructive changes first:\n%s", r.Text)
	}
	if changes := strings.Index(r.Text, "Changes in production: 1 workflow\n  - workflow new version: “Notify on urgent ticket”"); changes < 0 || changes > destructive {
		t.Fatalf("plan must open with the change summary:\n%s", r.Text)
	}
	if _, err := d.Handle(context.Background(), Request{User: "alice", Text: "migration show crm-m9"}); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("unknown migration: %v", err)
	}
}

// A re-apply that found the file applied changed nothing: migration show
// says so instead of listing it as another apply, in text and JSON.
func TestMigrationShowNoOpApply(t *testing.T) {
	f := newFake()
	later := t0.Add(time.Hour)
	f.runs = []*release.MigrationRun{
		{Migration: "crm-m1", Env: "staging", By: "alice", StartedAt: t0, OK: true, Result: &release.ApplyResult{}},
		{Migration: "crm-m1", Env: "staging", By: "alice", StartedAt: later, OK: true,
			Result: &release.ApplyResult{AlreadyApplied: &release.AppliedBy{Migration: "crm-m1", At: t0, By: "alice"}}},
	}
	d := &Dispatcher{Services: all(f), Location: time.UTC}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "migration show crm-m1"})
	if err != nil {
		t.Fatal(err)
	}
	first := fmt.Sprintf("  %s  staging by alice  ok", d.when(t0))
	noop := fmt.Sprintf("  %s  staging by alice: no-op, already applied on %s", d.when(later), d.when(t0))
	if !strings.Contains(r.Text, first+"\n") || !strings.Contains(r.Text, noop) || strings.Count(r.Text, " ok") != 1 {
		t.Fatalf("show must tell the no-op from the apply:\n%s", r.Text)
	}
	v := r.Data.(MigrationView)
	if len(v.Applies) != 2 || v.Applies[0].AlreadyApplied != nil || v.Applies[1].AlreadyApplied == nil || !v.Applies[1].AlreadyApplied.At.Equal(t0) {
		t.Fatalf("JSON applies: %+v", v.Applies)
	}
	b, _ := json.Marshal(v.Applies[1])
	if !strings.Contains(string(b), `"already_applied":{`) {
		t.Fatalf("JSON: %s", b)
	}
}
