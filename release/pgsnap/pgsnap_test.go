package pgsnap

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

//go:embed testdata/rich.sql
var richSQL string

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.PgConn().Exec(context.Background(), sql).ReadAll(); err != nil {
		t.Fatalf("load SQL: %v", err)
	}
}

// newEnv makes an environment with its own database loaded with sql and a
// storage directory with a few files, a log directory and a socket.
func newEnv(t *testing.T, name, sql string, files map[string]string) *release.Environment {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, name)
	if sql != "" {
		execSQL(t, dsn, sql)
		// The server ends a closed session a moment later; a restore in
		// place would count it as the app still connected.
		waitIdle(t, dsn)
	}
	dir := filepath.Join(t.TempDir(), name, "storage")
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &release.Environment{Name: name, Database: dsn, Storage: dir, StorageExclude: []string{"logs/**", "gateway.sock"}}
}

type fileArchive struct {
	*os.File
	size int64
}

func (f fileArchive) Size() int64 { return f.size }

func openArchiveFile(t *testing.T, path string) fileArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	return fileArchive{f, st.Size()}
}

func backup(t *testing.T, e *Engine, env *release.Environment) (string, *release.BackupSummary) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.relbot")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.Create(ctxT(t), env, release.ArchiveHeader{ID: "crm-b1", App: "crm", Env: env.Name, Kind: release.BackupManual, CreatedBy: "tester", CreatedAt: time.Now().UTC()}, f)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, sum
}

// schemaDump is pg_dump --schema-only, without the random \restrict lines
// recent pg_dump versions print.
func schemaDump(t *testing.T, dsn string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, `\restrict`) || strings.HasPrefix(l, `\unrestrict`) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// tableSums is every table's row count and checksum, read the way a backup
// reads them.
func tableSums(t *testing.T, dsn string) map[string]string {
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
	out := map[string]string{}
	for i := range s.Tables {
		ti, err := TableChecksum(ctxT(t), conn, &s.Tables[i])
		if err != nil {
			t.Fatal(err)
		}
		out[ti.Key] = fmt.Sprintf("%d rows %s", ti.Rows, ti.Checksum)
	}
	return out
}

// storedSums is the row count and checksum in database dsn of each of
// an archive's tables, read in the format the archive stores it in.
func storedSums(t *testing.T, dsn string, tables map[string]TableInfo) map[string]string {
	t.Helper()
	conn, err := pgschema.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	out := map[string]string{}
	for key, ti := range tables {
		got, err := tableChecksum(ctxT(t), conn, manifestTable(ti), ti.Format == formatBinary)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = fmt.Sprintf("%d rows %s", got.Rows, got.Checksum)
	}
	return out
}

// storageFiles maps every regular file below dir to its content.
func storageFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

func equalMaps(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: want %.80q got %.80q", k, v, got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, k+": unexpected")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s differ:\n%s", what, strings.Join(diffs, "\n"))
	}
}

var sourceFiles = map[string]string{
	"uploads/contract-a1b2c3.pdf": "%PDF-1.4 fake contract",
	"uploads/photo-x9y8z7.png":    strings.Repeat("\x89PNG binary ", 5000),
	"apps/main/aes_key.dat":       "0123456789abcdef0123456789abcdef",
	"plugins/readme.txt":          "plugins live here",
	"logs/main/app.log":           "a log line that is not backed up",
}

