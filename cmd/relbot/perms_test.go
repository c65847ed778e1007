package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// groupLookups counts the usergroups calls the stand-in answered.
type groupLookups struct {
	mu    sync.Mutex
	calls map[string]int
}

func (g *groupLookups) count(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[method]
}

// releaseManagers registers usergroups.list and usergroups.users.list on
// the stand-in: @release-managers (S0RELMGRS) holds U06GRP.
func releaseManagers(g *groupLookups) slacktest.Binder {
	g.calls = map[string]int{}
	return func(c slacktest.Customize) {
		handle := func(method string, answer func(url.Values) any) {
			c.Handle("/"+method, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				g.mu.Lock()
				g.calls[method]++
				g.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(answer(form))
			})
		}
		handle("usergroups.list", func(url.Values) any {
			return map[string]any{"ok": true, "usergroups": []map[string]any{{"id": "S0RELMGRS", "handle": "release-managers"}}}
		})
		handle("usergroups.users.list", func(form url.Values) any {
			if form.Get("usergroup") != "S0RELMGRS" {
				return map[string]any{"ok": false, "error": "no_such_subteam"}
			}
			return map[string]any{"ok": true, "users": []string{"U06GRP"}}
		})
	}
}

// withRoles rewrites the test's apps.yaml: app lines go under the app
// (e.g. a roles block), staging lines into the staging environment.
func withRoles(t *testing.T, env map[string]string, app, staging string) {
	t.Helper()
	file := env["RELBOT_APPS_FILE"]
	doc := string(mustRead(t, file))
	out := strings.Replace(doc, "    channel: C0CRMRELEASE\n", "    channel: C0CRMRELEASE\n"+indentLines(app, "    "), 1)
	out = strings.Replace(out, "      - name: staging\n", "      - name: staging\n"+indentLines(staging, "        "), 1)
	if out == doc {
		t.Fatal("apps.yaml unchanged: the sample's shape moved")
	}
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

func indentLines(s, pad string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(s, "\n"), "\n") {
		b.WriteString(pad + l + "\n")
	}
	return b.String()
}

// worldState is everything a refused command must leave as it was: the
// bot's own rows (but Slack's delivery keys), every app database, the
// artifacts and the storage directories.
func worldState(t *testing.T, env map[string]string) string {
	t.Helper()
	var b strings.Builder
	bot := dbState(t, env["RELBOT_DATABASE_URL"])
	for _, l := range strings.Split(bot, "\n") {
		// Slack's delivery keys and the server's own leases come and go.
		if !strings.Contains(l, "relbot_dedupe") && !strings.Contains(l, "relbot_locks") {
			b.WriteString(l + "\n")
		}
	}
	for _, e := range []string{"DEV", "STAGING", "PROD", "RECOVERY"} {
		fmt.Fprintf(&b, "== %s\n%s", e, dbState(t, env["CRM_"+e+"_DATABASE_URL"]))
		b.WriteString(treeState(t, env["CRM_"+e+"_STORAGE"]))
	}
	b.WriteString(treeState(t, env["RELBOT_ARTIFACT_DIR"]))
	return b.String()
}

// treeState lists every file under dir with its size and SHA-256.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		lines = append(lines, fmt.Sprintf("%s %d %s", p, len(data), hex.EncodeToString(sum[:])))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// allRoles gives every role but act_as to who, as YAML under roles:.
func allRoles(who string) string {
	var b strings.Builder
	b.WriteString("roles:\n")
	for _, r := range []string{"deploy", "approve", "reject", "rollback", "restore", "switch", "lock", "variables", "secrets",
		"backup", "migration", "version", "version_restore"} {
		fmt.Fprintf(&b, "  %s: %s\n", r, who)
	}
	return b.String()
}

