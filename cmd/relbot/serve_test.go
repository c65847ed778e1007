package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/slack-go/slack/slacktest"

	"github.com/relbot/relbot/bot"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const serveSecret = "e2e-signing-secret-0123456789"

func postSlack(t *testing.T, addr, path string, body []byte, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		ts := fmt.Sprint(time.Now().Unix())
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte("v0:" + ts + ":"))
		mac.Write(body)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// newTestStandIn is the built-in Slack stand-in, stopped with the test.
func newTestStandIn(t *testing.T, extra ...slacktest.Binder) *standIn {
	t.Helper()
	s := newStandIn(extra...)
	t.Cleanup(s.Stop)
	return s
}

// slackEnv points env's relbot at the stand-in with the test's signing
// secret and an address of its own.
func slackEnv(env map[string]string, s *standIn) {
	env["RELBOT_SLACK_API_URL"] = s.GetAPIURL()
	env["SLACK_BOT_TOKEN"] = "xoxb-e2e"
	env["SLACK_SIGNING_SECRET"] = serveSecret
	env["RELBOT_HTTP_ADDR"] = "127.0.0.1:0"
}

// startServe runs relbot serve with env until ctx ends and returns the
// address it listens on, its exit code channel and its stderr.
func startServe(t *testing.T, ctx context.Context, env map[string]string) (string, chan int, *lockedBuffer) {
	t.Helper()
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve"}, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: stderr}, func(k string) string { return env[k] })
	}()
	var addr string
	eventually(t, "listening on", 30*time.Second, func() bool {
		s := stderr.String()
		if i := strings.Index(s, listeningOn+"="); i >= 0 {
			addr = strings.Fields(s[i+len(listeningOn+"="):])[0]
			return true
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, s)
		default:
		}
		return false
	})
	return addr, done, stderr
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeNeedsSlackSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RELBOT_DATABASE_URL": "postgres://localhost/x"}
	r := run(t, env, "serve")
	if r.code != 1 || !strings.Contains(r.err, "SLACK_BOT_TOKEN") {
		t.Fatalf("got %+v", r)
	}
	env["SLACK_BOT_TOKEN"] = "xoxb-1"
	r = run(t, env, "serve")
	if r.code != 1 || !strings.Contains(r.err, "SLACK_SIGNING_SECRET") {
		t.Fatalf("got %+v", r)
	}
}

