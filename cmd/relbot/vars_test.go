package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

var envKey = map[string]string{"development": "DEV", "staging": "STAGING", "production": "PROD", "recovery": "RECOVERY"}

// runIn is run with stdin.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Run(ctx, args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb}, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func randomKey(t *testing.T) (hexKey string, raw []byte) {
	t.Helper()
	raw = make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw), raw
}

// appVar reads one row of an environment's own environmentVariables table.
func appVar(t *testing.T, env map[string]string, envName, name string) (kind, value string, ok bool) {
	t.Helper()
	conn := testenv.Connect(t, env["CRM_"+envKey[envName]+"_DATABASE_URL"])
	err := conn.QueryRow(context.Background(), `SELECT "type", "value" FROM "environmentVariables" WHERE "name" = $1`, name).Scan(&kind, &value)
	if err == pgx.ErrNoRows {
		return "", "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return kind, value, true
}

// oneErrorLine checks a refusal: one line saying why (a usage error adds
// the usage).
func oneErrorLine(t *testing.T, what string, r result, code int, want string) {
	t.Helper()
	first, rest, _ := strings.Cut(strings.TrimSpace(r.err), "\n")
	if r.code != code || !strings.Contains(first, want) || (rest != "" && !strings.HasPrefix(strings.TrimSpace(rest), "usage:")) {
		t.Fatalf("%s: want exit %d and one line with %q, got %+v", what, code, want, r)
	}
}

func TestVariablesFromTheTerminal(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"], _ = randomKey(t)

	if r := run(t, env, "var", "set", "crm", "staging", "API_TIMEOUT=30", "--as", "alice"); r.code != 0 || !strings.Contains(r.out, "Variable API_TIMEOUT of crm staging set") {
		t.Fatalf("var set: %+v", r)
	}
	if kind, value, ok := appVar(t, env, "staging", "API_TIMEOUT"); !ok || kind != "default" || value != "30" {
		t.Fatalf("app table: %q %q %v", kind, value, ok)
	}
	r := run(t, env, "var", "list", "crm", "staging")
	if r.code != 0 {
		t.Fatalf("var list: %+v", r)
	}
	for _, want := range []string{"API_TIMEOUT", "30", "both", "by alice", "SMTP_PASSWORD", "********", "API_BASE_URL", "(set in the app)"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("var list lacks %q:\n%s", want, r.out)
		}
	}

	// secret set reads stdin; the value shows masked.
	if r := runIn(t, env, "s3cr3t-value\n", "secret", "set", "crm", "staging", "WEBHOOK_KEY"); r.code != 0 || strings.Contains(r.out+r.err, "s3cr3t-value") {
		t.Fatalf("secret set: %+v", r)
	}
	r = run(t, env, "var", "list", "crm", "staging", "--json")
	if r.code != 0 || !strings.Contains(r.out, `"name": "WEBHOOK_KEY"`) || !strings.Contains(r.out, `"value": "********"`) || strings.Contains(r.out, "s3cr3t") {
		t.Fatalf("var list --json: %+v", r)
	}
	// A value only the app's table has is not shown as "": relbot never
	// read it, and says where it lives.
	var listed []map[string]any
	if err := json.Unmarshal([]byte(r.out), &listed); err != nil {
		t.Fatal(err)
	}
	for _, v := range listed {
		_, hasValue := v["value"]
		switch v["name"] {
		case "API_BASE_URL":
			if hasValue || v["kept_in_app"] != true || v["where"] != "app" {
				t.Errorf("app-only variable: %v", v)
			}
		case "API_TIMEOUT":
			if v["value"] != "30" || v["kept_in_app"] != nil {
				t.Errorf("variable relbot keeps: %v", v)
			}
		}
	}
	_, value, _ := appVar(t, env, "staging", "WEBHOOK_KEY")
	if got, err := fixtures.DecryptSecret(fixtures.AESKey("staging"), value); err != nil || got != "s3cr3t-value" {
		t.Fatalf("NocoBase reads %q, %v", got, err)
	}

	// Bad input is refused with one line and changes nothing.
	oneErrorLine(t, "invalid name", run(t, env, "var", "set", "crm", "staging", "1BAD=x"), 2, "not a valid variable name")
	if r := run(t, env, "var", "set", "crm", "staging", "NOVALUE"); r.code != 2 || !strings.Contains(r.err, "NAME=VALUE") {
		t.Fatalf("missing '=': %+v", r)
	}
	oneErrorLine(t, "empty value", run(t, env, "var", "set", "crm", "staging", "EMPTY="), 1, "var set needs NAME=VALUE")
	oneErrorLine(t, "empty secret", runIn(t, env, "\n", "secret", "set", "crm", "staging", "EMPTY"), 1, "needs a value")
	oneErrorLine(t, "secret to plain", run(t, env, "var", "set", "crm", "staging", "SMTP_PASSWORD=oops"), 1, "is a secret of crm staging")
	oneErrorLine(t, "unknown var", run(t, env, "var", "unset", "crm", "staging", "NOPE"), 1, "has no variable NOPE")
	oneErrorLine(t, "wrong kind", run(t, env, "var", "unset", "crm", "staging", "WEBHOOK_KEY"), 1, "use secret unset")
	if _, _, ok := appVar(t, env, "staging", "EMPTY"); ok {
		t.Fatal("a refused variable reached the app's table")
	}

	// Without RELBOT_SECRET_KEY plain variables work; secrets say what is missing.
	noKey := map[string]string{}
	for k, v := range env {
		noKey[k] = v
	}
	delete(noKey, "RELBOT_SECRET_KEY")
	if r := run(t, noKey, "var", "list", "crm", "staging"); r.code != 0 {
		t.Fatalf("var list without key: %+v", r)
	}
	oneErrorLine(t, "no key", runIn(t, noKey, "x\n", "secret", "set", "crm", "staging", "OTHER"), 1, "RELBOT_SECRET_KEY is not set")

	// Unset removes it from relbot and from the app's table.
	if r := run(t, env, "var", "unset", "crm", "staging", "API_TIMEOUT"); r.code != 0 {
		t.Fatalf("var unset: %+v", r)
	}
	if r := run(t, env, "secret", "unset", "crm", "staging", "SMTP_PASSWORD"); r.code != 0 {
		t.Fatalf("secret unset of an app-only secret: %+v", r)
	}
	for _, name := range []string{"API_TIMEOUT", "SMTP_PASSWORD"} {
		if _, _, ok := appVar(t, env, "staging", name); ok {
			t.Errorf("%s is still in the app's table", name)
		}
	}
	if r := run(t, env, "var", "list", "crm", "staging"); strings.Contains(r.out, "API_TIMEOUT") || strings.Contains(r.out, "SMTP_PASSWORD") {
		t.Fatalf("after unset:\n%s", r.out)
	}
}

