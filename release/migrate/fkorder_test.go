package migrate

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// schemaCase is a source and a target built from the same structure, the
// rules of the migration between them, and what the apply must do.
type schemaCase struct {
	name string
	// base runs on both databases; src and tgt on one each (rows, changes).
	base, src, tgt string
	rules          map[string]release.Rule
	// wantErr, when set, is what the refusal must say; the target must
	// then be exactly as it was.
	wantErr []string
	// sameAsSource: the target's pg_dump --schema-only must equal the
	// source's (else only the rows are compared).
	sameAsSource bool
	// columnsChange: tables gain or move columns, so that their rows
	// (overwritten or kept) are compared by check only.
	columnsChange bool
	// wantWarning must be in the plan's warnings.
	wantWarning []string
	// checkPlan looks at the plan before the apply.
	checkPlan func(t *testing.T, r *strings.Replacer, plan *release.MigrationPlan)
	// check runs extra queries on the target after a successful apply.
	check func(t *testing.T, names *strings.Replacer, tgtDSN string)
}

// nameOrders are the table names a case runs with: {P} is the table others
// point at, {C} the one pointing, {Q} a third. Both alphabetical orders
// are used, so that nothing depends on the order of names.
var nameOrders = []map[string]string{
	{"{P}": "aa_collections", "{C}": "zz_fields", "{Q}": "mm_nodes"},
	{"{P}": "zz_collections", "{C}": "aa_fields", "{Q}": "mm_nodes"},
}

func replacer(names map[string]string) *strings.Replacer {
	var pairs []string
	for k, v := range names {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...)
}

// execReplaced runs a case's setup SQL, its names replaced by r, in dsn.
func execReplaced(t *testing.T, r *strings.Replacer, dsn, sql string) {
	t.Helper()
	if strings.TrimSpace(sql) == "" {
		return
	}
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), r.Replace(sql)); err != nil {
		t.Fatalf("setup: %v\n%s", err, r.Replace(sql))
	}
}

// runSchemaCase builds both databases, makes a file from the source and
// applies it to the target, then checks the result.
// With failAtEnd the marker row violates a constraint planted in the
// target: the apply fails at its very end and must leave the target
// exactly as it was.
func runSchemaCase(t *testing.T, sc schemaCase, names map[string]string, failAtEnd bool) {
	t.Helper()
	r := replacer(names)
	_, srcDSN := testenv.NewDatabase(t, "fk_src")
	_, tgtDSN := testenv.NewDatabase(t, "fk_tgt")
	execAll := func(dsn, sql string) { t.Helper(); execReplaced(t, r, dsn, sql) }
	execAll(srcDSN, sc.base)
	execAll(tgtDSN, sc.base)
	execAll(srcDSN, sc.src)
	execAll(tgtDSN, sc.tgt)
	if failAtEnd {
		execAll(tgtDSN, strings.Join(markerDDL, ";\n")+`;
			ALTER TABLE `+markerTable+` ADD CONSTRAINT no_bob CHECK (applied_by <> 'bob')`)
	}
	rules := map[string]release.Rule{}
	for k, v := range sc.rules {
		rules[r.Replace(k)] = v
	}
	src := &release.Environment{Name: "development", Database: srcDSN}
	tgt := &release.Environment{Name: "production", Database: tgtDSN}
	app := &release.App{Name: "fk", Rules: rules, Environments: []*release.Environment{src, tgt}}
	e := &Engine{SigningKey: testKey}
	var buf bytes.Buffer
	if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: src, ID: "fk-1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatalf("create: %v", err)
	}
	source, before := take(t, srcDSN), take(t, tgtDSN)
	srcDump, beforeDump := dumpSchema(t, srcDSN), dumpSchema(t, tgtDSN)
	plan, err := e.Plan(ctxT(t), reader(buf.Bytes()), app, tgt, nil)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if sc.checkPlan != nil {
		sc.checkPlan(t, r, plan)
	}
	for _, w := range sc.wantWarning {
		if joined := strings.Join(plan.Warnings, "\n"); !strings.Contains(joined, r.Replace(w)) {
			t.Errorf("plan warnings do not say %q:\n%s", r.Replace(w), joined)
		}
	}
	_, err = e.Apply(ctxT(t), reader(buf.Bytes()), app, tgt, release.ApplyOptions{By: "bob"})
	if failAtEnd && len(sc.wantErr) == 0 {
		sc.wantErr = []string{"no_bob", "nothing was changed"}
	}
	if len(sc.wantErr) > 0 {
		msg := release.ErrorMessage(err)
		for _, w := range sc.wantErr {
			if err == nil || !strings.Contains(msg, r.Replace(w)) {
				t.Fatalf("apply: got %v, want it to say %q", err, r.Replace(w))
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("the refusal is more than one line: %q", msg)
		}
		assertUnchanged(t, tgtDSN, before, beforeDump)
		return
	}
	if err != nil {
		t.Fatalf("apply: %v\nplan:\n%s", err, strings.Join(plan.Statements, ";\n"))
	}
	if testing.Verbose() {
		t.Logf("plan:\n%s", strings.Join(plan.Statements, ";\n"))
	}
	after := take(t, tgtDSN)
	if sc.sameAsSource {
		if got := dumpSchema(t, tgtDSN); got != srcDump {
			t.Errorf("target's schema differs from the source's:\n%s", lineDiff(srcDump, got))
		}
	}
	for key, rule := range rules {
		switch rule {
		case release.RuleOverwrite:
			if !sc.columnsChange && after.rows[key] != source.rows[key] {
				t.Errorf("overwrite %s: rows %s, source has %s", key, after.rows[key], source.rows[key])
			}
		case release.RuleSchemaOnly:
			if _, ok := before.rows[key]; ok && !sc.columnsChange && after.rows[key] != before.rows[key] {
				t.Errorf("schema-only %s: rows %s, the target had %s", key, after.rows[key], before.rows[key])
			}
		}
	}
	if sc.check != nil {
		sc.check(t, r, tgtDSN)
	}
}

