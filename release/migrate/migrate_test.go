package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/sampleapp"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
	"github.com/relbot/relbot/release/pgsnap"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sampleApp loads the sample app's environments into databases of this
// test and returns the app as apps.yaml describes it.
func sampleApp(t *testing.T, envs ...string) *release.App { return sampleapp.Load(t, envs...) }

type fileReader struct {
	*bytes.Reader
}

func (f fileReader) Size() int64 { return f.Reader.Size() }

func makeFile(t *testing.T, e *Engine, app *release.App, secrets ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	dev, _ := app.Env(fixtures.Development)
	_, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC(), Secrets: secrets}, &buf)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return buf.Bytes()
}

func reader(b []byte) fileReader { return fileReader{bytes.NewReader(b)} }

// snapshot is what a test compares before and after: the schema dump and
// every table's rows.
type snapshot struct {
	schema string
	rows   map[string]string
	tables map[string]pgschema.Table
}

func take(t *testing.T, dsn string) snapshot {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "--dbname", dsn).Output()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict`) && !strings.HasPrefix(l, `\unrestrict`) {
			keep = append(keep, l)
		}
	}
	conn, err := pgschema.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshot{schema: strings.Join(keep, "\n"), rows: map[string]string{}, tables: map[string]pgschema.Table{}}
	for i := range s.Tables {
		ti, err := pgsnap.TableChecksum(ctxT(t), conn, &s.Tables[i])
		if err != nil {
			t.Fatal(err)
		}
		snap.rows[ti.Key] = fmt.Sprintf("%d %s", ti.Rows, ti.Checksum)
		snap.tables[ti.Key] = s.Tables[i]
	}
	return snap
}

// structure is a table's columns, keys and indexes as comparable text.
func structure(t pgschema.Table) string {
	t.Bytes = 0
	t.Comment = ""
	for i := range t.Columns {
		t.Columns[i].Comment = ""
	}
	b, _ := json.Marshal(struct {
		C []pgschema.Column
		K []pgschema.Constraint
		I []pgschema.Index
	}{t.Columns, t.Constraints, t.Indexes})
	return string(b)
}

func TestChainDevelopmentStagingProduction(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Staging, fixtures.Production)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	dev, _ := app.Env(fixtures.Development)
	source := take(t, dev.Database)
	f, err := e.Open(reader(file))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.Meta.Variables, "CONTRACTS_SIGN_URL") {
		t.Fatalf("variables referenced: %v", f.Meta.Variables)
	}

	for _, envName := range []string{fixtures.Staging, fixtures.Production} {
		t.Run(envName, func(t *testing.T) {
			env, _ := app.Env(envName)
			before := take(t, env.Database)
			productsBefore := testenv.Rows(t, env.Database, "SELECT id::text, row(sku, name, price)::text FROM products")
			plan, err := e.Plan(ctxT(t), reader(file), app, env, map[string]bool{})
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if len(plan.MissingVariables) == 0 || len(plan.VersionChanges) == 0 || len(plan.Statements) == 0 {
				t.Fatalf("plan misses things: %+v", plan)
			}
			if after := take(t, env.Database); after.schema != before.schema {
				t.Fatal("plan changed the target's schema")
			}
			var sql strings.Builder
			res, err := e.Apply(ctxT(t), reader(file), app, env, release.ApplyOptions{By: "bob", SQL: &sql})
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if res.AlreadyApplied != nil || len(res.Steps) == 0 {
				t.Fatalf("apply result %+v", res)
			}
			checkSQLExecuted(t, sql.String(), plan)
			after := take(t, env.Database)
			for _, r := range f.Meta.Rules {
				switch r.Rule {
				case release.RuleOverwrite:
					if after.rows[r.Table] != source.rows[r.Table] {
						t.Errorf("overwrite %s: %s, development has %s", r.Table, after.rows[r.Table], source.rows[r.Table])
					}
					if structure(after.tables[r.Table]) != structure(source.tables[r.Table]) {
						t.Errorf("overwrite %s: structure differs from development's", r.Table)
					}
				case release.RuleSchemaOnly:
					if structure(after.tables[r.Table]) != structure(source.tables[r.Table]) {
						t.Errorf("schema-only %s: structure differs from development's:\n%s\n%s", r.Table, structure(after.tables[r.Table]), structure(source.tables[r.Table]))
					}
					if _, existed := before.rows[r.Table]; existed && strings.Fields(after.rows[r.Table])[0] != strings.Fields(before.rows[r.Table])[0] {
						t.Errorf("schema-only %s: %s rows, had %s", r.Table, after.rows[r.Table], before.rows[r.Table])
					}
				case release.RuleSkip:
					if after.rows[r.Table] != before.rows[r.Table] {
						t.Errorf("skip %s changed", r.Table)
					}
				}
			}
			// upsert: development's products as they are there, the
			// target's own kept.
			devProducts := testenv.Rows(t, dev.Database, "SELECT id::text, row(sku, name, price)::text FROM products")
			got := testenv.Rows(t, env.Database, "SELECT id::text, row(sku, name, price)::text FROM products")
			for id, v := range devProducts {
				if got[id] != v {
					t.Errorf("upsert products %s: %q, development has %q", id, got[id], v)
				}
			}
			for id, v := range productsBefore {
				if _, fromDev := devProducts[id]; !fromDev && got[id] != v {
					t.Errorf("upsert products: the target's own row %s was lost or changed", id)
				}
			}
			again, err := e.Apply(ctxT(t), reader(file), app, env, release.ApplyOptions{By: "carol"})
			if err != nil || again.AlreadyApplied == nil || again.AlreadyApplied.By != "bob" {
				t.Fatalf("second apply: %+v %v", again, err)
			}
			if take(t, env.Database).schema != after.schema {
				t.Fatal("second apply changed something")
			}
		})
	}
}

// A failure at the very end (the marker row violates a constraint planted
// in the target) leaves the target exactly as it was.
func TestFailureLeavesTargetAsItWas(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Production)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	prod, _ := app.Env(fixtures.Production)
	conn := testenv.Connect(t, prod.Database)
	for _, s := range append(append([]string{}, markerDDL...), `ALTER TABLE `+markerTable+` ADD CONSTRAINT no_bob CHECK (applied_by <> 'bob')`) {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(context.Background())
	before := take(t, prod.Database)
	_, err := e.Apply(ctxT(t), reader(file), app, prod, release.ApplyOptions{By: "bob"})
	if err == nil || !strings.Contains(err.Error(), "no_bob") || !strings.Contains(release.ErrorMessage(err), "nothing was changed") {
		t.Fatalf("got %v", err)
	}
	after := take(t, prod.Database)
	if after.schema != before.schema {
		t.Fatal("schema changed after a failed apply")
	}
	for k, v := range before.rows {
		if after.rows[k] != v {
			t.Errorf("table %s changed after a failed apply", k)
		}
	}
}

func TestBadFilesAreRefusedBeforeTouchingTheTarget(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Staging)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	staging, _ := app.Env(fixtures.Staging)
	before := take(t, staging.Database)
	flipped := bytes.Clone(file)
	flipped[len(flipped)/2] ^= 1
	foreign := makeFile(t, &Engine{SigningKey: []byte("another relbot's key, not ours..")}, app)
	cases := map[string]struct {
		data []byte
		says string
	}{
		"tampered":  {flipped, "signature does not match"},
		"truncated": {file[:len(file)-100], "not a relbot migration file"},
		"foreign":   {foreign, "signature does not match"},
		"garbage":   {[]byte("hello, not a migration file at all, just some text........"), "not a relbot migration file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.Plan(ctxT(t), reader(c.data), app, staging, nil); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("plan: %v", err)
			}
			if _, err := e.Apply(ctxT(t), reader(c.data), app, staging, release.ApplyOptions{By: "x"}); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("apply: %v", err)
			}
		})
	}
	if take(t, staging.Database).schema != before.schema {
		t.Fatal("a refused file changed the target")
	}
}

// Canary secrets of every environment never end up in a file; a file
// whose rows would carry one is refused, naming where, never the value.
func TestSecretsNeverInAFile(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	e := &Engine{SigningKey: testKey}
	var canaries []string
	for _, env := range fixtures.Envs {
		for _, v := range fixtures.Secrets(env) {
			canaries = append(canaries, v)
		}
	}
	canaries = append(canaries, "canary-secret-7f3a9e")
	file := makeFile(t, e, app, canaries...)
	content := decoded(t, e, file)
	for _, c := range canaries {
		if bytes.Contains(content, []byte(c)) {
			t.Fatalf("file holds a secret value")
		}
	}

	dev, _ := app.Env(fixtures.Development)
	conn := testenv.Connect(t, dev.Database)
	if _, err := conn.Exec(context.Background(), `UPDATE "uiSchemas" SET schema = jsonb_set(schema, '{x-token}', '"canary-secret-7f3a9e"') WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	var buf bytes.Buffer
	_, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m2", By: "alice", CreatedAt: time.Now(), Secrets: canaries}, &buf)
	msg := release.ErrorMessage(err)
	if err == nil || !strings.Contains(msg, "uiSchemas") || !strings.Contains(msg, "column schema") || !strings.Contains(msg, "x-uid=") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "canary-secret") {
		t.Fatal("the refusal shows the secret")
	}
	// A secret typed into the note is refused too.
	buf.Reset()
	_, err = e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m3", By: "alice", CreatedAt: time.Now(), Note: "rotate canary-secret-7f3a9e soon", Secrets: canaries}, &buf)
	if msg := release.ErrorMessage(err); err == nil || !strings.Contains(msg, "its note holds the value of a secret") || strings.Contains(msg, "canary-secret") || buf.Len() != 0 {
		t.Fatalf("a note with a secret: %v (%d bytes written)", err, buf.Len())
	}
}

