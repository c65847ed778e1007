package migrate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

func relLayout(l fixtures.Layout) release.Layout {
	return release.Layout{Schema: l.Schema, TablePrefix: l.Prefix, Underscored: l.Underscored}
}

// nocobaseEnv makes a database of this test holding a NocoBase-shaped app
// in layout l, as env wrote it.
func nocobaseEnv(t *testing.T, l fixtures.Layout, env string) *release.Environment {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "nb_"+env[:3])
	if err := fixtures.LoadNocoBase(ctxT(t), dsn, l, env); err != nil {
		t.Fatal(err)
	}
	return &release.Environment{Name: env, Database: dsn}
}

func nocobaseApp(envs ...*release.Environment) *release.App {
	return &release.App{Name: "crm", Builtin: "nocobase", Rules: map[string]release.Rule{}, Environments: envs}
}

func inspectDSN(t *testing.T, dsn string) *pgschema.Schema {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	s, err := pgschema.Inspect(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tableRows is every row of a table as text, sorted, so two tables compare
// row for row.
func tableRows(t *testing.T, conn *pgx.Conn, ident string) []string {
	t.Helper()
	rows, err := conn.Query(ctxT(t), `SELECT t::text FROM `+ident+` t ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The preset's 2.2.15 rules land on the same tables in every layout, and a
// development -> production migration carries every configuration table
// row for row while production keeps its business rows and variables.
func TestPresetAndMigrationInEveryLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			l := relLayout(tc.Layout)
			dev := nocobaseEnv(t, tc.Layout, fixtures.Development)
			prod := nocobaseEnv(t, tc.Layout, fixtures.Production)
			app := nocobaseApp(dev, prod)
			// User collections kept in another schema, as
			// COLLECTION_MANAGER_SCHEMA makes them: user tables, whose rows
			// production keeps.
			for _, e := range []*release.Environment{dev, prod} {
				conn := testenv.Connect(t, e.Database)
				if _, err := conn.Exec(ctxT(t), `CREATE SCHEMA crm; CREATE TABLE crm.deals (id bigint PRIMARY KEY, title text);
					INSERT INTO crm.deals VALUES (1, 'deal of `+e.Name+`')`); err != nil {
					t.Fatal(err)
				}
			}

			s := withoutMarker(inspectDSN(t, dev.Database))
			rep, err := nocobase.LayoutOf(s, dev)
			if err != nil || !rep.Found || rep.Layout != l {
				t.Fatalf("detected %+v, %v; want %s", rep, err, l)
			}
			rules, err := appdb.Rules(app, l, s)
			if err != nil {
				t.Fatal(err)
			}
			byKey := map[string]release.Rule{}
			for _, r := range rules {
				byKey[r.Table] = r.Rule
			}
			carried := 0
			for _, nt := range fixtures.NocoBaseTables() {
				key := tc.Layout.Key(nt.Name)
				rule, ok := byKey[key]
				if !ok {
					t.Fatalf("no rule for %s (%s)", key, nt.Name)
				}
				if rule.CarriesRows() != nt.Carried() {
					t.Errorf("%s (%s): rule %s, carried should be %t", key, nt.Name, rule, nt.Carried())
				}
				if nt.Carried() {
					carried++
				}
			}
			if carried < 50 || byKey[tc.Layout.Key("environmentVariables")] != release.RuleSchemaOnly || byKey["crm.deals"] != release.RuleSchemaOnly {
				t.Fatalf("%d carried tables; variables table %s", carried, byKey[tc.Layout.Key("environmentVariables")])
			}

			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			sum, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Layout == nil || *sum.Layout != l {
				t.Fatalf("manifest layout %v, want %s", sum.Layout, l)
			}
			if len(sum.Warnings) != 0 {
				t.Fatalf("warnings on a full NocoBase database: %v", sum.Warnings)
			}
			if sum.CoreVersion != fixtures.NocoBaseCore || len(sum.Plugins) != fixtures.NocoBasePlugins {
				t.Fatalf("manifest versions %q %v", sum.CoreVersion, sum.Plugins)
			}
			if strings.Join(sum.Variables, ",") != "API_URL" {
				t.Fatalf("variables referenced: %v", sum.Variables)
			}
			n := 0
			for _, ts := range sum.Tables {
				if ts.Carried {
					n++
				}
			}
			if n != carried {
				t.Fatalf("the file carries %d tables, the preset %d", n, carried)
			}

			plan, err := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, map[string]bool{"API_URL": false})
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.VersionChanges) != 0 || len(plan.MissingVariables) != 0 || len(plan.Warnings) != 0 {
				t.Fatalf("plan: versions %v, missing %v, warnings %v", plan.VersionChanges, plan.MissingVariables, plan.Warnings)
			}
			inserts := int64(0)
			for _, tp := range plan.Tables {
				inserts += tp.Insert
			}
			if inserts < int64(carried) {
				t.Fatalf("plan inserts %d rows over %d configuration tables that each gain one", inserts, carried)
			}

			devConn, prodConn := testenv.Connect(t, dev.Database), testenv.Connect(t, prod.Database)
			business := map[string][]string{}
			for _, nt := range fixtures.NocoBaseTables() {
				if !nt.Carried() {
					business[nt.Name] = tableRows(t, prodConn, tc.Layout.Ident(nt.Name))
				}
			}
			var sql strings.Builder
			if _, err := e.Apply(ctxT(t), reader(buf.Bytes()), app, prod, release.ApplyOptions{By: "alice", SQL: &sql}); err != nil {
				t.Fatal(err)
			}
			checkSQLExecuted(t, sql.String(), plan)
			for _, nt := range fixtures.NocoBaseTables() {
				ident := tc.Layout.Ident(nt.Name)
				got := tableRows(t, prodConn, ident)
				want := business[nt.Name]
				if nt.Carried() {
					want = tableRows(t, devConn, ident)
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s after the apply (carried %t): %d rows, want %d\n got %.200v\nwant %.200v", ident, nt.Carried(), len(got), len(want), got, want)
				}
			}
			if deals := tableRows(t, prodConn, `crm.deals`); len(deals) != 1 || !strings.Contains(deals[0], "deal of production") {
				t.Fatalf("production's collection in another schema: %v", deals)
			}
			vars := testenv.Rows(t, prod.Database, fmt.Sprintf(`SELECT %q, %q FROM %s`, "name", "value", tc.Layout.Ident("environmentVariables")))
			if vars["API_URL"] != "https://api.production.example" {
				t.Fatalf("production's variables changed: %v", vars)
			}
		})
	}
}

// A migration between installations whose layouts differ is refused at the
// plan and at the apply, naming the setting that differs, and changes
// nothing.
func TestMismatchedLayoutsRefused(t *testing.T) {
	t.Parallel()
	all := fixtures.Layouts[4].Layout
	for _, tc := range []struct {
		from, to fixtures.Layout
		setting  []string
	}{
		{fixtures.Layout{}, all, []string{"DB_SCHEMA is public in development, nocobase in production", "DB_TABLE_PREFIX is empty in development, nb_ in production", "DB_UNDERSCORED is false in development, true in production"}},
		{fixtures.Layout{Prefix: "nb_"}, fixtures.Layout{}, []string{"DB_TABLE_PREFIX is nb_ in development, empty in production"}},
		{fixtures.Layout{Underscored: true}, fixtures.Layout{}, []string{"DB_UNDERSCORED is true in development, false in production"}},
		{fixtures.Layout{Schema: "nocobase"}, fixtures.Layout{}, []string{"DB_SCHEMA is nocobase in development, public in production"}},
	} {
		t.Run(fmt.Sprintf("%+v->%+v", tc.from, tc.to), func(t *testing.T) {
			t.Parallel()
			dev := nocobaseEnv(t, tc.from, fixtures.Development)
			prod := nocobaseEnv(t, tc.to, fixtures.Production)
			app := nocobaseApp(dev, prod)
			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
				t.Fatal(err)
			}
			before := take(t, prod.Database)
			_, perr := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, nil)
			_, aerr := e.Apply(ctxT(t), reader(buf.Bytes()), app, prod, release.ApplyOptions{By: "alice"})
			for _, err := range []error{perr, aerr} {
				if release.ErrorCode(err) != release.CodeIncompatible {
					t.Fatalf("want a refusal, got %v", err)
				}
				for _, want := range tc.setting {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("refusal does not say %q: %v", want, err)
					}
				}
			}
			after := take(t, prod.Database)
			if after.schema != before.schema || fmt.Sprint(after.rows) != fmt.Sprint(before.rows) {
				t.Fatal("the refused apply changed production")
			}
		})
	}
}

// A preset that finds no table of its list, or only a few, is said loudly
// in the file's summary and in the plan.
func TestPresetThatMatchesNothingIsLoud(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"none", `CREATE TABLE tickets (id bigint PRIMARY KEY, title text); INSERT INTO tickets VALUES (1, 'a');`,
			[]string{"PRESET MATCHED NO TABLE", "none of the 104 tables", "schema public, no table prefix, camelCase names", "NOTHING CARRIED"}},
		{"few", `CREATE TABLE "uiSchemas" ("x-uid" text PRIMARY KEY); CREATE TABLE roles (id bigint PRIMARY KEY); CREATE TABLE nb_users (id bigint PRIMARY KEY);`,
			[]string{"PRESET MATCHED ONLY 2 TABLES", "roles, uiSchemas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, devDSN := testenv.NewDatabase(t, "nb_dev")
			_, prodDSN := testenv.NewDatabase(t, "nb_prod")
			conn := testenv.Connect(t, devDSN)
			if _, err := conn.Exec(ctxT(t), tc.sql); err != nil {
				t.Fatal(err)
			}
			dev := &release.Environment{Name: "development", Database: devDSN}
			prod := &release.Environment{Name: "production", Database: prodDSN}
			app := nocobaseApp(dev, prod)
			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			sum, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			f, err := e.Open(reader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, nil)
			if err != nil {
				t.Fatal(err)
			}
			for what, ws := range map[string][]string{"create": sum.Warnings, "show": f.Summary().Warnings, "plan": plan.Warnings} {
				text := strings.Join(ws, "\n")
				for _, want := range tc.want {
					if !strings.Contains(text, want) {
						t.Fatalf("%s warnings lack %q:\n%s", what, want, text)
					}
				}
			}
		})
	}
}

// apps.yaml may name tables by their real names or by NocoBase's plain
// ones; both find the same table, and naming one twice is refused.
func TestRuleNamesInEitherForm(t *testing.T) {
	t.Parallel()
	lay := fixtures.Layouts[4].Layout
	dev := nocobaseEnv(t, lay, fixtures.Development)
	l := relLayout(lay)
	s := withoutMarker(inspectDSN(t, dev.Database))
	for _, name := range []string{"users", "nocobase.nb_users"} {
		app := nocobaseApp(dev)
		app.Rules[name] = release.RuleOverwrite
		rules, err := appdb.Rules(app, l, s)
		if err != nil {
			t.Fatal(err)
		}
		if appdb.RuleOf(rules, "nocobase.nb_users") != release.RuleOverwrite {
			t.Fatalf("rule written as %s did not reach nocobase.nb_users", name)
		}
	}
	app := nocobaseApp(dev)
	app.Rules["users"] = release.RuleOverwrite
	app.Rules["nocobase.nb_users"] = release.RuleSchemaOnly
	if _, err := appdb.Rules(app, l, s); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("two names of one table: %v", err)
	}
	app = nocobaseApp(dev)
	app.Rules["environmentVariables"] = release.RuleOverwrite
	if _, err := appdb.Rules(app, l, s); err == nil || !strings.Contains(err.Error(), "never carries") {
		t.Fatalf("variables table carried under its plain name: %v", err)
	}
	app = nocobaseApp(dev)
	app.Rules["nope"] = release.RuleOverwrite
	if _, err := appdb.Rules(app, l, s); err == nil || !strings.Contains(err.Error(), `"nocobase.nb_nope"`) {
		t.Fatalf("missing table: %v", err)
	}
	// The list form maps through the layout too.
	list := &release.App{Name: "crm", BuiltinTables: []string{"uiSchemas", "nocobase.nb_roles", "gone"}, Environments: []*release.Environment{dev}}
	rules, err := appdb.Rules(list, l, s)
	if err != nil {
		t.Fatal(err)
	}
	if appdb.RuleOf(rules, "nocobase.nb_ui_schemas") != release.RuleOverwrite || appdb.RuleOf(rules, "nocobase.nb_roles") != release.RuleOverwrite || appdb.RuleOf(rules, "nocobase.nb_users") != release.RuleSchemaOnly {
		t.Fatalf("list form: %v", rules)
	}
	ws := strings.Join(appdb.Coverage(list, l, s, rules, "development", "detected"), "\n")
	if !strings.Contains(ws, "gone") {
		t.Fatalf("the list's missing table is not warned about: %s", ws)
	}
}