// From the terminal: with every role given to U08BOSS and the group
// @release-managers, a user outside them is refused each action with a
// reason naming the role, and nothing changes — rows, files, Slack posts.
// A member of the group is accepted; terminal_users binds the OS user.
func TestTerminalRefusesOutsideRoles(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	lookups := &groupLookups{}
	slack := newTestStandIn(t, releaseManagers(lookups))
	env["SLACK_BOT_TOKEN"] = "xoxb-perms"
	env["RELBOT_SLACK_API_URL"] = slack.GetAPIURL()
	withRoles(t, env, allRoles(`[U08BOSS, "@release-managers"]`), "")

	boss := func(args ...string) result { return run(t, env, append(args, "--as", "U08BOSS")...) }
	r := must(t, boss("migration", "create", "crm", "--json"))
	var m struct{ ID string }
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		t.Fatal(err)
	}
	must(t, boss("deploy", m.ID, "staging", "--allow-new-plugins"), "crm-r1 succeeded")
	must(t, boss("deploy", m.ID, "production", "--allow-new-plugins"), "crm-r2", "awaiting approval")
	must(t, boss("backup", "create", "crm", "production"), "crm-b2")
	must(t, boss("backup", "restore", "crm-b2", "--into", "recovery"), "crm-r3 succeeded", "Secrets", "secrets travel")
	must(t, boss("lock", "crm", "development", "frozen", "for", "the", "test"), "locked")
	must(t, boss("var", "set", "crm", "staging", "FOO=1"))
	must(t, runIn(t, env, "s3cret-perms\n", "secret", "set", "crm", "staging", "TOKEN", "--as", "U08BOSS"))
	must(t, boss("version", "create", "crm", "before", "the", "test"), "crm-v1")

	before := worldState(t, env)
	posts := slack.count()
	refusals := []struct {
		role string
		args []string
	}{
		{"deploy", []string{"deploy", m.ID, "staging"}},
		{"approve", []string{"approve", "crm-r2"}},
		{"reject", []string{"reject", "crm-r2", "not", "mine"}},
		{"reject", []string{"cancel", "crm-r2"}},
		{"rollback", []string{"rollback", "crm-r1"}},
		{"restore", []string{"backup", "restore", "crm-b2", "--into", "development"}},
		{"restore", []string{"backup", "restore", "crm-b2", "--into", "development", "--no-analyze"}},
		{"rollback", []string{"rollback", "crm-r1", "--full", "--no-analyze"}},
		{"switch", []string{"switch", "crm-r3"}},
		{"lock", []string{"lock", "crm", "staging", "mine"}},
		{"lock", []string{"unlock", "crm", "development"}},
		{"variables", []string{"var", "set", "crm", "staging", "BAR=2"}},
		{"variables", []string{"var", "unset", "crm", "staging", "FOO"}},
		{"secrets", []string{"secret", "set", "crm", "staging", "OTHER"}},
		{"secrets", []string{"secret", "unset", "crm", "staging", "TOKEN"}},
		{"backup", []string{"backup", "create", "crm", "staging"}},
		{"backup", []string{"backup", "verify", "crm-b2"}},
		{"migration", []string{"migration", "create", "crm"}},
		{"version", []string{"version", "create", "crm", "mine"}},
		{"version_restore", []string{"version", "restore", "crm", "crm-v1"}},
	}
	for _, tc := range refusals {
		r := runIn(t, env, "typed-for-nothing\n", append(tc.args, "--as", "U09MALLORY")...)
		want := "the " + tc.role + " role"
		if r.code != 1 || !strings.Contains(r.err, "U09MALLORY may not") || !strings.Contains(r.err, want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%s: want exit 1 and one line saying %q, got %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), want, r.code, r.out, r.err)
		}
		if strings.Contains(r.out, "Value of secret") {
			t.Errorf("%s: asked for a secret it would not store", strings.Join(tc.args, " "))
		}
	}
	if after := worldState(t, env); after != before {
		t.Fatalf("a refused command changed something:\n%s", firstDifference(before, after))
	}
	if n := slack.count(); n != posts {
		t.Fatalf("refused commands posted to Slack: %d posts, was %d", n, posts)
	}
	if lookups.count("usergroups.users.list") == 0 {
		t.Fatal("the group was never read: the refusals did not consider it")
	}

	// A member of @release-managers, read from Slack, is accepted.
	must(t, run(t, env, "var", "set", "crm", "staging", "BAR=2", "--as", "U06GRP"), "BAR")
	must(t, run(t, env, "lock", "crm", "staging", "group", "check", "--as", "U06GRP"), "locked")
	must(t, run(t, env, "unlock", "crm", "staging", "--as", "U06GRP"), "unlocked")

	// terminal_users: the OS user acts as their Slack ID, and may not use
	// --as another without act_as.
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	doc := string(mustRead(t, env["RELBOT_APPS_FILE"]))
	mapped := fmt.Sprintf("terminal_users: {%q: U08BOSS}\n", u.Username) + doc
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(mapped), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, run(t, env, "lock", "crm", "staging", "as", "myself"), "locked", "U08BOSS")
	refused(t, run(t, env, "unlock", "crm", "staging", "--as", "U06GRP"),
		u.Username+" is U08BOSS in terminal_users and may not act as U06GRP on crm staging: --as another identity needs the act_as role")
	withRoles(t, env, "", "roles: {act_as: [U08BOSS]}")
	must(t, run(t, env, "unlock", "crm", "staging", "--as", "U06GRP"), "unlocked")
	// act_as lends an identity, not more than it holds.
	refused(t, run(t, env, "lock", "crm", "staging", "x", "--as", "U09MALLORY"), "U09MALLORY may not lock crm staging: that needs the lock role")
}