// relbot serve end to end, as Slack drives it: a deploy to staging that
// the server runs, a production request approved by button (a refused
// self-approval on the way), the release message updated to its outcome,
// and a clean stop.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("cd", 32)
	// Where users would reach it: the links' host, which the browser
	// reaches through serve as its proxy.
	env["RELBOT_PUBLIC_URL"] = "http://relbot.test"
	m := createMigration(t, env)
	slack := newTestStandIn(t)
	slackEnv(env, slack)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, stderr := startServe(t, ctx, env)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/releases/crm-r1": 403} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}

	form, _ := url.ParseQuery(string(mustRead(t, filepath.Join("..", "..", "fixtures", "slack", "slash_command.form"))))
	form.Set("response_url", slack.GetAPIURL()+"response/1")
	slash := func(user, text string) []byte {
		form.Set("user_id", user)
		form.Set("text", text)
		form.Set("trigger_id", fmt.Sprintf("trigger-%d", time.Now().UnixNano()))
		return []byte(form.Encode())
	}
	if code := postSlack(t, addr, "/slack/commands", slash("U04ALICE", "deploy "+m+" staging --allow-new-plugins"), ""); code != 401 {
		t.Fatalf("unsigned command: %d", code)
	}
	if code := postSlack(t, addr, "/slack/commands", slash("U04ALICE", "deploy "+m+" staging --allow-new-plugins"), "wrong"); code != 401 {
		t.Fatalf("badly signed command: %d", code)
	}
	if code := postSlack(t, addr, "/slack/commands", slash("U04ALICE", "deploy "+m+" staging --allow-new-plugins"), serveSecret); code != 200 {
		t.Fatalf("signed command: %d", code)
	}
	eventually(t, "the staging release to succeed in the channel", 2*time.Minute, func() bool {
		return strings.Contains(slack.lastMessage("C0CRMRELEASE", "crm-r1"), "*Succeeded*")
	})
	if len(slack.find("response", "Release crm-r1 requested")) != 1 {
		t.Fatalf("no answer to the deploy command")
	}
	// Staging has no restart hook: its final message says so.
	if msg := slack.lastMessage("C0CRMRELEASE", "crm-r1"); !strings.Contains(msg, "restart app — skipped") || !strings.Contains(msg, "must be restarted to see the change") {
		t.Fatalf("the staging release's message does not say the app must be restarted:\n%s", msg)
	}

	postSlack(t, addr, "/slack/commands", slash("U04ALICE", "deploy "+m+" production --allow-new-plugins"), serveSecret)
	eventually(t, "the production request with its buttons", time.Minute, func() bool {
		msg := slack.lastMessage("C0CRMRELEASE", "crm-r2")
		return strings.Contains(msg, "relbot_approve") && strings.Contains(msg, "0 of 2")
	})
	click := func(user, ts string) {
		p := string(mustRead(t, filepath.Join("..", "..", "fixtures", "slack", "block_actions_approve.json")))
		p = strings.NewReplacer("U09MALLORY", user, "crm-r5", "crm-r2", "1700000012.345678", ts,
			"https://hooks.slack.com/actions/T0001/1234567890/AbCdEfGhIjKlMnOp", slack.GetAPIURL()+"response/click").Replace(p)
		if code := postSlack(t, addr, "/slack/interactions", []byte("payload="+url.QueryEscape(p)), serveSecret); code != 200 {
			t.Fatalf("click: %d", code)
		}
	}
	click("U04ALICE", "1.1")
	eventually(t, "the self-approval refusal", 30*time.Second, func() bool {
		return len(slack.find("response", "may not approve it too")) == 1
	})
	click("U01AAA", "1.2")
	eventually(t, "the first approval in the message", 30*time.Second, func() bool {
		return strings.Contains(slack.lastMessage("C0CRMRELEASE", "crm-r2"), "1 of 2")
	})
	click("U02BBB", "1.3")
	eventually(t, "the production release to succeed", 2*time.Minute, func() bool {
		return strings.Contains(slack.lastMessage("C0CRMRELEASE", "crm-r2"), "*Succeeded*")
	})
	eventually(t, "the requester's direct message", 30*time.Second, func() bool {
		return len(slack.find("chat.postMessage", "Your release crm-r2")) == 1
	})
	if msg := slack.lastMessage("C0CRMRELEASE", "crm-r2"); !strings.Contains(msg, ":white_check_mark: restart app") || strings.Contains(msg, "must be restarted") {
		t.Fatalf("the production release's message does not show its restart step:\n%s", msg)
	}
	if os.Getenv("RELBOT_TEST_SHOW_LOG") != "" {
		defer func() { t.Log(stderr.String()) }()
	}
	show := must(t, run(t, env, "release", "show", "crm-r2"), "succeeded", "U01AAA and U02BBB")
	_ = show
	scrapeAfterReleases(t, addr)
	openReleasePage(t, addr, slack.lastMessage("C0CRMRELEASE", "crm-r2"), "crm-r2")
	readReleasePage(t, addr, slack.lastMessage("C0CRMRELEASE", "crm-r2"), "crm-r2")
	downloadBackup(t, env, addr, "crm-r2")
	must(t, run(t, env, "release", "show", "crm-r2"), "Page:", "http://relbot.test/releases/crm-r2?exp=")

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An approval typed in a terminal updates the release's message in the
// channel, as a click would: every view of a release shows the same state.
func TestTerminalApprovalUpdatesSlack(t *testing.T) {
	t.Parallel()
	slackAPI := newTestStandIn(t)
	env := releaseEnv(t)
	env["SLACK_BOT_TOKEN"] = "xoxb-test-token"
	env["RELBOT_SLACK_API_URL"] = slackAPI.GetAPIURL()
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "awaiting approval")
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"), "awaiting approval")
	msg := slackAPI.lastMessage("C0CRMRELEASE", "crm-r2")
	if !strings.Contains(msg, "U01AAA") {
		t.Fatalf("the channel's message does not show the terminal's approval:\n%s", msg)
	}
	must(t, run(t, env, "approve", "crm-r2", "--as", "U02BBB"), "succeeded")
	if msg := slackAPI.lastMessage("C0CRMRELEASE", "crm-r2"); !strings.Contains(strings.ToLower(msg), "succeeded") {
		t.Fatalf("the channel's message does not show the outcome:\n%s", msg)
	}
}

