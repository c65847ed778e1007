package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
)

// versionEnv is the sample app with a signing key (migration files) and a
// second app "shop" whose versions crm must refuse.
func versionEnv(t *testing.T) map[string]string {
	t.Helper()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"] = hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	apps, err := os.ReadFile(env["RELBOT_APPS_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	shop := `
  shop:
    builtin: nocobase
    environments:
      - {name: development, database: "${CRM_STAGING_DATABASE_URL}"}
      - {name: production, database: "${CRM_PROD_DATABASE_URL}"}
`
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], append(apps, shop...), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// refusedOnce checks a refusal: exit 1 and one line saying why.
func refusedOnce(t *testing.T, what string, r result, want string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.err, want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("%s: want exit 1 and one line with %q, got %+v", what, want, r)
	}
}

func TestVersionCommandsFromTheTerminal(t *testing.T) {
	t.Parallel()
	env := versionEnv(t)

	r := run(t, env, "version", "create", "crm", "Contracts", "page", "and", "segment", "--as", "alice", "--json")
	if r.code != 0 {
		t.Fatalf("version create: %+v", r)
	}
	var v1 struct {
		ID          string `json:"id"`
		CreatedBy   string `json:"created_by"`
		Description string `json:"description"`
		Tables      int    `json:"tables"`
	}
	if err := json.Unmarshal([]byte(r.out), &v1); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.out)
	}
	if v1.ID != "crm-v1" || v1.CreatedBy != "alice" || v1.Description != "Contracts page and segment" || v1.Tables < 10 {
		t.Fatalf("created %+v", v1)
	}
	if r := run(t, env, "version", "list", "crm"); r.code != 0 || !strings.Contains(r.out, "crm-v1") || !strings.Contains(r.out, "Contracts page and segment") {
		t.Fatalf("version list: %+v", r)
	}

	dev := testenv.Connect(t, env["CRM_DEV_DATABASE_URL"])
	if _, err := dev.Exec(context.Background(), `UPDATE "uiSchemas" SET "name" = 'renamed' WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "version", "diff", "crm", "crm-v1")
	if r.code != 0 || !strings.HasPrefix(r.out, "crm-v1 -> development (live): 1 table differs (rows: 0 added, 0 removed, 1 changed)") || !strings.Contains(r.out, "changed x-uid=") {
		t.Fatalf("version diff: %+v", r)
	}

	r = run(t, env, "version", "restore", "crm", "crm-v1", "--as", "bob", "--json")
	if r.code != 0 {
		t.Fatalf("version restore: %+v", r)
	}
	var restored struct {
		Restored struct{ ID string }
		Before   struct {
			ID, Description string
			Auto            bool
		}
	}
	if err := json.Unmarshal([]byte(r.out), &restored); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.out)
	}
	if restored.Restored.ID != "crm-v1" || restored.Before.ID != "crm-v2" || restored.Before.Description != "before restore of crm-v1" || !restored.Before.Auto {
		t.Fatalf("restored %+v", restored)
	}
	if r := run(t, env, "version", "diff", "crm", "crm-v1"); r.code != 0 || !strings.Contains(r.out, "no differences") {
		t.Fatalf("after restore development must equal crm-v1: %+v", r)
	}
	// The automatic version undoes the restore.
	if r := run(t, env, "version", "diff", "crm", "crm-v2", "crm-v1"); r.code != 0 || !strings.Contains(r.out, "1 table differs") {
		t.Fatalf("diff of two versions: %+v", r)
	}
	if r := run(t, env, "version", "restore", "crm", "crm-v2"); r.code != 0 || !strings.Contains(r.out, "Version crm-v2 restored") {
		t.Fatalf("undo: %+v", r)
	}
	var name string
	if err := dev.QueryRow(context.Background(), `SELECT "name" FROM "uiSchemas" WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`).Scan(&name); err != nil || name != "renamed" {
		t.Fatalf("after undo the edit is back: %q %v", name, err)
	}

	// Bad input: one clear line, nothing changed.
	refusedOnce(t, "long description", run(t, env, "version", "create", "crm", strings.Repeat("x", 2001)), "at most 2000")
	refusedOnce(t, "unknown version", run(t, env, "version", "restore", "crm", "crm-v99"), "no version crm-v99")
	if r := run(t, env, "version", "create", "shop", "shop", "config"); r.code != 0 {
		t.Fatalf("shop version: %+v", r)
	}
	// The grammar already knows an ID's app (usage error); the service
	// checks again for callers that skip it.
	for _, args := range [][]string{{"version", "restore", "crm", "shop-v1"}, {"version", "diff", "crm", "shop-v1"}} {
		if r := run(t, env, args...); r.code != 2 || !strings.Contains(r.err, "shop-v1 belongs to app shop, not crm") {
			t.Fatalf("another app's version: %+v", r)
		}
	}
	r = run(t, env, "version", "list", "crm", "--json")
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list) != 3 || list[0].ID != "crm-v3" {
		t.Fatalf("refusals must make no version: %v %+v", err, r)
	}
	if r := run(t, env, "version", "diff", "crm", "crm-v2"); r.code != 0 || !strings.Contains(r.out, "no differences") {
		t.Fatalf("refusals must change nothing: %+v", r)
	}

	// A migration from a saved version.
	r = run(t, env, "migration", "create", "crm", "--version", "crm-v1", "--note", "from v1", "--json")
	var m struct {
		ID, Version string
		Summary     struct {
			Tables []struct {
				Table   string
				Rows    int64
				Carried bool
			}
		}
	}
	if r.code != 0 {
		t.Fatalf("migration create --version: %+v", r)
	}
	if err := json.Unmarshal([]byte(r.out), &m); err != nil || m.Version != "crm-v1" {
		t.Fatalf("migration from a version: %v %s", err, r.out)
	}
	refusedOnce(t, "migration from an unknown version", run(t, env, "migration", "create", "crm", "--version", "crm-v99"), "no version crm-v99")
}

func TestDriftFromTheTerminal(t *testing.T) {
	t.Parallel()
	env := versionEnv(t)
	r := run(t, env, "drift", "crm", "development", "production")
	if r.code != 0 {
		t.Fatalf("drift: %+v", r)
	}
	for _, want := range []string{"Drift between crm development and production", "contracts: table only in development", "column segment (text) only in development",
		"core: 2.2.15 in development", "only in development: CONTRACTS_SIGN_URL", "only in production: SENTRY_DSN, SUPPORT_EMAIL"} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("drift lacks %q:\n%s", want, r.out)
		}
	}
	for _, secret := range []string{"sign-sandbox.example.com", "e990a39935fac07a1d75"} {
		if strings.Contains(r.out, secret) {
			t.Fatalf("drift printed a variable's value:\n%s", r.out)
		}
	}
	if r := run(t, env, "drift", "crm", "production", "production"); r.code != 2 || !strings.Contains(r.err, "two different environments") {
		t.Fatalf("same environment is a usage error: %+v", r)
	}
	refusedOnce(t, "unknown environment", run(t, env, "drift", "crm", "development", "nowhere"), "nowhere")
}
