package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
)

// layoutDB is a NocoBase-shaped database in layout l, written by env.
func layoutDB(t *testing.T, l fixtures.Layout, env string) string {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "cmdnb")
	if err := fixtures.LoadNocoBase(context.Background(), dsn, l, env); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// From the terminal, on installations laid out with all three settings:
// status shows the layout, var list the app's own variables, var set
// writes the app's table, and a migration carries configuration and
// deploys; between two layouts, plan and deploy refuse.
func TestLayoutsFromTheTerminal(t *testing.T) {
	t.Parallel()
	all := fixtures.Layouts[4].Layout
	dir := t.TempDir()
	botDSN := botDatabase(t)
	dsn := map[string]string{
		"crm_dev": layoutDB(t, all, fixtures.Development), "crm_prod": layoutDB(t, all, fixtures.Production),
		"mixed_dev": layoutDB(t, fixtures.Layout{}, fixtures.Development), "mixed_prod": layoutDB(t, all, fixtures.Production),
		"colls_dev": layoutDB(t, fixtures.Layout{}, fixtures.Development), "colls_prod": layoutDB(t, fixtures.Layout{}, fixtures.Production),
	}
	// COLLECTION_MANAGER_SCHEMA=user_data in development only.
	if _, err := testenv.Connect(t, dsn["colls_dev"]).Exec(context.Background(), fixtures.UserCollectionsSQL(fixtures.Layout{}, "user_data", "orders")); err != nil {
		t.Fatal(err)
	}
	yaml := `apps:
  crm:
    builtin: nocobase
    environments:
      - {name: development, database: "${CRM_DEV}"}
      - {name: production, database: "${CRM_PROD}", approvals: {required: 0}}
  mixed:
    builtin: nocobase
    environments:
      - {name: development, database: "${MIXED_DEV}"}
      - {name: production, database: "${MIXED_PROD}", approvals: {required: 0}}
  colls:
    builtin: nocobase
    environments:
      - {name: development, database: "${COLLS_DEV}"}
      - {name: production, database: "${COLLS_PROD}", approvals: {required: 0}}
`
	appsFile := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(appsFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"RELBOT_DATABASE_URL": botDSN, "RELBOT_APPS_FILE": appsFile, "RELBOT_ARTIFACT_DIR": filepath.Join(dir, "artifacts"),
		"RELBOT_BACKUP_KEY": "a test passphrase for backups", "RELBOT_SECRET_KEY": strings.Repeat("ab", 32),
		"CRM_DEV": dsn["crm_dev"], "CRM_PROD": dsn["crm_prod"], "MIXED_DEV": dsn["mixed_dev"], "MIXED_PROD": dsn["mixed_prod"],
		"COLLS_DEV": dsn["colls_dev"], "COLLS_PROD": dsn["colls_prod"],
	}
	want := "schema nocobase, table prefix nb_, underscored names (detected)"
	must(t, run(t, env, "status", "crm"), "NocoBase layout", want)
	must(t, run(t, env, "apps"), want, "mixed", "development: schema public, no table prefix, camelCase names (detected)")

	list := must(t, run(t, env, "var", "list", "crm", "production"), "API_URL", "API_TOKEN", "********")
	if strings.Contains(list.out, strings.Repeat("ab", 32)) {
		t.Fatalf("var list shows a secret:\n%s", list.out)
	}
	must(t, run(t, env, "var", "set", "crm", "production", "NEW_URL=https://new.example", "--as", "alice"), "the app's own variables table")
	rows := testenv.Rows(t, dsn["crm_prod"], `SELECT name, type || ' ' || value FROM nocobase.nb_environment_variables`)
	if rows["NEW_URL"] != "default https://new.example" || rows["API_URL"] != "default https://api.production.example" {
		t.Fatalf("production's variables table: %v", rows)
	}

	m := createMigration(t, env)
	show := must(t, run(t, env, "migration", "show", m), "NocoBase layout", "schema nocobase, table prefix nb_, underscored names")
	if strings.Contains(show.out, "PRESET MATCHED") || strings.Contains(show.out, "NOTHING CARRIED") {
		t.Fatalf("a full NocoBase database warned:\n%s", show.out)
	}
	must(t, run(t, env, "migration", "plan", m, "production"), "nocobase.nb_ui_schemas")
	usersBefore := testenv.Rows(t, dsn["crm_prod"], `SELECT id::text, title FROM nocobase.nb_users`)
	must(t, run(t, env, "deploy", m, "production", "--as", "alice"), "succeeded")
	pages := testenv.Rows(t, dsn["crm_prod"], `SELECT "x-uid", name FROM nocobase.nb_ui_schemas`)
	business := testenv.Rows(t, dsn["crm_prod"], `SELECT id::text, title FROM nocobase.nb_users`)
	if len(pages) != 6 || !strings.Contains(pages["uid-6"], "development") || fmt.Sprint(business) != fmt.Sprint(usersBefore) || !strings.Contains(business["101"], "production") {
		t.Fatalf("after the deploy: pages %v, users %v", pages, business)
	}

	r := run(t, env, "migration", "create", "mixed", "--as", "alice", "--json")
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	refused(t, run(t, env, "migration", "plan", "mixed-m1", "production"), "DB_SCHEMA is public in development, nocobase in production")
	refused(t, run(t, env, "deploy", "mixed-m1", "production", "--as", "alice"), "DB_UNDERSCORED is false in development, true in production")
	// Refused when asked, not at its apply: no release was recorded.
	if l := run(t, env, "release", "list", "mixed"); l.code != 0 || strings.Contains(l.out, "mixed-r") {
		t.Fatalf("release list after the refusal: %+v", l)
	}
	if n := testenv.Rows(t, dsn["mixed_prod"], `SELECT 'n', count(*)::text FROM nocobase.nb_ui_schemas`); n["n"] != "5" {
		t.Fatalf("the refused deploy changed production: %v", n)
	}

	must(t, run(t, env, "status", "colls"), "schema public, no table prefix, camelCase names, collections in schema user_data (detected)")
	if r := run(t, env, "migration", "create", "colls", "--as", "alice", "--json"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	refused(t, run(t, env, "migration", "plan", "colls-m1", "production"), "COLLECTION_MANAGER_SCHEMA is user_data in development, unset (public) in production")
	refused(t, run(t, env, "deploy", "colls-m1", "production", "--as", "alice"), "COLLECTION_MANAGER_SCHEMA is user_data in development, unset (public) in production")
	if l := run(t, env, "release", "list", "colls"); l.code != 0 || strings.Contains(l.out, "colls-r") {
		t.Fatalf("release list after the refusal: %+v", l)
	}
}