func TestBackupRestoreIsIdentical(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2}
	src := newEnv(t, "src", richSQL, sourceFiles)
	if err := os.MkdirAll(filepath.Join(src.Storage, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock, err := net.Listen("unix", filepath.Join(src.Storage, "gateway.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	path, sum := backup(t, e, src)
	if sum.Tables != 9 || sum.Files != 4 {
		t.Fatalf("summary: %d tables, %d files; want 9 tables, 4 files (logs and socket left out)", sum.Tables, sum.Files)
	}
	if sum.Rows != 300+1000+2000+500+23+50+100+100 {
		t.Fatalf("summary rows %d", sum.Rows)
	}
	wantSchema := schemaDump(t, src.Database)
	wantRows := tableSums(t, src.Database)
	wantFiles := storageFiles(t, src.Storage)
	delete(wantFiles, "logs/main/app.log")

	a := openArchiveFile(t, path)
	report, err := e.Verify(ctxT(t), a, "crm", src)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !report.OK() || report.Tables != 9 {
		t.Fatalf("verify report: %+v", report)
	}

	t.Run("into an empty database", func(t *testing.T) {
		dst := newEnv(t, "fresh", "", nil)
		rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !strings.Contains(rep.Mode, "parallel") {
			t.Fatalf("mode %q", rep.Mode)
		}
		if got := schemaDump(t, dst.Database); got != wantSchema {
			t.Fatalf("schema differs:\n%s", lineDiff(wantSchema, got))
		}
		equalMaps(t, "tables", wantRows, tableSums(t, dst.Database))
		equalMaps(t, "storage files", wantFiles, storageFiles(t, dst.Storage))
	})

	t.Run("in place over an existing database", func(t *testing.T) {
		dst := newEnv(t, "existing", `CREATE TABLE customers (id int primary key, old text);
			CREATE TYPE ticket_priority AS ENUM ('x');
			CREATE VIEW v AS SELECT * FROM customers;
			CREATE SCHEMA leftover; CREATE TABLE leftover.t (x int);
			INSERT INTO customers VALUES (1, 'old row');`,
			map[string]string{"uploads/old-aaaaaa.txt": "old upload", "logs/main/app.log": "target's own log"})
		rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !strings.Contains(rep.Mode, "one transaction") {
			t.Fatalf("mode %q", rep.Mode)
		}
		if got := schemaDump(t, dst.Database); got != wantSchema {
			t.Fatalf("schema differs:\n%s", lineDiff(wantSchema, got))
		}
		equalMaps(t, "tables", wantRows, tableSums(t, dst.Database))
		got := storageFiles(t, dst.Storage)
		if got["logs/main/app.log"] != "target's own log" {
			t.Fatalf("the target's excluded logs were not kept: %v", got)
		}
		delete(got, "logs/main/app.log")
		equalMaps(t, "storage files", wantFiles, got)
	})
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			lo := max(0, i-3)
			return fmt.Sprintf("first difference at line %d:\nwant: %s\n got: %s\ncontext:\n%s", i+1, x, y, strings.Join(al[lo:min(len(al), i+3)], "\n"))
		}
	}
	return ""
}

// A transfer moves money from a row of one table to a row of another in one
// transaction; the total across both tables never changes. A backup taken
// while transfers run must see that total.
func TestBackupIsConsistentUnderWrites(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2}
	src := newEnv(t, "busy", `
		CREATE TABLE left_side (id int PRIMARY KEY, amount bigint NOT NULL, pad text);
		CREATE TABLE right_side (id int PRIMARY KEY, amount bigint NOT NULL, pad text);
		INSERT INTO left_side SELECT i, 100, repeat(md5(i::text), 8) FROM generate_series(1, 150000) i;
		INSERT INTO right_side SELECT i, 100, repeat(md5(i::text), 8) FROM generate_series(1, 150000) i;`, nil)
	const total = 2 * 150000 * 100

	path, during := backupUnderWrites(t, src.Database, func() string { p, _ := backup(t, e, src); return p },
		func(ctx context.Context, tx pgx.Tx, i int) error {
			if _, err := tx.Exec(ctx, "UPDATE left_side SET amount = amount - 7 WHERE id = $1", 1+i%150000); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE right_side SET amount = amount + 7 WHERE id = $1", 150000-i%150000)
			return err
		})
	if during == 0 {
		t.Fatal("no transfer ran during the backup: the test proves nothing")
	}
	dst := newEnv(t, "busycopy", "", nil)
	if _, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var got int64
	conn := testenv.Connect(t, dst.Database)
	if err := conn.QueryRow(context.Background(), "SELECT (SELECT sum(amount) FROM left_side) + (SELECT sum(amount) FROM right_side)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != total {
		t.Fatalf("copy holds a total of %d, want %d (%d transfers ran during the backup)", got, total, during)
	}
	t.Logf("%d transfers committed while the backup ran", during)
}

