package postgres

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func newStore(t *testing.T) *Store {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "store")
	return openStore(t, dsn)
}

func appliedVersions(t *testing.T, dsn string) []int {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	rows, err := conn.Query(context.Background(), "SELECT version FROM relbot_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func embeddedVersions(t *testing.T) []int {
	t.Helper()
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

func TestMigrationsAppliedOnceAndIdempotent(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "migr")
	openStore(t, dsn).Close()
	want := embeddedVersions(t)
	if got := appliedVersions(t, dsn); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	// A second start finds nothing to do and keeps working.
	s := openStore(t, dsn)
	if got := appliedVersions(t, dsn); !reflect.DeepEqual(got, want) {
		t.Fatalf("after second Open applied %v, want %v", got, want)
	}
	if _, err := s.NextID(context.Background(), "crm", "b"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentOpenOnFreshDatabase(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "migrrace")
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, nil)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	if got, want := appliedVersions(t, dsn), embeddedVersions(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "migrnew")
	openStore(t, dsn).Close()
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "INSERT INTO relbot_schema_migrations (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dsn, nil)
	if err == nil {
		t.Fatal("Open succeeded on a database from a newer relbot")
	}
	if code := release.ErrorCode(err); code != release.CodeIncompatible {
		t.Fatalf("code %q, want %q (%v)", code, release.CodeIncompatible, err)
	}
	if msg := release.ErrorMessage(err); !strings.Contains(msg, "9999") {
		t.Fatalf("message %q does not name the database's version", msg)
	}
}

func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "migrfail")
	fsys := fstest.MapFS{
		"migrations/0001_ok.sql":  {Data: []byte("CREATE TABLE t1 (a int);")},
		"migrations/0002_bad.sql": {Data: []byte("CREATE TABLE t2 (a int); SELECT no_such_function();")},
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.Connect(t, dsn)
	err = migrate(context.Background(), conn, ms, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "0002_bad") {
		t.Fatalf("migrate: %v, want an error naming 0002_bad", err)
	}
	if got := appliedVersions(t, dsn); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("applied %v, want [1]", got)
	}
	var t2 *string
	if err := conn.QueryRow(context.Background(), "SELECT to_regclass('t2')::text").Scan(&t2); err != nil {
		t.Fatal(err)
	}
	if t2 != nil {
		t.Fatal("the failed migration's first statement was kept")
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	t.Parallel()
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"migrations/init.sql": {}},
		"version 0": {"migrations/0000_zero.sql": {}},
		"duplicate": {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", nil)
	if code := release.ErrorCode(err); code != release.CodeUnavailable {
		t.Fatalf("Open on a closed port: code %q (%v), want %q", code, err, release.CodeUnavailable)
	}
	if _, err := Open(ctx, "postgres://%zz", nil); release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("malformed DSN: %v, want invalid", err)
	}
}