// Through Slack, as relbot serve takes it: outside their roles, a user's
// slash commands, approve click, secret form and missing-variables form
// are refused naming the role, and change nothing (rows, files, channel
// posts); a member of an allowed Slack user group is accepted.
func TestSlackRefusesOutsideRoles(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	lookups := &groupLookups{}
	slack := newTestStandIn(t, releaseManagers(lookups))
	slackEnv(env, slack)
	withRoles(t, env, "", `roles: {variables: ["@release-managers"], secrets: ["@release-managers"], lock: ["@release-managers"]}`)
	// No scheduled backups: the server would catch up on a missed one
	// while the test compares the rows.
	doc := string(mustRead(t, env["RELBOT_APPS_FILE"]))
	noSchedule := strings.Replace(doc, `backup: {schedule: "0 2 * * *", keep: 14, verify: "0 4 * * 0"}`, "backup: {keep: 14}", 1)
	if noSchedule == doc {
		t.Fatal("sample apps.yaml changed: no production backup schedule to drop")
	}
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(noSchedule), 0o600); err != nil {
		t.Fatal(err)
	}
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "crm-r2", "awaiting approval")
	must(t, run(t, env, "backup", "create", "crm", "production", "--as", "alice"), "crm-b2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, _ := startServe(t, ctx, env)
	before := worldState(t, env)
	channelPosts := func() int {
		return len(slack.find("chat.postMessage", "C0CRMRELEASE")) + len(slack.find("chat.update", ""))
	}
	posts := channelPosts()
	n := 0
	slash := func(user, text string) {
		n++
		form := url.Values{"team_id": {"T0001"}, "channel_id": {"C0CRMRELEASE"}, "user_id": {user}, "command": {"/relbot"},
			"text": {text}, "response_url": {fmt.Sprintf("%sresponse/%d", slack.GetAPIURL(), n)}, "trigger_id": {fmt.Sprintf("trigger-%d", n)}}
		if code := postSlack(t, addr, "/slack/commands", []byte(form.Encode()), serveSecret); code != 200 {
			t.Fatalf("%s: %d", text, code)
		}
	}
	interact := func(payload any) {
		p, _ := json.Marshal(payload)
		if code := postSlack(t, addr, "/slack/interactions", []byte("payload="+url.QueryEscape(string(p))), serveSecret); code != 200 {
			t.Fatalf("interaction: %d", code)
		}
	}
	answered := func(what, want string) {
		t.Helper()
		eventually(t, what, 30*time.Second, func() bool {
			return len(slack.find("response", want))+len(slack.find("chat.postEphemeral", want)) > 0
		})
	}
	slash("U09MALLORY", "var set crm staging X=1")
	answered("var set refused", "U09MALLORY may not set variables of crm staging: that needs the variables role")
	slash("U09MALLORY", "lock crm production incident")
	answered("lock refused", "U09MALLORY may not lock crm production: that needs the lock role")
	slash("U09MALLORY", "backup restore crm-b2 --into development")
	answered("restore refused", "U09MALLORY may not restore the data of crm production (the backup was taken there): that needs the restore role")
	slash("U09MALLORY", "secret set crm staging TOKEN")
	answered("secret set refused", "U09MALLORY may not set secrets of crm staging: that needs the secrets role")
	// The form opens at once (Slack's trigger lasts 3 s) but never asks
	// a refused user for the value: it is filled with the refusal.
	eventually(t, "the refused form", 30*time.Second, func() bool { return len(slack.find("views.update", "relbot_secret")) > 0 })
	for _, v := range append(slack.find("views.open", "relbot_secret"), slack.find("views.update", "relbot_secret")...) {
		if strings.Contains(v.Body, `"type":"input"`) {
			t.Fatalf("the secret form asked a user who may not set it for the value: %s", v.Body)
		}
	}
	if v := slack.find("views.update", "may not set secrets"); len(v) != 1 {
		t.Fatalf("the form does not say why: %d updates", len(v))
	}
	// The approve button of the production release.
	click := string(mustRead(t, filepath.Join("..", "..", "fixtures", "slack", "block_actions_approve.json")))
	click = strings.NewReplacer("crm-r5", "crm-r2", "https://hooks.slack.com/actions/T0001/1234567890/AbCdEfGhIjKlMnOp", slack.GetAPIURL()+"response/click").Replace(click)
	var clickPayload map[string]any
	if err := json.Unmarshal([]byte(click), &clickPayload); err != nil {
		t.Fatal(err)
	}
	interact(clickPayload)
	answered("approve click refused", "U09MALLORY may not approve releases to crm production: that needs the approve role")
	// The secret form and the missing-variables form, submitted by a user
	// who may not set what they carry.
	meta, _ := json.Marshal(map[string]string{"app": "crm", "env": "staging", "var": "TOKEN", "channel": "C0CRMRELEASE"})
	interact(map[string]any{"type": "view_submission", "user": map[string]any{"id": "U09MALLORY"}, "team": map[string]any{"id": "T0001"},
		"view": map[string]any{"id": "V0SEC", "hash": "h1", "callback_id": "relbot_secret", "private_metadata": string(meta),
			"state": map[string]any{"values": map[string]any{"value": map[string]any{"value": map[string]any{"type": "plain_text_input", "value": "canary-perm-9a1"}}}}}})
	eventually(t, "secret form refused", 30*time.Second, func() bool {
		return len(slack.find("chat.postEphemeral", "U09MALLORY may not set secrets of crm staging: that needs the secrets role")) > 0
	})
	vmeta, _ := json.Marshal(map[string]any{"app": "crm", "env": "staging", "migration": m, "names": []string{"NEW_URL"}, "channel": "C0CRMRELEASE"})
	interact(map[string]any{"type": "view_submission", "user": map[string]any{"id": "U09MALLORY"}, "team": map[string]any{"id": "T0001"},
		"view": map[string]any{"id": "V0VARS", "hash": "h2", "callback_id": "relbot_variables", "private_metadata": string(vmeta),
			"state": map[string]any{"values": map[string]any{"var:NEW_URL": map[string]any{"value": map[string]any{"type": "plain_text_input", "value": "https://x.example"}}}}}})
	answered("variables form refused", "Not stored: NEW_URL")

	if after := worldState(t, env); after != before {
		t.Fatalf("a refused request changed something:\n%s", firstDifference(before, after))
	}
	if got := channelPosts(); got != posts {
		t.Fatalf("refused requests posted in the channel: %d posts, was %d", got, posts)
	}
	for _, p := range slack.since(0) {
		if strings.Contains(p.Body, "canary-perm-9a1") {
			t.Fatal("the refused secret's value was posted")
		}
	}

	// U06GRP is in @release-managers (usergroups.users.list says so).
	slash("U06GRP", "lock crm staging group check")
	answered("the group member's lock", "locked")
	slash("U06GRP", "var set crm staging GROUP_VAR=1")
	answered("the group member's variable", "GROUP_VAR")
	if lookups.count("usergroups.users.list") == 0 || lookups.count("usergroups.list") == 0 {
		t.Fatalf("the group was not read from Slack: %v", lookups.calls)
	}
	must(t, run(t, env, "var", "list", "crm", "staging"), "GROUP_VAR")
	if r := run(t, env, "var", "list", "crm", "staging"); regexp.MustCompile(`(?m)^(TOKEN|NEW_URL) `).MatchString(r.out) {
		t.Fatalf("a refused form stored a variable:\n%s", r.out)
	}
	cancel()
	<-done
}
