package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/sampleapp"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/storage/postgres"
)

type result struct {
	code     int
	out, err string
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Run(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func TestHelpNeedsNoSettings(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.out, "backup create") || !strings.Contains(r.out, "deploy") {
		t.Fatalf("help: %+v", r)
	}
}

func TestUsageErrorExitsTwo(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "backup", "create", "crm")
	if r.code != 2 || !strings.Contains(r.err, "backup create APP ENV") {
		t.Fatalf("got %+v", r)
	}
	if r := run(t, nil, "--as"); r.code != 2 {
		t.Fatalf("--as without a user: %+v", r)
	}
	for args, want := range map[string][]string{
		"empty":        {"help", "--as", ""},
		"spaces":       {"help", "--as", "  "},
		"newline":      {"help", "--as", "U01AAA\nU02BBB"},
		"twice":        {"help", "--as", "alice", "--as", "bob"},
		"twice, mixed": {"help", "--as=alice", "--as", "bob"},
	} {
		if r := run(t, nil, want...); r.code != 2 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("--as %s: %+v", args, r)
		}
	}
	for _, flag := range []string{"--help", "-h"} {
		if r := run(t, nil, flag); r.code != 0 || !strings.Contains(r.out, "backup create") {
			t.Errorf("%s: %+v", flag, r)
		}
	}
}

func TestMissingSettingIsNamed(t *testing.T) {
	t.Parallel()
	r := run(t, map[string]string{}, "apps")
	if r.code != 1 || !strings.Contains(r.err, "RELBOT_DATABASE_URL") || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("got %+v", r)
	}
}

func TestMalformedAppsFileIsNamed(t *testing.T) {
	t.Parallel()
	dsn := botDatabase(t)
	apps := filepath.Join(t.TempDir(), "apps.yaml")
	os.WriteFile(apps, []byte("apps:\n  crm:\n    environmnts: []\n"), 0o600)
	r := run(t, map[string]string{"RELBOT_DATABASE_URL": dsn, "RELBOT_APPS_FILE": apps, "RELBOT_ARTIFACT_DIR": t.TempDir()}, "apps")
	if r.code != 1 || !strings.Contains(r.err, "environmnts") {
		t.Fatalf("got %+v", r)
	}
}

// botDatabase creates the bot's database for this test: a copy of this
// process's template, whose schema one relbot run migrated. Each test's
// first run would otherwise migrate a fresh one (storage/postgres's tests
// and TestDemo do that).
func botDatabase(t *testing.T) string {
	t.Helper()
	tmpl := testenv.Template(t, "bot", func(ctx context.Context, dsn string) error {
		s, err := postgres.Open(ctx, dsn, nil)
		if err != nil {
			return err
		}
		s.Close()
		return nil
	})
	_, dsn := testenv.NewDatabaseFrom(t, "bot", tmpl)
	return dsn
}

