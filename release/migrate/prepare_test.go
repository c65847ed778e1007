package migrate

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// twoTargets builds a source and two targets alike from rc, and a file.
type twoTargets struct {
	e      *Engine
	app    *release.App
	a, b   *release.Environment
	file   []byte
	exec   func(dsn, sql string)
	srcDSN string
}

func setupTwo(t *testing.T, rc revertCase, names map[string]string) *twoTargets {
	t.Helper()
	r := replacer(names)
	_, srcDSN := testenv.NewDatabase(t, "pp_src")
	_, aDSN := testenv.NewDatabase(t, "pp_a")
	_, bDSN := testenv.NewDatabase(t, "pp_b")
	execAll := func(dsn, sql string) { t.Helper(); execReplaced(t, r, dsn, sql) }
	execAll(srcDSN, rc.base)
	execAll(srcDSN, rc.src)
	for _, dsn := range []string{aDSN, bDSN} {
		execAll(dsn, rc.base)
		execAll(dsn, rc.tgt)
	}
	rules := map[string]release.Rule{}
	for k, v := range rc.rules {
		rules[r.Replace(k)] = v
	}
	src := &release.Environment{Name: "development", Database: srcDSN}
	a := &release.Environment{Name: "production", Database: aDSN}
	b := &release.Environment{Name: "production", Database: bDSN}
	app := &release.App{Name: "pp", Rules: rules, Environments: []*release.Environment{src, a}}
	e := &Engine{SigningKey: testKey}
	var buf bytes.Buffer
	if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: src, ID: "pp-1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatalf("create: %v", err)
	}
	return &twoTargets{e: e, app: app, a: a, b: b, file: buf.Bytes(), exec: execAll, srcDSN: srcDSN}
}

// assertSame checks that two databases have the same definitions (pg_dump,
// schema model) and rows, relbot's own schemas aside.
func assertSame(t *testing.T, aDSN, bDSN string) {
	t.Helper()
	if a, b := dumpSchema(t, aDSN), dumpSchema(t, bDSN); a != b {
		t.Errorf("pg_dump differs:\n%s", lineDiff(a, b))
	}
	if a, b := modelOf(t, aDSN), modelOf(t, bDSN); a != b {
		t.Errorf("schema model differs:\n%s", lineDiff(a, b))
	}
	seqs := func(dsn string) string {
		return strings.Join(testenvRows(t, dsn, `SELECT schemaname || '.' || sequencename || ' ' || coalesce(last_value, 0) FROM pg_sequences WHERE schemaname NOT LIKE 'relbot%' ORDER BY 1`), "\n")
	}
	if a, b := seqs(aDSN), seqs(bDSN); a != b {
		t.Errorf("sequences differ:\n%s", lineDiff(a, b))
	}
	ra, rb := take(t, aDSN), take(t, bDSN)
	for k, v := range ra.rows {
		if strings.HasPrefix(k, "relbot") {
			continue
		}
		if rb.rows[k] != v {
			t.Errorf("table %s: rows %s unprepared, %s prepared", k, v, rb.rows[k])
		}
	}
	for k := range rb.rows {
		if _, ok := ra.rows[k]; !ok && !strings.HasPrefix(k, "relbot") {
			t.Errorf("table %s only after the prepared apply", k)
		}
	}
}

func stepsOf(res *release.ApplyResult) string {
	var out []string
	for _, s := range res.Steps {
		out = append(out, s.What)
	}
	return strings.Join(out, "\n")
}

