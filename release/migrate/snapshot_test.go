package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// revertCase is a migration applied with a release snapshot, business
// writes after it, then a targeted revert.
type revertCase struct {
	name           string
	base, src, tgt string
	rules          map[string]release.Rule
	allow          bool
	// after runs on the target once the apply committed (users at work);
	// written are the tables it writes to, whose rows must survive the
	// revert (checked by check), all others must be exactly as before.
	after   string
	written []string
	check   func(t *testing.T, r *strings.Replacer, dsn string)
	// revertWarning must be in the revert's warnings.
	revertWarning string
}

// modelOf is the schema model's tables and views without relbot's own,
// as comparable JSON.
func modelOf(t *testing.T, dsn string) string {
	t.Helper()
	s := appdb.WithoutOwn(inspectDSN(t, dsn))
	b, err := json.MarshalIndent(struct {
		T []pgschema.Table
		V []pgschema.View
		P []pgschema.Privileges
	}{s.Tables, s.Views, s.Privileges}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type revertEnv struct {
	e      *Engine
	app    *release.App
	tgt    *release.Environment
	file   []byte
	r      *strings.Replacer
	exec   func(dsn, sql string)
	tgtDSN string
	before snapshot
	dump   string
	model  string
	srcDSN string
}

func setupRevert(t *testing.T, rc revertCase, names map[string]string) *revertEnv {
	t.Helper()
	r := replacer(names)
	_, srcDSN := testenv.NewDatabase(t, "rv_src")
	_, tgtDSN := testenv.NewDatabase(t, "rv_tgt")
	execAll := func(dsn, sql string) { t.Helper(); execReplaced(t, r, dsn, sql) }
	execAll(srcDSN, rc.base)
	execAll(tgtDSN, rc.base)
	execAll(srcDSN, rc.src)
	execAll(tgtDSN, rc.tgt)
	rules := map[string]release.Rule{}
	for k, v := range rc.rules {
		rules[r.Replace(k)] = v
	}
	src := &release.Environment{Name: "development", Database: srcDSN}
	tgt := &release.Environment{Name: "production", Database: tgtDSN}
	app := &release.App{Name: "rv", Rules: rules, Environments: []*release.Environment{src, tgt}}
	e := &Engine{SigningKey: testKey}
	var buf bytes.Buffer
	if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: src, ID: "rv-1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatalf("create: %v", err)
	}
	return &revertEnv{e: e, app: app, tgt: tgt, file: buf.Bytes(), r: r, exec: execAll, tgtDSN: tgtDSN, srcDSN: srcDSN,
		before: take(t, tgtDSN), dump: dumpSchema(t, tgtDSN), model: modelOf(t, tgtDSN)}
}

// assertAsBefore checks that the target's definitions are those before
// the apply and the rows of every table but skip are too.
func (re *revertEnv) assertAsBefore(t *testing.T, skip []string) {
	t.Helper()
	if got := dumpSchema(t, re.tgtDSN); got != re.dump {
		t.Errorf("schema (pg_dump) differs from before the apply:\n%s", lineDiff(re.dump, got))
	}
	if got := modelOf(t, re.tgtDSN); got != re.model {
		t.Errorf("schema (pgschema) differs from before the apply:\n%s", lineDiff(re.model, got))
	}
	after := take(t, re.tgtDSN)
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[re.r.Replace(s)] = true
	}
	for k, v := range re.before.rows {
		if strings.HasPrefix(k, "relbot") || skipped[k] {
			continue
		}
		if after.rows[k] != v {
			t.Errorf("table %s: rows %s, before the apply %s", k, after.rows[k], v)
		}
	}
	for k := range after.rows {
		if _, ok := re.before.rows[k]; !ok && !strings.HasPrefix(k, "relbot") {
			t.Errorf("table %s is there, and was not before the apply", k)
		}
	}
}

