package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// newBotOfOne is a bot with one worker and a queue of one, behind an HTTP
// server; both end with the test.
func newBotOfOne(t *testing.T, f *fakeSlack, svc *fakeService) (*Bot, *httptest.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := New(Config{SigningSecret: testSecret, API: f.api(), Dispatcher: &commands.Dispatcher{Services: services(svc), Location: time.UTC},
		Runner: svc, Dedupe: newMemDedupe(), Log: log, Workers: 1, Queue: 1})
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b, srv
}

// A click that arrives while the work queue is full gets 503 and is not
// remembered: Slack's retry of it, once there is room, is handled (once).
func TestClickRefusedWhileQueueFullIsTakenOnRetry(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	b, srv := newBotOfOne(t, f, svc)
	release := make(chan struct{})
	// One job holds the worker, one fills the queue.
	started := make(chan struct{}, 1) // the worker may take the job before the test waits
	hold := func(ctx context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
	}
	if !b.accept(context.Background(), "", "hold", hold) {
		t.Fatal("the first job was refused")
	}
	<-started
	if !b.accept(context.Background(), "", "hold", hold) {
		t.Fatal("the queued job was refused")
	}

	body := fixture(t, f, "block_actions_approve.json")
	body = bytes.ReplaceAll(body, []byte("U09MALLORY"), []byte("U01AAA"))
	click := func(retry ...string) int {
		return post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now(), retry...).StatusCode
	}
	if code := click(); code != 503 {
		t.Fatalf("click while the queue is full: status %d, want 503", code)
	}
	close(release)
	waitFor(t, "the queue to empty", func() bool { return b.queued.Load() == 0 })
	if code := click("X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_error"); code != 200 {
		t.Fatalf("retried click: status %d", code)
	}
	// A second retry, taken or not by then, is a duplicate.
	if code := click("X-Slack-Retry-Num", "2", "X-Slack-Retry-Reason", "http_timeout"); code != 200 {
		t.Fatalf("second retry: status %d", code)
	}
	waitFor(t, "the approval's answer", func() bool { return len(f.Calls("response/")) == 1 })
	time.Sleep(100 * time.Millisecond) // a second handling would have answered by now
	approvals := 0
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "Approve U01AAA crm-r5") {
			approvals++
		}
	}
	if approvals != 1 {
		t.Fatalf("the retried click was handled %d times, want once: %v", approvals, svc.Calls())
	}
	if n := len(f.Calls("response/")); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
}

func (s *fakeService) Lock(_ context.Context, actor, app, env, reason string) (*release.Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("Lock " + app + " " + env)
	return &release.Hold{App: app, Env: env, Reason: reason, By: actor, At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, nil
}

// Mrkdwn typed by a user (a lock reason that says <!channel>) is escaped in
// the notification text of the answer as well as in its blocks, so it
// pings nobody.
func TestMrkdwnInRepliesIsEscaped(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	reason := "<!channel> freeze & <https://evil.example|click>"
	if resp := post(t, srv, "/slack/commands", command(t, f, "lock crm production "+reason), testSecret, time.Now()); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "the answer", func() bool { return len(f.Calls("response/")) == 1 })
	body := f.Calls("response/")[0].Body
	var ans struct{ Text string }
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	plain := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(body)
	if strings.Contains(plain, "<!channel>") || strings.Contains(plain, "<https://") || strings.Contains(ans.Text, "<") ||
		!strings.Contains(plain, "&lt;!channel&gt; freeze &amp; &lt;https://evil.example|click&gt;") {
		t.Fatalf("answer not escaped: %s", plain)
	}

	// Every renderer's fallback, for text from users and databases.
	evil := "<!here> & <@U0BOSS>"
	r := awaitingRelease()
	r.State, r.Reason = release.StateFailed, evil
	r.RequestedBy = "U04ALICE"
	msgs := map[string]Message{
		"release": RenderRelease(r, release.ApprovalPolicy{}),
		"failure": RenderFailure(r, release.StepChecks),
		"reply":   RenderReply(commands.Reply{Text: "locked: " + evil}),
		"error":   RenderError(release.Errorf(release.CodeConflict, "locked by bob: %s", evil)),
		"refusal": refusal("Not approved", release.Errorf(release.CodeForbidden, "%s", evil)),
		"note":    note("You rejected *%s*.", evil),
		"log":     RenderLog(r, release.StepChecks, evil),
		"dm":      RenderDM(r, release.Event{Kind: release.EventFailed}),
	}
	for name, m := range msgs {
		if strings.Contains(m.Text, "<!here>") || strings.Contains(m.Text, "<@U0BOSS>") {
			t.Errorf("%s: fallback %q is not escaped", name, m.Text)
		}
		js, _ := json.Marshal(m.Blocks)
		if strings.Contains(string(js), `\u003c!here\u003e`) || strings.Contains(string(js), "<!here>") {
			t.Errorf("%s: blocks hold the raw mention: %s", name, js)
		}
	}
	if m := msgs["note"]; m.Text != "You rejected *&lt;!here&gt; &amp; &lt;@U0BOSS&gt;*." {
		t.Errorf("note fallback: %q", m.Text)
	}
}