// A deploy refused for missing variables offers the requester a form; its
// submission stores them (the one marked secret as a secret) and the
// deploy then goes through.
func TestSlackAsksForMissingVariables(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("cd", 32)
	m := createMigration(t, env)
	slack := newTestStandIn(t)
	slackEnv(env, slack)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, _ := startServe(t, ctx, env)
	form := url.Values{"team_id": {"T0001"}, "channel_id": {"C0CRMRELEASE"}, "user_id": {"U04ALICE"}, "command": {"/relbot"},
		"text": {"deploy " + m + " staging"}, "response_url": {slack.GetAPIURL() + "response/1"}, "trigger_id": {"trigger-vars"}}
	if code := postSlack(t, addr, "/slack/commands", []byte(form.Encode()), serveSecret); code != 200 {
		t.Fatalf("signed command: %d", code)
	}
	// The form opens at once while the command's trigger lasts; a check
	// slower than that (a loaded machine) offers it by a button instead,
	// whose click brings a fresh trigger. Either way the form must come.
	var view slackPost
	clicked := false
	eventually(t, "the variables form", 30*time.Second, func() bool {
		if calls := slack.find("views.open", "relbot_variables"); len(calls) > 0 {
			view = calls[0]
			return true
		}
		if buttons := slack.find("response", bot.ActionSupplyVariables); len(buttons) > 0 && !clicked {
			clicked = true
			clickSupplyVariables(t, addr, slack, buttons[0].Body)
		}
		return false
	})
	if !strings.Contains(view.Body, "CONTRACTS_SIGN_URL") {
		t.Fatalf("the form does not ask for CONTRACTS_SIGN_URL:\n%s", view.Body)
	}
	var opened struct {
		View struct {
			PrivateMetadata string `json:"private_metadata"`
		} `json:"view"`
	}
	if err := json.Unmarshal([]byte(view.Body), &opened); err != nil {
		t.Fatalf("%v: %s", err, view.Body)
	}
	modal := opened.View
	submission, _ := json.Marshal(map[string]any{
		"type": "view_submission", "user": map[string]any{"id": "U04ALICE"}, "team": map[string]any{"id": "T0001"},
		"view": map[string]any{"id": "V0VARS", "hash": "h1", "callback_id": "relbot_variables", "private_metadata": modal.PrivateMetadata,
			"state": map[string]any{"values": map[string]any{
				"var:CONTRACTS_SIGN_URL": map[string]any{"value": map[string]any{"type": "plain_text_input", "value": "https://sign.canary-7c1e.example"}},
				"secrets":                map[string]any{"secrets": map[string]any{"type": "checkboxes", "selected_options": []map[string]any{{"value": "CONTRACTS_SIGN_URL"}}}},
			}}},
	})
	if code := postSlack(t, addr, "/slack/interactions", []byte("payload="+url.QueryEscape(string(submission))), serveSecret); code != 200 {
		t.Fatalf("form submission: %d", code)
	}
	// The answer goes by the command's response_url, which the form kept.
	eventually(t, "the confirmation", 30*time.Second, func() bool { return len(slack.find("response", "set: CONTRACTS_SIGN_URL")) > 0 })
	cancel()
	<-done
	r := must(t, run(t, env, "var", "list", "crm", "staging"), "CONTRACTS_SIGN_URL", "secret")
	if strings.Contains(r.out, "canary-7c1e") {
		t.Fatal("the secret from the form is shown")
	}
	for _, c := range append(slack.find("chat.postEphemeral", ""), slack.find("response", "")...) {
		if strings.Contains(c.Body, "canary-7c1e") {
			t.Fatal("the secret from the form was posted")
		}
	}
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
}

// clickSupplyVariables presses the "Enter the variables" button of a
// refusal, as Slack sends the click.
func clickSupplyVariables(t *testing.T, addr string, slack *standIn, refusal string) {
	t.Helper()
	var sent struct {
		Blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(refusal), &sent); err != nil {
		t.Fatalf("%v: %s", err, refusal)
	}
	value := ""
	for _, b := range sent.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == bot.ActionSupplyVariables {
				value = e.Value
			}
		}
	}
	click, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U04ALICE"}, "team": map[string]any{"id": "T0001"},
		"channel": map[string]any{"id": "C0CRMRELEASE"}, "trigger_id": "trigger-vars-fresh", "response_url": slack.GetAPIURL() + "response/1",
		"actions": []map[string]any{{"action_id": bot.ActionSupplyVariables, "block_id": "variables_actions", "type": "button", "value": value, "action_ts": "1700000001.000001"}},
	})
	if code := postSlack(t, addr, "/slack/interactions", []byte("payload="+url.QueryEscape(string(click))), serveSecret); code != 200 {
		t.Fatalf("button click: %d", code)
	}
}

