package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Names of the environment variables relbot reads.
const (
	EnvDatabaseURL        = "RELBOT_DATABASE_URL"
	EnvRedisURL           = "RELBOT_REDIS_URL"
	EnvAppsFile           = "RELBOT_APPS_FILE"
	EnvArtifactDir        = "RELBOT_ARTIFACT_DIR"
	EnvSecretKey          = "RELBOT_SECRET_KEY"
	EnvSecretKeyPrevious  = "RELBOT_SECRET_KEY_PREVIOUS"
	EnvBackupKey          = "RELBOT_BACKUP_KEY"
	EnvPGBin              = "RELBOT_PG_BIN"
	EnvHTTPAddr           = "RELBOT_HTTP_ADDR"
	EnvSlackAPIURL        = "RELBOT_SLACK_API_URL"
	EnvTimeZone           = "RELBOT_TIME_ZONE"
	EnvSlackBotToken      = "SLACK_BOT_TOKEN"
	EnvSlackSigningSecret = "SLACK_SIGNING_SECRET"
	EnvSlackAppToken      = "SLACK_APP_TOKEN"
)

// Settings are the bot's own settings, read from the environment.
//
// Tags hold full variable names and Process runs without a prefix: with a
// prefix, envconfig falls back to the bare tag name when the prefixed
// variable is unset, so an unrelated DATABASE_URL in the environment would
// silently become the bot's own database.
type Settings struct {
	DatabaseURL string `envconfig:"RELBOT_DATABASE_URL"` // the bot's own records
	RedisURL    string `envconfig:"RELBOT_REDIS_URL"`    // optional: without it, one replica with in-process locks
	AppsFile    string `envconfig:"RELBOT_APPS_FILE" default:"apps.yaml"`
	ArtifactDir string `envconfig:"RELBOT_ARTIFACT_DIR" default:"/var/lib/relbot/artifacts"`
	SecretKey   string `envconfig:"RELBOT_SECRET_KEY"` // 32 bytes as 64 hex characters or base64; see SecretKeyBytes
	// SecretKeyPrevious only decrypts, while relbot rekey-secrets moves
	// every secret to SecretKey.
	SecretKeyPrevious string `envconfig:"RELBOT_SECRET_KEY_PREVIOUS"`
	BackupKey         string `envconfig:"RELBOT_BACKUP_KEY"` // optional passphrase (>= 16 characters) encrypting backup archives
	PGBin             string `envconfig:"RELBOT_PG_BIN"`     // directory of pg_dump; empty finds it on PATH
	HTTPAddr          string `envconfig:"RELBOT_HTTP_ADDR" default:":8080"`
	SlackAPIURL       string `envconfig:"RELBOT_SLACK_API_URL" default:"https://slack.com/api/"`
	TimeZone          string `envconfig:"RELBOT_TIME_ZONE" default:"UTC"` // freeze windows and --at, unless apps.yaml names a zone

	SlackBotToken      string `envconfig:"SLACK_BOT_TOKEN"`
	SlackSigningSecret string `envconfig:"SLACK_SIGNING_SECRET"`
	SlackAppToken      string `envconfig:"SLACK_APP_TOKEN"` // Socket Mode
}

// setting describes one variable: how to read it from Settings, what it is
// for (shown when it is missing) and how to check it.
type setting struct {
	env    string
	about  string
	get    func(*Settings) string
	check  func(string) string // problem, or ""
	secret bool
}

