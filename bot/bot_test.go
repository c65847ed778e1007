package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Every /slack/* endpoint takes only requests signed with the signing
// secret, at most five minutes old; anything else gets 401 and changes
// nothing (no command runs, no dedupe key is spent, Slack is not called).
func TestSignatureIsChecked(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	b, srv := newTestBot(t, f, svc, nil)
	dedupe := b.cfg.Dedupe.(*memDedupe)
	bodies := map[string][]byte{
		"/slack/commands":     fixture(t, f, "slash_command.form"),
		"/slack/interactions": interaction(fixture(t, f, "block_actions_approve.json")),
		"/slack/events":       fixture(t, f, "url_verification.json"),
	}
	now := time.Now()
	for path, body := range bodies {
		cases := map[string]*http.Response{
			"unsigned":        post(t, srv, path, body, "", now),
			"wrong secret":    post(t, srv, path, body, "another secret", now),
			"stale":           post(t, srv, path, body, testSecret, now.Add(-6*time.Minute)),
			"future":          post(t, srv, path, body, testSecret, now.Add(6*time.Minute)),
			"garbage":         post(t, srv, path, body, "", now, "X-Slack-Request-Timestamp", "x", "X-Slack-Signature", "v0=zz"),
			"body changed":    postTampered(t, srv, path, body, now),
			"signature of v1": post(t, srv, path, body, "", now, "X-Slack-Request-Timestamp", "1", "X-Slack-Signature", "v1="+strings.Repeat("0", 64)),
		}
		for name, resp := range cases {
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s: status %d, want 401", path, name, resp.StatusCode)
			}
		}
	}
	// Slack's certificate probe of the command URL is unsigned: 200, and
	// nothing happens (checked below with the rest). A probe that also
	// names a command is not one.
	probe := []byte("ssl_check=1&token=xyz")
	if resp := post(t, srv, "/slack/commands", probe, "", now); resp.StatusCode != http.StatusOK {
		t.Errorf("ssl_check probe: status %d, want 200", resp.StatusCode)
	}
	for path, body := range map[string][]byte{"/slack/commands": []byte("ssl_check=1&command=%2Frelbot&text=deploy"), "/slack/interactions": probe} {
		if resp := post(t, srv, path, body, "", now); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s unsigned: status %d, want 401", path, body, resp.StatusCode)
		}
	}
	time.Sleep(100 * time.Millisecond) // any work wrongly queued would have run by now
	if calls := svc.Calls(); len(calls) != 0 {
		t.Fatalf("a badly signed request reached the service: %v", calls)
	}
	if calls := f.Calls(""); len(calls) != 0 {
		t.Fatalf("a badly signed request made Slack calls: %v", calls)
	}
	dedupe.mu.Lock()
	spent := dedupe.n
	dedupe.mu.Unlock()
	if spent != 0 {
		t.Fatalf("a badly signed request spent %d dedupe keys", spent)
	}

	// Signed, the same requests are taken.
	for path, body := range bodies {
		if resp := post(t, srv, path, body, testSecret, now.Add(-4*time.Minute)); resp.StatusCode != http.StatusOK {
			t.Errorf("%s signed: status %d", path, resp.StatusCode)
		}
	}
	waitFor(t, "the signed approve to reach the service", func() bool { return len(svc.Calls()) >= 2 })
}

// postTampered signs body but sends it with more appended.
func postTampered(t *testing.T, srv *httptest.Server, path string, body []byte, now time.Time) *http.Response {
	t.Helper()
	ts := now.Unix()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(append(append([]byte{}, body...), "&text=deploy"...)))
	req.Header.Set("X-Slack-Request-Timestamp", fmt.Sprint(ts))
	req.Header.Set("X-Slack-Signature", sign(testSecret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestURLVerification(t *testing.T) {
	f := newFakeSlack(t)
	_, srv := newTestBot(t, f, newFakeService(), nil)
	resp := post(t, srv, "/slack/events", fixture(t, nil, "url_verification.json"), testSecret, time.Now())
	var got struct{ Challenge string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("challenge %q", got.Challenge)
	}
}

func TestHealthAndReady(t *testing.T) {
	f := newFakeSlack(t)
	b, srv := newTestBot(t, f, newFakeService(), nil)
	var mu sync.Mutex
	var down error
	b.cfg.Ready = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return down }
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 {
		t.Fatal("not healthy and ready")
	}
	mu.Lock()
	down = errors.New("connection refused")
	mu.Unlock()
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("ready without its database")
	}
	if get("/slack/commands") != http.StatusMethodNotAllowed {
		t.Fatal("GET on a Slack endpoint")
	}
}

// A slash command is acknowledged at once with an empty 200; its answer
// comes through response_url.
func TestSlashCommandAnswersThroughResponseURL(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	start := time.Now()
	resp := post(t, srv, "/slack/commands", command(t, f, "approve crm-r5"), testSecret, time.Now())
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) != 0 || time.Since(start) > time.Second {
		t.Fatalf("ack: status %d, body %q, after %s", resp.StatusCode, body, time.Since(start))
	}
	waitFor(t, "the answer", func() bool { return len(f.Calls("response/")) == 1 })
	ans := f.Calls("response/")[0].Body
	if !strings.Contains(ans, "U01AAA approved crm-r5") || !strings.Contains(ans, `"response_type":"in_channel"`) || !strings.Contains(ans, `"replace_original":false`) {
		t.Fatalf("answer: %s", ans)
	}
	// The approval updated the release's message (posted: it had none).
	waitFor(t, "the release message", func() bool { return len(f.Calls("chat.postMessage")) == 1 })
	msg := f.Calls("chat.postMessage")[0]
	if msg.Form.Get("channel") != "C0123456789" || !strings.Contains(msg.Form.Get("blocks"), "1 of 2") {
		t.Fatalf("release message: %v", msg.Form)
	}
	waitFor(t, "SetMessage", func() bool {
		for _, c := range svc.Calls() {
			if strings.HasPrefix(c, "SetMessage crm-r5 C0123456789 1700000000.") {
				return true
			}
		}
		return false
	})
}

// An approve click by someone who may not approve gets an ephemeral reason
// and changes nothing.
func TestApproveClickByNonApproverIsRefused(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	resp := post(t, srv, "/slack/interactions", interaction(fixture(t, f, "block_actions_approve.json")), testSecret, time.Now())
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 1 })
	ans := f.Calls("response/")[0].Body
	for _, want := range []string{`"response_type":"ephemeral"`, `"replace_original":false`, "Not approved", "U09MALLORY may not approve releases to crm production"} {
		if !strings.Contains(ans, want) {
			t.Fatalf("refusal lacks %q: %s", want, ans)
		}
	}
	r, _ := svc.GetRelease(context.Background(), "crm-r5")
	if len(r.Approvals) != 0 || r.State != release.StateAwaitingApproval {
		t.Fatalf("release changed: %+v", r)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.Calls("chat.update")) + len(f.Calls("chat.postMessage")); n != 0 {
		t.Fatalf("the release message changed (%d calls)", n)
	}
}

// Approvals by button; the last one makes the release runnable and the
// server runs it. A retried delivery of the same click takes effect once.
func TestApproveClicksRunTheRelease(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	click := func(user, ts string, retry ...string) {
		body := fixture(t, f, "block_actions_approve.json")
		body = bytes.ReplaceAll(body, []byte("U09MALLORY"), []byte(user))
		body = bytes.ReplaceAll(body, []byte("1700000012.345678"), []byte(ts))
		if resp := post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now(), retry...); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	click("U01AAA", "1700000012.000001")
	click("U01AAA", "1700000012.000001", "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
	waitFor(t, "the first approval", func() bool { return len(f.Calls("response/")) == 1 })
	click("U02BBB", "1700000013.000001")
	select {
	case id := <-svc.runs:
		if id != "crm-r5" {
			t.Fatalf("ran %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the approved release was not run")
	}
	approvals := 0
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "Approve U01AAA") {
			approvals++
		}
	}
	if approvals != 1 {
		t.Fatalf("the retried click was handled %d times", approvals)
	}
	waitFor(t, "the second answer", func() bool { return len(f.Calls("response/")) == 2 })
	if ans := f.Calls("response/")[1].Body; !strings.Contains(ans, "You approved") || !strings.Contains(ans, "It is running.") {
		t.Fatalf("answer: %s", ans)
	}
}

// Switch traffic by button: a click on the offer of a recovered release
// requests the switch, as the clicking user; a click naming a release that
// is not one gets an ephemeral reason and requests nothing.
func TestSwitchClickRequestsTheSwitch(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	svc.rels["crm-r6"] = recoveredRelease()
	_, srv := newTestBot(t, f, svc, nil)
	click := func(id, ts string) {
		body := fixture(t, f, "block_actions_approve.json")
		body = bytes.ReplaceAll(body, []byte(`"relbot_approve"`), []byte(`"`+ActionSwitch+`"`))
		body = bytes.ReplaceAll(body, []byte(`"value": "crm-r5"`), []byte(`"value": "`+id+`"`))
		body = bytes.ReplaceAll(body, []byte("U09MALLORY"), []byte("U03CCC"))
		body = bytes.ReplaceAll(body, []byte("1700000012.345678"), []byte(ts))
		if resp := post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now()); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	click("crm-r5", "1700000020.000001")
	waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 1 })
	if ans := f.Calls("response/")[0].Body; !strings.Contains(ans, "No switch") || !strings.Contains(ans, `"response_type":"ephemeral"`) {
		t.Fatalf("refusal: %s", ans)
	}
	click("crm-r6", "1700000021.000001")
	waitFor(t, "the answer", func() bool { return len(f.Calls("response/")) == 2 })
	if ans := f.Calls("response/")[1].Body; !strings.Contains(ans, "Switch crm-r7 requested") || !strings.Contains(ans, "awaiting approval") {
		t.Fatalf("answer: %s", ans)
	}
	want := []string{"RequestSwitch U03CCC crm-r5", "RequestSwitch U03CCC crm-r6"}
	var got []string
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "RequestSwitch") {
			got = append(got, c)
		}
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if r, _ := svc.GetRelease(context.Background(), "crm-r7"); r.Kind != release.KindSwitch || r.SwitchTo != "crm-r6" || r.RequestedBy != "U03CCC" {
		t.Fatalf("switch release: %+v", r)
	}
}

// The two rollback buttons of a failed deploy's thread: the targeted one
// requests the default rollback, the full one asks for --full; the answer
// says which one was requested.
func TestRollbackClicksRequestTheirKind(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	failed := releaseIn("failed")
	failed.Snapshot = failed.ID
	svc.rels["crm-r5"] = failed
	_, srv := newTestBot(t, f, svc, nil)
	click := func(action, ts string) {
		body := fixture(t, f, "block_actions_approve.json")
		body = bytes.ReplaceAll(body, []byte(`"relbot_approve"`), []byte(`"`+action+`"`))
		body = bytes.ReplaceAll(body, []byte("U09MALLORY"), []byte("U03CCC"))
		body = bytes.ReplaceAll(body, []byte("1700000012.345678"), []byte(ts))
		if resp := post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now()); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	click(ActionRollback, "1700000030.000001")
	waitFor(t, "the first answer", func() bool { return len(f.Calls("response/")) == 1 })
	if ans := f.Calls("response/")[0].Body; !strings.Contains(ans, "targeted: puts back what crm-r5 changed, keeps rows written since") {
		t.Fatalf("targeted answer: %s", ans)
	}
	delete(svc.rels, "crm-r8")
	click(ActionRollbackFull, "1700000031.000001")
	waitFor(t, "the second answer", func() bool { return len(f.Calls("response/")) == 2 })
	if ans := f.Calls("response/")[1].Body; !strings.Contains(ans, "full: restores backup crm-b12 taken before crm-r5") {
		t.Fatalf("full answer: %s", ans)
	}
	var got []string
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "RequestRollback") {
			got = append(got, c)
		}
	}
	if want := "RequestRollback U03CCC crm-r5 full=false; RequestRollback U03CCC crm-r5 full=true"; strings.Join(got, "; ") != want {
		t.Fatalf("calls %v, want %s", got, want)
	}
}

// Reject opens a modal asking for the reason; its submission rejects.
func TestRejectAsksForAReason(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	post(t, srv, "/slack/interactions", interaction(fixture(t, f, "block_actions_reject.json")), testSecret, time.Now())
	waitFor(t, "views.open", func() bool { return len(f.Calls("views.open")) == 1 })
	var open struct {
		TriggerID string `json:"trigger_id"`
		View      struct {
			CallbackID      string `json:"callback_id"`
			PrivateMetadata string `json:"private_metadata"`
		} `json:"view"`
	}
	if err := json.Unmarshal([]byte(f.Calls("views.open")[0].Body), &open); err != nil {
		t.Fatal(err)
	}
	if open.TriggerID != "12466734323.1395872398.3e1c1ab94a4ef6ba5bf8f6e6c0cd8d5d" || open.View.CallbackID != CallbackReject ||
		open.View.PrivateMetadata != `{"release":"crm-r5","channel":"C0123456789","response_url":"`+f.responseURL()+`"}` {
		t.Fatalf("views.open: %+v", open)
	}
	if calls := svc.Calls(); len(calls) != 0 {
		t.Fatalf("the click alone changed something: %v", calls)
	}

	resp := post(t, srv, "/slack/interactions", interaction(fixture(t, f, "view_submission_reject.json")), testSecret, time.Now())
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("submission ack: %d %q", resp.StatusCode, b)
	}
	waitFor(t, "the rejection", func() bool { return len(svc.Calls()) > 0 })
	if c := svc.Calls()[0]; c != "Reject U02BBB crm-r5 the contracts page is not translated yet" {
		t.Fatalf("call: %q", c)
	}
	waitFor(t, "the confirmation", func() bool { return len(f.Calls("chat.postEphemeral")) == 1 })
	eph := f.Calls("chat.postEphemeral")[0].Form
	if eph.Get("user") != "U02BBB" || eph.Get("channel") != "C0123456789" || !strings.Contains(eph.Get("blocks"), "You rejected") {
		t.Fatalf("confirmation: %v", eph)
	}
	// The requester is told directly.
	waitFor(t, "the direct message", func() bool { return len(f.Calls("conversations.open")) == 1 })
}

// A form's answer goes back where the form was asked for, by the
// response_url of the click or command that opened it (it works in direct
// messages and private channels the bot is not in); a form without one
// (opened by an older relbot) answers ephemerally in its channel, and
// where the bot is not in that channel, by direct message.
func TestFormAnswersWhereItWasAsked(t *testing.T) {
	for _, c := range []struct {
		name         string
		withURL      bool
		notInChannel bool
		want         string
	}{
		{"by the response_url", true, false, "response/"},
		{"ephemeral in the channel", false, false, "chat.postEphemeral"},
		{"by DM where the bot is not in the channel", false, true, "chat.postMessage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSlack(t)
			f.notInChannel = c.notInChannel
			svc := newFakeService()
			_, srv := newTestBot(t, f, svc, nil)
			payload := string(fixture(t, f, "view_submission_reject.json"))
			if c.withURL {
				meta, _ := json.Marshal(metadata(rejectMeta{Release: "crm-r5", ReplyTo: ReplyTo{Channel: "C0123456789", ResponseURL: f.responseURL()}}))
				payload = strings.Replace(payload, `"{\"release\":\"crm-r5\",\"channel\":\"C0123456789\"}"`, string(meta), 1)
				if !strings.Contains(payload, "response_url") {
					t.Fatal("the fixture's metadata was not replaced")
				}
			}
			post(t, srv, "/slack/interactions", interaction([]byte(payload)), testSecret, time.Now())
			waitFor(t, "the confirmation", func() bool {
				for _, call := range f.Calls(c.want) {
					if strings.Contains(call.Body+call.Form.Get("blocks"), "You rejected") {
						return true
					}
				}
				return false
			})
			if c.want == "chat.postMessage" {
				for _, call := range f.Calls("chat.postMessage") {
					if strings.Contains(call.Form.Get("blocks"), "You rejected") && call.Form.Get("channel") != "D0DIRECT" {
						t.Fatalf("the answer went to %s, not the submitter's DM", call.Form.Get("channel"))
					}
				}
			}
		})
	}
}

// secret set from Slack opens a private form; the value reaches SetSecret
// and nothing else: no Slack message and no log line holds it.
func TestSecretSetThroughAModal(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	var logs syncBuffer
	_, srv := newTestBot(t, f, svc, &logs)
	post(t, srv, "/slack/commands", command(t, f, "secret set crm production SMTP_PASSWORD"), testSecret, time.Now())
	// The form opens at once (the trigger lasts 3 s) and is filled once
	// the permission is checked.
	waitFor(t, "views.update", func() bool { return len(f.Calls("views.update")) == 1 })
	if body := f.Calls("views.open")[0].Body; !strings.Contains(body, CallbackSecret) || !strings.Contains(body, "Checking that you may set SMTP_PASSWORD") {
		t.Fatalf("views.open: %s", body)
	}
	var update struct {
		ViewID string `json:"view_id"`
		Hash   string `json:"hash"`
		View   struct {
			PrivateMetadata string `json:"private_metadata"`
		} `json:"view"`
	}
	if err := json.Unmarshal([]byte(f.Calls("views.update")[0].Body), &update); err != nil || update.ViewID != "V0999" || update.Hash != "h1" ||
		!strings.Contains(update.View.PrivateMetadata, `"var":"SMTP_PASSWORD"`) {
		t.Fatalf("views.update: %s (%v)", f.Calls("views.update")[0].Body, err)
	}
	if len(svc.Calls()) != 0 {
		t.Fatalf("secret set changed something before the form: %v", svc.Calls())
	}
	post(t, srv, "/slack/interactions", interaction(fixture(t, f, "view_submission_secret.json")), testSecret, time.Now())
	waitFor(t, "SetSecret", func() bool { return len(svc.Calls()) == 1 })
	if got := svc.secrets["crm/production/SMTP_PASSWORD"]; got != "canary-s3cret-value-7Q" {
		t.Fatalf("stored %q", got)
	}
	waitFor(t, "the confirmation", func() bool { return len(f.Calls("chat.postMessage")) == 1 })
	if msg := f.Calls("chat.postMessage")[0].Form.Get("blocks"); !strings.Contains(msg, "Secret SMTP_PASSWORD of crm production set") {
		t.Fatalf("confirmation: %s", msg)
	}
	for _, c := range f.Calls("") {
		if strings.Contains(c.Body, "canary-s3cret") {
			t.Fatalf("the secret's value went to Slack in %s: %s", c.Method, c.Body)
		}
	}
	if strings.Contains(logs.String(), "canary-s3cret") {
		t.Fatalf("the secret's value is in the log:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// "/relbot version" and "/relbot --version" answer relbot's own version, as
// a terminal does, rather than asking for a subcommand; "version list" is
// still the configuration versions'.
func TestSlashVersionAnswersRelbotsVersion(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	for i, text := range []string{"version", "--version", "Version"} {
		form, _ := url.ParseQuery(string(command(t, f, text)))
		form.Set("trigger_id", fmt.Sprintf("trigger-version-%d", i)) // three deliveries, not one repeated
		resp := post(t, srv, "/slack/commands", []byte(form.Encode()), testSecret, time.Now())
		resp.Body.Close()
		waitFor(t, "the answer to "+text, func() bool { return len(f.Calls("response/")) == i+1 })
		ans := f.Calls("response/")[i].Body
		if !strings.Contains(ans, "relbot ") || !strings.Contains(ans, "revision: ") || strings.Contains(ans, "subcommand") || strings.Contains(ans, "warning") {
			t.Fatalf("/relbot %s: %s", text, ans)
		}
	}
}
