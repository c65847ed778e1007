package pgsnap

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
)

// An archive written before pg_dump took the schema (testdata/v1-rich.relbot,
// made by bd8b166 from testdata/rich.sql) still restores exactly, into an
// empty database and in place, and still verifies.
func TestOldFormatArchiveStillRestores(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2}
	a := openArchiveFile(t, filepath.Join("testdata", "v1-rich.relbot"))
	_, meta, err := e.openArchive(a, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Schema == nil || meta.PgDump != nil {
		t.Fatal("testdata/v1-rich.relbot is not an archive of the old format")
	}
	ref := newEnv(t, "v1ref", richSQL, nil)
	want := schemaDump(t, ref.Database)
	rep, err := e.Verify(ctxT(t), a, "crm", ref)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("verify: %q", rep.Problems)
	}
	for _, c := range []struct{ name, sql string }{{"into an empty database", ""}, {"in place", "CREATE TABLE customers (id int)"}} {
		t.Run(c.name, func(t *testing.T) {
			dst := newEnv(t, "v1dst", c.sql, nil)
			if _, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{}); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := schemaDump(t, dst.Database); got != want {
				t.Fatalf("schema differs from rich.sql's:\n%s", lineDiff(want, got))
			}
			manifest := map[string]string{}
			for _, ti := range meta.Tables {
				manifest[ti.Key] = fmt.Sprintf("%d rows %s", ti.Rows, ti.Checksum)
			}
			equalMaps(t, "rows", manifest, rowSums(t, dst.Database))
			if got := storageFiles(t, dst.Storage); got["apps/main/aes_key.dat"] != sourceFiles["apps/main/aes_key.dat"] || got["uploads/photo-x9y8z7.png"] != sourceFiles["uploads/photo-x9y8z7.png"] {
				t.Fatalf("storage not restored: %d files", len(got))
			}
		})
	}
}

// A pg_dump older than the server is refused before anything is written,
// in one line naming both versions; so is a missing one.
func TestOlderPgDumpIsRefused(t *testing.T) {
	good := &Engine{Workers: 2}
	src := newEnv(t, "oldtool", "CREATE TABLE t (x int); INSERT INTO t VALUES (1);", nil)
	path, _ := backup(t, good, src)
	var server string
	conn, err := appdb.Connect(ctxT(t), src.Database, "", "")
	if err != nil {
		t.Fatal(err)
	}
	server = majorText(serverMajor(serverVersion(ctxT(t), conn)))
	conn.Close(ctxT(t))

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pg_dump"), []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.9'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "pg_dump 13.9 (pg_dump) is older than the server's PostgreSQL " + server + ": install pg_dump " + server + " or newer, or point RELBOT_PG_BIN at it"
	h := release.ArchiveHeader{ID: "crm-b2", App: "crm", Env: src.Name, Kind: release.BackupManual, CreatedBy: "tester", CreatedAt: time.Now().UTC()}
	check := func(t *testing.T, e *Engine, want string) {
		t.Helper()
		var out bytes.Buffer
		_, err := e.Create(ctxT(t), src, h, &out)
		if err == nil || release.ErrorMessage(err) != want {
			t.Fatalf("backup: got %v, want %q", err, want)
		}
		if out.Len() > 0 {
			t.Fatalf("a refused backup wrote %d bytes", out.Len())
		}
		if _, err := e.Verify(ctxT(t), openArchiveFile(t, path), "crm", src); err == nil || release.ErrorMessage(err) != want {
			t.Fatalf("verify: got %v, want %q", err, want)
		}
	}
	t.Run("on PATH", func(t *testing.T) {
		t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		check(t, &Engine{Workers: 2}, want)
		if err := (&Engine{}).CheckTools(ctxT(t), src.Database); err == nil || release.ErrorMessage(err) != want {
			t.Fatalf("start-up check: %v", err)
		}
	})
	t.Run("in RELBOT_PG_BIN", func(t *testing.T) {
		check(t, &Engine{Workers: 2, PGBin: dir}, strings.Replace(want, "(pg_dump)", "("+filepath.Join(dir, "pg_dump")+")", 1))
	})
	t.Run("missing", func(t *testing.T) {
		e := &Engine{Workers: 2, PGBin: filepath.Join(dir, "nowhere")}
		var out bytes.Buffer
		_, err := e.Create(ctxT(t), src, h, &out)
		if err == nil || !strings.HasPrefix(release.ErrorMessage(err), "cannot run "+filepath.Join(dir, "nowhere", "pg_dump")+" (install postgresql-client") || out.Len() > 0 {
			t.Fatalf("got %v", err)
		}
	})
	// The restore itself needs no pg_dump: it runs the archive's SQL.
	t.Run("restore", func(t *testing.T) {
		dst := newEnv(t, "oldtooldst", "", nil)
		if _, err := (&Engine{Workers: 2, PGBin: dir}).Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
			t.Fatalf("restore: %v", err)
		}
	})
}