var settings = []setting{
	{EnvDatabaseURL, "the bot's own PostgreSQL database, e.g. postgres://relbot@localhost/relbot", func(s *Settings) string { return s.DatabaseURL }, checkDSN, true},
	{EnvRedisURL, "Redis for locks shared by replicas, e.g. redis://localhost:6379/0", func(s *Settings) string { return s.RedisURL }, checkRedisURL, true},
	{EnvAppsFile, "the path of apps.yaml", func(s *Settings) string { return s.AppsFile }, nil, false},
	{EnvArtifactDir, "the directory for backups and migration files", func(s *Settings) string { return s.ArtifactDir }, nil, false},
	{EnvSecretKey, "the key encrypting secrets at rest: 32 random bytes as 64 hex characters or base64 (openssl rand -hex 32)", func(s *Settings) string { return s.SecretKey }, checkSecretKey, true},
	{EnvSecretKeyPrevious, "the previous RELBOT_SECRET_KEY, used only to decrypt during a key rotation (relbot rekey-secrets)", func(s *Settings) string { return s.SecretKeyPrevious }, checkSecretKey, true},
	{EnvBackupKey, "a passphrase encrypting backup archives", func(s *Settings) string { return s.BackupKey }, checkBackupKey, true},
	{EnvPGBin, "the directory holding pg_dump (PostgreSQL's client programs), when it is not on PATH", func(s *Settings) string { return s.PGBin }, checkPGBin, false},
	{EnvHTTPAddr, "the HTTP listen address, e.g. :8080", func(s *Settings) string { return s.HTTPAddr }, checkHTTPAddr, false},
	{EnvSlackAPIURL, "the Slack Web API base URL", func(s *Settings) string { return s.SlackAPIURL }, checkSlackAPIURL, false},
	{EnvTimeZone, "an IANA time zone such as Europe/Paris", func(s *Settings) string { return s.TimeZone }, checkTimeZone, false},
	{EnvSlackBotToken, "the Slack bot token, xoxb-...", func(s *Settings) string { return s.SlackBotToken }, checkToken, true},
	{EnvSlackSigningSecret, "the Slack app's signing secret", func(s *Settings) string { return s.SlackSigningSecret }, checkToken, true},
	{EnvSlackAppToken, "the Slack app-level token for Socket Mode, xapp-...", func(s *Settings) string { return s.SlackAppToken }, checkAppToken, true},
}

func lookupSetting(name string) (setting, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	for _, st := range settings {
		if st.env == n || st.env == "RELBOT_"+n {
			return st, true
		}
	}
	return setting{}, false
}

// LoadSettings reads the settings from the environment and checks every one
// that is set; which ones must be set depends on the subcommand (Require).
func LoadSettings() (*Settings, error) {
	var s Settings
	if err := envconfig.Process("", &s); err != nil {
		// Only string fields: this does not happen in practice, and the
		// library's text may quote a value, so it is not passed on.
		return nil, &Error{Problem: "cannot read settings from the environment"}
	}
	// envconfig applies a default only to an unset variable; a variable set
	// to nothing (common in container specs) gets the default too.
	rv := reflect.ValueOf(&s).Elem()
	for i := range rv.NumField() {
		if def := rv.Type().Field(i).Tag.Get("default"); def != "" && rv.Field(i).String() == "" {
			rv.Field(i).SetString(def)
		}
	}
	// slack-go appends method names to the base URL directly.
	if s.SlackAPIURL != "" && !strings.HasSuffix(s.SlackAPIURL, "/") {
		s.SlackAPIURL += "/"
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Require checks that the named settings are set, and that every setting
// that is set is well-formed. Names are the variable names, with or without
// the RELBOT_ prefix: Require("DATABASE_URL", "SLACK_BOT_TOKEN").
func (s *Settings) Require(what ...string) error {
	for _, name := range what {
		st, ok := lookupSetting(name)
		if !ok {
			return &Error{Field: name, Problem: "unknown setting"}
		}
		if strings.TrimSpace(st.get(s)) == "" {
			return &Error{Field: st.env, Problem: "not set (" + st.about + ")"}
		}
	}
	return s.check()
}

func (s *Settings) check() error {
	for _, st := range settings {
		v := st.get(s)
		if v == "" || st.check == nil {
			continue
		}
		if problem := st.check(v); problem != "" {
			return &Error{Field: st.env, Problem: problem}
		}
	}
	return nil
}

// SecretKeyBytes decodes RELBOT_SECRET_KEY into its 32 bytes.
func (s *Settings) SecretKeyBytes() ([]byte, error) {
	if s.SecretKey == "" {
		return nil, &Error{Field: EnvSecretKey, Problem: "not set"}
	}
	key, problem := decodeKey(s.SecretKey)
	if problem != "" {
		return nil, &Error{Field: EnvSecretKey, Problem: problem}
	}
	return key, nil
}

// PreviousSecretKeyBytes decodes RELBOT_SECRET_KEY_PREVIOUS, or returns nil
// when it is not set.
func (s *Settings) PreviousSecretKeyBytes() ([]byte, error) {
	if s.SecretKeyPrevious == "" {
		return nil, nil
	}
	key, problem := decodeKey(s.SecretKeyPrevious)
	if problem != "" {
		return nil, &Error{Field: EnvSecretKeyPrevious, Problem: problem}
	}
	return key, nil
}

// Location loads RELBOT_TIME_ZONE (UTC when empty).
func (s *Settings) Location() (*time.Location, error) {
	if s.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, &Error{Field: EnvTimeZone, Problem: checkTimeZone(s.TimeZone)}
	}
	return loc, nil
}

// String shows the settings with secrets and URLs (which may hold a
// password) masked, so that printing them by mistake leaks nothing.
func (s Settings) String() string {
	var b strings.Builder
	for i, st := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", st.env, shown(st, st.get(&s)))
	}
	return b.String()
}

