package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// lookupIn reads settings from env alone: the tests do not depend on the
// developer's environment, and nothing sets the process's.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

const hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestLoadSettingsDefaults(t *testing.T) {
	s, err := LoadSettings(lookupIn(map[string]string{
		"DATABASE_URL": "postgres://someone-elses/db", // must not be picked up
		EnvHTTPAddr:    "",                            // set but empty: default applies
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.DatabaseURL != "" {
		t.Errorf("DatabaseURL = %q from the unprefixed DATABASE_URL", s.DatabaseURL)
	}
	if s.AppsFile != "apps.yaml" || s.HTTPAddr != ":8080" || s.SlackAPIURL != "https://slack.com/api/" || s.TimeZone != "UTC" || s.ArtifactDir == "" {
		t.Errorf("defaults = %+v", s)
	}
	if err := s.Require("DATABASE_URL"); err == nil || err.Error() != "RELBOT_DATABASE_URL: not set (the bot's own PostgreSQL database, e.g. postgres://relbot@localhost/relbot)" {
		t.Errorf("Require(DATABASE_URL) = %v", err)
	}
}

func TestLoadSettingsValues(t *testing.T) {
	s, err := LoadSettings(lookupIn(map[string]string{
		EnvDatabaseURL:        "postgres://relbot:pw@localhost/relbot",
		EnvRedisURL:           "redis://:pw@localhost:6379/0",
		EnvSecretKey:          hexKey,
		EnvBackupKey:          "correct horse battery staple",
		EnvHTTPAddr:           "127.0.0.1:0",
		EnvSlackAPIURL:        "http://127.0.0.1:9999/api",
		EnvTimeZone:           "Europe/Paris",
		EnvSlackBotToken:      "xoxb-1",
		EnvSlackSigningSecret: "abc",
		EnvSlackAppToken:      "xapp-1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Require("DATABASE_URL", EnvSlackBotToken, "SLACK_SIGNING_SECRET", "RELBOT_SECRET_KEY"); err != nil {
		t.Fatal(err)
	}
	if s.SlackAPIURL != "http://127.0.0.1:9999/api/" {
		t.Errorf("SlackAPIURL = %q, want a trailing slash", s.SlackAPIURL)
	}
	key, err := s.SecretKeyBytes()
	if err != nil || len(key) != 32 || key[31] != 0x1f {
		t.Errorf("SecretKeyBytes = %x, %v", key, err)
	}
	loc, err := s.Location()
	if err != nil || loc.String() != "Europe/Paris" {
		t.Errorf("Location = %v, %v", loc, err)
	}
	// Printing or logging the settings shows no secret.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("settings", "s", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", *s), fmt.Sprintf("%#v", *s), buf.String()} {
		for _, secret := range []string{"pw@", hexKey, "horse", "xoxb-1", "xapp-1"} {
			if strings.Contains(out, secret) {
				t.Errorf("%q shows a secret: %s", secret, out)
			}
		}
	}
}

func TestSecretKeyBase64(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		s, err := LoadSettings(lookupIn(map[string]string{EnvSecretKey: enc.EncodeToString(raw)}))
		if err != nil {
			t.Fatal(err)
		}
		if key, err := s.SecretKeyBytes(); err != nil || !bytes.Equal(key, raw) {
			t.Errorf("base64 key = %x, %v", key, err)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		require []string
		want    string // the whole error line
		secret  string // must not appear
	}{
		{"missing database", nil, []string{"DATABASE_URL"},
			"RELBOT_DATABASE_URL: not set (the bot's own PostgreSQL database, e.g. postgres://relbot@localhost/relbot)", ""},
		{"missing bot token", nil, []string{"SLACK_BOT_TOKEN"}, "SLACK_BOT_TOKEN: not set (the Slack bot token, xoxb-...)", ""},
		{"secret key short base64", map[string]string{EnvSecretKey: base64.StdEncoding.EncodeToString([]byte("0123456789"))}, nil,
			"RELBOT_SECRET_KEY: must be 32 bytes as 64 hex characters or base64 (got 10 bytes)", "MDEyMzQ1Njc4OQ"},
		{"secret key short hex", map[string]string{EnvSecretKey: "deadbeefdeadbeefdeadbeef"}, nil,
			"RELBOT_SECRET_KEY: must be 32 bytes as 64 hex characters or base64 (got 18 bytes)", "deadbeef"},
		{"secret key garbage", map[string]string{EnvSecretKey: "not a key at all!"}, nil,
			"RELBOT_SECRET_KEY: must be 32 bytes as 64 hex characters or base64 (got 17 characters that are neither)", "not a key"},
		{"database not a URL", map[string]string{EnvDatabaseURL: "mysql://root:hunter2@db/x"}, []string{"DATABASE_URL"},
			"RELBOT_DATABASE_URL: must be a postgres:// or postgresql:// URL or a key=value DSN (the URL scheme is not postgres)", "hunter2"},
		{"database unparsable", map[string]string{EnvDatabaseURL: "postgres://root:hunter2@db:port/x"}, nil,
			"RELBOT_DATABASE_URL: must be a postgres:// or postgresql:// URL or a key=value DSN (the URL does not parse)", "hunter2"},
		{"redis bad", map[string]string{EnvRedisURL: "http://:hunter2@localhost:6379"}, nil,
			"RELBOT_REDIS_URL: must be a redis://, rediss:// or unix:// URL", "hunter2"},
		{"slack api url bad", map[string]string{EnvSlackAPIURL: "slack.com/api"}, nil,
			"RELBOT_SLACK_API_URL: must be an http:// or https:// URL such as https://slack.com/api/", ""},
		{"http addr bad", map[string]string{EnvHTTPAddr: "8080"}, nil,
			`RELBOT_HTTP_ADDR: must be host:port such as :8080 or 127.0.0.1:8080 (got "8080")`, ""},
		{"http addr port", map[string]string{EnvHTTPAddr: ":99999"}, nil,
			`RELBOT_HTTP_ADDR: must be host:port such as :8080 or 127.0.0.1:8080 (got ":99999")`, ""},
		{"time zone bad", map[string]string{EnvTimeZone: "Mars/Olympus"}, nil,
			`RELBOT_TIME_ZONE: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Paris)`, ""},
		{"backup key short", map[string]string{EnvBackupKey: "tooshort"}, nil,
			"RELBOT_BACKUP_KEY: must be a passphrase of at least 16 characters (got 8)", "tooshort"},
		{"app token wrong kind", map[string]string{EnvSlackAppToken: "xoxb-123"}, nil,
			"SLACK_APP_TOKEN: must be a Slack app-level token starting with xapp-", "xoxb-123"},
		{"signing secret with newline", map[string]string{EnvSlackSigningSecret: "abc\n"}, nil,
			"SLACK_SIGNING_SECRET: must not contain spaces or line breaks", "abc"},
		{"unknown setting", nil, []string{"NOPE"}, "NOPE: unknown setting", ""},
		{"log level bad", map[string]string{EnvLogLevel: "loud"}, nil, `RELBOT_LOG_LEVEL: must be debug, info, warn or error (got "loud")`, ""},
		{"restore memory bad", map[string]string{EnvRestoreMemory: "512 MB"}, nil, `RELBOT_RESTORE_MAINTENANCE_WORK_MEM: must be a size as PostgreSQL writes it, a number and kB, MB, GB or TB, e.g. 512MB (got "512 MB")`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSettings(lookupIn(tc.env))
			if err == nil {
				err = s.Require(tc.require...)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is %T, want *Error", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\n        want %q", err, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error shows the value: %q", err)
			}
		})
	}
}

// Every missing and malformed setting is in the one error, a line each in
// the table's order after the missing ones, and none shows its value.
func TestSettingsProblemsAllAtOnce(t *testing.T) {
	s, err := LoadSettings(lookupIn(map[string]string{
		EnvDatabaseURL: "mysql://root:hunter2@db/x",
		EnvHTTPAddr:    "8080",
		EnvSecretKey:   "deadbeef",
	}), "DATABASE_URL", EnvSlackBotToken, EnvSlackSigningSecret, "SECRET_KEY")
	if s != nil || err == nil {
		t.Fatalf("settings %v, err %v", s, err)
	}
	want := strings.Join([]string{
		"SLACK_BOT_TOKEN: not set (the Slack bot token, xoxb-...)",
		"SLACK_SIGNING_SECRET: not set (the Slack app's signing secret)",
		"RELBOT_DATABASE_URL: must be a postgres:// or postgresql:// URL or a key=value DSN (the URL scheme is not postgres)",
		"RELBOT_SECRET_KEY: must be 32 bytes as 64 hex characters or base64 (got 6 bytes)",
		`RELBOT_HTTP_ADDR: must be host:port such as :8080 or 127.0.0.1:8080 (got "8080")`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != EnvSlackBotToken {
		t.Errorf("errors.As finds %+v, want the first problem", ce)
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 5 {
		t.Errorf("problems = %v", ps)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "deadbeef") {
		t.Errorf("a value is shown: %s", err)
	}
}

// The lookup is the only source: the process environment is not read.
func TestSettingsReadOnlyTheLookup(t *testing.T) {
	t.Setenv(EnvDatabaseURL, "postgres://from-the-process/db")
	s, err := LoadSettings(lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.DatabaseURL != "" {
		t.Errorf("DatabaseURL = %q from the process environment", s.DatabaseURL)
	}
}
