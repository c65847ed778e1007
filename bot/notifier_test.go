package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/relbot/relbot/release"
)

func newTestNotifier(t *testing.T, f *fakeSlack, svc *fakeService, interval time.Duration) *Notifier {
	t.Helper()
	n := NewNotifier(NotifierConfig{API: f.api(), Messages: svc, Policies: PolicyFunc(svc.App), Interval: interval})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

// A burst of events becomes one post and few updates, at most one per
// interval, and the last update shows the latest state.
func TestNotifierCoalescesUpdates(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	interval := 300 * time.Millisecond
	n := newTestNotifier(t, f, svc, interval)
	ctx := context.Background()
	r := releaseIn("running")
	r.MessageTS = ""
	start := time.Now()
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventRequested})
	waitFor(t, "the post", func() bool { return len(f.Calls("chat.postMessage")) == 1 })
	for i := 0; i < 20; i++ {
		r.Steps[4].Log = strings.Repeat("x", i)
		n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventStepStarted, Step: r.Steps[4].Name})
	}
	final := releaseIn("succeeded")
	n.ReleaseChanged(ctx, final, release.Event{Kind: release.EventSucceeded})
	waitFor(t, "the final state", func() bool {
		ups := f.Calls("chat.update")
		return len(ups) > 0 && strings.Contains(ups[len(ups)-1].Form.Get("blocks"), "*Succeeded*")
	})
	elapsed := time.Since(start)
	posts := 0
	for _, c := range f.Calls("chat.postMessage") {
		if c.Form.Get("channel") == "C0123456789" && c.Form.Get("thread_ts") == "" {
			posts++
		}
	}
	ups := f.Calls("chat.update")
	if posts != 1 {
		t.Fatalf("%d messages posted for one release", posts)
	}
	if max := int(elapsed/interval) + 1; len(ups) > max || len(ups) != 1 {
		t.Fatalf("%d updates in %s (interval %s): not coalesced", len(ups), elapsed, interval)
	}
	for _, u := range ups {
		if u.Form.Get("ts") != "1700000000.000001" || u.Form.Get("channel") != "C0123456789" {
			t.Fatalf("update of another message: %v", u.Form)
		}
	}
	// The message's place is recorded for other processes.
	waitFor(t, "SetMessage", func() bool {
		calls := svc.Calls()
		return len(calls) > 0 && calls[0] == "SetMessage crm-r5 C0123456789 1700000000.000001"
	})
	// The succeeded release's requester is told directly.
	waitFor(t, "the direct message", func() bool {
		for _, c := range f.Calls("chat.postMessage") {
			if c.Form.Get("channel") == "D0DIRECT" && strings.Contains(c.Form.Get("blocks"), "Your release crm-r5") {
				return true
			}
		}
		return false
	})
}

// A 429 from chat.update is waited out (Retry-After, by slack-go's retry)
// and the latest state is sent after.
func TestNotifierHonoursRetryAfter(t *testing.T) {
	f := newFakeSlack(t)
	f.limitUpdates = 1
	svc := newFakeService()
	n := newTestNotifier(t, f, svc, 10*time.Millisecond)
	ctx := context.Background()
	r := releaseIn("running")
	r.MessageTS = "1699999999.000001" // posted by another process earlier
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventStepStarted})
	waitFor(t, "the rate-limited update", func() bool { return len(f.Calls("chat.update")) >= 1 })
	n.ReleaseChanged(ctx, releaseIn("succeeded"), release.Event{Kind: release.EventSucceeded})
	waitFor(t, "the latest state", func() bool {
		u := f.Calls("chat.update")
		return len(u) >= 2 && strings.Contains(u[len(u)-1].Form.Get("blocks"), "*Succeeded*")
	})
	u := f.Calls("chat.update")
	if waited := u[1].At.Sub(u[0].At); waited < 900*time.Millisecond {
		t.Fatalf("retried after %s, Slack asked for 1s", waited)
	}
	for _, c := range u {
		if c.Form.Get("ts") != "1699999999.000001" {
			t.Fatalf("update of another message: %v", c.Form)
		}
	}
	if posts := f.Calls("chat.postMessage"); len(posts) > 0 && posts[0].Form.Get("channel") == "C0123456789" && posts[0].Form.Get("thread_ts") == "" {
		t.Fatal("a second message was posted for a release that has one")
	}
}