// A prepared apply (shadow tables swapped in, the replaced ones moved into
// the release snapshot) ends exactly as an apply without preparation; its
// revert gives back the target as before.
func TestPreparedApplyEqualsUnprepared(t *testing.T) {
	t.Parallel()
	for _, rc := range revertCases {
		for i, names := range nameOrders {
			t.Run(rc.name+"/"+[]string{"a-z", "z-a"}[i], func(t *testing.T) {
				t.Parallel()
				tt := setupTwo(t, rc, names)
				beforeDump, beforeModel, before := dumpSchema(t, tt.b.Database), modelOf(t, tt.b.Database), take(t, tt.b.Database)
				if _, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.a, release.ApplyOptions{By: "bob", AllowDestructive: rc.allow}); err != nil {
					t.Fatalf("unprepared apply: %v", err)
				}
				prep, err := tt.e.Prepare(ctxT(t), reader(tt.file), tt.app, tt.b, release.PrepareOptions{Key: "rel-1", AllowDestructive: rc.allow})
				if err != nil {
					t.Fatalf("prepare: %v", err)
				}
				// A parent whose child keeps its rows is emptied in place:
				// nothing to prepare, and the preparation says why.
				inherits := strings.Contains(rc.name, "inherited")
				if (len(prep.Tables) == 0) != inherits || (inherits && !strings.Contains(strings.Join(prep.InWindow, "\n"), "inherits from it and keeps its rows")) {
					t.Fatalf("prepared %v, in the window %v", prep.Tables, prep.InWindow)
				}
				res, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.b, release.ApplyOptions{By: "bob", AllowDestructive: rc.allow, Prepared: "rel-1", Snapshot: "rel-1"})
				if err != nil {
					t.Fatalf("prepared apply: %v", err)
				}
				for _, w := range res.Warnings {
					if strings.Contains(w, "preparation") {
						t.Errorf("warning: %s", w)
					}
				}
				log := stepsOf(res)
				for _, key := range prep.Tables {
					if strings.Contains(log, "rows into "+key+" (") {
						t.Errorf("%s was prepared and still loaded in the window:\n%s", key, log)
					}
				}
				if !inherits && (!strings.Contains(log, `SET SCHEMA`) || !strings.Contains(log, "relbot_shadow_")) {
					t.Errorf("no swap in the log:\n%s", log)
				}
				if testing.Verbose() {
					t.Logf("prepared %v, in window %v\n%s", prep.Tables, prep.InWindow, log)
				}
				assertSame(t, tt.a.Database, tt.b.Database)
				if err := tt.e.Unprepare(ctxT(t), tt.app, tt.b, "rel-1"); err != nil {
					t.Fatal(err)
				}
				if n := countOf(t, tt.b.Database, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'relbot_prep%'`); n != 0 {
					t.Fatalf("%d preparation schemas after Unprepare", n)
				}
				// The revert of a prepared apply.
				tt.exec(tt.b.Database, rc.after)
				if _, err := tt.e.Revert(ctxT(t), tt.app, tt.b, "rel-1", release.RevertOptions{By: "carol"}); err != nil {
					t.Fatalf("revert: %v\n%s", err, log)
				}
				re := &revertEnv{tgtDSN: tt.b.Database, r: replacer(names), before: before, dump: beforeDump, model: beforeModel}
				re.assertAsBefore(t, rc.written)
				if rc.check != nil {
					rc.check(t, re.r, tt.b.Database)
				}
			})
		}
	}
}

// A target changed after the preparation: the apply does the work in the
// window, says so, and ends as an apply without preparation.
func TestStalePreparationIsRedone(t *testing.T) {
	t.Parallel()
	rc := revertCases[1] // two replaced tables
	tt := setupTwo(t, rc, nameOrders[0])
	prep, err := tt.e.Prepare(ctxT(t), reader(tt.file), tt.app, tt.b, release.PrepareOptions{Key: "rel-2"})
	if err != nil || len(prep.Tables) != 2 {
		t.Fatalf("prepare: %+v %v", prep, err)
	}
	for _, dsn := range []string{tt.a.Database, tt.b.Database} {
		tt.exec(dsn, `CREATE INDEX late_index ON {P} (name)`)
	}
	if _, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.a, release.ApplyOptions{By: "bob"}); err != nil {
		t.Fatal(err)
	}
	res, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.b, release.ApplyOptions{By: "bob", Prepared: "rel-2", Snapshot: "rel-2"})
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "preparation rel-2 was stale") || !strings.Contains(w, "redone in the window") {
		t.Errorf("warnings do not say the preparation was stale: %q", w)
	}
	if log := stepsOf(res); strings.Contains(log, "relbot_shadow_") {
		t.Errorf("a stale preparation was swapped in:\n%s", log)
	}
	assertSame(t, tt.a.Database, tt.b.Database)

	// A preparation of another file, or none, is redone too.
	if _, err := tt.e.Prepare(ctxT(t), reader(tt.file), tt.app, tt.b, release.PrepareOptions{Key: "rel-3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tt.e.Prepare(ctxT(t), reader(tt.file), tt.app, tt.b, release.PrepareOptions{Key: "rel-3"}); err != nil {
		t.Fatalf("preparing again under one key: %v", err)
	}
}

// Every layout of a NocoBase-shaped production: the prepared apply swaps
// in the configuration tables and ends as the unprepared one.
func TestPreparedApplyInEveryLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dev := nocobaseEnv(t, tc.Layout, fixtures.Development)
			// Two copies of one production (its fixture has rows of its own
			// made at load time, which two loads would not share).
			tmpl := testenv.Template(t, "nb_prod_"+tc.Name, func(ctx context.Context, dsn string) error {
				return fixtures.LoadNocoBase(ctx, dsn, tc.Layout, fixtures.Production)
			})
			_, aDSN := testenv.NewDatabaseFrom(t, "nb_pa", tmpl)
			_, bDSN := testenv.NewDatabaseFrom(t, "nb_pb", tmpl)
			a := &release.Environment{Name: fixtures.Production, Database: aDSN}
			b := &release.Environment{Name: fixtures.Production, Database: bDSN}
			app := nocobaseApp(dev, a)
			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Apply(ctxT(t), reader(buf.Bytes()), app, a, release.ApplyOptions{By: "bob"}); err != nil {
				t.Fatal(err)
			}
			prep, err := e.Prepare(ctxT(t), reader(buf.Bytes()), app, b, release.PrepareOptions{Key: "rel-9"})
			if err != nil {
				t.Fatal(err)
			}
			if len(prep.Tables) < 20 {
				t.Fatalf("only %d tables prepared; in the window: %v", len(prep.Tables), prep.InWindow)
			}
			res, err := e.Apply(ctxT(t), reader(buf.Bytes()), app, b, release.ApplyOptions{By: "bob", Prepared: "rel-9", Snapshot: "rel-9"})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range res.Warnings {
				if strings.Contains(w, "preparation") {
					t.Errorf("warning: %s", w)
				}
			}
			assertSame(t, a.Database, b.Database)
		})
	}
}

// A table whose shadow cannot be made ahead (its column's type is one the
// apply makes) is loaded in the window and the preparation says why; a
// prepared apply without a release snapshot drops what it replaces; both
// end as the unprepared apply.
func TestPreparationPartsInTheWindow(t *testing.T) {
	t.Parallel()
	rc := revertCase{
		base: `CREATE TABLE {P} (id bigserial PRIMARY KEY, name text); INSERT INTO {P} (name) VALUES ('a');
			CREATE TABLE {C} (id bigint PRIMARY KEY, p_id bigint REFERENCES {P}(id)); INSERT INTO {C} VALUES (1, 1);`,
		src: `CREATE TYPE mood AS ENUM ('ok', 'sad'); ALTER TABLE {C} ADD COLUMN m mood; UPDATE {C} SET m = 'ok';
			INSERT INTO {P} (name) VALUES ('b');`,
		rules: map[string]release.Rule{"{P}": release.RuleOverwrite, "{C}": release.RuleOverwrite},
	}
	tt := setupTwo(t, rc, nameOrders[1])
	prep, err := tt.e.Prepare(ctxT(t), reader(tt.file), tt.app, tt.b, release.PrepareOptions{Key: "rel-4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(prep.Tables) != 1 || prep.Tables[0] != "zz_collections" || len(prep.InWindow) != 1 || !strings.Contains(prep.InWindow[0], "aa_fields: its shadow table could not be made ahead") {
		t.Fatalf("prepared %v, in the window %v", prep.Tables, prep.InWindow)
	}
	if _, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.a, release.ApplyOptions{By: "bob"}); err != nil {
		t.Fatal(err)
	}
	res, err := tt.e.Apply(ctxT(t), reader(tt.file), tt.app, tt.b, release.ApplyOptions{By: "bob", Prepared: "rel-4"})
	if err != nil {
		t.Fatal(err)
	}
	if log := stepsOf(res); !strings.Contains(log, "RENAME TO \"zz_collections\"") || !strings.Contains(log, "rows into aa_fields") {
		t.Errorf("zz_collections not swapped in, or aa_fields not loaded:\n%s", log)
	}
	assertSame(t, tt.a.Database, tt.b.Database)
	if n := countOf(t, tt.b.Database, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'relbot_snap%'`); n != 0 {
		t.Errorf("a snapshot schema after an apply without snapshot")
	}
}

func testenvRows(t *testing.T, dsn, q string) []string {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctxT(t), q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
