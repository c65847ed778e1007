package release_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/versions"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/memory"
	"github.com/relbot/relbot/storage/postgres"
)

// versionService is a VersionService over a real store, artifact directory and
// the sample app's development database, keeping keep versions.
func versionService(t *testing.T, keep int) (*release.VersionService, string) {
	t.Helper()
	ctx := context.Background()
	_, devDSN := testenv.NewDatabase(t, "dev")
	if err := fixtures.LoadEnv(ctx, devDSN, fixtures.Development); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CRM_DEV_DATABASE_URL": devDSN}
	apps, err := config.ParseApps([]byte(fixtures.AppsYAML(nil)), func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		switch {
		case strings.HasSuffix(k, "_DATABASE_URL"):
			return "postgres://unused/" + strings.ToLower(k)
		case strings.HasSuffix(k, "_STORAGE"):
			return "/nonexistent/" + strings.ToLower(k)
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	apps[0].VersionKeep = keep
	_, botDSN := testenv.NewDatabase(t, "bot")
	store, err := postgres.Open(ctx, botDSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	dir := t.TempDir()
	arts, err := artifacts.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	core := release.NewCore(apps, store, memory.NewLocker(), nil)
	svc := &release.VersionService{Core: core, Store: store, Engine: &versions.Engine{}, Artifacts: arts,
		Variables: &release.VariableService{Core: core, Store: store}}
	return svc, dir
}

func blobFiles(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "crm", "versions", "blobs", "*.zst"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func TestVersionServiceStoresOnceAndKeeps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	svc, dir := versionService(t, 2)
	v1, err := svc.CreateVersion(ctx, "alice", "crm", "  first  ")
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID != "crm-v1" || v1.Description != "first" || v1.CreatedBy != "alice" || v1.Env != "development" {
		t.Fatalf("v1: %+v", v1)
	}
	blobs := blobFiles(t, dir)
	distinct := map[string]bool{}
	for _, vt := range v1.Tables {
		distinct[vt.Blob] = true
	}
	if blobs != len(distinct) {
		t.Fatalf("%d blob files for %d distinct tables' rows", blobs, len(distinct))
	}
	// Unchanged tables are stored once across versions.
	if _, err := svc.CreateVersion(ctx, "alice", "crm", "second, same rows"); err != nil {
		t.Fatal(err)
	}
	if n := blobFiles(t, dir); n != blobs {
		t.Fatalf("an unchanged database added blobs: %d -> %d", blobs, n)
	}
	conn := testenv.Connect(t, svc.Apps()[0].Source().Database)
	if _, err := conn.Exec(ctx, `UPDATE "uiSchemas" SET "name" = 'changed' WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateVersion(ctx, "alice", "crm", "third"); err != nil {
		t.Fatal(err)
	}
	if n := blobFiles(t, dir); n != blobs+1 {
		t.Fatalf("one changed table: %d -> %d blobs", blobs, n)
	}
	// keep: 2 dropped crm-v1; its uiSchemas blob is still crm-v2's.
	list, err := svc.ListVersions(ctx, "crm")
	if err != nil || len(list) != 2 || list[0].ID != "crm-v3" || list[1].ID != "crm-v2" {
		t.Fatalf("after retention: %v %+v", err, list)
	}
	if _, err := svc.CreateVersion(ctx, "alice", "crm", "fourth"); err != nil {
		t.Fatal(err)
	}
	// crm-v2 went with the old uiSchemas rows, which nothing refers to now.
	if n := blobFiles(t, dir); n != blobs {
		t.Fatalf("after crm-v2 was dropped: %d blobs, want %d", n, blobs)
	}
	d, err := svc.DiffVersion(ctx, "crm", "crm-v3", "")
	if err != nil || len(d.Tables) != 0 {
		t.Fatalf("diff of kept versions must still read their blobs: %v %+v", err, d)
	}
}

func TestVersionServiceRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	svc, dir := versionService(t, 0)
	migrations := &release.MigrationService{Core: svc.Core, Versions: svc, Variables: svc.Variables}
	cases := []struct {
		name string
		call func() error
		code release.Code
		want string
	}{
		{"empty description", func() error { _, err := svc.CreateVersion(ctx, "a", "crm", "  "); return err }, release.CodeInvalid, "needs a description"},
		{"long description", func() error { _, err := svc.CreateVersion(ctx, "a", "crm", strings.Repeat("é", 2001)); return err }, release.CodeInvalid, "2001 characters long; a version takes at most 2000"},
		{"unknown app", func() error { _, err := svc.CreateVersion(ctx, "a", "nope", "x"); return err }, release.CodeNotFound, `no app "nope"`},
		{"unknown version", func() error { _, _, _, err := svc.RestoreVersion(ctx, "a", "crm", "crm-v9"); return err }, release.CodeNotFound, "no version crm-v9"},
		{"unknown diff", func() error { _, err := svc.DiffVersion(ctx, "crm", "crm-v9", ""); return err }, release.CodeNotFound, "no version crm-v9"},
		{"unknown migration source", func() error { _, err := migrations.CreateMigration(ctx, "a", "crm", "crm-v9", ""); return err }, release.CodeNotFound, "no version crm-v9"},
	}
	for _, tc := range cases {
		err := tc.call()
		if release.ErrorCode(err) != tc.code || !strings.Contains(release.ErrorMessage(err), tc.want) {
			t.Errorf("%s: got %v (%s), want %s %q", tc.name, err, release.ErrorCode(err), tc.code, tc.want)
		}
	}
	if list, err := svc.ListVersions(ctx, "crm"); err != nil || len(list) != 0 || blobFiles(t, dir) != 0 {
		t.Fatalf("refusals changed something: %v %d versions", err, len(list))
	}
	// A version of another app is refused even when a caller skips the
	// grammar's ID check.
	other := &release.Version{ID: "shop-v1", App: "shop", Env: "development", Description: "x", CreatedBy: "c", CreatedAt: time.Now(), Tables: []release.VersionTable{}}
	if err := svc.Store.SaveVersion(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := svc.RestoreVersion(ctx, "a", "crm", "shop-v1"); release.ErrorCode(err) != release.CodeInvalid || !strings.Contains(err.Error(), "version shop-v1 is of app shop, not crm") {
		t.Fatalf("another app's version: %v", err)
	}
	if list, _ := svc.ListVersions(ctx, "crm"); len(list) != 0 {
		t.Fatalf("a refused restore saved a version: %+v", list)
	}
}

// failAfterSnapshot stores a snapshot's blobs, then fails, as a version
// whose last table could not be read would.
type failAfterSnapshot struct{ release.VersionEngine }

func (f failAfterSnapshot) Snapshot(ctx context.Context, app *release.App, env *release.Environment, blobs release.VersionBlobs) (*release.VersionSnapshot, error) {
	if _, err := f.VersionEngine.Snapshot(ctx, app, env, blobs); err != nil {
		return nil, err
	}
	return nil, release.Errorf(release.CodeUnavailable, "the connection to development was lost")
}

// A version that fails takes away the blobs it stored, and only those: the
// blobs earlier versions count on stay.
func TestFailedVersionLeavesNoBlobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	svc, dir := versionService(t, 10)
	engine := svc.Engine
	svc.Engine = failAfterSnapshot{engine}
	if _, err := svc.CreateVersion(ctx, "alice", "crm", "fails"); err == nil || !strings.Contains(err.Error(), "connection to development was lost") {
		t.Fatalf("create: %v", err)
	}
	if n := blobFiles(t, dir); n != 0 {
		t.Fatalf("a failed first version left %d blobs", n)
	}
	if list, err := svc.ListVersions(ctx, "crm"); err != nil || len(list) != 0 {
		t.Fatalf("versions after a failed create: %v %+v", err, list)
	}

	svc.Engine = engine
	v1, err := svc.CreateVersion(ctx, "alice", "crm", "first")
	if err != nil {
		t.Fatal(err)
	}
	blobs := blobFiles(t, dir)
	conn := testenv.Connect(t, svc.Apps()[0].Source().Database)
	if _, err := conn.Exec(ctx, `UPDATE "uiSchemas" SET "name" = 'changed' WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`); err != nil {
		t.Fatal(err)
	}
	svc.Engine = failAfterSnapshot{engine}
	if _, err := svc.CreateVersion(ctx, "alice", "crm", "fails too"); err == nil {
		t.Fatal("create did not fail")
	}
	if n := blobFiles(t, dir); n != blobs {
		t.Fatalf("after a failed second version: %d blobs, want crm-v1's %d", n, blobs)
	}
	svc.Engine = engine
	if d, err := svc.DiffVersion(ctx, "crm", v1.ID, ""); err != nil || len(d.Tables) != 1 {
		t.Fatalf("crm-v1 must still read all its blobs and see the one change: %v %+v", err, d)
	}
}
