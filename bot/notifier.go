package bot

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/relbot/relbot/release"
)

// MessageStore records where a release's Slack message is, so that every
// process updates the same one (release.ReleaseStore satisfies it).
type MessageStore interface {
	GetRelease(ctx context.Context, id string) (*release.Release, error)
	SetMessage(ctx context.Context, id, channel, ts string) error
}

// Policies finds an environment's approval policy (release.Core's App
// satisfies it through PolicyFunc).
type Policies func(app, env string) release.ApprovalPolicy

// PolicyFunc adapts an app lookup to Policies.
func PolicyFunc(app func(name string) (*release.App, error)) Policies {
	return func(a, e string) release.ApprovalPolicy {
		ap, err := app(a)
		if err != nil {
			return release.ApprovalPolicy{}
		}
		env, err := ap.Env(e)
		if err != nil {
			return release.ApprovalPolicy{}
		}
		// Who may approve is the approve role's holders wherever
		// apps.yaml states them (roles.approve, the approvers, the app's
		// roles), as the approval itself is judged.
		p := env.Approvals
		p.Approvers = nil
		if m, restricted, _ := ap.Holders(env, release.ActApprove); restricted {
			p.Approvers = m
		} else if p.Required > 0 {
			p.Approvers = []string{release.Anyone}
		}
		return p
	}
}

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	API      *slack.Client
	Messages MessageStore
	Policies Policies
	Log      *slog.Logger
	// Interval is the least time between two chat.update calls of one
	// message (default one second): events in between are coalesced and
	// the latest state wins.
	Interval time.Duration
	// ReleaseLink, when set, gives the signed address of a release's page,
	// linked from its message.
	ReleaseLink func(id string) string
	// Updates paces every chat.update the notifier makes, whichever
	// release's (default NewUpdateLimiter()); share one per process.
	Updates *rate.Limiter
}

// Notifier is release.Notifier for Slack: one message per release in the
// app's channel, posted on request and updated in place; details in its
// thread; a direct message to the requester when a release needs them or
// has ended. Calls never block on Slack: each release's messages are sent,
// in order, by a goroutine of its own.
type Notifier struct {
	cfg     NotifierConfig
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{}

	mu     sync.Mutex
	msgs   map[string]*relMessage
	closed bool
	wg     sync.WaitGroup
}

var _ release.Notifier = (*Notifier)(nil)

// relMessage is the state of one release's message.
type relMessage struct {
	id, channel, ts string
	looked          bool // the store was asked for a message posted earlier
	latest          *release.Release
	dirty           bool // latest has not been sent
	last            time.Time
	outbox          []outgoing
	running         bool
}

// outgoing is a thread reply or a direct message.
type outgoing struct {
	dm  string // user to message directly; empty: a reply in the thread
	msg Message
}

// NewNotifier returns a Notifier; Close flushes it.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Updates == nil {
		cfg.Updates = NewUpdateLimiter()
	}
	if cfg.Policies == nil {
		cfg.Policies = func(string, string) release.ApprovalPolicy { return release.ApprovalPolicy{} }
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Notifier{cfg: cfg, ctx: ctx, cancel: cancel, closing: make(chan struct{}), msgs: map[string]*relMessage{}}
}

// ReleaseChanged queues the release's new state (and any thread reply or
// direct message the event calls for) and returns at once.
func (n *Notifier) ReleaseChanged(_ context.Context, r *release.Release, e release.Event) {
	if r == nil || r.ID == "" {
		return
	}
	snap := copyRelease(r)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.cfg.Log.Warn("slack notifier closed: event dropped", "release", r.ID, "event", e.Kind)
		return
	}
	m := n.msgs[r.ID]
	if m == nil {
		m = &relMessage{id: r.ID}
		n.msgs[r.ID] = m
	}
	if m.channel == "" {
		m.channel = r.Channel
	}
	if m.ts == "" && r.MessageTS != "" {
		m.ts, m.looked = r.MessageTS, true
		if r.Channel != "" {
			m.channel = r.Channel
		}
	}
	m.latest, m.dirty = snap, true
	m.outbox = append(m.outbox, n.extras(snap, e)...)
	if !m.running {
		m.running = true
		n.wg.Add(1)
		go n.send(m)
	}
}

// extras are the thread replies and direct messages an event calls for.
func (n *Notifier) extras(r *release.Release, e release.Event) []outgoing {
	var out []outgoing
	dm := func() {
		if isSlackUser(r.RequestedBy) {
			out = append(out, outgoing{dm: r.RequestedBy, msg: RenderDM(r, e)})
		}
	}
	switch e.Kind {
	case release.EventStepFinished:
		for _, s := range r.Steps {
			if s.Name != e.Step {
				continue
			}
			switch {
			case s.Name == release.StepChecks && len(r.Checks) > 0:
				out = append(out, outgoing{msg: RenderChecks(r)})
			case s.State == release.StepDone && (strings.Contains(strings.TrimSpace(s.Log), "\n") || len(s.Log) > maxLogInList):
				out = append(out, outgoing{msg: RenderLog(r, s.Name, s.Log)})
			}
		}
	case release.EventNotice:
		out = append(out, outgoing{msg: message(e.Detail, section(":loudspeaker: "+escape(e.Detail)))})
	case release.EventFailed:
		out = append(out, outgoing{msg: RenderFailure(r, e.Step)})
		dm()
	case release.EventInterrupted:
		out = append(out, outgoing{msg: RenderFailure(r, e.Step)})
		dm()
	case release.EventSwitchOffered:
		out = append(out, outgoing{msg: RenderSwitchOffer(r)})
	case release.EventSucceeded:
		dm()
	case release.EventRejected, release.EventExpired:
		dm()
	case release.EventCancelled:
		if e.Actor != r.RequestedBy {
			dm()
		}
	}
	return out
}

