package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
)

// variablesOf is an environment's environmentVariables rows, in order.
func variablesOf(t *testing.T, dsn string) string {
	t.Helper()
	rows := testenv.Rows(t, dsn, `SELECT name, concat_ws(' ', type, value, "createdAt", "updatedAt") FROM "environmentVariables"`)
	var b strings.Builder
	for _, k := range sortedKeys(rows) {
		b.WriteString(k + "=" + rows[k] + "\n")
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// A production backup restored into staging or development leaves the
// target's variables and its key file as they were: production's secrets
// never arrive, neither as rows nor as a key that would decrypt them. Into
// recovery, which must be able to take production's place, they travel.
func TestRestoreKeepsTheTargetsSecrets(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	dsn := func(key string) string { return env["CRM_"+key+"_DATABASE_URL"] }
	key := func(key string) []byte {
		b, err := os.ReadFile(filepath.Join(env["CRM_"+key+"_STORAGE"], "apps", "main", "aes_key.dat"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	prodVars, prodKey := variablesOf(t, dsn("PROD")), key("PROD")
	if !strings.Contains(prodVars, "secret") {
		t.Fatalf("production has no secret variables to leak:\n%s", prodVars)
	}
	must(t, run(t, env, "backup", "create", "crm", "production", "--as", "U01AAA"), "crm-b1")
	for _, target := range []struct{ name, key string }{{"staging", "STAGING"}, {"development", "DEV"}} {
		t.Run(target.name, func(t *testing.T) {
			wantVars, wantKey := variablesOf(t, dsn(target.key)), key(target.key)
			r := run(t, env, "backup", "restore", "crm-b1", "--into", target.name, "--as", "U01AAA")
			for _, a := range []string{"U01AAA", "U02BBB"} {
				if strings.Contains(r.out, "awaiting approval") {
					r = run(t, env, "approve", "crm-r1", "--as", a)
				}
			}
			must(t, r, "succeeded")
			id := regexp.MustCompile(`Release (crm-r\d+) succeeded`).FindStringSubmatch(r.out)
			if id == nil {
				t.Fatalf("no release id in:\n%s", r.out)
			}
			// The step's log says what was kept and what was left out.
			must(t, run(t, env, "release", "show", id[1], "--json"), "environmentVariables keeps its own", "rows of environmentVariables were not restored")
			// The restore did happen: production's rows are there.
			if got := testenv.Rows(t, dsn(target.key), `SELECT 'n', count(*)::text FROM "uiSchemas"`)["n"]; got != testenv.Rows(t, dsn("PROD"), `SELECT 'n', count(*)::text FROM "uiSchemas"`)["n"] {
				t.Fatalf("%s does not hold production's rows after the restore", target.name)
			}
			if got := variablesOf(t, dsn(target.key)); got != wantVars {
				t.Fatalf("%s's variables changed:\nbefore:\n%s\nafter:\n%s", target.name, wantVars, got)
			}
			if got := key(target.key); !bytes.Equal(got, wantKey) || bytes.Equal(got, prodKey) {
				t.Fatalf("%s's key file changed (production's: %v)", target.name, bytes.Equal(got, prodKey))
			}
			// No production secret can be read there: none of its values,
			// none of its ciphertexts, and the key there does not open them.
			dump := fullDatabaseText(t, dsn(target.key))
			for name, v := range fixtures.Secrets(fixtures.Production) {
				if strings.Contains(dump, v) {
					t.Errorf("production's %s is in %s in clear", name, target.name)
				}
			}
			for _, row := range testenv.Rows(t, dsn(target.key), `SELECT name, value FROM "environmentVariables" WHERE type = 'secret'`) {
				if plain, err := fixtures.DecryptSecret(key(target.key), row); err == nil {
					for _, v := range fixtures.Secrets(fixtures.Production) {
						if plain == v {
							t.Errorf("a secret of %s decrypts to production's value", target.name)
						}
					}
				}
			}
			for _, row := range testenv.Rows(t, dsn("PROD"), `SELECT name, value FROM "environmentVariables" WHERE type = 'secret'`) {
				if strings.Contains(dump, row) {
					t.Errorf("production's ciphertext of a secret is in %s", target.name)
				}
				if _, err := fixtures.DecryptSecret(key(target.key), row); err == nil {
					t.Errorf("%s's key decrypts production's secrets", target.name)
				}
			}
		})
	}
	t.Run("recovery", func(t *testing.T) {
		must(t, run(t, env, "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U01AAA"), "succeeded")
		if got := variablesOf(t, dsn("RECOVERY")); got != prodVars {
			t.Fatalf("recovery's variables are not production's:\nwant:\n%s\ngot:\n%s", prodVars, got)
		}
		if !bytes.Equal(key("RECOVERY"), prodKey) {
			t.Fatal("recovery did not get production's key file")
		}
	})
}

// fullDatabaseText is every row of every table as text.
func fullDatabaseText(t *testing.T, dsn string) string {
	t.Helper()
	var b strings.Builder
	for table := range testenv.Rows(t, dsn, `SELECT format('%I.%I', schemaname, tablename), '' FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`) {
		for k, v := range testenv.Rows(t, dsn, `SELECT ctid::text, t::text FROM `+table+` t`) {
			b.WriteString(k + " " + v + "\n")
		}
	}
	return b.String()
}
