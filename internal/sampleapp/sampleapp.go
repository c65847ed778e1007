// Package sampleapp gives tests the sample app "crm" as apps.yaml
// describes it, with the environments they ask for in databases of their
// own. Each environment's SQL is loaded once per test process into a
// template (testenv.Template) and copied for every test, so a package that
// uses it runs its tests through testenv.Main.
package sampleapp

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

var envKeys = map[string]string{fixtures.Development: "DEV", fixtures.Staging: "STAGING", fixtures.Production: "PROD", fixtures.Recovery: "RECOVERY"}

// Database creates a database of this test holding env's sample data
// (fixtures.LoadEnv's result, copied from this process's template) and
// returns its DSN.
func Database(t testing.TB, env string) string {
	t.Helper()
	_, dsn := testenv.NewDatabaseFrom(t, env, template(t, env))
	return dsn
}

// template is this process's template of env's database.
func template(t testing.TB, env string) string {
	t.Helper()
	return testenv.Template(t, "crm_"+env, func(ctx context.Context, dsn string) error {
		return fixtures.LoadEnv(ctx, dsn, env)
	})
}

// Load loads envs of the sample app into new databases of this test (the
// others point nowhere) and returns the app.
func Load(t testing.TB, envs ...string) *release.App {
	t.Helper()
	vars := map[string]string{}
	for _, env := range fixtures.Envs {
		vars["CRM_"+envKeys[env]+"_DATABASE_URL"] = "postgres://unused/" + env
		vars["CRM_"+envKeys[env]+"_STORAGE"] = "/nonexistent/" + env
	}
	for _, env := range envs {
		vars["CRM_"+envKeys[env]+"_DATABASE_URL"] = Database(t, env)
	}
	apps, err := config.ParseApps([]byte(fixtures.AppsYAML(nil)), func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return apps[0]
}

// Create is fixtures.Create for a test: the chain's databases loaded,
// recovery's empty, each storage directory under root/<env>/storage
// written, and the databases dropped when the test ends. Only the
// databases' names differ from what fixtures.Create makes.
func Create(t testing.TB, root string) *fixtures.Sample {
	t.Helper()
	s := &fixtures.Sample{
		Databases:     map[string]string{},
		DatabaseNames: map[string]string{},
		Storage:       map[string]string{},
	}
	for _, env := range fixtures.Envs {
		var name, dsn string
		if env == fixtures.Recovery {
			name, dsn = testenv.NewDatabase(t, env)
		} else {
			name, dsn = testenv.NewDatabaseFrom(t, env, template(t, env))
		}
		s.Databases[env], s.DatabaseNames[env] = dsn, name
		dir, err := filepath.Abs(filepath.Join(root, env, "storage"))
		if err != nil {
			t.Fatal(err)
		}
		if err := fixtures.WriteStorage(dir, env); err != nil {
			t.Fatal(err)
		}
		s.Storage[env] = dir
	}
	return s
}