// A reject reason typed into the Slack form with a NUL or an escape
// sequence is refused with the reason why; nothing reaches the domain.
func TestRejectFormRefusesControlCharacters(t *testing.T) {
	for name, reason := range map[string]string{"NUL": "not\x00 yet", "title escape": "\x1b]0;pwned\x07 no"} {
		t.Run(name, func(t *testing.T) {
			f := newFakeSlack(t)
			svc := newFakeService()
			_, srv := newTestBot(t, f, svc, nil)
			body := fixture(t, f, "view_submission_reject.json")
			js, _ := json.Marshal(reason)
			body = bytes.Replace(body, []byte(`"the contracts page is not translated yet"`), js, 1)
			if !bytes.Contains(body, js) {
				t.Fatal("the recorded form changed: no reason to replace")
			}
			if resp := post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now()); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			waitFor(t, "the refusal", func() bool { return len(f.Calls("chat.postEphemeral")) == 1 })
			if got := f.Calls("chat.postEphemeral")[0].Form.Get("blocks"); !strings.Contains(got, "Not rejected: the reject reason holds the control character") {
				t.Fatalf("refusal: %s", got)
			}
			if calls := svc.Calls(); len(calls) != 0 {
				t.Fatalf("the form reached the domain: %v", calls)
			}
		})
	}
}

// A retry of a click whose first copy was taken is acknowledged even while
// the queue is full, and handled once; a new click then is still refused,
// to be retried.
func TestRetryOfATakenClickIsAcknowledgedWhileQueueFull(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	b, srv := newBotOfOne(t, f, svc)
	release := make(chan struct{})
	// One job holds the worker; the click then takes the queue's one place.
	started := make(chan struct{}, 1)
	if !b.accept(context.Background(), "", "hold", func(ctx context.Context) { started <- struct{}{}; <-release }) {
		t.Fatal("the holding job was refused")
	}
	<-started
	approve := fixture(t, f, "block_actions_approve.json")
	click := func(body []byte, retry ...string) int {
		return post(t, srv, "/slack/interactions", interaction(body), testSecret, time.Now(), retry...).StatusCode
	}
	alice := bytes.ReplaceAll(approve, []byte("U09MALLORY"), []byte("U01AAA"))
	if code := click(alice); code != 200 {
		t.Fatalf("click with a place in the queue: status %d", code)
	}
	if n := b.queued.Load(); n != 1 {
		t.Fatalf("%d jobs queued, want the click", n)
	}
	if code := click(alice, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"); code != 200 {
		t.Fatalf("retry of the taken click while the queue is full: status %d, want 200", code)
	}
	bob := bytes.ReplaceAll(approve, []byte("U09MALLORY"), []byte("U02BBB"))
	if code := click(bob); code != 503 {
		t.Fatalf("a new click while the queue is full: status %d, want 503", code)
	}
	close(release)
	waitFor(t, "the click's answer", func() bool { return len(f.Calls("response/")) == 1 })
	waitFor(t, "the queue to empty", func() bool { return b.queued.Load() == 0 })
	time.Sleep(100 * time.Millisecond) // a second handling would have answered by now
	var approvals []string
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "Approve ") {
			approvals = append(approvals, c)
		}
	}
	if len(approvals) != 1 || !strings.HasPrefix(approvals[0], "Approve U01AAA") {
		t.Fatalf("approvals %v, want alice's once", approvals)
	}
	// Bob's click was refused, not recorded: its retry is new.
	if code := click(bob, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_error"); code != 200 {
		t.Fatalf("retry of the refused click: status %d", code)
	}
	waitFor(t, "bob's answer", func() bool { return len(f.Calls("response/")) == 2 })
}
