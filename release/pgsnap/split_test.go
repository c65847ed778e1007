package pgsnap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// splitSQL has tables of the shapes a split must get right, each above
// the tests' split size of 64 KiB unless its name says otherwise: another
// schema and quoted names with capitals, no primary key (duplicate rows),
// TOAST (large text and bytea), a generated column, no columns at all,
// holes from deletes and updates, inheritance (the parent's own rows and
// the child's, COPY reading each alone) and partitions.
const splitSQL = `
CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE "Odd ""Schema"""."Big Table" (id int PRIMARY KEY, "Note" text, n numeric);
INSERT INTO "Odd ""Schema"""."Big Table" SELECT i, 'note ' || i || E'\ttab\nline "q"', i / 7.0 FROM generate_series(1, 6000) i;
DELETE FROM "Odd ""Schema"""."Big Table" WHERE id % 11 = 0;
UPDATE "Odd ""Schema"""."Big Table" SET n = -n WHERE id % 13 = 0;

CREATE TABLE no_pk (a int, b text);
INSERT INTO no_pk SELECT i % 500, repeat('x', i % 40) FROM generate_series(1, 8000) i;
INSERT INTO no_pk SELECT * FROM no_pk WHERE a < 10;

CREATE TABLE toasted (id int PRIMARY KEY, body text, blob bytea);
ALTER TABLE toasted ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO toasted SELECT i, (SELECT string_agg(md5(i::text || '-' || j), '') FROM generate_series(1, 200) j),
	decode((SELECT string_agg(md5(j::text || '/' || i), '') FROM generate_series(1, 150) j), 'hex') FROM generate_series(1, 300) i;

CREATE TABLE generated (id int, doubled int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO generated SELECT i FROM generate_series(1, 5000) i;

CREATE TABLE no_columns ();
INSERT INTO no_columns SELECT FROM generate_series(1, 20000);

CREATE TABLE parent (id int, what text);
CREATE TABLE child (extra int) INHERITS (parent);
INSERT INTO parent SELECT i, 'parent row ' || i FROM generate_series(1, 4000) i;
INSERT INTO child SELECT i, 'child row ' || i, i FROM generate_series(1, 4000) i;

CREATE TABLE events (id int, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT i, date '2025-01-01' + (i % 700), repeat('p', 50) FROM generate_series(1, 8000) i;

CREATE TABLE small (id int PRIMARY KEY, v text);
INSERT INTO small VALUES (1, 'one'), (2, 'two');
CREATE TABLE empty_one (id int);
`

const testSplitBytes = 64 << 10

// splitTables is the manifest's split tables, by key.
func splitTables(t *testing.T, path string, e *Engine) map[string]TableInfo {
	t.Helper()
	_, meta, err := e.openArchive(openArchiveFile(t, path), "crm")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]TableInfo{}
	for _, ti := range meta.Tables {
		if len(ti.Parts) > 0 {
			out[ti.Key] = ti
		}
	}
	return out
}