func runRevertCase(t *testing.T, rc revertCase, names map[string]string) {
	re := setupRevert(t, rc, names)
	res, err := re.e.Apply(ctxT(t), reader(re.file), re.app, re.tgt, release.ApplyOptions{By: "bob", Snapshot: "r-1", AllowDestructive: rc.allow})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	re.exec(re.tgtDSN, rc.after)
	snaps, err := re.e.Snapshots(ctxT(t), re.app, re.tgt)
	if err != nil || len(snaps) != 1 || snaps[0].Name != "r-1" || snaps[0].Migration != "rv-1" || snaps[0].Reverted || snaps[0].Tables == 0 {
		t.Fatalf("snapshots %+v, %v", snaps, err)
	}
	if done, err := re.e.Reverted(ctxT(t), re.app, re.tgt, "r-1"); done || err != nil {
		t.Fatalf("reverted before the revert: %v %v", done, err)
	}
	rres, err := re.e.Revert(ctxT(t), re.app, re.tgt, "r-1", release.RevertOptions{By: "carol"})
	if err != nil {
		var steps []string
		for _, s := range res.Steps {
			steps = append(steps, s.What)
		}
		t.Fatalf("revert: %v\napply steps:\n%s", err, strings.Join(steps, "\n"))
	}
	if testing.Verbose() {
		for _, s := range res.Steps {
			t.Logf("apply: %s", s.What)
		}
		for _, s := range rres.Steps {
			t.Logf("revert: %s", s.What)
		}
	}
	re.assertAsBefore(t, rc.written)
	if rc.check != nil {
		rc.check(t, re.r, re.tgtDSN)
	}
	if w := strings.Join(rres.Warnings, "\n"); (rc.revertWarning == "") != (w == "") || !strings.Contains(w, rc.revertWarning) {
		t.Errorf("revert warnings %q, want %q", w, rc.revertWarning)
	}
	if done, err := re.e.Reverted(ctxT(t), re.app, re.tgt, "r-1"); !done || err != nil {
		t.Fatalf("not reverted after the revert: %v %v", done, err)
	}
	// The marker is gone: the file applies again.
	if a, err := re.e.Applied(ctxT(t), reader(re.file), re.app, re.tgt); a != nil || err != nil {
		t.Fatalf("marker after the revert: %+v %v", a, err)
	}
	// Twice: refused, naming it.
	if _, err := re.e.Revert(ctxT(t), re.app, re.tgt, "r-1", release.RevertOptions{By: "carol"}); err == nil || !strings.Contains(release.ErrorMessage(err), "reverted already") {
		t.Fatalf("second revert: %v", err)
	}
}

