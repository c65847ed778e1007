package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// minimalApps writes an apps.yaml whose databases are never reached: the
// tests below stop before relbot connects to anything but Slack.
func minimalApps(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "apps.yaml")
	doc := "apps:\n  crm:\n    environments:\n      - {name: development, database: 'dbname=dev'}\n      - {name: production, database: 'dbname=prod'}\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// Every line serve writes is a log record of the one format, from the
// first: time=… level=… msg=….
var logRecord = regexp.MustCompile(`^time=\S+ level=(DEBUG|INFO|WARN|ERROR) msg=`)

func assertLogFormat(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if !logRecord.MatchString(line) {
			t.Errorf("a line not in the log's format: %q", line)
		}
	}
}

// serve names every missing setting in one record, in the log's format.
func TestServeReportsEverySettingAtOnce(t *testing.T) {
	r := run(t, map[string]string{"RELBOT_HTTP_ADDR": "8080"}, "serve")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Fatalf("want one record, exit 1: %+v", r)
	}
	for _, want := range []string{"RELBOT_DATABASE_URL: not set", "SLACK_BOT_TOKEN: not set", "SLACK_SIGNING_SECRET: not set", `RELBOT_HTTP_ADDR: must be host:port`} {
		if !strings.Contains(r.err, want) {
			t.Errorf("%q missing from %s", want, r.err)
		}
	}
	assertLogFormat(t, r.err)
}

// A terminal prints one line per problem.
func TestTerminalReportsEverySettingAtOnce(t *testing.T) {
	r := run(t, map[string]string{"RELBOT_HTTP_ADDR": "8080", "RELBOT_TIME_ZONE": "Mars/Olympus"}, "apps")
	want := "relbot: RELBOT_DATABASE_URL: not set (the bot's own PostgreSQL database, e.g. postgres://relbot@localhost/relbot)\n" +
		`relbot: RELBOT_HTTP_ADDR: must be host:port such as :8080 or 127.0.0.1:8080 (got "8080")` + "\n" +
		`relbot: RELBOT_TIME_ZONE: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Paris)` + "\n"
	if r.code != 1 || r.err != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.err, want)
	}
}

// A missing apps.yaml names RELBOT_APPS_FILE and the absolute path tried.
func TestMissingAppsFileNamesTheSetting(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	r := run(t, map[string]string{"RELBOT_DATABASE_URL": "postgres://127.0.0.1:1/x", "RELBOT_APPS_FILE": missing}, "apps")
	want := "relbot: apps.yaml: cannot read " + missing + " (RELBOT_APPS_FILE): no such file or directory\n"
	if r.code != 1 || r.err != want {
		t.Fatalf("exit %d, stderr %q, want %q", r.code, r.err, want)
	}
}

func serveEnv(t *testing.T, apiURL string) map[string]string {
	return map[string]string{
		"RELBOT_DATABASE_URL":  "postgres://relbot@127.0.0.1:1/unreachable", // nothing listens on port 1
		"RELBOT_APPS_FILE":     minimalApps(t),
		"RELBOT_ARTIFACT_DIR":  t.TempDir(),
		"RELBOT_SLACK_API_URL": apiURL,
		"SLACK_BOT_TOKEN":      "xoxb-refused-0123",
		"SLACK_SIGNING_SECRET": serveSecret,
		"RELBOT_HTTP_ADDR":     "127.0.0.1:0",
	}
}

// A token Slack refuses stops serve at start with a line naming the
// setting and Slack's reason, and never the token.
func TestServeRefusedSlackToken(t *testing.T) {
	refuse := func(c slacktest.Customize) {
		c.Handle("/auth.test", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
		})
	}
	s := newTestStandIn(t, refuse)
	r := run(t, serveEnv(t, s.GetAPIURL()), "serve")
	if r.code != 1 || !strings.Contains(r.err, `err="SLACK_BOT_TOKEN was refused by Slack (invalid_auth)"`) || strings.Contains(r.err, "xoxb-refused") {
		t.Fatalf("got %+v", r)
	}
	if s.count() != 0 {
		t.Errorf("posted with a refused token: %v", s.since(0))
	}
	assertLogFormat(t, r.err)
}

// A Slack that does not answer is said so, naming RELBOT_SLACK_API_URL.
func TestServeSlackUnreachable(t *testing.T) {
	r := run(t, serveEnv(t, "http://127.0.0.1:1/api/"), "serve")
	if r.code != 1 || !strings.Contains(r.err, "cannot check SLACK_BOT_TOKEN: Slack at http://127.0.0.1:1/api/ (RELBOT_SLACK_API_URL) did not answer") {
		t.Fatalf("got %+v", r)
	}
	assertLogFormat(t, r.err)
}

// An accepted token logs whose it is before serve goes on (here to a
// database that is not there).
func TestServeLogsSlackIdentity(t *testing.T) {
	s := newTestStandIn(t)
	r := run(t, serveEnv(t, s.GetAPIURL()), "serve")
	if r.code != 1 || !strings.Contains(r.err, `msg="slack token accepted" bot=relbot bot_user_id=U0RELBOT team=relbot-demo team_id=T0DEMO`) {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.err, `msg="relbot serve cannot start"`) {
		t.Errorf("no refusal after the token check: %s", r.err)
	}
	assertLogFormat(t, r.err)
}

// The stand-in answers auth.test as the demo's bot, and does not count it
// as something posted.
func TestStandInAnswersAuthTest(t *testing.T) {
	s := newTestStandIn(t)
	who, err := slack.New("xoxb-any", slack.OptionAPIURL(s.GetAPIURL())).AuthTestContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if who.User != standInBot || who.Team != standInTeam || who.UserID == "" || who.TeamID == "" {
		t.Errorf("auth.test = %+v", who)
	}
	if s.count() != 0 {
		t.Errorf("auth.test recorded as a post: %v", s.since(0))
	}
}

// The record saying where serve listens is written whatever the log level
// (the demo quiets the log to errors), in the log's format.
func TestServeSaysWhereItListensAtAnyLevel(t *testing.T) {
	dsn := botDatabase(t)
	s := newTestStandIn(t)
	env := serveEnv(t, s.GetAPIURL())
	env["RELBOT_DATABASE_URL"] = dsn
	env["RELBOT_LOG_LEVEL"] = "error"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := startServe(t, ctx, env)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("address %q", addr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr)
	}
	if strings.Contains(stderr.String(), "slack token accepted") {
		t.Errorf("info records shown at level error: %s", stderr)
	}
	assertLogFormat(t, stderr.String())
}