// scrapeAfterReleases reads /metrics after TestServeEndToEnd's two
// deploys: the releases and their steps, production's pre-release backup,
// the Slack calls and the acks are all there.
func scrapeAfterReleases(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus's text format: %v", err)
	}
	// value finds the sample of a family whose labels include want.
	value := func(name string, want map[string]string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
		return 0, false
	}
	prod := map[string]string{"app": "crm", "env": "production"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"relbot_releases_total", map[string]string{"app": "crm", "env": "staging", "kind": "deploy", "outcome": "succeeded"}, 1},
		{"relbot_releases_total", map[string]string{"app": "crm", "env": "production", "kind": "deploy", "outcome": "succeeded"}, 1},
		{"relbot_release_step_duration_seconds", map[string]string{"app": "crm", "env": "production", "step": release.StepBackup, "outcome": "done"}, 1},
		{"relbot_release_step_duration_seconds", map[string]string{"app": "crm", "env": "production", "step": release.StepApply, "outcome": "done"}, 1},
		{"relbot_last_backup_timestamp_seconds", prod, float64(time.Now().Add(-time.Hour).Unix())},
		{"relbot_last_backup_size_bytes", prod, 1},
		{"relbot_backups", map[string]string{"app": "crm", "env": "production", "kind": "pre-release"}, 1},
		{"relbot_slack_api_calls_total", map[string]string{"method": "chat.postMessage", "result": "ok"}, 1},
		{"relbot_slack_api_calls_total", map[string]string{"method": "chat.update", "result": "ok"}, 1},
		{"relbot_slack_ack_seconds", map[string]string{"kind": "command"}, 4},
		{"relbot_slack_ack_seconds", map[string]string{"kind": "interaction"}, 3},
	} {
		if v, ok := value(c.name, c.labels); !ok || v < c.min {
			t.Errorf("/metrics: %s%v = %v (found %v), want at least %v", c.name, c.labels, v, ok, c.min)
		}
	}
	for _, state := range []string{"running", "interrupted", "awaiting approval"} {
		if v, ok := value("relbot_releases_open", map[string]string{"app": "crm", "env": "production", "state": state}); !ok || v != 0 {
			t.Errorf("/metrics: open releases in state %s: %v (found %v), want 0", state, v, ok)
		}
	}
	if v, ok := value("relbot_last_release_failed", prod); !ok || v != 0 {
		t.Errorf("/metrics: production's last release failed = %v (found %v), want 0", v, ok)
	}
	if _, ok := value("relbot_work_queue_depth", nil); !ok {
		t.Error("/metrics has no work queue depth")
	}
}

// openReleasePage follows the release page link of a release's Slack
// message to serve (its host is RELBOT_PUBLIC_URL's; the signature covers
// the path) and checks what a person reads there.
func openReleasePage(t *testing.T, addr, blocks, id string) {
	t.Helper()
	link := pageLink(t, blocks, id)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + u.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the page: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"<h1>" + id + "</h1>", "succeeded", "U01AAA", "U02BBB", "pre-release backup", "apply migration", "validation checks",
		"pages exist", `class="pass">pass`, "Changes", "page added: “Contracts”"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page of %s lacks %q", id, want)
		}
	}
	resp, err = http.Get("http://" + addr + u.Path + "?exp=" + u.Query().Get("exp") + "&sig=00")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a wrong signature: %d", resp.StatusCode)
	}
}

// A production release that has waited half its approval window (24 h in
// the sample app) is brought to each approver who may still approve it by
// a DM from relbot serve, once: a restarted serve does not send it again.
func TestServeRemindsApprovers(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "U01AAA"), "awaiting approval")
	bot := testenv.Connect(t, env["RELBOT_DATABASE_URL"])
	if _, err := bot.Exec(context.Background(), `UPDATE relbot_releases SET requested_at = now() - interval '13 hours' WHERE id = 'crm-r2'`); err != nil {
		t.Fatal(err)
	}
	slack := newTestStandIn(t)
	slackEnv(env, slack)
	reminders := func() []string {
		var to []string
		for _, p := range slack.find("conversations.open", "") {
			form, _ := url.ParseQuery(p.Body)
			to = append(to, form.Get("users"))
		}
		return to
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		addr, done, _ := startServe(t, ctx, env)
		if round == 0 {
			eventually(t, "the reminders", 30*time.Second, func() bool { return len(reminders()) == 2 })
		} else {
			// The first pass runs at start; /readyz answers once serve is up.
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			time.Sleep(2 * time.Second)
			// /readyz names what this replica lacks: here its artifacts.
			if err := os.RemoveAll(env["RELBOT_ARTIFACT_DIR"]); err != nil {
				t.Fatal(err)
			}
			resp, err = http.Get("http://" + addr + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || string(body) != "the artifact store does not answer\n" {
				t.Errorf("/readyz without the artifact directory: %d %q", resp.StatusCode, body)
			}
		}
		cancel()
		<-done
	}
	got := reminders()
	slices.Sort(got)
	if !slices.Equal(got, []string{"U02BBB", "U03CCC"}) {
		t.Fatalf("reminded %v, want the two approvers other than the requester, once each", got)
	}
	dms := slack.find("chat.postMessage", "asks for your approval of *crm-r2*")
	if len(dms) != 2 || dms[0].Channel != "D0DIRECT" || !strings.Contains(dms[0].Blocks, "relbot_approve") || !strings.Contains(dms[0].Blocks, "expires in 11h") {
		t.Fatalf("reminders: %+v", dms)
	}
}
