package versions

import (
	"bytes"
	"context"
	osexec "os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/sampleapp"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/migrate"
	"github.com/relbot/relbot/release/pgschema"
	"github.com/relbot/relbot/release/pgsnap"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sampleApp loads the sample app's environments into databases of this
// test and returns the app as apps.yaml describes it.
func sampleApp(t *testing.T, envs ...string) *release.App { return sampleapp.Load(t, envs...) }

// memBlobs is a release.VersionBlobs in memory.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newBlobs() *memBlobs { return &memBlobs{blobs: map[string][]byte{}} }

func (m *memBlobs) Has(_ context.Context, h string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[h]
	return ok, nil
}

func (m *memBlobs) Create(_ context.Context, h string) (release.ArtifactWriter, error) {
	return &memWriter{m: m, h: h}, nil
}

func (m *memBlobs) Open(_ context.Context, h string) (release.Artifact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[h]
	if !ok {
		return nil, release.Errorf(release.CodeNotFound, "no blob %s", h)
	}
	return memArtifact{bytes.NewReader(b)}, nil
}

func (m *memBlobs) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blobs)
}

type memWriter struct {
	bytes.Buffer
	m *memBlobs
	h string
}

func (w *memWriter) Commit() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.blobs[w.h] = w.Bytes()
	return nil
}

func (w *memWriter) Abort() error { return nil }

type memArtifact struct{ *bytes.Reader }

func (memArtifact) Close() error { return nil }

func exec(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctxT(t), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// checksums reads the live tables of a version the way a backup does.
func checksums(t *testing.T, dsn string, v *release.Version) map[string]pgsnap.TableInfo {
	t.Helper()
	conn, err := pgschema.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]pgsnap.TableInfo{}
	for _, vt := range v.Tables {
		ti, err := pgsnap.TableChecksum(ctxT(t), conn, s.Table(vt.Table))
		if err != nil {
			t.Fatal(err)
		}
		out[vt.Table] = ti
	}
	return out
}

func snapshot(t *testing.T, e *Engine, app *release.App, blobs *memBlobs, id string) (*release.Version, *release.VersionSnapshot) {
	t.Helper()
	snap, err := e.Snapshot(ctxT(t), app, app.Source(), blobs)
	if err != nil {
		t.Fatalf("snapshot %s: %v", id, err)
	}
	return &release.Version{ID: id, App: app.Name, Env: app.Source().Name, Tables: snap.Tables, CoreVersion: snap.CoreVersion, Plugins: snap.Plugins}, snap
}

func equalsVersion(t *testing.T, dsn string, v *release.Version) {
	t.Helper()
	got := checksums(t, dsn, v)
	for _, vt := range v.Tables {
		if g := got[vt.Table]; g.Rows != vt.Rows || g.Checksum != vt.Checksum {
			t.Errorf("table %s: %d rows (checksum %s), %s has %d (%s)", vt.Table, g.Rows, g.Checksum[:8], v.ID, vt.Rows, vt.Checksum[:8])
		}
	}
}

func findTable(d *release.VersionDiff, name string) *release.TableDiff {
	for i := range d.Tables {
		if d.Tables[i].Table == name {
			return &d.Tables[i]
		}
	}
	return nil
}

// The changes a developer makes after v1: a page's schema edited, a route
// added and one route's role access removed, a tree path added (no
// primary key).
var devChanges = []string{
	`UPDATE "uiSchemas" SET "schema" = jsonb_set("schema", '{title}', '"Customers (edited)"') WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`,
	`INSERT INTO "desktopRoutes" ("title", "type", "createdAt", "updatedAt") VALUES ('Reports', 'page', now(), now())`,
	`DELETE FROM "rolesDesktopRoutes" WHERE ("desktopRouteId", "roleName") = (SELECT "desktopRouteId", "roleName" FROM "rolesDesktopRoutes" ORDER BY 1, 2 LIMIT 1)`,
	`INSERT INTO "main_desktopRoutes_path" ("nodePk", "path", "rootPk") VALUES (999, '/999', 999)`,
}

func TestCreateDiffRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	dsn := app.Source().Database
	e := &Engine{}
	blobs := newBlobs()

	v1, snap1 := snapshot(t, e, app, blobs, "crm-v1")
	if v1.Table("uiSchemas") == nil || v1.Table("applicationPlugins") == nil || v1.Table("customers") != nil || v1.Table("environmentVariables") != nil {
		t.Fatalf("versioned tables: %+v", v1.Tables)
	}
	if snap1.CoreVersion != "2.2.15" || snap1.NewBlobs == 0 {
		t.Fatalf("snapshot: core %q, %d new blobs", snap1.CoreVersion, snap1.NewBlobs)
	}
	stored := blobs.count()
	equalsVersion(t, dsn, v1)

	// Nothing changed: no new blob, and an empty diff.
	_, again := snapshot(t, e, app, blobs, "crm-v1b")
	if again.NewBlobs != 0 || blobs.count() != stored {
		t.Fatalf("an unchanged database stored %d new blobs (%d -> %d)", again.NewBlobs, stored, blobs.count())
	}
	d, err := e.Diff(ctxT(t), app, app.Source(), v1, nil, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tables) != 0 || d.Unchanged != len(v1.Tables) || d.Changes == nil || len(d.Changes.Items) != 0 {
		t.Fatalf("diff of an unchanged database: %+v", d)
	}

	exec(t, dsn, devChanges...)
	d, err = e.Diff(ctxT(t), app, app.Source(), v1, nil, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if d.To != "development (live)" || len(d.Tables) != 4 {
		t.Fatalf("diff: want 4 tables, got %+v", d)
	}
	ui := findTable(d, "uiSchemas")
	if ui == nil || ui.Changed != 1 || ui.Added != 0 || ui.Removed != 0 || len(ui.Entries) != 1 ||
		ui.Entries[0].Kind != release.DiffChanged || strings.Join(ui.Entries[0].Columns, ",") != "schema" || !strings.HasPrefix(ui.Entries[0].Key, "x-uid=") {
		t.Fatalf("uiSchemas: %+v", ui)
	}
	routes := findTable(d, "desktopRoutes")
	if routes == nil || routes.Added != 1 || routes.Changed != 0 || routes.Removed != 0 || routes.Entries[0].Kind != release.DiffAdded || !strings.HasPrefix(routes.Entries[0].Key, "id=") {
		t.Fatalf("desktopRoutes: %+v", routes)
	}
	access := findTable(d, "rolesDesktopRoutes")
	if access == nil || access.Removed != 1 || access.Added != 0 || !strings.Contains(access.Entries[0].Key, "desktopRouteId=") || !strings.Contains(access.Entries[0].Key, "roleName=") {
		t.Fatalf("rolesDesktopRoutes: %+v", access)
	}
	path := findTable(d, "main_desktopRoutes_path")
	if path == nil || path.Added != 1 || path.Removed != 0 || !strings.Contains(path.Note, "no primary key") || !strings.Contains(path.Entries[0].Key, "/999") {
		t.Fatalf("main_desktopRoutes_path: %+v", path)
	}

	// In the app's terms: a page added, a page's element changed, a
	// role's menu access withdrawn.
	summary := strings.Join(d.Changes.Lines(0), "\n")
	for _, want := range []string{"page added: “Reports” — at the top of the menu", "page content changed: ", "— 1 element changed", "no longer sees"} {
		if !strings.Contains(summary, want) {
			t.Errorf("change summary lacks %q:\n%s", want, summary)
		}
	}
	if d.Changes.Against != "crm-v1" {
		t.Errorf("summary against %q", d.Changes.Against)
	}

	// v2 stores only the four changed tables again.
	v2, snap2 := snapshot(t, e, app, blobs, "crm-v2")
	if snap2.NewBlobs != 4 || blobs.count() != stored+4 {
		t.Fatalf("v2 stored %d new blobs (%d -> %d), want 4", snap2.NewBlobs, stored, blobs.count())
	}
	vd, err := e.Diff(ctxT(t), app, app.Source(), v1, v2, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if vd.To != "crm-v2" || len(vd.Tables) != 4 || findTable(vd, "uiSchemas").Changed != 1 || findTable(vd, "main_desktopRoutes_path").Added != 1 {
		t.Fatalf("version to version diff: %+v", vd)
	}
	if got := strings.Join(vd.Changes.Lines(0), "\n"); got != summary {
		t.Fatalf("version to version summary:\n%s\nwant, as against the live database:\n%s", got, summary)
	}

	rep, err := e.Restore(ctxT(t), app, app.Source(), v1, blobs)
	if err != nil {
		t.Fatalf("restore v1: %v", err)
	}
	if rep.Tables != len(v1.Tables) || rep.Rows != v1.Rows() || len(rep.Notes) != 0 {
		t.Fatalf("restore report: %+v", rep)
	}
	equalsVersion(t, dsn, v1)
	// The sequence was not moved back: a new route gets a fresh id.
	exec(t, dsn, `INSERT INTO "desktopRoutes" ("title", "createdAt", "updatedAt") VALUES ('After restore', now(), now())`)
	exec(t, dsn, `DELETE FROM "desktopRoutes" WHERE "title" = 'After restore'`)

	if _, err := e.Restore(ctxT(t), app, app.Source(), v2, blobs); err != nil {
		t.Fatalf("restore v2: %v", err)
	}
	equalsVersion(t, dsn, v2)
}

func TestRestoreStructureChangesAndDamage(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	dsn := app.Source().Database
	e := &Engine{}
	blobs := newBlobs()
	v1, _ := snapshot(t, e, app, blobs, "crm-v1")

	// A damaged blob fails the restore and changes nothing.
	exec(t, dsn, devChanges...)
	v2, _ := snapshot(t, e, app, blobs, "crm-v2")
	bad := *v1
	bad.Tables = append([]release.VersionTable{}, v1.Tables...)
	for i := range bad.Tables {
		if bad.Tables[i].Table == "uiSchemas" {
			blobs.mu.Lock()
			b := append([]byte{}, blobs.blobs[bad.Tables[i].Blob]...)
			blobs.mu.Unlock()
			bad.Tables[i].Blob = strings.Repeat("0", 64)
			blobs.mu.Lock()
			blobs.blobs[bad.Tables[i].Blob] = b[:len(b)/2]
			blobs.mu.Unlock()
		}
	}
	if _, err := e.Restore(ctxT(t), app, app.Source(), &bad, blobs); release.ErrorCode(err) != release.CodeDamaged {
		t.Fatalf("damaged blob: %v", err)
	}
	equalsVersion(t, dsn, v2)

	// Structure changed since v1: a column added, a table dropped.
	exec(t, dsn, `ALTER TABLE "desktopRoutes" ADD COLUMN "badge" text DEFAULT 'new'`, `DROP TABLE "uiLayouts"`)
	rep, err := e.Restore(ctxT(t), app, app.Source(), v1, blobs)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	notes := strings.Join(rep.Notes, "\n")
	if !strings.Contains(notes, "table uiLayouts no longer exists: skipped") || !strings.Contains(notes, "desktopRoutes: columns the version does not have take their defaults: badge") {
		t.Fatalf("notes: %s", notes)
	}
	d, err := e.Diff(ctxT(t), app, app.Source(), v1, nil, blobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, td := range d.Tables {
		if td.Added+td.Removed+td.Changed != 0 && td.Table != "uiLayouts" {
			t.Errorf("after restore %s still differs: %+v", td.Table, td)
		}
	}
}

func TestMigrationFromVersion(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	e := &Engine{}
	blobs := newBlobs()
	v1, _ := snapshot(t, e, app, blobs, "crm-v1")
	exec(t, app.Source().Database, devChanges...)

	src, drop, err := e.Materialize(ctxT(t), app, app.Source(), v1, blobs)
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	if src.Name != app.Source().Name || src.Database == app.Source().Database {
		t.Fatalf("materialized source: %s", src.Name)
	}
	m := &migrate.Engine{SigningKey: []byte("0123456789abcdef0123456789abcdef")}
	var buf bytes.Buffer
	if _, err := m.Create(ctxT(t), release.MigrationInput{App: app, Source: src, ID: "crm-m1", By: "alice", Version: v1.ID, CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatal(err)
	}
	f, err := m.Open(memArtifact{bytes.NewReader(buf.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta.Version != "crm-v1" {
		t.Fatalf("version in file: %q", f.Meta.Version)
	}
	carried := 0
	for _, td := range f.Meta.Tables {
		vt := v1.Table(td.Key)
		if vt == nil {
			t.Fatalf("file carries %s, which v1 does not hold", td.Key)
		}
		if td.Rows != vt.Rows || td.Checksum != vt.Checksum {
			t.Errorf("%s: file has %d rows (%s), v1 %d (%s)", td.Key, td.Rows, td.Checksum[:8], vt.Rows, vt.Checksum[:8])
		}
		carried++
	}
	if carried != len(v1.Tables) {
		t.Fatalf("file carries %d tables, v1 holds %d", carried, len(v1.Tables))
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Production)
	dev, _ := app.Env(fixtures.Development)
	prod, _ := app.Env(fixtures.Production)
	d, err := (&Engine{}).Drift(ctxT(t), app, dev, prod)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]string{}
	for _, s := range d.Schema {
		byTable[s.Table] = strings.Join(s.Differences, "\n")
	}
	if !strings.Contains(byTable["contracts"], "table only in development (missing in production)") {
		t.Errorf("contracts: %q", byTable["contracts"])
	}
	if !strings.Contains(byTable["customers"], "column segment (text) only in development") || !strings.Contains(byTable["customers"], "index customers_segment_idx only in development") {
		t.Errorf("customers: %q", byTable["customers"])
	}
	if _, ok := byTable["auditTrails"]; ok {
		t.Errorf("auditTrails is skip and out of scope: %q", byTable["auditTrails"])
	}
	versions := strings.Join(d.Versions, "\n")
	if !strings.Contains(versions, "core: 2.2.15 in development") || !strings.Contains(versions, "workflow-json-query") {
		t.Errorf("versions: %s", versions)
	}
	same, err := (&Engine{}).Drift(ctxT(t), app, dev, dev)
	if err != nil || len(same.Schema) != 0 || len(same.Versions) != 0 {
		t.Fatalf("an environment drifts from itself: %+v %v", same, err)
	}
}

// A version of an inherited collection holds each table's own rows: the
// parent's count leaves out the children's, a change in a child is not a
// change of the parent, and restoring the parent leaves the children's
// rows alone.
func TestVersionsOfInheritedTablesCountOwnRows(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "inherit_versions")
	exec(t, dsn,
		`CREATE TABLE events (id int PRIMARY KEY, title text NOT NULL DEFAULT '', CONSTRAINT events_title CHECK (title <> 'x'))`,
		`CREATE TABLE meetings (id int PRIMARY KEY, room text) INHERITS (events)`,
		`CREATE TABLE calls (id int PRIMARY KEY, phone text) INHERITS (events)`,
		`ALTER TABLE ONLY calls ALTER COLUMN title SET DEFAULT 'call'`,
		`CREATE TABLE workshops (title text DEFAULT 'workshop', seats int DEFAULT 10, CONSTRAINT workshops_seats CHECK (seats > 0)) INHERITS (meetings, calls)`,
		`CREATE FUNCTION event_count() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM events; END`,
		`CREATE VIEW busy AS SELECT event_count() AS n, (SELECT count(*) FROM ONLY meetings) AS meetings`,
		`CREATE FUNCTION busy_n() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT n FROM busy; END`,
		`INSERT INTO events VALUES (1, 'launch'), (2, 'review')`,
		`INSERT INTO meetings VALUES (10, 'standup', 'A'), (11, 'retro', 'B'), (12, 'planning', 'C')`,
		`INSERT INTO calls VALUES (20, 'support', '+1')`)
	dev := &release.Environment{Name: "development", Database: dsn}
	app := &release.App{Name: "inh", Environments: []*release.Environment{dev},
		Rules: map[string]release.Rule{"events": release.RuleOverwrite, "meetings": release.RuleOverwrite, "calls": release.RuleSchemaOnly}}
	e := &Engine{}
	blobs := newBlobs()
	v1, _ := snapshot(t, e, app, blobs, "inh-v1")
	rows := map[string]int64{}
	for _, vt := range v1.Tables {
		rows[vt.Table] = vt.Rows
	}
	if len(rows) != 2 || rows["events"] != 2 || rows["meetings"] != 3 {
		t.Fatalf("version's tables and rows: %v, want events 2 (its own) and meetings 3", rows)
	}
	equalsVersion(t, dsn, v1)

	// A child's change is the child's alone.
	exec(t, dsn, `INSERT INTO meetings VALUES (13, 'demo', 'D')`, `INSERT INTO calls VALUES (21, 'sales', '+2')`)
	d, err := e.Diff(ctxT(t), app, dev, v1, nil, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if findTable(d, "events") != nil {
		t.Errorf("the parent changed with its children's rows: %+v", findTable(d, "events"))
	}
	if m := findTable(d, "meetings"); m == nil || m.Added != 1 || m.Removed != 0 || m.Changed != 0 {
		t.Errorf("meetings: %+v, want 1 added", m)
	}

	// Restoring v1 brings back the parent's and meetings' own rows; calls
	// (not versioned) keeps both of its rows.
	exec(t, dsn, `UPDATE ONLY events SET title = 'launch (moved)' WHERE id = 1`)
	if _, err := e.Restore(ctxT(t), app, dev, v1, blobs); err != nil {
		t.Fatalf("restore: %v", err)
	}
	equalsVersion(t, dsn, v1)
	got := testenv.Rows(t, dsn, `SELECT 'n', row((SELECT count(*) FROM events), (SELECT count(*) FROM ONLY events), (SELECT count(*) FROM calls))::text`)
	if got["n"] != "(7,2,2)" {
		t.Errorf("counts (events with children, events' own, calls): %s, want (7,2,2)", got["n"])
	}

	// A version made into a database of its own has the live structure
	// exactly: inheritance (multiple parents, a child's own default,
	// merged checks) and the functions and views over the tables.
	scratch, drop, err := e.Materialize(ctxT(t), app, dev, v1, blobs)
	if err != nil {
		t.Fatalf("materialize: %v", err)
	}
	defer drop()
	if want, got := dumpSchema(t, dsn), dumpSchema(t, scratch.Database); got != want {
		t.Errorf("materialized schema differs from the live one:\n--- live\n%s\n--- materialized\n%s", want, got)
	}
	got = testenv.Rows(t, scratch.Database, `SELECT 'n', row((SELECT count(*) FROM ONLY events), (SELECT count(*) FROM meetings), busy_n())::text`)
	if got["n"] != "(2,3,5)" {
		t.Errorf("materialized counts (events' own, meetings, busy_n): %s, want (2,3,5)", got["n"])
	}
}

func dumpSchema(t *testing.T, dsn string) string {
	t.Helper()
	out, err := osexec.Command("pg_dump", "--schema-only", "--exclude-schema=relbot", "--dbname", dsn).Output()
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