func assertUnchanged(t *testing.T, dsn string, before snapshot, beforeDump string) {
	t.Helper()
	after := take(t, dsn)
	if got := dumpSchema(t, dsn); got != beforeDump {
		t.Errorf("schema changed after a failed apply:\n%s", lineDiff(beforeDump, got))
	}
	if len(after.rows) != len(before.rows) {
		t.Errorf("%d tables after a failed apply, %d before", len(after.rows), len(before.rows))
	}
	for k, v := range before.rows {
		if after.rows[k] != v {
			t.Errorf("table %s changed after a failed apply: %s, was %s", k, after.rows[k], v)
		}
	}
}

// dumpSchema is pg_dump --schema-only of a database without relbot's own
// schemas (bookkeeping, release snapshots, preparations).
func dumpSchema(t *testing.T, dsn string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "--exclude-schema=relbot*", "--dbname", dsn).Output()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict`) && !strings.HasPrefix(l, `\unrestrict`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// lineDiff shows the lines only one side has.
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		switch {
		case n > 0:
			b.WriteString("- " + l + "\n")
		case n < 0:
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

const ow, so = release.RuleOverwrite, release.RuleSchemaOnly

// Two configuration tables and what points between them, as a NocoBase
// app with foreign keys has them (fields -> collections by name).
const fkBase = `
CREATE TABLE {P} (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, note text);
CREATE TABLE {C} (id bigint PRIMARY KEY, collection text, title text);
`

var fkCases = []schemaCase{
	{
		name: "overwrite to overwrite",
		base: fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name) ON UPDATE CASCADE;`,
		src: `INSERT INTO {P} VALUES (1, 'users', 'x'), (2, 'tickets', NULL);
			INSERT INTO {C} VALUES (10, 'users', 'email'), (11, 'tickets', 'subject'), (12, NULL, 'orphan-free');`,
		tgt:          `INSERT INTO {P} VALUES (1, 'users', 'old'), (3, 'gone', NULL); INSERT INTO {C} VALUES (30, 'gone', 'old field');`,
		rules:        map[string]release.Rule{"{P}": ow, "{C}": ow},
		sameAsSource: true,
	},
	{
		name: "self-referencing",
		base: `CREATE TABLE {P} (id int PRIMARY KEY, parent int REFERENCES {P}(id) ON DELETE CASCADE, name text);
			CREATE TABLE {C} (id int PRIMARY KEY, up int, CONSTRAINT {C}_up FOREIGN KEY (up) REFERENCES {C}(id) DEFERRABLE);`,
		src: `INSERT INTO {P} VALUES (1, NULL, 'root'), (2, 1, 'child'), (3, 2, 'grandchild');
			INSERT INTO {C} VALUES (1, NULL), (2, 1);`,
		tgt:          `INSERT INTO {P} VALUES (1, NULL, 'root'), (5, 1, 'kept?'); INSERT INTO {C} VALUES (1, NULL), (7, 1), (8, 7);`,
		rules:        map[string]release.Rule{"{P}": ow, "{C}": so},
		sameAsSource: true,
	},
	{
		name: "cycle between two overwritten tables, deferrable initially deferred",
		base: fkBase + `ALTER TABLE {P} ADD COLUMN main_field bigint;
			ALTER TABLE {C} ADD COLUMN owner bigint;
			ALTER TABLE {P} ADD CONSTRAINT {P}_main FOREIGN KEY (main_field) REFERENCES {C}(id) DEFERRABLE INITIALLY DEFERRED;
			ALTER TABLE {C} ADD CONSTRAINT {C}_owner FOREIGN KEY (owner) REFERENCES {P}(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;`,
		src:   `BEGIN; INSERT INTO {P} VALUES (1, 'a', NULL, 10); INSERT INTO {C} VALUES (10, NULL, 't', 1); COMMIT;`,
		tgt:   `BEGIN; INSERT INTO {P} VALUES (2, 'b', NULL, 20); INSERT INTO {C} VALUES (20, NULL, 't', 2); COMMIT;`,
		rules: map[string]release.Rule{"{P}": ow, "{C}": ow}, sameAsSource: true,
	},
	{
		// The re-created referenced table must not cascade-delete the
		// rows that production keeps.
		name: "schema-only to overwrite, ON DELETE CASCADE",
		base: fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name) ON DELETE CASCADE ON UPDATE CASCADE;`,
		src:  `INSERT INTO {P} VALUES (1, 'users', 'new'), (2, 'tickets', NULL); INSERT INTO {C} VALUES (1, 'users', 'dev only');`,
		tgt: `INSERT INTO {P} VALUES (1, 'users', 'old'), (2, 'tickets', 'old');
			INSERT INTO {C} VALUES (100, 'users', 'prod row'), (101, 'tickets', 'prod row'), (102, NULL, 'prod row');`,
		rules: map[string]release.Rule{"{P}": ow, "{C}": so}, sameAsSource: true,
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			if got := testenv.Rows(t, dsn, r.Replace(`SELECT 'n', count(*)::text FROM {C}`)); got["n"] != "3" {
				t.Errorf("production's referencing rows: %s, want 3", got["n"])
			}
		},
	},
	{
		name: "overwrite to schema-only",
		base: fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name);`,
		src:  `INSERT INTO {P} VALUES (1, 'users', NULL), (2, 'dev-only', NULL); INSERT INTO {C} VALUES (1, 'users', 'f');`,
		tgt:  `INSERT INTO {P} VALUES (1, 'users', 'prod'), (9, 'prod-only', NULL); INSERT INTO {C} VALUES (5, 'prod-only', 'old');`,
		// {C}'s rows (all pointing at users) replace production's; {P} keeps its own.
		rules: map[string]release.Rule{"{P}": so, "{C}": ow}, sameAsSource: true,
	},
	{
		name: "from and to a table in another schema",
		base: `CREATE SCHEMA crm;` + fkBase + `
			CREATE TABLE crm.{Q} (id int PRIMARY KEY, collection text REFERENCES {P}(name) ON DELETE CASCADE);
			ALTER TABLE {C} ADD COLUMN node int;
			ALTER TABLE {C} ADD CONSTRAINT {C}_node FOREIGN KEY (node) REFERENCES crm.{Q}(id);`,
		src: `INSERT INTO {P} VALUES (1, 'users', NULL); INSERT INTO crm.{Q} VALUES (1, 'users');
			INSERT INTO {C} VALUES (1, 'users', 'f', 1);`,
		tgt: `INSERT INTO {P} VALUES (1, 'users', 'old'); INSERT INTO crm.{Q} VALUES (1, 'users'), (2, 'users'), (3, NULL);
			INSERT INTO {C} VALUES (7, NULL, 'old', 2);`,
		rules: map[string]release.Rule{"{P}": ow, "{C}": ow, "crm.{Q}": so}, sameAsSource: true,
	},
	{
		name: "views, view on view, materialized view, SQL functions and a trigger over re-created tables",
		base: fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name);
			CREATE FUNCTION {P}_count() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM {P}; END;
			CREATE FUNCTION {P}_named(n text) RETURNS SETOF {P} LANGUAGE sql STABLE RETURN (SELECT p FROM {P} p WHERE p.name = n);
			CREATE VIEW v_fields AS SELECT c.id, c.title, p.name FROM {C} c JOIN {P} p ON p.name = c.collection;
			CREATE VIEW v_fields_count AS SELECT count(*) AS n, {P}_count() AS collections FROM v_fields;
			CREATE FUNCTION fields_total() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT n FROM v_fields_count; END;
			CREATE MATERIALIZED VIEW mv_fields AS SELECT name, count(*) AS n FROM v_fields GROUP BY name;
			CREATE UNIQUE INDEX mv_fields_name ON mv_fields (name);
			CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := coalesce(NEW.note, '') || '+'; RETURN NEW; END$$;
			CREATE TRIGGER {P}_stamp BEFORE INSERT ON {P} FOR EACH ROW EXECUTE FUNCTION stamp();
			ALTER TABLE {P} ENABLE ALWAYS TRIGGER {P}_stamp;
			REVOKE EXECUTE ON FUNCTION {P}_count() FROM PUBLIC; GRANT EXECUTE ON FUNCTION fields_total() TO pg_monitor;`,
		src: `INSERT INTO {P} VALUES (1, 'users', 'a'), (2, 'tickets', 'b'); INSERT INTO {C} VALUES (1, 'users', 'email'), (2, 'tickets', 's');
			ALTER TABLE {C} ADD COLUMN required boolean NOT NULL DEFAULT false;
			REFRESH MATERIALIZED VIEW mv_fields;`,
		tgt:   `INSERT INTO {P} VALUES (1, 'users', 'old'); REFRESH MATERIALIZED VIEW mv_fields;`,
		rules: map[string]release.Rule{"{P}": ow, "{C}": ow}, sameAsSource: true,
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT 'x', row(fields_total(), {P}_count(), (SELECT sum(n) FROM mv_fields), (SELECT note FROM {P} WHERE id = 1))::text`))
			// The trigger fired in development when the rows were made;
			// loading them does not fire it again.
			if got["x"] != "(2,2,2,a+)" {
				t.Errorf("functions, view and materialized view read %s, want (2,2,2,a+)", got["x"])
			}
		},
	},
	{
		// A column added in the middle cannot be reached in place: the
		// table is made again, and the foreign key of the schema-only
		// table pointing at it comes back.
		name: "overwritten table made again for its column order, referenced by a schema-only table",
		base: fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name) ON DELETE CASCADE;`,
		src: `DROP TABLE {C}; DROP TABLE {P};
			CREATE TABLE {P} (id bigint PRIMARY KEY, title text, name text NOT NULL UNIQUE, note text);
			CREATE TABLE {C} (id bigint PRIMARY KEY, collection text, title text);
			ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name) ON DELETE CASCADE;
			INSERT INTO {P} VALUES (1, 'Users', 'users', NULL);`,
		tgt:   `INSERT INTO {P} VALUES (1, 'users', NULL); INSERT INTO {C} VALUES (1, 'users', 'kept');`,
		rules: map[string]release.Rule{"{P}": ow, "{C}": so}, sameAsSource: true,
	},
	{
		// Production's own rows point at a collection development no
		// longer has: overwriting would orphan them. The apply fails on the
		// foreign key, naming it and its table, and changes nothing.
		name:        "orphaned schema-only rows fail the apply",
		base:        fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name);`,
		src:         `INSERT INTO {P} VALUES (1, 'users', NULL);`,
		tgt:         `INSERT INTO {P} VALUES (1, 'users', NULL), (2, 'legacy', NULL); INSERT INTO {C} VALUES (1, 'legacy', 'needs legacy');`,
		rules:       map[string]release.Rule{"{P}": ow, "{C}": so},
		wantErr:     []string{"foreign key {C}_collection_fkey of table {C}", "(collection)=(legacy)", "nothing was changed"},
		wantWarning: []string{"foreign key {C}_collection_fkey of table {C} will not hold: 1 of the target's rows of {C} point at rows {P} will not have"},
	},
	{
		// Made again for its column order, but a column of its row type
		// depends on it: it is overwritten in place instead, and the plan
		// says what stays as the target has it.
		name: "a column of the overwritten table's row type keeps it in place",
		base: fkBase + `CREATE TABLE {Q} (id int PRIMARY KEY, snapshot {P});`,
		src: `DROP TABLE {Q}; DROP TABLE {C}; DROP TABLE {P};
			CREATE TABLE {P} (id bigint PRIMARY KEY, extra int, name text NOT NULL UNIQUE, note text);
			CREATE TABLE {C} (id bigint PRIMARY KEY, collection text, title text);
			CREATE TABLE {Q} (id int PRIMARY KEY, snapshot {P});
			INSERT INTO {P} VALUES (1, 5, 'users', NULL);`,
		tgt:   `INSERT INTO {P} VALUES (1, 'users', NULL); INSERT INTO {Q} VALUES (1, ROW(1, 'users', NULL)::{P});`,
		rules: map[string]release.Rule{"{P}": ow}, columnsChange: true,
		wantWarning: []string{"overwrite {P}: the order of its columns differs", "column snapshot of table public.{Q} depends on it"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT 'x', row(extra, name)::text FROM {P}`))
			if got["x"] != "(5,users)" {
				t.Errorf("{P} in place: %q", got["x"])
			}
		},
	},
	{
		// A check constraint calls a function that reads a table: the
		// apply would have to drop the function and cannot make the check
		// again. The plan names it and the apply refuses, changing nothing.
		name: "what the model cannot make again is named and refused",
		base: fkBase + `CREATE FUNCTION known(n text) RETURNS boolean LANGUAGE sql STABLE RETURN EXISTS (SELECT FROM {P} WHERE name = n);
			ALTER TABLE {C} ADD CONSTRAINT {C}_known CHECK (known(collection));`,
		src:         `INSERT INTO {P} VALUES (1, 'users', NULL);`,
		rules:       map[string]release.Rule{"{P}": ow},
		wantWarning: []string{"cannot apply: function public.known(text) reads {P} and is used by constraint {C}_known on table public.{C}"},
		wantErr:     []string{"cannot be applied to production", "function public.known(text)", "constraint {C}_known on table public.{C}"},
	},
	{
		// NocoBase's own names, with the foreign keys a help-desk app
		// adds: fields -> collections (referenced first alphabetically),
		// flow_nodes -> workflows (referencing first), a self-reference,
		// and a schema-only user table pointing at configuration.
		name: "NocoBase-shaped configuration with foreign keys",
		base: `CREATE TABLE collections (key text, name text PRIMARY KEY, options jsonb);
			CREATE TABLE fields (key text PRIMARY KEY, "collectionName" text REFERENCES collections(name) ON DELETE CASCADE ON UPDATE CASCADE, name text);
			CREATE TABLE workflows (id bigint PRIMARY KEY, key text, current boolean);
			CREATE TABLE flow_nodes (id bigint PRIMARY KEY, "workflowId" bigint REFERENCES workflows(id) ON DELETE CASCADE,
				"upstreamId" bigint REFERENCES flow_nodes(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED, type text);
			CREATE TABLE tickets (id bigint PRIMARY KEY, "workflowId" bigint REFERENCES workflows(id) ON DELETE CASCADE, subject text);`,
		src: `INSERT INTO collections VALUES ('k1', 'tickets', '{}'), ('k2', 'report', '{"sql": "SELECT 1"}');
			INSERT INTO fields VALUES ('f1', 'tickets', 'subject'), ('f2', 'report', 'n');
			INSERT INTO workflows VALUES (1, 'w', false), (2, 'w', true);
			INSERT INTO flow_nodes VALUES (10, 2, NULL, 'query'), (11, 2, 10, 'update');`,
		tgt: `INSERT INTO collections VALUES ('k1', 'tickets', '{}'); INSERT INTO fields VALUES ('f1', 'tickets', 'subject');
			INSERT INTO workflows VALUES (1, 'w', true); INSERT INTO flow_nodes VALUES (5, 1, NULL, 'query');
			INSERT INTO tickets VALUES (100, 1, 'prod ticket'), (101, NULL, 'prod ticket 2');`,
		rules:        map[string]release.Rule{"collections": ow, "fields": ow, "workflows": ow, "flow_nodes": ow, "tickets": so},
		sameAsSource: true,
	},
	{
		// The file's rows point at a row the target's schema-only table
		// does not have.
		name:        "the file's rows orphaned by the target's",
		base:        fkBase + `ALTER TABLE {C} ADD CONSTRAINT {C}_collection_fkey FOREIGN KEY (collection) REFERENCES {P}(name);`,
		src:         `INSERT INTO {P} VALUES (1, 'users', NULL), (2, 'dev-only', NULL); INSERT INTO {C} VALUES (1, 'dev-only', 'f'), (2, 'users', 'g');`,
		tgt:         `INSERT INTO {P} VALUES (1, 'users', NULL);`,
		rules:       map[string]release.Rule{"{P}": so, "{C}": ow},
		wantWarning: []string{"foreign key {C}_collection_fkey of table {C} will not hold: 1 of the file's rows of {C} point at rows {P} will not have"},
		wantErr:     []string{"foreign key {C}_collection_fkey of table {C}", "(collection)=(dev-only)", "nothing was changed"},
	},
	{
		// Another table's default draws from a sequence the overwritten
		// table owns: making the table again would drop the sequence, so
		// it is overwritten in place.
		name: "another table using the overwritten table's sequence keeps it in place",
		base: `CREATE TABLE {P} (id serial PRIMARY KEY, name text); CREATE TABLE {Q} (id int DEFAULT nextval('{P}_id_seq'), note text);`,
		src: `ALTER TABLE {P} DROP COLUMN name; ALTER TABLE {P} ADD COLUMN extra int; ALTER TABLE {P} ADD COLUMN name text;
			INSERT INTO {P} (name) VALUES ('a'), ('b');`,
		tgt:           `INSERT INTO {Q} (note) VALUES ('prod');`,
		rules:         map[string]release.Rule{"{P}": ow, "{Q}": so},
		columnsChange: true,
		wantWarning:   []string{"overwrite {P}: the order of its columns differs", "default value for column id of table public.{Q} (through sequence {P}_id_seq) depends on it"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT 'x', row((SELECT count(*) FROM {P}), (SELECT count(*) FROM {Q}), pg_get_serial_sequence('{P}', 'id'))::text`))
			if got["x"] != r.Replace("(2,1,public.{P}_id_seq)") {
				t.Errorf("tables and sequence: %s", got["x"])
			}
		},
	},
	{
		name: "a partition is named and refused",
		base: fkBase + `CREATE TABLE {Q} (id int, at date) PARTITION BY RANGE (at);
			CREATE TABLE {Q}_2026 PARTITION OF {Q} FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');`,
		src:         `INSERT INTO {Q} VALUES (1, '2026-05-01');`,
		rules:       map[string]release.Rule{"{Q}_2026": ow},
		wantWarning: []string{"cannot apply: table {Q}_2026 is a partition of {Q}", "partitioned table {Q}"},
		wantErr:     []string{"table {Q}_2026 is a partition of {Q}", "rule skip"},
	},
	{
		// Making the table again (its column order) would lose its policy
		// and row security: it is overwritten in place, and the plan says
		// what stays as the target has it.
		name: "a table's policy keeps it in place",
		base: fkBase + `ALTER TABLE {P} ENABLE ROW LEVEL SECURITY; CREATE POLICY {P}_all ON {P} USING (true);`,
		src: `ALTER TABLE {P} RENAME COLUMN note TO note_old; ALTER TABLE {P} ADD COLUMN note text; ALTER TABLE {P} DROP COLUMN name CASCADE;
			ALTER TABLE {P} ADD COLUMN name text; INSERT INTO {P} (id, note, name) VALUES (1, 'n', 'users');`,
		tgt:           `INSERT INTO {P} VALUES (1, 'old', NULL);`,
		rules:         map[string]release.Rule{"{P}": ow},
		columnsChange: true,
		wantWarning:   []string{"overwrite {P}: the order of its columns differs", "making it again would lose its policy {P}_all, row-level security"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT 'x', row((SELECT count(*) FROM pg_policy WHERE polname = '{P}_all'), (SELECT note || name FROM {P}))::text`))
			if got["x"] != "(1,nusers)" {
				t.Errorf("policy count and row: %s", got["x"])
			}
		},
	},
}

func TestForeignKeysInEveryCombinationAndOrder(t *testing.T) {
	t.Parallel()
	for _, sc := range fkCases {
		for _, names := range nameOrders {
			t.Run(sc.name+"/"+names["{P}"], func(t *testing.T) {
				t.Parallel()
				runSchemaCase(t, sc, names, false)
			})
		}
	}
}

// Every combination, failing at the very end: the target stays
// byte-identical (pg_dump --schema-only and every table's checksum).
func TestForeignKeyCombinationsFailingAtTheEndChangeNothing(t *testing.T) {
	t.Parallel()
	for _, sc := range fkCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runSchemaCase(t, sc, nameOrders[1], true)
		})
	}
}

// NocoBase's inherited collections: CREATE TABLE child (...) INHERITS
// (parent). {P} is the parent, {C} a child with a second parent {Q}, and
// grandchild g_{C} inherits from {C}.
const inheritBase = `
CREATE TABLE {P} (id bigint PRIMARY KEY, "createdAt" timestamptz NOT NULL DEFAULT '2026-01-01', title varchar(50),
	CONSTRAINT {P}_title CHECK (title <> ''));
CREATE TABLE {Q} (sort int DEFAULT 0, CONSTRAINT {Q}_sort CHECK (sort >= 0));
CREATE TABLE {C} (id bigint PRIMARY KEY, due date, CONSTRAINT {P}_title CHECK (title <> '')) INHERITS ({P}, {Q});
ALTER TABLE ONLY {C} ALTER COLUMN title SET DEFAULT 'untitled';
ALTER TABLE ONLY {C} ALTER COLUMN title SET NOT NULL;
CREATE TABLE g_{C} (id bigint PRIMARY KEY, level int NOT NULL DEFAULT 1) INHERITS ({C});
`

var inheritCases = []schemaCase{
	{
		// Overwriting the parent replaces its own rows only: the children
		// keep theirs (schema-only) or get the source's (overwrite).
		name: "overwrite a parent, keep a child's rows, overwrite a grandchild",
		base: inheritBase,
		src: `INSERT INTO {P} (id, title) VALUES (1, 'dev parent'), (2, 'dev parent 2');
			INSERT INTO {C} (id, title, due) VALUES (10, 'dev child', '2026-02-01');
			INSERT INTO g_{C} (id, title, level) VALUES (100, 'dev grandchild', 3);`,
		tgt: `INSERT INTO {P} (id, title) VALUES (1, 'prod parent'), (3, 'prod parent 3');
			INSERT INTO {C} (id, title) VALUES (20, 'prod child'), (21, 'prod child 2');
			INSERT INTO g_{C} (id, title) VALUES (200, 'prod grandchild');`,
		rules:        map[string]release.Rule{"{P}": ow, "{Q}": ow, "{C}": so, "g_{C}": ow},
		sameAsSource: true,
		checkPlan: func(t *testing.T, r *strings.Replacer, plan *release.MigrationPlan) {
			// The parent's own rows: 1 inserted, 1 changed, 1 deleted; its
			// children's rows are theirs.
			for _, tp := range plan.Tables {
				if tp.Table == r.Replace("{P}") && (tp.Insert != 1 || tp.Update != 1 || tp.Delete != 1) {
					t.Errorf("plan of %s: +%d ~%d -%d, want +1 ~1 -1", tp.Table, tp.Insert, tp.Update, tp.Delete)
				}
			}
		},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT 'x', row((SELECT count(*) FROM {P}), (SELECT count(*) FROM ONLY {P}),
				(SELECT count(*) FROM {C}), (SELECT count(*) FROM ONLY {C}), (SELECT count(*) FROM g_{C}))::text`))
			// parent: its 2 + the child's 2 + the grandchild's 1
			if got["x"] != "(5,2,3,2,1)" {
				t.Errorf("counts (all, own parent, all, own child, grandchild): %s, want (5,2,3,2,1)", got["x"])
			}
		},
	},
	{
		// The migration adds a column to the parent (the children get it
		// through inheritance), widens one, and adds a new inherited table.
		name: "a column added to a parent and a new inherited table",
		base: inheritBase,
		src: `ALTER TABLE {P} ADD COLUMN status text DEFAULT 'open';
			ALTER TABLE {P} ALTER COLUMN title TYPE text;
			CREATE TABLE n_{P} (id bigint PRIMARY KEY, channel text) INHERITS ({P});
			INSERT INTO {P} (id, title) VALUES (1, 'dev');
			INSERT INTO n_{P} (id, title, channel) VALUES (5, 'new kind', 'mail');`,
		tgt: `INSERT INTO {P} (id, title) VALUES (1, 'prod');
			INSERT INTO {C} (id, title, due) VALUES (20, 'prod child', '2026-03-01');
			INSERT INTO g_{C} (id, title) VALUES (200, 'prod grandchild');`,
		rules:        map[string]release.Rule{"{P}": ow, "{Q}": so, "{C}": so, "g_{C}": so, "n_{P}": ow},
		sameAsSource: true, columnsChange: true,
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT tableoid::regclass::text, row(id, title, status)::text FROM {P}`))
			want := map[string]string{r.Replace("{P}"): "(1,dev,open)", r.Replace("{C}"): "(20,\"prod child\",open)",
				r.Replace("g_{C}"): "(200,\"prod grandchild\",open)", r.Replace("n_{P}"): "(5,\"new kind\",open)"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s, want %s", k, got[k], v)
				}
			}
		},
	},
	{
		// A parent kept schema-only with an overwritten child: the child's
		// rows are the source's, the parent's own stay production's.
		name: "schema-only parent, overwritten child, tree path table and SQL collection rows",
		base: inheritBase + `
			CREATE TABLE "main_{P}_path" ("nodePk" bigint, path text, "rootPk" bigint);
			CREATE TABLE collections_{Q} (name text PRIMARY KEY, options jsonb);`,
		src: `INSERT INTO {C} (id, title) VALUES (10, 'dev child');
			INSERT INTO "main_{P}_path" VALUES (1, '/1', 1), (2, '/1/2', 1);
			INSERT INTO collections_{Q} VALUES ('report', '{"sql": "SELECT 1"}'), ('tickets', '{"tree": "adjacencyList"}');`,
		tgt: `INSERT INTO {P} (id, title) VALUES (7, 'prod parent'); INSERT INTO {C} (id, title) VALUES (20, 'prod child');
			INSERT INTO "main_{P}_path" VALUES (9, '/9', 9);`,
		rules:        map[string]release.Rule{"{P}": so, "{Q}": so, "{C}": ow, "g_{C}": so, "main_{P}_path": ow, "collections_{Q}": ow},
		sameAsSource: true,
	},
	{
		// The child's own columns change order in the source: the child
		// is made again under its kept parent, the grandchild with it.
		name: "an overwritten child made again under a kept parent",
		base: inheritBase,
		src: `DROP TABLE g_{C}; DROP TABLE {C};
			CREATE TABLE {C} (id bigint PRIMARY KEY, extra text, due date, CONSTRAINT {P}_title CHECK (title <> '')) INHERITS ({P}, {Q});
			ALTER TABLE ONLY {C} ALTER COLUMN title SET DEFAULT 'untitled';
			ALTER TABLE ONLY {C} ALTER COLUMN title SET NOT NULL;
			CREATE TABLE g_{C} (id bigint PRIMARY KEY, level int NOT NULL DEFAULT 1) INHERITS ({C});
			INSERT INTO {C} (id, title, extra) VALUES (10, 'dev child', 'x'); INSERT INTO g_{C} (id, title) VALUES (100, 'dev g');`,
		tgt: `INSERT INTO {P} (id, title) VALUES (1, 'prod parent'); INSERT INTO {C} (id, title) VALUES (20, 'prod child');
			INSERT INTO g_{C} (id, title) VALUES (200, 'prod g');`,
		rules:        map[string]release.Rule{"{P}": so, "{Q}": so, "{C}": ow, "g_{C}": ow},
		sameAsSource: true,
		checkPlan: func(t *testing.T, r *strings.Replacer, plan *release.MigrationPlan) {
			joined := strings.Join(plan.Statements, "\n")
			for _, want := range []string{`DROP TABLE "public"."g_{C}"`, `DROP TABLE "public"."{C}"`, `INHERITS ("public"."{P}", "public"."{Q}")`} {
				if !strings.Contains(joined, r.Replace(want)) {
					t.Errorf("plan lacks %s", r.Replace(want))
				}
			}
		},
	},
	{
		// The parent's columns change order, but a child keeps its rows:
		// the parent cannot be made again and is overwritten in place; the
		// plan says what stays as the target has it.
		name: "a parent with kept children is overwritten in place",
		base: inheritBase,
		src: `ALTER TABLE {P} ADD COLUMN status text; ALTER TABLE {P} DROP COLUMN title CASCADE; ALTER TABLE {P} ADD COLUMN title varchar(50);
			INSERT INTO {P} (id, title, status) VALUES (1, 'dev', 'open');`,
		tgt:           `INSERT INTO {P} (id, title) VALUES (1, 'prod'), (2, 'prod 2'); INSERT INTO {C} (id, title) VALUES (20, 'prod child');`,
		rules:         map[string]release.Rule{"{P}": ow, "{Q}": so, "{C}": so, "g_{C}": so},
		columnsChange: true,
		wantWarning:   []string{"overwrite {P}: the order of its columns differs from development's and stays as the target has it (table {C} inherits from it and keeps its rows)"},
		check: func(t *testing.T, r *strings.Replacer, dsn string) {
			got := testenv.Rows(t, dsn, r.Replace(`SELECT tableoid::regclass::text || ':' || id, row(title, status)::text FROM {P}`))
			if len(got) != 2 || got[r.Replace("{P}:1")] != "(dev,open)" || got[r.Replace("{C}:20")] != `("prod child",)` {
				t.Errorf("rows through the parent: %v", got)
			}
		},
	},
	{
		// A column dropped from an overwritten parent goes from its
		// children too (PostgreSQL drops inherited columns with the
		// parent's): the plan lists that among the destructive changes.
		name:         "a column dropped from a parent goes from its children, listed",
		base:         inheritBase,
		src:          `ALTER TABLE {P} DROP COLUMN title CASCADE; INSERT INTO {P} (id) VALUES (1);`,
		tgt:          `INSERT INTO {C} (id, title) VALUES (20, 'prod child');`,
		rules:        map[string]release.Rule{"{P}": ow, "{Q}": so, "{C}": so, "g_{C}": so},
		sameAsSource: true, columnsChange: true,
		checkPlan: func(t *testing.T, r *strings.Replacer, plan *release.MigrationPlan) {
			joined := strings.Join(plan.Destructive, "\n")
			for _, want := range []string{"column {P}.title is not in development: dropped (overwrite)", "column {C}.title goes with {P}.title", "column g_{C}.title goes with {P}.title"} {
				if !strings.Contains(joined, r.Replace(want)) {
					t.Errorf("destructive changes lack %q:\n%s", r.Replace(want), joined)
				}
			}
		},
	},
	{
		name:        "a kept table whose parents differ is named",
		base:        `CREATE TABLE {P} (id int PRIMARY KEY, t text);`,
		src:         `CREATE TABLE {C} (x int) INHERITS ({P});`,
		tgt:         `CREATE TABLE {C} (id int, t text, x int); INSERT INTO {C} VALUES (1, 'kept', 2);`,
		rules:       map[string]release.Rule{"{P}": so, "{C}": so},
		wantWarning: []string{"table {C}: its parent tables differ from development's and stay as the target has them"},
	},
}

func TestInheritanceInMigrations(t *testing.T) {
	t.Parallel()
	for _, sc := range inheritCases {
		for _, names := range nameOrders {
			t.Run(sc.name+"/"+names["{P}"], func(t *testing.T) {
				t.Parallel()
				runSchemaCase(t, sc, names, false)
			})
		}
	}
	t.Run("failing at the end", func(t *testing.T) {
		t.Parallel()
		runSchemaCase(t, inheritCases[1], nameOrders[0], true)
	})
}