// Tables above the split size are stored as several members of
// contiguous page ranges, the last open-ended; the archive verifies and
// restores exactly, into an empty database and in place.
func TestSplitTablesRestoreExactly(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, SplitBytes: testSplitBytes}
	src := newEnv(t, "splitsrc", splitSQL, nil)
	path, _ := backup(t, e, src)
	wantSchema, wantRows := schemaDump(t, src.Database), rowSums(t, src.Database)

	split := splitTables(t, path, e)
	stored := storedSums(t, src.Database, split)
	for _, key := range []string{`Odd "Schema".Big Table`, "no_pk", "toasted", "generated", "no_columns", "parent", "child", "events_2025", "events_2026"} {
		ti, ok := split[key]
		if !ok {
			t.Errorf("table %s was not split", key)
			continue
		}
		if ti.Member != "" || len(ti.Parts) < 2 {
			t.Errorf("table %s: member %q, %d parts", key, ti.Member, len(ti.Parts))
		}
		var rows, bytes int64
		for i, p := range ti.Parts {
			rows += p.Rows
			bytes += p.Bytes
			if i > 0 && p.FromPage != ti.Parts[i-1].ToPage || i == 0 && p.FromPage != 0 {
				t.Errorf("table %s part %d starts at page %d after %+v", key, i+1, p.FromPage, ti.Parts[max(i-1, 0)])
			}
			if last := i == len(ti.Parts)-1; last != (p.ToPage == 0) {
				t.Errorf("table %s part %d of %d ends at %d: only the last is open-ended", key, i+1, len(ti.Parts), p.ToPage)
			}
		}
		if rows != ti.Rows || bytes != ti.Bytes {
			t.Errorf("table %s: parts hold %d rows %d bytes, the table %d rows %d bytes", key, rows, bytes, ti.Rows, ti.Bytes)
		}
		if want := stored[key]; want != fmt.Sprintf("%d rows %s", ti.Rows, ti.Checksum) {
			t.Errorf("table %s: manifest %d rows %s, source (%s) %s", key, ti.Rows, ti.Checksum, ti.Format, want)
		}
	}
	for _, key := range []string{"small", "empty_one"} {
		if _, ok := split[key]; ok {
			t.Errorf("table %s was split", key)
		}
	}

	// Each range is read by a TID range scan, not a scan of the table.
	conn := testenv.Connect(t, src.Database)
	big := &pgschema.Table{Schema: `Odd "Schema"`, Name: "Big Table", Columns: []pgschema.Column{{Name: "id"}, {Name: "Note"}}}
	for _, r := range [][2]int64{{0, 3}, {3, 7}, {7, 0}} {
		sql := copyRangeSQL(big, r[0], r[1])
		query := strings.TrimSuffix(strings.TrimPrefix(sql, "COPY ("), ") TO STDOUT")
		var plan string
		if err := conn.QueryRow(context.Background(), "EXPLAIN "+query).Scan(&plan); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if !strings.Contains(plan, "Tid Range Scan") {
			t.Errorf("%s is planned as %s", sql, plan)
		}
	}

	a := openArchiveFile(t, path)
	report, err := e.Verify(ctxT(t), a, "crm", src)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !report.OK() {
		t.Fatalf("verify: %q", report.Problems)
	}
	for _, c := range []struct{ name, sql, mode string }{
		{"into an empty database", "", "parallel"},
		{"in place", `CREATE TABLE no_pk (a int); INSERT INTO no_pk VALUES (1)`, "one transaction"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := newEnv(t, "splitdst", c.sql, nil)
			rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if !strings.Contains(rep.Mode, c.mode) {
				t.Fatalf("mode %q", rep.Mode)
			}
			if got := schemaDump(t, dst.Database); got != wantSchema {
				t.Fatalf("schema differs:\n%s", lineDiff(wantSchema, got))
			}
			equalMaps(t, "tables", wantRows, rowSums(t, dst.Database))
		})
	}
	// The same database backed up without splitting has the same
	// manifest totals: the checksum does not depend on the split.
	whole, _ := backup(t, &Engine{Workers: 2, SplitBytes: -1}, src)
	if n := len(splitTables(t, whole, e)); n != 0 {
		t.Fatalf("SplitBytes -1 split %d tables", n)
	}
	_, wm, err := e.openArchive(openArchiveFile(t, whole), "crm")
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range wm.Tables {
		if s, ok := split[ti.Key]; ok && (s.Rows != ti.Rows || s.Checksum != ti.Checksum) {
			t.Errorf("table %s: split %d rows %s, whole %d rows %s", ti.Key, s.Rows, s.Checksum, ti.Rows, ti.Checksum)
		}
	}
}

