package pgsnap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// NocoBase installed with DB_SCHEMA=nocobase, DB_TABLE_PREFIX=nb_ and
// DB_UNDERSCORED: the variables table is nocobase.nb_environment_variables.
// The layout is detected from the versions tables, as in a real install.
const layoutSQL = `CREATE SCHEMA nocobase;
	CREATE TABLE nocobase.nb_application_version (id bigserial PRIMARY KEY, value varchar(255));
	CREATE TABLE nocobase.nb_application_plugins (id bigserial PRIMARY KEY, name varchar(255) UNIQUE, version varchar(255));
	CREATE TABLE nocobase.nb_environment_variables (created_at timestamptz, updated_at timestamptz, name varchar(255) PRIMARY KEY, type varchar(255), value text);
	CREATE TABLE nocobase.nb_ui_schemas ("x-uid" varchar(255) PRIMARY KEY, name text);`

var keepSecrets = release.RestoreOptions{KeepTables: []string{"environmentVariables"}, KeepFiles: []string{"apps/*/aes_key.dat"}}

func variables(t *testing.T, dsn string) map[string]string {
	return testenv.Rows(t, dsn, `SELECT name, concat_ws(' ', type, value, created_at, updated_at) FROM nocobase.nb_environment_variables`)
}

// A restore told to keep the variables table and the key files leaves
// the target's own, whatever the app's table layout, in place and into an
// empty database (where there are none: the backup's are not loaded).
func TestRestoreKeepsTablesAndFiles(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2}
	src := newEnv(t, "keepsrc", layoutSQL+`
		INSERT INTO nocobase.nb_environment_variables VALUES ('2026-01-01', '2026-01-02', 'ERP_TOKEN', 'secret', 'cafe0001prod'), (now(), now(), 'SITE', 'default', 'prod.example.com');
		INSERT INTO nocobase.nb_ui_schemas VALUES ('u1', 'page from production');`,
		map[string]string{"apps/main/aes_key.dat": "production key 0123456789abcdef", "apps/sub/aes_key.dat": "production sub key", "uploads/a.txt": "from production"})
	path, _ := backup(t, e, src)
	a := openArchiveFile(t, path)

	t.Run("in place", func(t *testing.T) {
		dst := newEnv(t, "keepdst", layoutSQL+`
			INSERT INTO nocobase.nb_environment_variables VALUES ('2025-05-05 10:00:00.123456+00', NULL, 'ERP_TOKEN', 'secret', 'beef0002staging'), (now(), now(), 'ONLY_HERE', 'default', 'x''y');
			INSERT INTO nocobase.nb_ui_schemas VALUES ('s1', 'page of staging');`,
			map[string]string{"apps/main/aes_key.dat": "staging key", "uploads/b.txt": "from staging"})
		before := variables(t, dst.Database)
		rep, err := e.Restore(ctxT(t), a, "crm", dst, keepSecrets)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if got := variables(t, dst.Database); !equalStringMaps(got, before) {
			t.Fatalf("variables changed: before %q, after %q", before, got)
		}
		if got := testenv.Rows(t, dst.Database, `SELECT "x-uid", name FROM nocobase.nb_ui_schemas`); len(got) != 1 || got["u1"] != "page from production" {
			t.Fatalf("the other tables are not the backup's: %q", got)
		}
		files := storageFiles(t, dst.Storage)
		if files["apps/main/aes_key.dat"] != "staging key" || files["apps/sub/aes_key.dat"] != "" || files["uploads/a.txt"] != "from production" || files["uploads/b.txt"] != "" {
			t.Fatalf("storage: %q", files)
		}
		if !strings.Contains(strings.Join(rep.Warnings, "\n"), "nocobase.nb_environment_variables keeps its own 2 rows") {
			t.Fatalf("the report does not say what was kept: %q", rep.Warnings)
		}
	})
	t.Run("into an empty database", func(t *testing.T) {
		dst := newEnv(t, "keepnew", "", map[string]string{"apps/main/aes_key.dat": "development key"})
		rep, err := e.Restore(ctxT(t), a, "crm", dst, keepSecrets)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if got := variables(t, dst.Database); len(got) != 0 {
			t.Fatalf("the backup's variables were loaded: %q", got)
		}
		files := storageFiles(t, dst.Storage)
		if files["apps/main/aes_key.dat"] != "development key" || files["apps/sub/aes_key.dat"] != "" {
			t.Fatalf("key files: %q", files)
		}
		if !strings.Contains(strings.Join(rep.Warnings, "\n"), "the backup's 2 rows of nocobase.nb_environment_variables were not restored") {
			t.Fatalf("the report does not say what was left out: %q", rep.Warnings)
		}
		// Without a storage directory of its own, no key file at all.
		none := newEnv(t, "keepnone", "", nil)
		if err := os.RemoveAll(none.Storage); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Restore(ctxT(t), a, "crm", none, keepSecrets); err != nil {
			t.Fatalf("restore: %v", err)
		}
		if _, err := os.Stat(filepath.Join(none.Storage, "apps", "main", "aes_key.dat")); !os.IsNotExist(err) {
			t.Fatalf("production's key file was written: %v", err)
		}
	})
	t.Run("the variables table under every layout", func(t *testing.T) {
		for _, c := range fixtures.Layouts {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				l := c.Layout
				src := newEnv(t, "keep"+c.Name, fixtures.NocoBaseSQL(l, fixtures.Production), nil)
				dst := newEnv(t, "keepin"+c.Name, fixtures.NocoBaseSQL(l, fixtures.Staging), nil)
				// Another table of the same NocoBase name in another layout
				// is none of the app's: it is restored like any table.
				execSQL(t, src.Database, `CREATE TABLE public."xx_environmentVariables" (name text); INSERT INTO public."xx_environmentVariables" VALUES ('from production');`)
				waitIdle(t, src.Database)
				path, _ := backup(t, e, src)
				vars := `SELECT name, value FROM ` + l.Ident("environmentVariables")
				before := testenv.Rows(t, dst.Database, vars)
				rep, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, keepSecrets)
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				if got := testenv.Rows(t, dst.Database, vars); !equalStringMaps(got, before) || !strings.Contains(got["API_URL"], "staging") {
					t.Fatalf("variables: before %q, after %q", before, got)
				}
				if got := testenv.Rows(t, dst.Database, `SELECT name, '' FROM public."xx_environmentVariables"`); len(got) != 1 {
					t.Fatalf("a table outside the layout was kept: %q", got)
				}
				if !strings.Contains(strings.Join(rep.Warnings, "\n"), l.Key("environmentVariables")+" keeps its own 2 rows") {
					t.Fatalf("the report does not name %s: %q", l.Key("environmentVariables"), rep.Warnings)
				}
			})
		}
	})
	t.Run("a target whose layout cannot be told is refused", func(t *testing.T) {
		dst := newEnv(t, "keeptwo", layoutSQL+fixtures.NocoBaseSQL(fixtures.Layout{Prefix: "t_"}, fixtures.Staging), nil)
		before := testenv.Rows(t, dst.Database, `SELECT name, value FROM "t_environmentVariables"`)
		_, err := e.Restore(ctxT(t), a, "crm", dst, keepSecrets)
		if err == nil || !strings.Contains(err.Error(), "cannot tell which tables of keeptwo hold environmentVariables, so nothing was restored") || !strings.Contains(err.Error(), "2 layouts") {
			t.Fatalf("restore: %v", err)
		}
		if got := testenv.Rows(t, dst.Database, `SELECT name, value FROM "t_environmentVariables"`); !equalStringMaps(got, before) {
			t.Fatalf("the target changed: %q", got)
		}
		// Stated in apps.yaml, the layout decides.
		dst.Layout = &release.Layout{Schema: "nocobase", TablePrefix: "nb_", Underscored: true}
		if _, err := e.Restore(ctxT(t), a, "crm", dst, keepSecrets); err != nil {
			t.Fatalf("restore under the stated layout: %v", err)
		}
		if got := variables(t, dst.Database); len(got) != 0 {
			t.Fatalf("the backup's variables were loaded: %q", got)
		}
	})
	t.Run("a target with sub-apps in schemas of their own is refused", func(t *testing.T) {
		main, sub := fixtures.Layouts[4].Layout, fixtures.Layouts[4].Layout
		sub.Schema = "a1"
		dst := newEnv(t, "keepsub", fixtures.NocoBaseSQL(main, fixtures.Staging)+fixtures.NocoBaseSQL(sub, fixtures.Staging)+
			`CREATE TABLE nocobase.nb_applications (name varchar(255) PRIMARY KEY); INSERT INTO nocobase.nb_applications VALUES ('a1');`, nil)
		subVars := `SELECT name, value FROM ` + sub.Ident("environmentVariables")
		before := testenv.Rows(t, dst.Database, subVars)
		_, err := e.Restore(ctxT(t), a, "crm", dst, keepSecrets)
		if release.ErrorCode(err) != release.CodeIncompatible || !strings.Contains(err.Error(), "cannot keep the secrets of keepsub's sub-apps, so nothing was restored") || !strings.Contains(err.Error(), "USE_DB_SCHEMA_IN_SUBAPP: a1") {
			t.Fatalf("restore: %v", err)
		}
		if got := testenv.Rows(t, dst.Database, subVars); len(got) != 2 || !equalStringMaps(got, before) {
			t.Fatalf("the sub-app's variables changed: %q", got)
		}
	})
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
