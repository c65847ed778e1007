package nocobase

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// newEnv makes an environment whose database has NocoBase's variables
// table and whose storage holds the key file of the fixtures' staging.
func newEnv(t *testing.T) *release.Environment {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "nocobase")
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE "environmentVariables" (
		"name" varchar(255) PRIMARY KEY, "type" varchar(255) NOT NULL DEFAULT 'default', "value" text,
		"createdAt" timestamptz NOT NULL, "updatedAt" timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	storage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(storage, "apps", "main"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, "apps", "main", "aes_key.dat"), fixtures.AESKey(fixtures.Staging), 0o600); err != nil {
		t.Fatal(err)
	}
	return &release.Environment{Name: "staging", Database: dsn, Storage: storage}
}

type row struct {
	kind, value      string
	created, updated time.Time
}

func readRow(t *testing.T, env *release.Environment, name string) row {
	t.Helper()
	var r row
	err := testenv.Connect(t, env.Database).QueryRow(context.Background(),
		`SELECT "type", "value", "createdAt", "updatedAt" FROM "environmentVariables" WHERE "name" = $1`, name).
		Scan(&r.kind, &r.value, &r.created, &r.updated)
	if err != nil {
		t.Fatalf("row %s: %v", name, err)
	}
	return r
}

func TestSecretDecryptsTheNocoBaseWay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	v := &Variables{Now: func() time.Time { return now }}

	for _, value := range []string{"s", "exactly 16 bytes", "a longer secret value with ümlauts and = signs"} {
		if err := v.Put(ctx, env, "SMTP_PASSWORD", true, value); err != nil {
			t.Fatal(err)
		}
		r := readRow(t, env, "SMTP_PASSWORD")
		if r.kind != "secret" || strings.Contains(r.value, value) {
			t.Fatalf("stored %q as %s", r.value, r.kind)
		}
		got, err := fixtures.DecryptSecret(fixtures.AESKey(fixtures.Staging), r.value)
		if err != nil || got != value {
			t.Fatalf("NocoBase decrypts %q, %v; want %q", got, err, value)
		}
	}
	if err := v.Put(ctx, env, "SMTP_PASSWORD", true, "short"); err != nil {
		t.Fatal(err)
	}
	if got := readRow(t, env, "SMTP_PASSWORD").value; len(got) != 64 {
		t.Fatalf("a short secret is stored in %d hex characters, NocoBase's in 64", len(got))
	}

	// Plain values are stored as they are; an update keeps createdAt.
	if err := v.Put(ctx, env, "API_BASE_URL", false, "https://a.example/api"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if err := v.Put(ctx, env, "API_BASE_URL", false, "https://b.example/api"); err != nil {
		t.Fatal(err)
	}
	r := readRow(t, env, "API_BASE_URL")
	if r.kind != "default" || r.value != "https://b.example/api" {
		t.Fatalf("plain variable: %+v", r)
	}
	if !r.created.Equal(now.Add(-time.Hour)) || !r.updated.Equal(now) {
		t.Fatalf("createdAt %v updatedAt %v: the upsert must keep createdAt", r.created, r.updated)
	}

	names, err := v.Names(ctx, env)
	if err != nil || len(names) != 2 || !names["SMTP_PASSWORD"] || names["API_BASE_URL"] {
		t.Fatalf("Names = %v, %v", names, err)
	}
	if err := v.Delete(ctx, env, "SMTP_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(ctx, env, "SMTP_PASSWORD"); err != nil {
		t.Fatalf("deleting a missing variable: %v", err)
	}
	if names, _ := v.Names(ctx, env); len(names) != 1 {
		t.Fatalf("after delete: %v", names)
	}
}

func TestKeyFromRelbotOverridesTheFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	key := fixtures.AESKey("elsewhere")
	v := &Variables{KeyFor: func(context.Context, *release.Environment) ([]byte, error) { return key, nil }}
	if err := v.Put(ctx, env, "ERP_TOKEN", true, "tok"); err != nil {
		t.Fatal(err)
	}
	if got, err := fixtures.DecryptSecret(key, readRow(t, env, "ERP_TOKEN").value); err != nil || got != "tok" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestMissingKeyOrTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	v := &Variables{}
	if err := os.Remove(filepath.Join(env.Storage, "apps", "main", "aes_key.dat")); err != nil {
		t.Fatal(err)
	}
	err := v.Put(ctx, env, "ERP_TOKEN", true, "tok")
	if release.ErrorCode(err) != release.CodeUnavailable || !strings.Contains(err.Error(), KeyFile) || strings.Contains(err.Error(), "tok") {
		t.Fatalf("missing key file: %v", err)
	}
	if names, _ := v.Names(ctx, env); len(names) != 0 {
		t.Fatalf("a refused secret was written: %v", names)
	}
	// Plain variables need no key.
	if err := v.Put(ctx, env, "A", false, "1"); err != nil {
		t.Fatal(err)
	}

	_, dsn := testenv.NewDatabase(t, "empty")
	empty := &release.Environment{Name: "recovery", Database: dsn}
	if _, err := v.Names(ctx, empty); !errors.Is(err, release.ErrNoVariablesTable) {
		t.Fatalf("empty database: %v", err)
	}
	if err := v.Put(ctx, empty, "A", true, "x"); !errors.Is(err, release.ErrNoVariablesTable) {
		t.Fatalf("empty database, secret: %v", err)
	}
}