// A split table written to while the backup runs: transfers move amounts
// between its rows (the new row versions landing on other pages, in other
// ranges) and insert rows that add to the total what they take from
// another row. The backup holds exactly the snapshot's rows: every row
// loaded before it, none written after, the total unchanged.
func TestSplitTableWrittenDuringBackup(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, SplitBytes: 256 << 10}
	const initial = 40000
	src := newEnv(t, "splitbusy", fmt.Sprintf(`
		CREATE TABLE ledger (id bigserial PRIMARY KEY, amount bigint NOT NULL, pad text);
		INSERT INTO ledger (amount, pad) SELECT 100, repeat(md5(i::text), 3) FROM generate_series(1, %d) i;`, initial), nil)
	const total = initial * 100

	path, during := backupUnderWrites(t, src.Database, func() string { p, _ := backup(t, e, src); return p },
		func(ctx context.Context, tx pgx.Tx, i int) error {
			if _, err := tx.Exec(ctx, "UPDATE ledger SET amount = amount - 3 WHERE id = $1", 1+i%initial); err != nil {
				return err
			}
			if i%2 == 0 {
				_, err := tx.Exec(ctx, "INSERT INTO ledger (amount, pad) VALUES (3, 'written during the backup')")
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE ledger SET amount = amount + 3 WHERE id = $1", initial-i%initial)
			return err
		})
	if during == 0 {
		t.Fatal("nothing was written during the backup: the test proves nothing")
	}
	ti, ok := splitTables(t, path, e)["ledger"]
	if !ok {
		t.Fatal("ledger was not split")
	}
	dst := newEnv(t, "splitbusycopy", "", nil)
	if _, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var sum, rows, first, srcRows int64
	conn := testenv.Connect(t, dst.Database)
	if err := conn.QueryRow(context.Background(), "SELECT sum(amount), count(*), count(*) FILTER (WHERE id <= $1) FROM ledger", initial).Scan(&sum, &rows, &first); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Connect(t, src.Database).QueryRow(context.Background(), "SELECT count(*) FROM ledger").Scan(&srcRows); err != nil {
		t.Fatal(err)
	}
	if sum != total || first != initial || rows != ti.Rows {
		t.Fatalf("copy holds a total of %d in %d rows (%d of the first %d); want %d, the manifest's %d rows", sum, rows, first, initial, total, ti.Rows)
	}
	if srcRows <= rows {
		t.Fatalf("the source has %d rows, the backup %d: rows written after the backup are in it?", srcRows, rows)
	}
	equalMaps(t, "ledger", map[string]string{"ledger": fmt.Sprintf("%d rows %s", ti.Rows, ti.Checksum)}, storedSums(t, dst.Database, map[string]TableInfo{"ledger": ti}))
	t.Logf("%d writes committed while the backup ran, in %d parts; %d rows in the backup, %d in the source after", during, len(ti.Parts), rows, srcRows)
}