// One limiter paces every chat.update, whichever release's message it is:
// several releases changing at once do not add up past Slack's tier.
func TestNotifierSharesOneUpdateLimit(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	const every = 100 * time.Millisecond
	n := NewNotifier(NotifierConfig{API: f.api(), Messages: svc, Policies: PolicyFunc(svc.App), Interval: time.Millisecond,
		Updates: rate.NewLimiter(rate.Every(every), 1)})
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	ctx := context.Background()
	const releases = 4
	for i := range releases {
		r := releaseIn("running")
		r.ID = fmt.Sprintf("crm-r%d", 10+i)
		r.MessageTS = fmt.Sprintf("1699999999.00000%d", i)
		n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventStepStarted})
	}
	waitFor(t, "an update of each message", func() bool { return len(f.Calls("chat.update")) == releases })
	// Seen at the server, a request's own delay blurs each gap: the span
	// of them all is what the limit holds.
	u := f.Calls("chat.update")
	if span := u[len(u)-1].At.Sub(u[0].At); span < every*time.Duration(len(u)-1)*8/10 {
		t.Fatalf("%d updates of %d messages within %s; the limit is one per %s", len(u), releases, span, every)
	}
	if got := NewUpdateLimiter().Limit(); got != rate.Every(time.Minute/50) {
		t.Errorf("default chat.update pace %v a second, want Tier 3's 50 a minute", got)
	}
}

// A failure goes to the thread with the failed step's error and a Rollback
// button, and the requester is told directly.
func TestNotifierFailureThread(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	n := newTestNotifier(t, f, svc, 10*time.Millisecond)
	ctx := context.Background()
	r := releaseIn("failed")
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventStepFinished, Step: release.StepChecks})
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventFailed, Step: release.StepChecks, Detail: r.Reason})
	waitFor(t, "thread and DM", func() bool { return len(f.Calls("chat.postMessage")) == 4 })
	posts := f.Calls("chat.postMessage")
	parent := "1700000000.000001"
	if posts[0].Form.Get("thread_ts") != "" || !strings.Contains(posts[0].Form.Get("blocks"), "*Failed*") {
		t.Fatalf("main message: %v", posts[0].Form)
	}
	if posts[1].Form.Get("thread_ts") != parent || !strings.Contains(posts[1].Form.Get("blocks"), "FAIL  health") {
		t.Fatalf("validation table: %v", posts[1].Form)
	}
	if posts[2].Form.Get("thread_ts") != parent || !strings.Contains(posts[2].Form.Get("blocks"), ActionRollback) {
		t.Fatalf("failure with rollback: %v", posts[2].Form)
	}
	if posts[3].Form.Get("channel") != "D0DIRECT" || len(f.Calls("conversations.open")) != 1 ||
		!strings.Contains(f.Calls("conversations.open")[0].Form.Get("users"), "U04ALICE") {
		t.Fatalf("direct message: %v", posts[3].Form)
	}
}

// The service's switch offer after a restore into recovery becomes a
// button in the release's thread that requests switching users to it; a
// succeeded deploy gets none.
func TestNotifierOffersSwitchAfterRecovery(t *testing.T) {
	f := newFakeSlack(t)
	n := newTestNotifier(t, f, newFakeService(), 10*time.Millisecond)
	ctx := context.Background()
	n.ReleaseChanged(ctx, recoveredRelease(), release.Event{Kind: release.EventSucceeded})
	n.ReleaseChanged(ctx, recoveredRelease(), release.Event{Kind: release.EventSwitchOffered})
	deploy := releaseIn("succeeded")
	n.ReleaseChanged(ctx, deploy, release.Event{Kind: release.EventSucceeded})
	waitFor(t, "both messages, the offer and two DMs", func() bool { return len(f.Calls("chat.postMessage")) == 5 })
	offers := 0
	for _, c := range f.Calls("chat.postMessage") {
		blocks := c.Form.Get("blocks")
		if !strings.Contains(blocks, ActionSwitch) {
			continue
		}
		offers++
		if c.Form.Get("thread_ts") == "" || !strings.Contains(blocks, `"value":"crm-r6"`) || !strings.Contains(blocks, "switch crm-r6") {
			t.Fatalf("switch offer: %v", c.Form)
		}
	}
	if offers != 1 {
		t.Fatalf("%d switch offers, want 1 (for crm-r6 only)", offers)
	}
}

// Close flushes the latest state without waiting out the interval.
func TestNotifierCloseFlushes(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	n := NewNotifier(NotifierConfig{API: f.api(), Messages: svc, Interval: time.Hour})
	ctx := context.Background()
	n.ReleaseChanged(ctx, releaseIn("running"), release.Event{Kind: release.EventStepStarted})
	waitFor(t, "the post", func() bool { return len(f.Calls("chat.postMessage")) == 1 })
	n.ReleaseChanged(ctx, releaseIn("succeeded"), release.Event{Kind: release.EventStepFinished})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if ups := f.Calls("chat.update"); len(ups) != 1 || !strings.Contains(ups[0].Form.Get("blocks"), "*Succeeded*") {
		t.Fatalf("not flushed: %d updates", len(ups))
	}
}