// backupUnderWrites runs write, one transaction after another, on dsn
// while backup runs (from the 50th commit on) and returns backup's archive
// and how many writes committed while it ran. A failed write fails the
// test.
func backupUnderWrites(t *testing.T, dsn string, backup func() string, write func(ctx context.Context, tx pgx.Tx, i int) error) (string, int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var writes atomic.Int64
	done := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			done <- err
			return
		}
		defer conn.Close(context.Background())
		for i := 0; ctx.Err() == nil; i++ {
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return write(ctx, tx, i) }); err != nil {
				if ctx.Err() != nil {
					break
				}
				done <- err
				return
			}
			writes.Add(1)
		}
		done <- nil
	}()
	for writes.Load() < 50 {
		select {
		case err := <-done:
			t.Fatalf("writes stopped before the backup: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	before := writes.Load()
	path := backup()
	during := writes.Load() - before
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return path, during
}

// Every bad archive is refused with one clear message before the target is
// touched.
func TestBadArchivesChangeNothing(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, Passphrase: "the right backup passphrase"}
	src := newEnv(t, "src", richSQL, sourceFiles)
	path, _ := backup(t, e, src)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := archive.Open(bytes.NewReader(good), int64(len(good)), e.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	tickets, _ := ar.Member("table/tickets")
	preData, _ := ar.Member(preDataMember)

	dst := newEnv(t, "dst", `CREATE TABLE precious (id int PRIMARY KEY, v text); INSERT INTO precious VALUES (1, 'keep me');`,
		map[string]string{"uploads/mine-abcdef.txt": "mine"})
	wantSchema, wantRows, wantFiles := schemaDump(t, dst.Database), tableSums(t, dst.Database), storageFiles(t, dst.Storage)

	flip := func(off int64) []byte { b := bytes.Clone(good); b[off] ^= 0x01; return b }
	cases := []struct {
		name   string
		data   []byte
		engine *Engine
		code   release.Code
		says   string
	}{
		{"flipped byte in a table", flip(tickets.Chunks[0].Offset + tickets.Chunks[0].Length/2), e, release.CodeDamaged, "table tickets"},
		{"flipped byte in the schema", flip(preData.Chunks[0].Offset + preData.Chunks[0].Length/2), e, release.CodeDamaged, "the schema (pg_dump's pre-data section)"},
		{"flipped byte in the manifest", flip(int64(len(good)) - 100), e, release.CodeDamaged, "manifest"},
		{"truncated", good[:len(good)*2/3], e, release.CodeDamaged, "truncated"},
		{"foreign file", []byte("PGDMP this is a pg_dump archive, not ours" + strings.Repeat(".", 200)), e, release.CodeInvalid, "not a relbot backup archive"},
		{"wrong key", good, &Engine{Workers: 2, Passphrase: "another passphrase entirely"}, release.CodeForbidden, "different key"},
		{"no key", good, &Engine{Workers: 2}, release.CodeForbidden, "RELBOT_BACKUP_KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.relbot")
			if err := os.WriteFile(p, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := c.engine.Restore(ctxT(t), openArchiveFile(t, p), "crm", dst, release.RestoreOptions{})
			if err == nil {
				t.Fatal("restore of a bad archive succeeded")
			}
			msg := release.ErrorMessage(err)
			if release.ErrorCode(err) != c.code || !strings.Contains(msg, c.says) || strings.Contains(msg, "\n") {
				t.Fatalf("got code %q message %q; want code %q mentioning %q on one line", release.ErrorCode(err), msg, c.code, c.says)
			}
			if _, err := c.engine.Verify(ctxT(t), openArchiveFile(t, p), "crm", dst); err == nil {
				t.Fatal("verify of a bad archive succeeded")
			}
			if schemaDump(t, dst.Database) != wantSchema {
				t.Fatal("target schema changed")
			}
			equalMaps(t, "target tables", wantRows, tableSums(t, dst.Database))
			equalMaps(t, "target files", wantFiles, storageFiles(t, dst.Storage))
		})
	}

	t.Run("wrong app", func(t *testing.T) {
		_, err := e.Restore(ctxT(t), openArchiveFile(t, path), "tickets", dst, release.RestoreOptions{})
		if release.ErrorCode(err) != release.CodeInvalid || !strings.Contains(err.Error(), "of app crm") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("busy target", func(t *testing.T) {
		other := testenv.Connect(t, dst.Database)
		if err := other.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{})
		if release.ErrorCode(err) != release.CodeConflict || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("got %v", err)
		}
		other.Close(context.Background())
		waitIdle(t, dst.Database)
		if schemaDump(t, dst.Database) != wantSchema {
			t.Fatal("target schema changed")
		}
	})

	t.Run("newer PostgreSQL", func(t *testing.T) {
		p := rewriteMeta(t, good, e.Passphrase, func(m *Meta) { m.ServerVersionNum = 990000; m.ServerVersion = "99.0" })
		_, err := e.Restore(ctxT(t), openArchiveFile(t, p), "crm", dst, release.RestoreOptions{})
		if release.ErrorCode(err) != release.CodeIncompatible || !strings.Contains(err.Error(), "PostgreSQL 99") {
			t.Fatalf("got %v", err)
		}
		equalMaps(t, "target tables", wantRows, tableSums(t, dst.Database))
	})

	t.Run("failure while loading rolls back", func(t *testing.T) {
		// A manifest whose row count disagrees with the rows makes the
		// load fail after the target was cleared, inside the transaction.
		p := rewriteMeta(t, good, e.Passphrase, func(m *Meta) {
			for i := range m.Tables {
				if m.Tables[i].Key == "ticket_comments" {
					m.Tables[i].Rows++
				}
			}
		})
		_, err := e.Restore(ctxT(t), openArchiveFile(t, p), "crm", dst, release.RestoreOptions{})
		if err == nil || !strings.Contains(err.Error(), "ticket_comments") {
			t.Fatalf("got %v", err)
		}
		if schemaDump(t, dst.Database) != wantSchema {
			t.Fatal("target schema changed")
		}
		equalMaps(t, "target tables", wantRows, tableSums(t, dst.Database))
		equalMaps(t, "target files", wantFiles, storageFiles(t, dst.Storage))

		// Into an empty database, in parallel: emptied again.
		empty := newEnv(t, "emptydst", "", nil)
		before := schemaDump(t, empty.Database)
		if _, err := e.Restore(ctxT(t), openArchiveFile(t, p), "crm", empty, release.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "ticket_comments") {
			t.Fatalf("got %v", err)
		}
		if got := schemaDump(t, empty.Database); got != before {
			t.Fatalf("the empty database was not emptied again:\n%s", lineDiff(before, got))
		}
	})
}

// waitIdle waits until the server has seen closed sessions go.
func waitIdle(t *testing.T, dsn string) {
	t.Helper()
	conn := testenv.Connect(t, testenv.AdminDSN())
	name := dsn[strings.LastIndex(dsn, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	for range 200 {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("sessions on %s did not end", name)
}

// rewriteMeta copies an archive with its manifest metadata changed.
func rewriteMeta(t *testing.T, file []byte, pass string, change func(*Meta)) string {
	t.Helper()
	ar, err := archive.Open(bytes.NewReader(file), int64(len(file)), pass)
	if err != nil {
		t.Fatal(err)
	}
	var m Meta
	if err := json.Unmarshal(ar.Meta(), &m); err != nil {
		t.Fatal(err)
	}
	change(&m)
	p := filepath.Join(t.TempDir(), "rewritten.relbot")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := ar.Header()
	h.ServerVersionNum = m.ServerVersionNum
	aw, err := archive.NewWriter(f, h, pass)
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range ar.Members() {
		mw, err := aw.Create(mem.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(mw, ar.Open(&mem)); err != nil {
			t.Fatal(err)
		}
		if _, err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Finish(&m); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExcluded(t *testing.T) {
	t.Parallel()
	pats := []string{"logs/**", "gateway.sock", "*.tmp"}
	for rel, want := range map[string]bool{
		"logs": true, "logs/main/a.log": true, "logsx/a": false, "gateway.sock": true,
		"uploads/gateway.sock": false, "x.tmp": true, "uploads/x.tmp": false, "uploads/a.png": false,
	} {
		if got := Excluded(rel, pats); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", rel, got, want)
		}
	}
}

var _ = errors.New

// Every database of the sample app comes back identical: pg_dump of the
// schema, every table's rows, every storage file.
func TestFixtureEnvironmentsRoundTrip(t *testing.T) {
	t.Parallel()
	// Every table of more than a few pages is split: NocoBase's own tables
	// in ranges, the small ones whole.
	e := &Engine{Workers: 2, SplitBytes: 16 << 10}
	for _, envName := range fixtures.Chain {
		t.Run(envName, func(t *testing.T) {
			t.Parallel()
			src := newEnv(t, envName, "", nil)
			if err := fixtures.LoadEnv(ctxT(t), src.Database, envName); err != nil {
				t.Fatal(err)
			}
			if err := fixtures.WriteStorage(src.Storage, envName); err != nil {
				t.Fatal(err)
			}
			path, sum := backup(t, e, src)
			if sum.CoreVersion == "" || len(sum.Plugins) == 0 {
				t.Fatalf("NocoBase versions not recorded: core %q, %d plugins", sum.CoreVersion, len(sum.Plugins))
			}
			if len(splitTables(t, path, e)) == 0 {
				t.Fatal("no table was split")
			}
			dst := newEnv(t, envName+"_copy", "", nil)
			if _, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			if want, got := schemaDump(t, src.Database), schemaDump(t, dst.Database); want != got {
				t.Fatalf("schema differs:\n%s", lineDiff(want, got))
			}
			equalMaps(t, "tables", tableSums(t, src.Database), tableSums(t, dst.Database))
			want := storageFiles(t, src.Storage)
			for k := range want {
				if Excluded(k, src.StorageExclude) {
					delete(want, k)
				}
			}
			equalMaps(t, "files", want, storageFiles(t, dst.Storage))
		})
	}
}