// decoded is every byte a file carries, decompressed.
func decoded(t *testing.T, e *Engine, file []byte) []byte {
	t.Helper()
	r, err := archive.Open(bytes.NewReader(file[:len(file)-sigSize]), int64(len(file)-sigSize), "")
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(r.Meta())
	for _, m := range r.Members() {
		b, err := io.ReadAll(r.Open(&m))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestRulesRefuseBadOverrides(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	dev, _ := app.Env(fixtures.Development)
	conn, err := pgschema.Connect(ctxT(t), dev.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := appdb.Rules(app, release.Layout{}, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]release.Rule{
		"uiSchemas": release.RuleOverwrite, "main_desktopRoutes_path": release.RuleOverwrite, "rolesDesktopRoutes": release.RuleOverwrite,
		"users": release.RuleSchemaOnly, "executions": release.RuleSchemaOnly, "environmentVariables": release.RuleSchemaOnly,
		"customers": release.RuleSchemaOnly, "auditTrails": release.RuleSkip, "products": release.RuleUpsert, "themeConfig": release.RuleInsertIgnore,
		"applicationPlugins": release.RuleOverwrite, "applicationVersion": release.RuleSchemaOnly, "workflows": release.RuleOverwrite,
	}
	for table, rule := range want {
		if got := appdb.RuleOf(rules, table); got != rule {
			t.Errorf("%s: %s, want %s", table, got, rule)
		}
	}
	for name, override := range map[string]map[string]release.Rule{
		"no such table":  {"nope": release.RuleOverwrite},
		"upsert, no PK":  {"main_desktopRoutes_path": release.RuleUpsert},
		"values of vars": {"environmentVariables": release.RuleOverwrite},
	} {
		bad := *app
		bad.Rules = override
		if _, err := appdb.Rules(&bad, release.Layout{}, s); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			for table := range override {
				if !strings.Contains(err.Error(), table) {
					t.Errorf("%s: %v does not name %s", name, err, table)
				}
			}
		}
	}
}

var _ = os.Stat
var _ = filepath.Join

// A plan against a copy of the source itself finds nothing to change:
// values compare as values (booleans, json, numbers), not as text forms.
func TestPlanAgainstIdenticalTargetCountsNothing(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Staging)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	staging, _ := app.Env(fixtures.Staging)
	if _, err := e.Apply(ctxT(t), reader(file), app, staging, release.ApplyOptions{By: "bob"}); err != nil {
		t.Fatal(err)
	}
	plan, err := e.Plan(ctxT(t), reader(file), app, staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range plan.Tables {
		if tp.Rule == release.RuleOverwrite && tp.Note == "" && (tp.Insert != 0 || tp.Update != 0 || tp.Delete != 0) {
			t.Errorf("%s: +%d ~%d -%d against identical rows", tp.Table, tp.Insert, tp.Update, tp.Delete)
		}
	}
	if plan.AlreadyApplied == nil {
		t.Error("plan does not say the file was applied")
	}
}

// What the target has and development does not is listed as destructive;
// it is kept unless destructive changes are allowed.
func TestDestructiveChangesNeedPermission(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Production)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	prod, _ := app.Env(fixtures.Production)
	conn := testenv.Connect(t, prod.Database)
	for _, s := range []string{`ALTER TABLE customers ADD COLUMN fax text`, `CREATE TABLE legacy_notes (id int PRIMARY KEY, note text)`,
		`INSERT INTO legacy_notes VALUES (1, 'kept until someone says otherwise')`} {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(context.Background())
	plan, err := e.Plan(ctxT(t), reader(file), app, prod, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan.Destructive, "\n")
	if !strings.Contains(joined, "customers.fax") || !strings.Contains(joined, "legacy_notes") {
		t.Fatalf("destructive changes not listed:\n%s", joined)
	}
	if _, err := e.Apply(ctxT(t), reader(file), app, prod, release.ApplyOptions{By: "bob"}); err != nil {
		t.Fatal(err)
	}
	after := take(t, prod.Database)
	customers := after.tables["customers"]
	if _, ok := after.tables["legacy_notes"]; !ok || customers.Column("fax") == nil {
		t.Fatal("destructive changes ran without permission")
	}
	// A second file (another hash) applied with permission drops them.
	file2 := makeFile(t, e, app)
	if _, err := e.Apply(ctxT(t), reader(file2), app, prod, release.ApplyOptions{By: "bob", AllowDestructive: true}); err != nil {
		t.Fatal(err)
	}
	after = take(t, prod.Database)
	customers = after.tables["customers"]
	if _, ok := after.tables["legacy_notes"]; ok || customers.Column("fax") != nil {
		t.Fatal("allowed destructive changes did not run")
	}
}

// The apply makes tables and views again as relbot's role; they go back
// to their owner with their grants, and a table the migration adds goes to
// the role that owns the target's tables.
func TestApplyKeepsOwnersAndGrants(t *testing.T) {
	t.Parallel()
	owner, reader2 := testenv.UniqueName("relbot_app"), testenv.UniqueName("relbot_report")
	testenv.DropRoleAfterDatabases(t, owner) // after the databases are dropped
	testenv.DropRoleAfterDatabases(t, reader2)
	testenv.Exec(t, "CREATE ROLE "+owner)
	testenv.Exec(t, "CREATE ROLE "+reader2)
	app := sampleApp(t, fixtures.Development, fixtures.Production)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	prod, _ := app.Env(fixtures.Production)
	conn := testenv.Connect(t, prod.Database)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT c.relkind, c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') LOOP
			EXECUTE format('ALTER %s %s OWNER TO `+owner+`', CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.name);
		END LOOP; END $$;
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+reader2); err != nil {
		t.Fatal(err)
	}
	state := func() map[string]string {
		rows := testenv.Rows(t, prod.Database, `SELECT c.relkind::text || ' ' || c.relname, pg_get_userbyid(c.relowner) || ' ' ||
			has_table_privilege('`+reader2+`', c.oid, 'SELECT') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')`)
		return rows
	}
	before := state()
	if before[`r uiSchemas`] != owner+" true" {
		t.Fatalf("setup: uiSchemas is %q", before[`r uiSchemas`])
	}
	res, err := e.Apply(ctxT(t), reader(file), app, prod, release.ApplyOptions{By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("warnings: %q", res.Warnings)
	}
	after := state()
	added := 0
	for name, got := range after {
		want, existed := before[name]
		switch {
		case existed && got != want:
			t.Errorf("%s: %s after the apply, %s before", name, got, want)
		case !existed && got != owner+" false":
			t.Errorf("%s, added by the migration: %s, want owned by %s with no grants", name, got, owner)
		case !existed:
			added++
		}
	}
	if added == 0 {
		t.Fatal("the migration added no table or view: the test does not test new objects")
	}
}

// checkSQLExecuted checks an apply's transcript: every statement the plan
// listed, in full and in its order, then the marker and the commit.
func checkSQLExecuted(t *testing.T, transcript string, plan *release.MigrationPlan) {
	t.Helper()
	at := 0
	for _, st := range plan.Statements {
		i := strings.Index(transcript[at:], strings.TrimRight(strings.TrimPrefix(st, "-- "), ";"))
		if i < 0 {
			t.Fatalf("the SQL executed lacks, after byte %d, the planned %q:\n%s", at, st, transcript)
		}
		at += i
	}
	if !strings.HasPrefix(transcript, "-- relbot: apply of "+plan.Migration+" ") || !strings.Contains(transcript[at:], "INSERT INTO "+markerTable) ||
		!strings.Contains(transcript, "\nCOMMIT;\n-- committed after ") {
		t.Errorf("the SQL executed:\n%s", transcript)
	}
}