// sampleEnv creates the sample app and the settings a terminal user would
// have, and returns them as an environment.
func sampleEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	sample := sampleapp.Create(t, dir)
	botDSN := botDatabase(t)
	appsFile := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(appsFile, []byte(fixtures.AppsYAML(sample)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"RELBOT_DATABASE_URL": botDSN,
		"RELBOT_APPS_FILE":    appsFile,
		"RELBOT_ARTIFACT_DIR": filepath.Join(dir, "artifacts"),
		"RELBOT_BACKUP_KEY":   "a test passphrase for backups",
	}
	for _, kv := range fixtures.Env(sample) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func TestBackupCommandsFromTheTerminal(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)

	r := run(t, env, "backup", "create", "crm", "production", "--as", "alice", "--json")
	if r.code != 0 {
		t.Fatalf("backup create: %+v", r)
	}
	var created struct {
		ID        string `json:"id"`
		CreatedBy string `json:"created_by"`
		Manifest  struct {
			Tables    int  `json:"tables"`
			Encrypted bool `json:"encrypted"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(r.out), &created); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.out)
	}
	if created.ID != "crm-b1" || created.CreatedBy != "alice" || created.Manifest.Tables < 50 || !created.Manifest.Encrypted {
		t.Fatalf("created %+v", created)
	}

	if r := run(t, env, "backup", "list", "crm", "production"); r.code != 0 || !strings.Contains(r.out, "crm-b1") {
		t.Fatalf("backup list: %+v", r)
	}
	if r := run(t, env, "backup", "verify", "crm-b1"); r.code != 0 || !strings.Contains(r.out, "verified") {
		t.Fatalf("backup verify: %+v", r)
	}
	// Into recovery, a restore is a release that runs recovery's checks.
	// Production's data: only its approvers may restore it anywhere.
	if r := run(t, env, "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U03CCC"); r.code != 0 || !strings.Contains(r.out, "crm-r1 succeeded") ||
		!strings.Contains(r.out, "crm-b1 restored into an empty database") || !strings.Contains(r.out, "pass  pages exist") || !strings.Contains(r.out, "; analyzed ") {
		t.Fatalf("backup restore: %+v", r)
	}
	// Production needs approvals, as a release there does: the restore
	// waits for two, then runs with the release's steps and checks.
	if r := run(t, env, "backup", "restore", "crm-b1", "--as", "U03CCC"); r.code != 0 || !strings.Contains(r.out, "awaiting approval") {
		t.Fatalf("restore into production: %+v", r)
	}
	if r := run(t, env, "approve", "crm-r2", "--as", "U01AAA"); r.code != 0 {
		t.Fatalf("approve: %+v", r)
	}
	if r := run(t, env, "approve", "crm-r2", "--as", "U02BBB"); r.code != 0 || !strings.Contains(r.out, "succeeded") || !strings.Contains(r.out, "restore backup") {
		t.Fatalf("approved restore: %+v", r)
	}
	// Into development too (no approvals there), a restore leaves a record;
	// --no-analyze leaves it without statistics, and says so.
	if r := run(t, env, "backup", "restore", "crm-b1", "--into", "development", "--no-analyze", "--as", "U03CCC"); r.code != 0 || !strings.Contains(r.out, "crm-r3 succeeded") ||
		!strings.Contains(r.out, "not analyzed (--no-analyze)") {
		t.Fatalf("restore into development: %+v", r)
	}
	if r := run(t, env, "release", "list", "crm", "development"); r.code != 0 || !strings.Contains(r.out, "crm-r3") || !strings.Contains(r.out, "restore") {
		t.Fatalf("release list development: %+v", r)
	}
	if r := run(t, env, "backup", "verify", "crm-b99"); r.code != 1 || !strings.Contains(r.err, "crm-b99") {
		t.Fatalf("unknown backup: %+v", r)
	}
	if r := run(t, env, "backup", "create", "crm", "nowhere"); r.code != 1 || !strings.Contains(r.err, "nowhere") {
		t.Fatalf("unknown environment: %+v", r)
	}
	// A wrong backup key is refused with one clear line.
	env["RELBOT_BACKUP_KEY"] = "some other passphrase here"
	if r := run(t, env, "backup", "verify", "crm-b1"); r.code != 1 || !strings.Contains(r.err, "different key") {
		t.Fatalf("wrong key: %+v", r)
	}
}

// keep: 2 keeps the two newest backups and the newest verified one.
func TestBackupRetention(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	apps, err := os.ReadFile(env["RELBOT_APPS_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(apps), "keep: 14") {
		t.Fatal("sample apps.yaml changed: no keep: 14 to lower")
	}
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), "keep: 14", "keep: 2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if r := run(t, env, "backup", "create", "crm", "production"); r.code != 0 {
			t.Fatalf("backup %d: %+v", i+1, r)
		}
		if i == 0 {
			if r := run(t, env, "backup", "verify", "crm-b1"); r.code != 0 {
				t.Fatalf("verify: %+v", r)
			}
		}
	}
	r := run(t, env, "backup", "list", "crm", "production", "--json")
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.out), &list); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	if strings.Join(ids, " ") != "crm-b4 crm-b3 crm-b1" {
		t.Fatalf("kept %v, want crm-b4 crm-b3 crm-b1 (two newest and the verified one)", ids)
	}
	if _, err := os.Stat(filepath.Join(env["RELBOT_ARTIFACT_DIR"], "crm", "backups", "crm-b2.relbot")); !os.IsNotExist(err) {
		t.Fatalf("crm-b2's archive is still there: %v", err)
	}
}

// RELBOT_LOG_FORMAT=json writes one JSON object a line with slog's keys;
// text (the default) writes key=value lines.
func TestLogFormat(t *testing.T) {
	for format, check := range map[string]func(string) bool{
		"json": func(line string) bool {
			var v map[string]any
			return json.Unmarshal([]byte(line), &v) == nil && v["msg"] == "release requested" && v["app"] == "crm" && v["level"] == "INFO"
		},
		"": func(line string) bool {
			return strings.Contains(line, `msg="release requested" app=crm`)
		},
	} {
		var buf bytes.Buffer
		log := newLogger(&buf, func(k string) string {
			if k == config.EnvLogFormat {
				return format
			}
			return ""
		}, slog.LevelInfo)
		log.Info("release requested", "app", "crm")
		log.Debug("not shown")
		if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 1 || !check(lines[0]) {
			t.Errorf("format %q: %q", format, buf.String())
		}
	}
}
