package migrate

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// pluginLayout is one shape NocoBase's plugin registry takes: the default
// camelCase table in public, or DB_SCHEMA + DB_TABLE_PREFIX +
// DB_UNDERSCORED (NOCOBASE.md, "Layouts").
type pluginLayout struct {
	name, ddl, key, insert string
}

var pluginLayouts = []pluginLayout{
	{
		name: "default",
		ddl: `CREATE TABLE "applicationPlugins" (id serial PRIMARY KEY, name varchar(255) UNIQUE, "packageName" varchar(255) UNIQUE,
			version varchar(255), enabled boolean, installed boolean, "builtIn" boolean, options json)`,
		key:    "applicationPlugins",
		insert: `INSERT INTO "applicationPlugins" (name, "packageName", version, enabled, installed, "builtIn", options) VALUES `,
	},
	{
		name: "schema, prefix and underscored",
		ddl: `CREATE SCHEMA nocobase; CREATE TABLE nocobase.nb_application_plugins (id serial PRIMARY KEY, name varchar(255) UNIQUE,
			package_name varchar(255) UNIQUE, version varchar(255), enabled boolean, installed boolean, built_in boolean, options json)`,
		key:    "nocobase.nb_application_plugins",
		insert: `INSERT INTO nocobase.nb_application_plugins (name, package_name, version, enabled, installed, built_in, options) VALUES `,
	},
}

// pluginApp makes a source and a target database with the layout's
// registry, sourceRows and targetRows in each (VALUES lists), and an app
// whose rules carry the registry.
func pluginApp(t *testing.T, l pluginLayout, sourceRows, targetRows string) (*release.App, *release.Environment) {
	t.Helper()
	ctx := ctxT(t)
	envs := []*release.Environment{}
	for _, rows := range []string{sourceRows, targetRows} {
		_, dsn := testenv.NewDatabase(t, "plugins")
		conn := testenv.Connect(t, dsn)
		if _, err := conn.Exec(ctx, l.ddl); err != nil {
			t.Fatal(err)
		}
		if rows != "" {
			if _, err := conn.Exec(ctx, l.insert+rows); err != nil {
				t.Fatal(err)
			}
		}
		envs = append(envs, &release.Environment{Name: []string{"development", "staging"}[len(envs)], Database: dsn})
	}
	app := &release.App{Name: "crm", Environments: envs, Rules: map[string]release.Rule{l.key: release.RuleOverwrite}}
	return app, envs[1]
}

func createFile(t *testing.T, e *Engine, app *release.App) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: app.Environments[0], ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The file's registry against the target's, in every layout: a plugin the
// target has not registered (by name or package), has not installed, or
// has disabled is new; the same plugin enabled on both sides, a disabled
// one the target also has, and a version change are not. Check and Plan
// say the same.
func TestNewPluginsInEveryLayout(t *testing.T) {
	t.Parallel()
	source := `('acl', '@nocobase/plugin-acl', '2.2.15', true, true, true, '{}'),
		('workflow-json-query', '@nocobase/plugin-workflow-json-query', '2.2.15', true, true, false, '{}'),
		('map', '@nocobase/plugin-map', '2.2.15', true, true, false, '{}'),
		('gantt', '@nocobase/plugin-gantt', '2.2.15', true, true, false, '{}'),
		('kanban', '@nocobase/plugin-kanban', '2.2.15', false, true, false, '{}'),
		('crm-tools', '@acme/plugin-crm-tools', '1.4.0', true, true, false, '{"note": "tab\tand \\ backslash"}'),
		('renamed', '@acme/plugin-renamed', '1.0.0', true, true, false, '{}'),
		('audit', '@acme/plugin-audit', NULL, NULL, NULL, false, NULL),
		('acme-notes', '@acme/plugin-notes', '1.0.0', true, true, false, '{}')`
	target := `('acl', '@nocobase/plugin-acl', '2.2.12', true, true, true, '{}'),
		('map', '@nocobase/plugin-map', '2.2.12', false, true, false, '{}'),
		('gantt', '@nocobase/plugin-gantt', '2.2.12', true, false, false, '{}'),
		('kanban', '@nocobase/plugin-kanban', '2.2.12', false, true, false, '{}'),
		('crm-tools', '@acme/plugin-crm-tools', '1.3.0', true, true, false, '{}'),
		('old-name', '@acme/plugin-renamed', '1.0.0', true, true, false, '{}'),
		('acme-notes', '@acme/plugin-notes', '1.0.0', NULL, true, false, '{}')`
	want := []release.NewPlugin{
		{Name: "acme-notes", PackageName: "@acme/plugin-notes", Version: "1.0.0", InTarget: "installed but disabled"},
		{Name: "audit", PackageName: "@acme/plugin-audit", InTarget: "not registered"},
		{Name: "gantt", PackageName: "@nocobase/plugin-gantt", Version: "2.2.15", InTarget: "registered but not installed"},
		{Name: "map", PackageName: "@nocobase/plugin-map", Version: "2.2.15", InTarget: "installed but disabled"},
		{Name: "workflow-json-query", PackageName: "@nocobase/plugin-workflow-json-query", Version: "2.2.15", InTarget: "not registered"},
	}
	for _, l := range pluginLayouts {
		t.Run(l.name, func(t *testing.T) {
			e := &Engine{SigningKey: testKey}
			app, tgt := pluginApp(t, l, source, target)
			file := createFile(t, e, app)
			c, err := e.Check(ctxT(t), reader(file), app, tgt)
			if err != nil {
				t.Fatal(err)
			}
			if c.AlreadyApplied != nil || !reflect.DeepEqual(c.NewPlugins, want) {
				t.Fatalf("check: applied %v, new plugins\n got %+v\nwant %+v", c.AlreadyApplied, c.NewPlugins, want)
			}
			plan, err := e.Plan(ctxT(t), reader(file), app, tgt, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan.NewPlugins, want) {
				t.Fatalf("plan: new plugins\n got %+v\nwant %+v", plan.NewPlugins, want)
			}
		})
	}
}