// A damaged member of a split table is named, with its part, in the
// refusal of check, restore and verify; a manifest whose totals the
// restored rows do not match is reported by verify for that table.
func TestDamagedPartIsNamed(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, SplitBytes: testSplitBytes}
	src := newEnv(t, "splitbad", splitSQL, nil)
	path, _ := backup(t, e, src)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ti := splitTables(t, path, e)["no_pk"]
	if len(ti.Parts) < 3 {
		t.Fatalf("no_pk in %d parts", len(ti.Parts))
	}
	ar, err := archive.Open(bytes.NewReader(good), int64(len(good)), "")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := ar.Member(ti.Parts[1].Member)
	if !ok {
		t.Fatalf("no member %s", ti.Parts[1].Member)
	}
	bad := bytes.Clone(good)
	bad[m.Chunks[0].Offset+m.Chunks[0].Length/2] ^= 0x01
	p := filepath.Join(t.TempDir(), "bad.relbot")
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	says := fmt.Sprintf("table no_pk part 2 of %d (member %s)", len(ti.Parts), ti.Parts[1].Member)
	dst := newEnv(t, "splitbaddst", `CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)`, nil)
	wantSchema := schemaDump(t, dst.Database)
	refused := func(what string, err error) {
		t.Helper()
		msg := release.ErrorMessage(err)
		if release.ErrorCode(err) != release.CodeDamaged || !strings.Contains(msg, says) || strings.Contains(msg, "\n") {
			t.Fatalf("%s: got code %q message %q; want %q named on one line", what, release.ErrorCode(err), msg, says)
		}
	}
	_, _, err = e.Check(ctxT(t), openArchiveFile(t, p), "crm")
	refused("check", err)
	_, err = e.Restore(ctxT(t), openArchiveFile(t, p), "crm", dst, release.RestoreOptions{})
	refused("restore", err)
	_, err = e.Verify(ctxT(t), openArchiveFile(t, p), "crm", dst)
	refused("verify", err)
	if schemaDump(t, dst.Database) != wantSchema {
		t.Fatal("target schema changed")
	}

	// A part the archive lacks, or parts that do not add up, are refused
	// before anything is touched.
	for _, c := range []struct {
		name   string
		change func(*TableInfo)
		says   string
	}{
		{"missing member", func(ti *TableInfo) { ti.Parts[2].Member += "x" }, "lacks the rows of table no_pk part 3 of"},
		{"parts do not add up", func(ti *TableInfo) { ti.Rows++ }, "parts of table no_pk hold"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rewriteMeta(t, good, "", func(m *Meta) {
				for i := range m.Tables {
					if m.Tables[i].Key == "no_pk" {
						c.change(&m.Tables[i])
					}
				}
			})
			_, err := e.Restore(ctxT(t), openArchiveFile(t, p), "crm", dst, release.RestoreOptions{})
			if release.ErrorCode(err) != release.CodeDamaged || !strings.Contains(release.ErrorMessage(err), c.says) {
				t.Fatalf("got %v; want %q", err, c.says)
			}
			if schemaDump(t, dst.Database) != wantSchema {
				t.Fatal("target schema changed")
			}
		})
	}

	// Verify compares each table's rows with the manifest's totals: a
	// split table whose checksum the restored rows do not have is named.
	p = rewriteMeta(t, good, "", func(m *Meta) {
		for i := range m.Tables {
			if m.Tables[i].Key == "toasted" {
				m.Tables[i].Checksum = strings.Repeat("0", 64)
			}
		}
	})
	rep, err := e.Verify(ctxT(t), openArchiveFile(t, p), "crm", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "table toasted: rows differ") {
		t.Fatalf("verify problems %q", rep.Problems)
	}
}

// Before PostgreSQL 14 a ctid range is a scan of the whole table: nothing
// is split.
func TestNoSplitBeforePostgres14(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, SplitBytes: 1}
	tables := []*pgschema.Table{{Schema: "public", Name: "big", Bytes: 1 << 30}, {Schema: "public", Name: "small", Bytes: 10}}
	jobs, err := e.planCopies(ctxT(t), nil, 130011, tables, nil, e.log())
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].parts != 1 || jobs[1].parts != 1 {
		t.Fatalf("jobs %+v", jobs)
	}
}

// A part's member names its table and part even where the manifest is
// not at hand, whatever the table's name holds (slashes included).
func TestPartMemberLabel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key         string
		part, parts int
		want        string
	}{
		{"tickets", 2, 4, "table tickets part 3 of 4 (member table-part/tickets/3-of-4)"},
		{`odd.a/b "c"`, 0, 2, `table odd.a/b "c" part 1 of 2 (member table-part/odd.a/b "c"/1-of-2)`},
	} {
		if got := memberLabel(partMember(c.key, c.part, c.parts)); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
		ti := TableInfo{Key: c.key, Parts: make([]TablePart, c.parts)}
		ti.Parts[c.part].Member = partMember(c.key, c.part, c.parts)
		if got := partLabel(ti, c.part); got != c.want {
			t.Errorf("partLabel: got %q, want %q", got, c.want)
		}
	}
}