// A canary secret set in every environment appears in no output, no log
// line, nowhere in relbot's database in clear, and NocoBase reads it back.
func TestCanarySecretNeverLeaks(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"], _ = randomKey(t)
	env["RELBOT_LOG_LEVEL"] = "debug" // logs go to stderr, which is checked too
	canary := "canary-" + hex.EncodeToString([]byte(time.Now().Format("150405.000000")))

	var outputs []result
	check := func(r result, what string) result {
		t.Helper()
		outputs = append(outputs, r)
		if r.code != 0 {
			t.Fatalf("%s: %+v", what, r)
		}
		return r
	}
	sawLog := false
	for _, e := range []string{"development", "staging", "production", "recovery"} {
		// U01AAA approves production, so may set its secrets.
		r := check(runIn(t, env, canary+"\n", "secret", "set", "crm", e, "CANARY_TOKEN", "--as", "U01AAA"), "secret set "+e)
		sawLog = sawLog || strings.Contains(r.err, "variable set")
		r = check(run(t, env, "var", "list", "crm", e), "var list "+e)
		if !strings.Contains(r.out, "CANARY_TOKEN") || !strings.Contains(r.out, "********") {
			t.Fatalf("var list %s:\n%s", e, r.out)
		}
		check(run(t, env, "var", "list", "crm", e, "--json"), "var list --json "+e)
	}
	if !sawLog {
		t.Fatal("no log line captured: the leak check of logs would be empty")
	}
	check(run(t, env, "apps"), "apps")
	check(run(t, env, "backup", "create", "crm", "staging"), "backup create")
	check(run(t, env, "rekey-secrets"), "rekey-secrets")
	// Refusals too.
	outputs = append(outputs, run(t, env, "var", "set", "crm", "staging", "CANARY_TOKEN=x"), runIn(t, env, canary+"\n", "secret", "set", "crm", "nowhere", "X"))
	// Typed into a description or a note, a secret is refused.
	for _, args := range [][]string{{"version", "create", "crm", "rotate", canary, "--as", "alice"}, {"migration", "create", "crm", "--note", "uses " + canary, "--as", "alice"}} {
		r := run(t, env, args...)
		outputs = append(outputs, r)
		if r.code != 1 || !strings.Contains(r.err, "holds the value of a secret") {
			t.Fatalf("%s %s with a secret: %+v", args[0], args[1], r)
		}
	}

	hexCanary := hex.EncodeToString([]byte(canary))
	for _, r := range outputs {
		if strings.Contains(r.out+r.err, canary) || strings.Contains(r.out+r.err, hexCanary) {
			t.Fatalf("canary in output: %+v", r)
		}
	}

	// relbot's own database: no column of any relbot_ table holds it in clear.
	bot := testenv.Connect(t, env["RELBOT_DATABASE_URL"])
	ctx := context.Background()
	rows, err := bot.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'relbot\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 3 {
		t.Fatalf("relbot tables: %v %v", tables, err)
	}
	for _, table := range tables {
		var n int
		q := "SELECT count(*) FROM " + pgx.Identifier{table}.Sanitize() + " t WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
		if err := bot.QueryRow(ctx, q, canary, hexCanary).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows hold the canary in clear", table, n)
		}
	}
	var secrets int
	if err := bot.QueryRow(ctx, `SELECT count(*) FROM relbot_variables WHERE secret AND name = 'CANARY_TOKEN' AND ciphertext IS NOT NULL AND value IS NULL`).Scan(&secrets); err != nil || secrets != 4 {
		t.Fatalf("%d sealed canaries in relbot_variables, want 4 (%v)", secrets, err)
	}

	// NocoBase environments hold it in their own table, in the form NocoBase
	// decrypts with its key file; the empty recovery database has no table,
	// so there it is kept by relbot only.
	for _, e := range []string{"development", "staging", "production"} {
		kind, value, ok := appVar(t, env, e, "CANARY_TOKEN")
		if !ok || kind != "secret" || strings.Contains(value, canary) {
			t.Fatalf("%s: app row %q %q %v", e, kind, value, ok)
		}
		key, err := os.ReadFile(filepath.Join(env["CRM_"+envKey[e]+"_STORAGE"], "apps", "main", "aes_key.dat"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fixtures.DecryptSecret(key, value); err != nil || got != canary {
			t.Fatalf("%s: NocoBase decrypts %q, %v", e, got, err)
		}
	}
	if r := run(t, env, "var", "list", "crm", "recovery"); !strings.Contains(r.out, "relbot") {
		t.Fatalf("recovery:\n%s", r.out)
	}
}

func TestSecretKeyRotation(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	oldHex, oldKey := randomKey(t)
	newHex, newKey := randomKey(t)
	env["RELBOT_SECRET_KEY"] = oldHex
	if r := runIn(t, env, "first\n", "secret", "set", "crm", "development", "ONE"); r.code != 0 {
		t.Fatalf("secret set: %+v", r)
	}
	// The app's key held by relbot: NocoBase's rows are then sealed with it.
	appHex, appKey := randomKey(t)
	if r := runIn(t, env, appHex+"\n", "secret", "set", "crm", "staging", release.AppKeySecret); r.code != 0 {
		t.Fatalf("set app key: %+v", r)
	}
	oneErrorLine(t, "malformed app key", runIn(t, env, "abc\n", "secret", "set", "crm", "staging", release.AppKeySecret), 1, "64 hex characters")
	if r := runIn(t, env, "second\n", "secret", "set", "crm", "staging", "TWO"); r.code != 0 {
		t.Fatalf("secret set with relbot's app key: %+v", r)
	}
	_, value, _ := appVar(t, env, "staging", "TWO")
	if got, err := fixtures.DecryptSecret(appKey, value); err != nil || got != "second" {
		t.Fatalf("app key from relbot: %q, %v", got, err)
	}
	if _, _, ok := appVar(t, env, "staging", release.AppKeySecret); ok {
		t.Fatal("the app's key was written to the app's own table")
	}

	// A wrong key: one clear error, nothing decrypted or written.
	env["RELBOT_SECRET_KEY"] = newHex
	wantID := release.KeyID(oldKey)
	for _, r := range []result{
		runIn(t, env, "third\n", "secret", "set", "crm", "staging", "THREE"),
		run(t, env, "rekey-secrets"),
	} {
		oneErrorLine(t, "wrong key", r, 1, "secrets were encrypted with another RELBOT_SECRET_KEY (key id "+wantID+"); set the right key")
	}
	if _, _, ok := appVar(t, env, "staging", "THREE"); ok {
		t.Fatal("a secret was written with the wrong key")
	}

	// Rotation: the previous key opens, rekey-secrets seals with the new one.
	env["RELBOT_SECRET_KEY_PREVIOUS"] = oldHex
	if r := run(t, env, "rekey-secrets"); r.code != 0 || !strings.Contains(r.out, "Re-encrypted 3 of 3") {
		t.Fatalf("rekey-secrets: %+v", r)
	}
	if r := run(t, env, "rekey-secrets"); r.code != 0 || !strings.Contains(r.out, "already encrypted") {
		t.Fatalf("rekey-secrets again: %+v", r)
	}
	delete(env, "RELBOT_SECRET_KEY_PREVIOUS")
	bot := testenv.Connect(t, env["RELBOT_DATABASE_URL"])
	var ids []string
	rows, _ := bot.Query(context.Background(), `SELECT DISTINCT key_id FROM relbot_variables WHERE secret`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) != 1 || ids[0] != release.KeyID(newKey) {
		t.Fatalf("key ids after rekey: %v %v", ids, err)
	}
	// With only the new key, everything works, the app key included.
	if r := runIn(t, env, "third\n", "secret", "set", "crm", "staging", "THREE"); r.code != 0 {
		t.Fatalf("after rotation: %+v", r)
	}
	_, value, _ = appVar(t, env, "staging", "THREE")
	if got, err := fixtures.DecryptSecret(appKey, value); err != nil || got != "third" {
		t.Fatalf("app key after rotation: %q, %v", got, err)
	}
	sum := sha256.Sum256(newKey)
	if release.KeyID(newKey) != hex.EncodeToString(sum[:])[:8] {
		t.Fatal("KeyID is not the first 8 hex characters of sha256")
	}
}
