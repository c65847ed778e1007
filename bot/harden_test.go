package bot

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
)

// A click that arrives while the work queue is full gets 503 and is not
// remembered: Slack's retry of it, once there is room, is handled (once).
func TestClickRefusedWhileQueueFullIsTakenOnRetry(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := New(Config{SigningSecret: testSecret, API: f.api(), Dispatcher: &commands.Dispatcher{Service: svc, Location: time.UTC},
		Runner: svc, Dedupe: newMemDedupe(), Log: log, Workers: 1, Queue: 1})
	srv := httptest.NewServer(b.Handler())
	release := make(chan struct{})
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	// One job holds the worker, one fills the queue.
	started := make(chan struct{})
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
