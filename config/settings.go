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
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Names of the environment variables relbot reads. Each is written here
// once; the settings table below says what each holds.
const (
	EnvDatabaseURL        = "RELBOT_DATABASE_URL"
	EnvRedisURL           = "RELBOT_REDIS_URL"
	EnvAppsFile           = "RELBOT_APPS_FILE"
	EnvArtifactDir        = "RELBOT_ARTIFACT_DIR"
	EnvSecretKey          = "RELBOT_SECRET_KEY"
	EnvSecretKeyPrevious  = "RELBOT_SECRET_KEY_PREVIOUS"
	EnvBackupKey          = "RELBOT_BACKUP_KEY"
	EnvPGBin              = "RELBOT_PG_BIN"
	EnvRestoreMemory      = "RELBOT_RESTORE_MAINTENANCE_WORK_MEM"
	EnvHTTPAddr           = "RELBOT_HTTP_ADDR"
	EnvSlackAPIURL        = "RELBOT_SLACK_API_URL"
	EnvTimeZone           = "RELBOT_TIME_ZONE"
	EnvLogLevel           = "RELBOT_LOG_LEVEL"
	EnvLogFormat          = "RELBOT_LOG_FORMAT"
	EnvPublicURL          = "RELBOT_PUBLIC_URL"
	EnvLinkTTL            = "RELBOT_LINK_TTL"
	EnvSlackBotToken      = "SLACK_BOT_TOKEN"
	EnvSlackSigningSecret = "SLACK_SIGNING_SECRET"
	EnvSlackAppToken      = "SLACK_APP_TOKEN"
)

// Settings are the bot's own settings, read through a lookup function
// (os.LookupEnv in the process; a map in tests). What each field holds is
// in the settings table.
type Settings struct {
	DatabaseURL string // the bot's own records
	RedisURL    string // optional: without it, one replica with in-process locks
	AppsFile    string
	ArtifactDir string
	SecretKey   string // 32 bytes as 64 hex characters or base64; see SecretKeyBytes
	// SecretKeyPrevious only decrypts, while relbot rekey-secrets moves
	// every secret to SecretKey.
	SecretKeyPrevious string
	BackupKey         string // optional passphrase (>= 16 characters) encrypting backup archives
	PGBin             string // directory of pg_dump; empty finds it on PATH
	// RestoreMemory is each restore worker's maintenance_work_mem ("512MB");
	// empty: derived from the server's settings (pgsnap.Engine).
	RestoreMemory string
	HTTPAddr      string
	SlackAPIURL   string
	TimeZone      string // freeze windows and --at, unless apps.yaml names a zone
	LogLevel      string // empty: the command's own default
	LogFormat     string // text or json
	PublicURL     string // where users reach relbot serve's pages; empty: no pages linked
	LinkTTL       string // how long a page's link opens it

	SlackBotToken      string
	SlackSigningSecret string
	SlackAppToken      string // Socket Mode
}

// setting is one variable: where it goes in Settings, its default, what
// it is for (shown when it is missing) and how to check it.
type setting struct {
	env    string
	field  func(*Settings) *string
	def    string
	about  string
	check  func(string) string // problem, or ""
	secret bool
}