// send delivers one release's messages until nothing is left: the main
// message first (posted once, then updated at most once per interval, the
// latest state winning), then thread replies and direct messages in order.
func (n *Notifier) send(m *relMessage) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if !m.dirty && len(m.outbox) == 0 {
			m.running = false
			if m.latest != nil && final(m.latest.State) {
				delete(n.msgs, m.id) // a later event starts afresh from the store
			}
			n.mu.Unlock()
			return
		}
		if m.dirty && m.channel != "" {
			if m.ts != "" {
				if wait := time.Until(m.last.Add(n.cfg.Interval)); wait > 0 && !n.isClosing() {
					n.mu.Unlock()
					n.sleep(wait)
					continue
				}
			}
			snap, ts, looked, channel := m.latest, m.ts, m.looked, m.channel
			m.dirty = false
			n.mu.Unlock()
			if ts == "" && !looked {
				ts = n.lookup(snap.ID)
				n.mu.Lock()
				m.looked = true
				if ts != "" {
					m.ts = ts
				}
				n.mu.Unlock()
			}
			newTS, err := n.sendMain(channel, ts, snap)
			n.mu.Lock()
			m.last = time.Now()
			switch {
			case err != nil:
				n.cfg.Log.Warn("slack: release message not sent", "release", m.id, "err", err)
			case ts == "" && newTS != "":
				m.ts = newTS
				n.mu.Unlock()
				if n.cfg.Messages != nil {
					ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
					if err := n.cfg.Messages.SetMessage(ctx, m.id, channel, newTS); err != nil {
						n.cfg.Log.Warn("record the release's slack message", "release", m.id, "err", err)
					}
					cancel()
				}
				continue
			}
			n.mu.Unlock()
			continue
		}
		m.dirty = false // no channel: nothing to show there
		if len(m.outbox) == 0 {
			n.mu.Unlock()
			continue
		}
		o, channel, ts := m.outbox[0], m.channel, m.ts
		n.mu.Unlock()
		if err := n.sendExtra(channel, ts, o); err != nil {
			n.cfg.Log.Warn("slack: thread reply or direct message not sent", "release", m.id, "err", err)
		}
		n.mu.Lock()
		m.outbox = m.outbox[1:]
		n.mu.Unlock()
	}
}

func (n *Notifier) lookup(id string) string {
	if n.cfg.Messages == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
	defer cancel()
	r, err := n.cfg.Messages.GetRelease(ctx, id)
	if err != nil || r == nil {
		return ""
	}
	return r.MessageTS
}

func (n *Notifier) sendMain(channel, ts string, r *release.Release) (string, error) {
	link := ""
	if n.cfg.ReleaseLink != nil {
		link = n.cfg.ReleaseLink(r.ID)
	}
	msg := RenderReleaseLinked(r, n.cfg.Policies(r.App, r.Env), link)
	ctx, cancel := context.WithTimeout(n.ctx, callTimeout)
	defer cancel()
	if ts == "" {
		_, newTS, err := n.cfg.API.PostMessageContext(ctx, channel, msg.options()...)
		return newTS, err
	}
	if err := n.cfg.Updates.Wait(ctx); err != nil {
		return ts, err
	}
	_, _, _, err := n.cfg.API.UpdateMessageContext(ctx, channel, ts, msg.options()...)
	return ts, err
}

func (n *Notifier) sendExtra(channel, ts string, o outgoing) error {
	ctx, cancel := context.WithTimeout(n.ctx, callTimeout)
	defer cancel()
	if o.dm != "" {
		ch, _, _, err := n.cfg.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{o.dm}, ReturnIM: true})
		if err != nil {
			return err
		}
		_, _, err = n.cfg.API.PostMessageContext(ctx, ch.ID, o.msg.options()...)
		return err
	}
	if channel == "" {
		return nil
	}
	opts := o.msg.options()
	if ts != "" {
		opts = append(opts, slack.MsgOptionTS(ts))
	}
	_, _, err := n.cfg.API.PostMessageContext(ctx, channel, opts...)
	return err
}

func (n *Notifier) isClosing() bool {
	select {
	case <-n.closing:
		return true
	default:
		return false
	}
}

// sleep waits for the coalescing interval; closing cuts it short so the
// latest state is flushed at once.
func (n *Notifier) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-n.closing:
	case <-n.ctx.Done():
	}
}

// Close flushes what is queued (without waiting for the coalescing
// interval) until ctx ends, then gives up on the rest.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.closing)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}

// copyRelease copies what rendering reads, so later changes by the
// service do not race with sending.
func copyRelease(r *release.Release) *release.Release {
	c := *r
	c.Approvals = append([]release.Approval(nil), r.Approvals...)
	c.Steps = make([]release.Step, len(r.Steps))
	for i, s := range r.Steps {
		c.Steps[i] = s
		if s.Started != nil {
			t := *s.Started
			c.Steps[i].Started = &t
		}
		if s.Ended != nil {
			t := *s.Ended
			c.Steps[i].Ended = &t
		}
	}
	c.Checks = append([]release.CheckResult(nil), r.Checks...)
	if r.At != nil {
		t := *r.At
		c.At = &t
	}
	return &c
}
