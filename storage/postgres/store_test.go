package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
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

func TestNextIDConcurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	const n = 50
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = s.NextID(ctx, "crm", "b") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
	}
	for i := 1; i <= n; i++ {
		if id := fmt.Sprintf("crm-b%d", i); !got[id] {
			t.Errorf("missing %s", id)
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct IDs, want %d", len(got), n)
	}
	// Counters are per app and per kind.
	for _, c := range []struct{ app, kind, want string }{
		{"crm", "r", "crm-r1"}, {"tickets", "b", "tickets-b1"}, {"crm", "b", "crm-b51"},
	} {
		id, err := s.NextID(ctx, c.app, c.kind)
		if err != nil || id != c.want {
			t.Errorf("NextID(%s, %s) = %q, %v; want %q", c.app, c.kind, id, err, c.want)
		}
	}
	if _, err := s.NextID(ctx, "", "b"); release.ErrorCode(err) != release.CodeInvalid {
		t.Errorf("NextID without app: %v, want invalid", err)
	}
}

func sampleBackup(id, env string, created time.Time) *release.Backup {
	return &release.Backup{
		ID: id, App: "crm", Env: env, Kind: release.BackupManual,
		CreatedBy: "U01AAA", CreatedAt: created,
		Artifact: "crm/backups/" + id + ".relbot", Size: 123456789, SHA256: strings.Repeat("ab", 32),
		Manifest: release.BackupSummary{
			ServerVersion: "15.4", CoreVersion: "1.2.3",
			Plugins: map[string]string{"acl": "1.0.0", "workflow": "2.1.0"},
			Tables:  42, Rows: 1 << 40, Files: 7, FileBytes: 1 << 33, DataBytes: 1 << 34,
			Duration: 1500 * time.Millisecond, Encrypted: true, Warnings: []string{"table x has no primary key"},
		},
	}
}

func TestBackupRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// A zone other than UTC and nanoseconds PostgreSQL cannot keep.
	created := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	verified := created.Add(time.Hour)
	b := sampleBackup("crm-b1", "production", created)
	b.Kind = release.BackupPreRelease
	b.ReleaseID = "crm-r5"
	b.VerifiedAt = &verified
	if err := s.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	want := *b
	want.CreatedAt = created.Truncate(time.Microsecond).UTC()
	v := verified.Truncate(time.Microsecond).UTC()
	want.VerifiedAt = &v
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}

	// Saving again replaces the record.
	b.Size = 1
	b.VerifiedAt = nil
	b.ReleaseID = ""
	if err := s.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 1 || got.VerifiedAt != nil || got.ReleaseID != "" {
		t.Fatalf("after update: %+v", got)
	}

	// Verified.
	at := time.Date(2025, 3, 5, 0, 0, 0, 999, time.UTC)
	if err := s.MarkBackupVerified(ctx, "crm-b1", at); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.VerifiedAt == nil || !got.VerifiedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("VerifiedAt = %v, want %v", got.VerifiedAt, at)
	}

	// Delete.
	if err := s.DeleteBackup(ctx, "crm-b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBackup(ctx, "crm-b1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("after delete: %v, want not found", err)
	}
}

func TestBackupNotFound(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["get"] = s.GetBackup(ctx, "crm-b404")
	checks["delete"] = s.DeleteBackup(ctx, "crm-b404")
	checks["verified"] = s.MarkBackupVerified(ctx, "crm-b404", time.Now())
	for what, err := range checks {
		var e *release.Error
		if !errors.As(err, &e) || e.Code != release.CodeNotFound {
			t.Errorf("%s: %v, want a not found *release.Error", what, err)
			continue
		}
		if e.Message != "no backup crm-b404" {
			t.Errorf("%s: message %q", what, e.Message)
		}
	}
}

func TestListBackupsNewestFirst(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Saved out of order, two environments.
	for i, h := range []int{5, 1, 3, 2, 4} {
		if err := s.SaveBackup(ctx, sampleBackup(fmt.Sprintf("crm-b%d", i+1), "production", base.Add(time.Duration(h)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveBackup(ctx, sampleBackup("crm-b9", "staging", base)); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListBackups(ctx, "crm", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 5 {
		t.Fatalf("%d backups, want 5", len(list))
	}
	if !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].CreatedAt.After(list[j].CreatedAt) }) {
		t.Errorf("not newest first")
	}
	if list[0].ID != "crm-b1" || list[4].ID != "crm-b2" {
		t.Errorf("order %s ... %s", list[0].ID, list[4].ID)
	}
	for _, b := range list {
		if b.Env != "production" {
			t.Errorf("%s of %s listed", b.ID, b.Env)
		}
	}
	none, err := s.ListBackups(ctx, "tickets", "production")
	if err != nil || len(none) != 0 {
		t.Fatalf("other app: %v, %v", none, err)
	}
}

func TestSaveBackupInvalid(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	b := sampleBackup("", "production", time.Now())
	if err := s.SaveBackup(context.Background(), b); release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("no ID: %v, want invalid", err)
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