// A target without a registry lacks every plugin the file registers; a
// file without one brings none; the same registry on both sides brings
// none.
func TestNewPluginsEdges(t *testing.T) {
	t.Parallel()
	e := &Engine{SigningKey: testKey}
	l := pluginLayouts[0]
	rows := `('acl', '@nocobase/plugin-acl', '2.2.15', true, true, true, '{}')`

	app, tgt := pluginApp(t, l, rows, rows)
	if c, err := e.Check(ctxT(t), reader(createFile(t, e, app)), app, tgt); err != nil || len(c.NewPlugins) != 0 {
		t.Fatalf("same registry: %v %+v", err, c)
	}

	app, tgt = pluginApp(t, l, rows, "")
	testenv.Connect(t, tgt.Database).Exec(context.Background(), `DROP TABLE "applicationPlugins"`)
	c, err := e.Check(ctxT(t), reader(createFile(t, e, app)), app, tgt)
	if err != nil || len(c.NewPlugins) != 1 || c.NewPlugins[0].Name != "acl" || c.NewPlugins[0].InTarget != "not registered" {
		t.Fatalf("target without a registry: %v %+v", err, c)
	}

	// The registry left schema-only: the file carries no rows of it.
	app, tgt = pluginApp(t, l, rows, "")
	app.Rules = map[string]release.Rule{l.key: release.RuleSchemaOnly}
	if c, err := e.Check(ctxT(t), reader(createFile(t, e, app)), app, tgt); err != nil || len(c.NewPlugins) != 0 {
		t.Fatalf("registry not carried: %v %+v", err, c)
	}
}

// A file the target's marker records: Check and Plan say who applied it
// and when, and the plan lists no changes.
func TestAlreadyAppliedPlanListsNothing(t *testing.T) {
	t.Parallel()
	e := &Engine{SigningKey: testKey}
	app, tgt := pluginApp(t, pluginLayouts[0], `('map', '@nocobase/plugin-map', '2.2.15', true, true, false, '{}')`, "")
	file := createFile(t, e, app)
	before, err := e.Plan(ctxT(t), reader(file), app, tgt, nil)
	if err != nil || before.AlreadyApplied != nil || len(before.Statements) == 0 || len(before.Tables) == 0 || len(before.NewPlugins) != 1 {
		t.Fatalf("plan before the apply: %v %+v", err, before)
	}
	if _, err := e.Apply(ctxT(t), reader(file), app, tgt, release.ApplyOptions{By: "bob"}); err != nil {
		t.Fatal(err)
	}
	c, err := e.Check(ctxT(t), reader(file), app, tgt)
	if err != nil || c.AlreadyApplied == nil || c.AlreadyApplied.By != "bob" || c.AlreadyApplied.Migration != "crm-m1" || time.Since(c.AlreadyApplied.At) > time.Minute {
		t.Fatalf("check after the apply: %v %+v", err, c)
	}
	plan, err := e.Plan(ctxT(t), reader(file), app, tgt, nil)
	if err != nil || plan.AlreadyApplied == nil || plan.AlreadyApplied.By != "bob" {
		t.Fatalf("plan after the apply: %v %+v", err, plan)
	}
	if len(plan.Statements) != 0 || len(plan.Tables) != 0 || len(plan.Destructive) != 0 || len(plan.NewPlugins) != 0 || len(plan.VersionChanges) != 0 {
		t.Fatalf("an applied file's plan lists changes: %+v", plan)
	}
}

func TestCopyField(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{`plain`: "plain", `a\tb`: "a\tb", `a\\b`: `a\b`, `line\nnext`: "line\nnext", `\\N`: `\N`} {
		if got, ok := copyField(in); !ok || got != want {
			t.Errorf("copyField(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := copyField(`\N`); ok {
		t.Error(`\N is NULL`)
	}
}
