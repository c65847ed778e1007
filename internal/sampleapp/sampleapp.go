// Package sampleapp gives engine tests the sample app "crm" as apps.yaml
// describes it, with the environments they ask for loaded into databases
// of their own.
package sampleapp

import (
	"context"
	"testing"
	"time"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

var envKeys = map[string]string{fixtures.Development: "DEV", fixtures.Staging: "STAGING", fixtures.Production: "PROD", fixtures.Recovery: "RECOVERY"}

// Load loads envs of the sample app into new databases of this test (the
// others point nowhere) and returns the app.
func Load(t testing.TB, envs ...string) *release.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vars := map[string]string{}
	for _, env := range fixtures.Envs {
		vars["CRM_"+envKeys[env]+"_DATABASE_URL"] = "postgres://unused/" + env
		vars["CRM_"+envKeys[env]+"_STORAGE"] = "/nonexistent/" + env
	}
	for _, env := range envs {
		_, dsn := testenv.NewDatabase(t, env)
		if err := fixtures.LoadEnv(ctx, dsn, env); err != nil {
			t.Fatal(err)
		}
		vars["CRM_"+envKeys[env]+"_DATABASE_URL"] = dsn
	}
	apps, err := config.ParseApps([]byte(fixtures.AppsYAML(nil)), func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return apps[0]
}