func countOf(t *testing.T, dsn, q string) int64 {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctxT(t), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

var revertCases = []revertCase{
	{
		name: "business FK to a replaced config table, a view on it",
		base: `CREATE TABLE {P} (id bigint PRIMARY KEY, name text NOT NULL);
			CREATE TABLE orders (id bigserial PRIMARY KEY, p_id bigint REFERENCES {P}(id), total numeric);
			CREATE VIEW p_names AS SELECT id, name FROM {P};
			INSERT INTO {P} VALUES (1, 'one'), (2, 'two');`,
		src:   `UPDATE {P} SET name = 'ONE' WHERE id = 1; INSERT INTO {P} VALUES (3, 'three');`,
		tgt:   `INSERT INTO orders (p_id, total) VALUES (1, 10), (2, 20);`,
		rules: map[string]release.Rule{"{P}": release.RuleOverwrite, "orders": release.RuleSchemaOnly},
		after: `INSERT INTO orders (p_id, total) VALUES (1, 30), (2, 40);`, written: []string{"orders"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			if n := countOf(t, dsn, `SELECT count(*) FROM orders`); n != 4 {
				t.Errorf("orders has %d rows after the revert, want the 2 before and the 2 written since", n)
			}
		},
	},
	{
		name: "FK between two replaced tables",
		base: `CREATE TABLE {P} (id bigint PRIMARY KEY, name text);
			CREATE TABLE {C} (id bigserial PRIMARY KEY, p_id bigint NOT NULL REFERENCES {P}(id) ON DELETE CASCADE, v text);
			ALTER TABLE {P} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
			GRANT SELECT ON {P} TO PUBLIC;
			INSERT INTO {P} VALUES (1, 'a'), (2, 'b'); INSERT INTO {C} VALUES (10, 1, 'x'), (20, 2, 'y');`,
		src: `DELETE FROM {P} WHERE id = 2; INSERT INTO {P} VALUES (3, 'c'); INSERT INTO {C} VALUES (30, 3, 'z');
			SELECT setval('{C}_id_seq', 30)`,
		// production's numbers ran ahead: they never go back
		tgt:   `SELECT setval('{C}_id_seq', 1000)`,
		rules: map[string]release.Rule{"{P}": release.RuleOverwrite, "{C}": release.RuleOverwrite},
	},
	{
		name: "inherited table: parent replaced, child keeps its rows",
		base: `CREATE TABLE {P} (id bigint PRIMARY KEY, kind text);
			CREATE TABLE {C} (extra text) INHERITS ({P});
			INSERT INTO {P} VALUES (1, 'p1'); INSERT INTO {C} VALUES (2, 'c2', 'e');`,
		src:   `INSERT INTO {P} VALUES (3, 'p3'); UPDATE {P} SET kind = 'P1' WHERE id = 1;`,
		tgt:   `INSERT INTO {C} VALUES (4, 'c4', 'prod');`,
		rules: map[string]release.Rule{"{P}": release.RuleOverwrite, "{C}": release.RuleSchemaOnly},
		after: `INSERT INTO {C} VALUES (5, 'c5', 'since');`, written: []string{"{C}"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			if n := countOf(t, dsn, r.Replace(`SELECT count(*) FROM ONLY {C}`)); n != 3 {
				t.Errorf("child has %d rows, want 3", n)
			}
		},
	},
	{
		name: "odd schema and names, columns reordered (made again), a new table, a dropped one",
		base: `CREATE SCHEMA "My App";
			CREATE TABLE "My App"."nb_ui Schemas" ("x-uid" text PRIMARY KEY, schema jsonb, sort integer);
			CREATE INDEX "ui sort" ON "My App"."nb_ui Schemas" (sort);
			INSERT INTO "My App"."nb_ui Schemas" VALUES ('a', '{"t":1}', 1), ('b', '{"t":2}', 2);
			CREATE TABLE "My App".legacy (id serial PRIMARY KEY, v text); INSERT INTO "My App".legacy (v) VALUES ('old');`,
		src: `DROP TABLE "My App"."nb_ui Schemas";
			CREATE TABLE "My App"."nb_ui Schemas" (sort integer, "x-uid" text PRIMARY KEY, schema jsonb, title text);
			INSERT INTO "My App"."nb_ui Schemas" VALUES (1, 'a', '{"t":10}', 'A'), (3, 'c', '{}', 'C');
			DROP TABLE "My App".legacy;
			CREATE TABLE "My App"."{Q}" (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n text);
			INSERT INTO "My App"."{Q}" (n) VALUES ('new');`,
		rules: map[string]release.Rule{`My App.nb_ui Schemas`: release.RuleOverwrite, `My App.{Q}`: release.RuleOverwrite},
		allow: true,
	},
	{
		name: "column and index added to a kept business table",
		base: `CREATE TABLE deals (id bigserial PRIMARY KEY, title text);
			CREATE TABLE {P} (id bigint PRIMARY KEY, name text); INSERT INTO {P} VALUES (1, 'x');`,
		src:   `ALTER TABLE deals ADD COLUMN stage text NOT NULL DEFAULT 'new'; CREATE INDEX deals_stage ON deals (stage); COMMENT ON COLUMN deals.stage IS 'pipeline';`,
		tgt:   `INSERT INTO deals (title) VALUES ('big'), ('small');`,
		rules: map[string]release.Rule{"deals": release.RuleSchemaOnly, "{P}": release.RuleOverwrite},
		after: `INSERT INTO deals (title, stage) VALUES ('since', 'won');`, written: []string{"deals"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			if n := countOf(t, dsn, `SELECT count(*) FROM deals WHERE title IN ('big', 'small', 'since')`); n != 3 {
				t.Errorf("deals has %d of its 3 rows after the revert", n)
			}
		},
	},
	{
		name: "column type widened on a kept business table",
		base: `CREATE TABLE deals (id bigserial PRIMARY KEY, amount integer, code varchar(8));
			CREATE TABLE {P} (id bigint PRIMARY KEY); INSERT INTO {P} VALUES (1);`,
		src:   `ALTER TABLE deals ALTER COLUMN amount TYPE bigint; ALTER TABLE deals ALTER COLUMN code TYPE text; INSERT INTO {P} VALUES (2);`,
		tgt:   `INSERT INTO deals (amount, code) VALUES (10, 'a'), (20, 'b');`,
		rules: map[string]release.Rule{"deals": release.RuleSchemaOnly, "{P}": release.RuleOverwrite},
		after: `INSERT INTO deals (amount, code) VALUES (30, 'since');`, written: []string{"deals"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			if n := countOf(t, dsn, `SELECT count(*) FROM deals WHERE amount IN (10, 20, 30)`); n != 3 {
				t.Errorf("deals has %d of its 3 rows after the revert", n)
			}
		},
	},
	{
		name: "column dropped from a kept business table (destructive)",
		base: `CREATE TABLE deals (id bigserial PRIMARY KEY, title text, legacy_code text NOT NULL DEFAULT 'x');
			CREATE TABLE {P} (id bigint PRIMARY KEY); INSERT INTO {P} VALUES (1);`,
		src:   `ALTER TABLE deals DROP COLUMN legacy_code; INSERT INTO {P} VALUES (2);`,
		tgt:   `INSERT INTO deals (title, legacy_code) VALUES ('a', 'A1'), ('b', 'B2');`,
		rules: map[string]release.Rule{"deals": release.RuleSchemaOnly, "{P}": release.RuleOverwrite},
		allow: true,
		// its rows come back as they were, values of the column with them,
		// and the revert says that the row written since is not kept
		after:         `INSERT INTO deals (title) VALUES ('since');`,
		revertWarning: "table deals: its column legacy_code was dropped by rv-1, so the revert put back all its rows as they were",
	},
	{
		name: "rows merged into a kept table (upsert), triggers on it",
		base: `CREATE TABLE {Q} (k text PRIMARY KEY, v text, touched int DEFAULT 0);
			CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$;
			CREATE TRIGGER q_bump BEFORE UPDATE ON {Q} FOR EACH ROW EXECUTE FUNCTION bump();
			CREATE TABLE {P} (id bigint PRIMARY KEY); INSERT INTO {P} VALUES (1);
			INSERT INTO {Q} VALUES ('a', 'base', 0);`,
		src:   `UPDATE {Q} SET v = 'dev' WHERE k = 'a'; INSERT INTO {Q} VALUES ('b', 'dev', 0); INSERT INTO {P} VALUES (2);`,
		tgt:   `INSERT INTO {Q} VALUES ('p', 'prod only', 0);`,
		rules: map[string]release.Rule{"{Q}": release.RuleUpsert, "{P}": release.RuleOverwrite},
	},
}

// An apply with a release snapshot, users writing, then the targeted
// revert: every table the apply changed is as before (pg_dump and the
// schema model, rows), rows written since to the others stay.
func TestRevertRestoresWhatTheApplyChanged(t *testing.T) {
	t.Parallel()
	for _, rc := range revertCases {
		for i, names := range nameOrders {
			t.Run(rc.name+"/"+[]string{"a-z", "z-a"}[i], func(t *testing.T) {
				t.Parallel()
				runRevertCase(t, rc, names)
			})
		}
	}
}

// A later apply makes the revert refuse, naming it; a kill before the
// apply's commit leaves no snapshot and the target as before; a kill
// before the revert's commit leaves the apply in place.
func TestRevertRefusalsAndKills(t *testing.T) {
	t.Parallel()
	rc := revertCases[0]
	re := setupRevert(t, rc, nameOrders[0])
	ctx, cancel := context.WithCancel(ctxT(t))
	_, err := re.e.Apply(ctx, reader(re.file), re.app, re.tgt, release.ApplyOptions{By: "bob", Snapshot: "r-1", BeforeCommit: cancel})
	if err == nil {
		t.Fatal("apply killed before its commit committed")
	}
	re.assertAsBefore(t, nil)
	if snaps, err := re.e.Snapshots(ctxT(t), re.app, re.tgt); len(snaps) != 0 || err != nil {
		t.Fatalf("snapshots after a killed apply: %+v %v", snaps, err)
	}
	if _, err := re.e.Revert(ctxT(t), re.app, re.tgt, "r-1", release.RevertOptions{}); err == nil || !strings.Contains(release.ErrorMessage(err), "keeps no release snapshot r-1") {
		t.Fatalf("revert of no snapshot: %v", err)
	}

	if _, err := re.e.Apply(ctxT(t), reader(re.file), re.app, re.tgt, release.ApplyOptions{By: "bob", Snapshot: "r-1"}); err != nil {
		t.Fatal(err)
	}
	applied := take(t, re.tgtDSN)
	ctx, cancel = context.WithCancel(ctxT(t))
	if _, err := re.e.Revert(ctx, re.app, re.tgt, "r-1", release.RevertOptions{BeforeCommit: cancel}); err == nil {
		t.Fatal("revert killed before its commit committed")
	}
	if done, err := re.e.Reverted(ctxT(t), re.app, re.tgt, "r-1"); done || err != nil {
		t.Fatalf("a killed revert reads as reverted: %v %v", done, err)
	}
	now := take(t, re.tgtDSN)
	for k, v := range applied.rows {
		if now.rows[k] != v {
			t.Errorf("killed revert changed %s", k)
		}
	}

	// A second migration applied after: the first snapshot refuses.
	re.exec(re.srcDSN, `INSERT INTO aa_collections VALUES (9, 'nine')`)
	var buf bytes.Buffer
	src := re.app.Environments[0]
	if _, err := re.e.Create(ctxT(t), release.MigrationInput{App: re.app, Source: src, ID: "rv-2", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := re.e.Apply(ctxT(t), reader(buf.Bytes()), re.app, re.tgt, release.ApplyOptions{By: "bob", Snapshot: "r-2"}); err != nil {
		t.Fatal(err)
	}
	if snaps, err := re.e.Snapshots(ctxT(t), re.app, re.tgt); err != nil || len(snaps) != 2 || snaps[0].Name != "r-2" || snaps[0].Bytes <= 0 || snaps[1].Bytes <= 0 || snaps[0].Reverted {
		t.Fatalf("snapshots %+v %v", snaps, err)
	}
	_, err = re.e.Revert(ctxT(t), re.app, re.tgt, "r-1", release.RevertOptions{})
	if msg := release.ErrorMessage(err); err == nil || !strings.Contains(msg, "migration rv-2 was applied to production after it") {
		t.Fatalf("revert under a later apply: %v", err)
	}
	// Reverting the later one first opens the way back to before both.
	if _, err := re.e.Revert(ctxT(t), re.app, re.tgt, "r-2", release.RevertOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := re.e.Revert(ctxT(t), re.app, re.tgt, "r-1", release.RevertOptions{}); err != nil {
		t.Fatal(err)
	}
	re.assertAsBefore(t, nil)
	snaps, err := re.e.Snapshots(ctxT(t), re.app, re.tgt)
	if err != nil || len(snaps) != 2 || snaps[0].Name != "r-2" || !snaps[0].Reverted || !snaps[1].Reverted {
		t.Fatalf("snapshots %+v %v", snaps, err)
	}
	for _, s := range []string{"r-1", "r-2", "r-1"} {
		if err := re.e.DropSnapshot(ctxT(t), re.app, re.tgt, s); err != nil {
			t.Fatal(err)
		}
	}
	if snaps, err := re.e.Snapshots(ctxT(t), re.app, re.tgt); len(snaps) != 0 || err != nil {
		t.Fatalf("snapshots after dropping: %+v %v", snaps, err)
	}
	if n := countOf(t, re.tgtDSN, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'relbot_snap%'`); n != 0 {
		t.Fatalf("%d snapshot schemas left", n)
	}
}

// A NocoBase-shaped production in every layout (schema, table prefix):
// development's configuration released with a snapshot, users writing
// business rows, then the revert gives back production's configuration.
func TestRevertInEveryLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dev := nocobaseEnv(t, tc.Layout, fixtures.Development)
			prod := nocobaseEnv(t, tc.Layout, fixtures.Production)
			app := nocobaseApp(dev, prod)
			for _, e := range []*release.Environment{dev, prod} {
				conn := testenv.Connect(t, e.Database)
				if _, err := conn.Exec(ctxT(t), `CREATE SCHEMA crm; CREATE TABLE crm.deals (id bigint PRIMARY KEY, title text);
					INSERT INTO crm.deals VALUES (1, 'deal of `+e.Name+`')`); err != nil {
					t.Fatal(err)
				}
				conn.Close(context.Background())
			}
			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
				t.Fatal(err)
			}
			re := &revertEnv{tgtDSN: prod.Database, r: strings.NewReplacer(), before: take(t, prod.Database), dump: dumpSchema(t, prod.Database), model: modelOf(t, prod.Database)}
			if _, err := e.Apply(ctxT(t), reader(buf.Bytes()), app, prod, release.ApplyOptions{By: "bob", Snapshot: "rel-7"}); err != nil {
				t.Fatal(err)
			}
			if modelOf(t, prod.Database) == re.model && take(t, prod.Database).rows[tc.Layout.Key("uiSchemas")] == re.before.rows[tc.Layout.Key("uiSchemas")] {
				t.Fatal("the apply changed nothing: the test proves nothing")
			}
			conn := testenv.Connect(t, prod.Database)
			if _, err := conn.Exec(ctxT(t), `INSERT INTO crm.deals VALUES (2, 'written during the release')`); err != nil {
				t.Fatal(err)
			}
			conn.Close(context.Background())
			if _, err := e.Revert(ctxT(t), app, prod, "rel-7", release.RevertOptions{By: "carol"}); err != nil {
				t.Fatal(err)
			}
			re.assertAsBefore(t, []string{"crm.deals"})
			if n := countOf(t, prod.Database, `SELECT count(*) FROM crm.deals`); n != 2 {
				t.Errorf("crm.deals has %d rows, want its row and the one written since", n)
			}
		})
	}
}