var settings = []setting{
	{EnvDatabaseURL, func(s *Settings) *string { return &s.DatabaseURL }, "", "the bot's own PostgreSQL database, e.g. postgres://relbot@localhost/relbot", checkDSN, true},
	{EnvRedisURL, func(s *Settings) *string { return &s.RedisURL }, "", "Redis for locks shared by replicas, e.g. redis://localhost:6379/0", checkRedisURL, true},
	{EnvAppsFile, func(s *Settings) *string { return &s.AppsFile }, "apps.yaml", "the path of apps.yaml", nil, false},
	{EnvArtifactDir, func(s *Settings) *string { return &s.ArtifactDir }, "/var/lib/relbot/artifacts", "where backups and migration files live: a directory, or an S3-compatible bucket as s3://bucket/prefix?endpoint=…&use_path_style=true&region=… (credentials from AWS_*)", nil, false},
	{EnvSecretKey, func(s *Settings) *string { return &s.SecretKey }, "", "the key encrypting secrets at rest: 32 random bytes as 64 hex characters or base64 (openssl rand -hex 32)", checkSecretKey, true},
	{EnvSecretKeyPrevious, func(s *Settings) *string { return &s.SecretKeyPrevious }, "", "the previous RELBOT_SECRET_KEY, used only to decrypt during a key rotation (relbot rekey-secrets)", checkSecretKey, true},
	{EnvBackupKey, func(s *Settings) *string { return &s.BackupKey }, "", "a passphrase encrypting backup archives", checkBackupKey, true},
	{EnvPGBin, func(s *Settings) *string { return &s.PGBin }, "", "the directory holding pg_dump (PostgreSQL's client programs), when it is not on PATH", checkPGBin, false},
	{EnvRestoreMemory, func(s *Settings) *string { return &s.RestoreMemory }, "", "the maintenance_work_mem of each restore worker (its index builds), e.g. 512MB; by default a quarter of the server's effective_cache_size shared by the workers", checkMemory, false},
	{EnvHTTPAddr, func(s *Settings) *string { return &s.HTTPAddr }, ":8080", "the HTTP listen address, e.g. :8080", checkHTTPAddr, false},
	{EnvSlackAPIURL, func(s *Settings) *string { return &s.SlackAPIURL }, "https://slack.com/api/", "the Slack Web API base URL", checkSlackAPIURL, false},
	{EnvTimeZone, func(s *Settings) *string { return &s.TimeZone }, "UTC", "an IANA time zone such as Europe/Paris", checkTimeZone, false},
	{EnvLogLevel, func(s *Settings) *string { return &s.LogLevel }, "", "how much the log says: debug, info, warn or error", checkLogLevel, false},
	{EnvPublicURL, func(s *Settings) *string { return &s.PublicURL }, "", "the address users reach relbot serve at, such as https://relbot.example.com: release messages then link to signed, expiring release pages (RELBOT_SECRET_KEY signs them)", checkPublicURL, false},
	{EnvLinkTTL, func(s *Settings) *string { return &s.LinkTTL }, "24h", "how long a page's link opens it, such as 24h or 30m", checkLinkTTL, false},
	{EnvLogFormat, func(s *Settings) *string { return &s.LogFormat }, "text", "the log's format: text (key=value lines) or json (one object a line, for log collectors)", checkLogFormat, false},
	{EnvSlackBotToken, func(s *Settings) *string { return &s.SlackBotToken }, "", "the Slack bot token, xoxb-...", checkToken, true},
	{EnvSlackSigningSecret, func(s *Settings) *string { return &s.SlackSigningSecret }, "", "the Slack app's signing secret", checkToken, true},
	{EnvSlackAppToken, func(s *Settings) *string { return &s.SlackAppToken }, "", "the Slack app-level token for Socket Mode, xapp-...", checkAppToken, true},
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

// Problems are every setting that is missing or malformed, one line each,
// so that one run tells an operator all there is to fix.
type Problems []*Error

func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, e := range p {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first problem as an *Error.
func (p Problems) Unwrap() []error {
	out := make([]error, len(p))
	for i, e := range p {
		out[i] = e
	}
	return out
}

// problems returns nil, the one problem, or all of them.
func (p Problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return p
}

// LoadSettings reads the settings through lookup (nil: os.LookupEnv),
// requires the named ones (as Require does) and checks every one that is
// set. The error names every problem, one line each.
func LoadSettings(lookup func(string) (string, bool), require ...string) (*Settings, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var s Settings
	for _, st := range settings {
		v, _ := lookup(st.env)
		// A variable set to nothing (common in container specs) is unset.
		if v == "" {
			v = st.def
		}
		*st.field(&s) = v
	}
	// slack-go appends method names to the base URL directly.
	if s.SlackAPIURL != "" && !strings.HasSuffix(s.SlackAPIURL, "/") {
		s.SlackAPIURL += "/"
	}
	if err := s.Require(require...); err != nil {
		return nil, err
	}
	return &s, nil
}

// Require checks that the named settings are set, and that every setting
// that is set is well-formed, and reports every problem found. Names are
// the variable names, with or without the RELBOT_ prefix:
// Require("DATABASE_URL", "SLACK_BOT_TOKEN").
func (s *Settings) Require(what ...string) error {
	var out Problems
	missing := map[string]bool{}
	for _, name := range what {
		st, ok := lookupSetting(name)
		switch {
		case !ok:
			out = append(out, &Error{Field: name, Problem: "unknown setting"})
		case missing[st.env]:
		case strings.TrimSpace(*st.field(s)) == "":
			missing[st.env] = true
			out = append(out, &Error{Field: st.env, Problem: "not set (" + st.about + ")"})
		}
	}
	for _, st := range settings {
		v := *st.field(s)
		if v == "" || st.check == nil || missing[st.env] {
			continue
		}
		if problem := st.check(v); problem != "" {
			out = append(out, &Error{Field: st.env, Problem: problem})
		}
	}
	return out.err()
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
		fmt.Fprintf(&b, "%s=%s", st.env, shown(st, *st.field(&s)))
	}
	return b.String()
}

// GoString keeps secrets out of %#v too.
func (s Settings) GoString() string { return "config.Settings{" + s.String() + "}" }

// LogValue keeps secrets out of slog output.
func (s Settings) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(settings))
	for _, st := range settings {
		attrs = append(attrs, slog.String(st.env, shown(st, *st.field(&s))))
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

// memoryRE is a size as PostgreSQL's memory settings take it.
var memoryRE = regexp.MustCompile(`^[1-9][0-9]{0,9}(kB|MB|GB|TB)$`)

func checkMemory(s string) string {
	if !memoryRE.MatchString(s) {
		return fmt.Sprintf("must be a size as PostgreSQL writes it, a number and kB, MB, GB or TB, e.g. 512MB (got %q)", s)
	}
	return ""
}

func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Sprintf("must be an http or https address such as https://relbot.example.com (got %q)", s)
	}
	return ""
}

func checkLinkTTL(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute || d > 30*24*time.Hour {
		return fmt.Sprintf("must be a duration from 1m to 720h, such as 24h (got %q)", s)
	}
	return ""
}

// LinkDuration is RELBOT_LINK_TTL, checked.
func (s *Settings) LinkDuration() time.Duration {
	d, _ := time.ParseDuration(s.LinkTTL)
	return d
}

func checkLogFormat(s string) string {
	if s != "text" && s != "json" {
		return fmt.Sprintf("must be text or json (got %q)", s)
	}
	return ""
}

func checkLogLevel(s string) string {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return fmt.Sprintf("must be debug, info, warn or error (got %q)", s)
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