// LogValue keeps secrets out of slog output.
func (s Settings) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(settings))
	for _, st := range settings {
		attrs = append(attrs, slog.String(st.env, shown(st, st.get(&s))))
	}
	return slog.GroupValue(attrs...)
}

func shown(st setting, v string) string {
	switch {
	case v == "":
		return `""`
	case st.secret:
		return "[set]"
	}
	return strconv.Quote(v)
}

func decodeKey(s string) ([]byte, string) {
	s = strings.TrimSpace(s)
	var key []byte
	if b, err := hex.DecodeString(s); err == nil && len(s) == 64 {
		key = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				key = b
				break
			}
		}
	}
	if key == nil {
		if b, err := hex.DecodeString(s); err == nil {
			key = b // hex of the wrong length: report its byte count
		}
	}
	if key == nil {
		return nil, fmt.Sprintf("must be 32 bytes as 64 hex characters or base64 (got %d characters that are neither)", len(s))
	}
	if len(key) != 32 {
		return nil, fmt.Sprintf("must be 32 bytes as 64 hex characters or base64 (got %d bytes)", len(key))
	}
	return key, ""
}

func checkSecretKey(s string) string {
	_, problem := decodeKey(s)
	return problem
}

func checkPGBin(s string) string {
	st, err := os.Stat(filepath.Join(s, "pg_dump"))
	if err != nil || st.IsDir() {
		return "it must be a directory holding pg_dump"
	}
	return ""
}

func checkBackupKey(s string) string {
	if n := len([]rune(s)); n < 16 {
		return fmt.Sprintf("must be a passphrase of at least 16 characters (got %d)", n)
	}
	return ""
}

// checkRedisURL never quotes the URL or url.Parse's error: both may hold
// the password.
func checkRedisURL(s string) string {
	const want = "must be a redis://, rediss:// or unix:// URL"
	u, err := url.Parse(s)
	if err != nil {
		return want + " (it does not parse)"
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return want + " with a host"
		}
	case "unix":
		if u.Path == "" {
			return want + " (unix:// needs a socket path)"
		}
	default:
		return want
	}
	return ""
}

func checkSlackAPIURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an http:// or https:// URL such as https://slack.com/api/"
	}
	return ""
}

func checkHTTPAddr(s string) string {
	want := fmt.Sprintf("must be host:port such as :8080 or 127.0.0.1:8080 (got %q)", s)
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return want
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return want
	}
	return ""
}

func checkTimeZone(s string) string {
	if _, err := time.LoadLocation(s); err != nil {
		return fmt.Sprintf("unknown time zone %q (use an IANA name such as Europe/Paris)", s)
	}
	return ""
}

func checkToken(s string) string {
	if strings.ContainsAny(s, " \t\r\n") {
		return "must not contain spaces or line breaks"
	}
	return ""
}

func checkAppToken(s string) string {
	if p := checkToken(s); p != "" {
		return p
	}
	if !strings.HasPrefix(s, "xapp-") {
		return "must be a Slack app-level token starting with xapp-"
	}
	return ""
}
