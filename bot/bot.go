// Package bot is relbot's Slack transport: signature check, fast ack,
// slash commands, buttons, modals, Socket Mode, Block Kit rendering and
// the Notifier that posts and updates a release's message. Everything it
// does goes through commands and release; it is the only package that
// imports slack-go.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/net/netutil"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// Dispatcher runs commands (commands.Dispatcher satisfies it).
type Dispatcher interface {
	Run(ctx context.Context, req commands.Request, cmd commands.Command) (commands.Reply, error)
	// Home gathers what a user's App Home shows.
	Home(ctx context.Context, user string) (*commands.Home, error)
}

// Runner runs a release that became runnable (release.ReleaseService satisfies it).
type Runner interface {
	Run(ctx context.Context, id string) (*release.Release, error)
}

// Dedupe remembers keys for a while: First is true only the first time a
// key is seen within ttl; Seen says whether a key is remembered, without
// marking it. storage/redis, storage/memory and storage/postgres each have
// one.
type Dedupe interface {
	First(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Seen(ctx context.Context, key string) (bool, error)
}

// Config is what a Bot needs.
type Config struct {
	// SigningSecret checks every HTTP request (not used in Socket Mode).
	SigningSecret string
	API           *slack.Client
	Dispatcher    Dispatcher
	Runner        Runner
	Dedupe        Dedupe
	// Ready reports whether what this process needs answers (/readyz):
	// its error's message, naming what does not, is the answer's body.
	Ready func(ctx context.Context) error
	Log   *slog.Logger
	// Workers bounds the commands and clicks handled at once (default 8);
	// Queue bounds those waiting (default 256).
	Workers, Queue int
	// HTTPClient posts to response_url (default a client with a timeout).
	HTTPClient *http.Client
	// DedupeTTL is how long a delivery is remembered (default one hour).
	DedupeTTL time.Duration
	// JobTimeout bounds one command's work (default 30 minutes);
	// LongJobTimeout one slow command's (commands.Slow: a backup, a
	// verify; default 24 hours), run outside the worker pool.
	JobTimeout, LongJobTimeout time.Duration
	// MaxConns caps the HTTP connections served at once (default 256);
	// more wait in the kernel's backlog. HeaderTimeout (default 5 s) and
	// BodyTimeout (default 5 s) bound how long a client may take to send a
	// request's headers and its body: Slack sends both at once, so a slow
	// sender is an attacker holding a connection.
	MaxConns                   int
	HeaderTimeout, BodyTimeout time.Duration
	// Metrics, when set, is served at /metrics; ObserveAck, when set, is
	// told how long each Slack delivery over HTTP took to be answered.
	Metrics    http.Handler
	ObserveAck func(kind string, d time.Duration)
	// TriggerLife is how long after a command arrives its trigger_id is
	// used to open a form (default 2.5 s: Slack's last 3); later, the form
	// is offered by a button.
	TriggerLife time.Duration
	// ReleaseLink, when set, gives the signed address of a release's page
	// (linked from approval reminders).
	ReleaseLink func(id string) string
	// Pages, when set, serves the pages and downloads behind signed links
	// (/releases/, /apps/, /backups/, /migrations/) and their style sheet.
	Pages http.Handler
}

// Bot answers Slack. Create it with New; Shutdown stops it.
type Bot struct {
	cfg  Config
	log  *slog.Logger
	jobs chan job

	mu       sync.RWMutex // guards draining and sends on jobs
	draining bool
	workers  sync.WaitGroup
	queued   atomic.Int64 // places taken in jobs (see reserve)

	// socketMode: RunSocketMode is on; socketUp: its connection is.
	socketMode, socketUp atomic.Bool

	runsMu     sync.Mutex
	runsClosed bool // shutting down: no new runs (guarded by runsMu)
	running    map[string]bool
	runs       sync.WaitGroup
	base       context.Context
}

type job struct {
	name string
	fn   func(ctx context.Context)
}

// New starts the worker pool and returns a Bot.
func New(cfg Config) *Bot {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.DedupeTTL <= 0 {
		cfg.DedupeTTL = time.Hour
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 30 * time.Minute
	}
	if cfg.TriggerLife <= 0 {
		cfg.TriggerLife = 2500 * time.Millisecond
	}
	if cfg.LongJobTimeout <= 0 {
		cfg.LongJobTimeout = 24 * time.Hour
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 5 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 5 * time.Second
	}
	b := &Bot{cfg: cfg, log: cfg.Log, jobs: make(chan job, cfg.Queue), running: map[string]bool{}, base: context.Background()}
	for range cfg.Workers {
		b.workers.Add(1)
		go b.work()
	}
	return b
}

// QueueDepth is how many commands and clicks wait for a worker.
func (b *Bot) QueueDepth() int { return int(b.queued.Load()) }

func (b *Bot) work() {
	defer b.workers.Done()
	for j := range b.jobs {
		b.queued.Add(-1)
		func() {
			ctx, cancel := context.WithTimeout(b.base, b.cfg.JobTimeout)
			defer cancel()
			defer func() {
				if p := recover(); p != nil {
					b.log.Error("slack job panicked", "job", j.name, "panic", fmt.Sprint(p))
				}
			}()
			j.fn(ctx)
		}()
	}
}

// accept queues a delivery's work to run after the ack, once: key (empty:
// no dedupe) is recorded only when the job has a place in the queue, so a
// delivery refused while the queue is full is still new when Slack retries
// it. It reports whether the delivery is handled: a duplicate is (nothing
// to do), even while the queue is full, as its first copy was taken; a
// refusal (shutting down, queue full) is not.
func (b *Bot) accept(ctx context.Context, key, name string, fn func(ctx context.Context)) bool {
	// The read lock keeps Shutdown from closing jobs between the
	// reservation and the send.
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.draining {
		return false
	}
	if !b.reserve() {
		if key != "" && b.seen(ctx, key) {
			return true
		}
		b.log.Warn("slack work queue full: request refused", "job", name)
		return false
	}
	if key != "" && !b.first(ctx, key) {
		b.queued.Add(-1)
		return true
	}
	b.jobs <- job{name, fn} // never blocks: reserve made room
	return true
}

// reserve takes one place in the queue; the worker that receives the job
// gives it back. Places never outnumber the channel's capacity, so a send
// after a reservation cannot block.
func (b *Bot) reserve() bool {
	for {
		n := b.queued.Load()
		if n >= int64(cap(b.jobs)) {
			return false
		}
		if b.queued.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// RunRelease runs a runnable release in the background, once per process
// at a time. Its context outlives a shutdown: the process waits for it
// (with a bound) and a run cut short is found interrupted by its lease and
// resumed.
func (b *Bot) RunRelease(id string) {
	b.runsMu.Lock()
	if b.running[id] || b.runsClosed || b.cfg.Runner == nil {
		b.runsMu.Unlock()
		return
	}
	b.running[id] = true
	b.runs.Add(1)
	b.runsMu.Unlock()
	go func() {
		defer b.runs.Done()
		defer func() {
			b.runsMu.Lock()
			delete(b.running, id)
			b.runsMu.Unlock()
		}()
		b.log.Info("release run starting", "release", id)
		if _, err := b.cfg.Runner.Run(b.base, id); err != nil {
			// The notifier has told the channel; this is for the operator.
			b.log.Warn("release run ended with an error", "release", id, "err", err)
		}
	}()
}

// startLong runs a slow command's work beside the worker pool, so hours
// of a backup hold no worker; Shutdown waits for it as for a release. It
// is false when the bot is shutting down.
func (b *Bot) startLong(name string, fn func(ctx context.Context)) bool {
	b.runsMu.Lock()
	defer b.runsMu.Unlock()
	if b.runsClosed {
		return false
	}
	b.runs.Add(1)
	go func() {
		defer b.runs.Done()
		ctx, cancel := context.WithTimeout(b.base, b.cfg.LongJobTimeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				b.log.Error("slack job panicked", "job", name, "panic", fmt.Sprint(p))
			}
		}()
		fn(ctx)
	}()
	return true
}

// Running reports whether this process is running the release.
func (b *Bot) Running(id string) bool {
	b.runsMu.Lock()
	defer b.runsMu.Unlock()
	return b.running[id]
}

// Shutdown stops taking new work and waits, until ctx ends, for the
// commands in flight and the releases this process runs.
func (b *Bot) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.draining {
		b.draining = true
		close(b.jobs)
	}
	b.mu.Unlock()
	b.runsMu.Lock()
	b.runsClosed = true
	b.runsMu.Unlock()
	done := make(chan struct{})
	go func() {
		b.workers.Wait()
		b.runs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		b.log.Warn("shutdown: work still running was left (a release cut short is resumed from its lease)")
		return ctx.Err()
	}
}

// Serve answers HTTP on ln until ctx ends, then stops taking requests and
// waits up to grace for the work in flight.
func (b *Bot) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	// Idle keep-alive connections count against MaxConns too: IdleTimeout
	// gives their places back. The body's own deadline is set by signed.
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: b.cfg.HeaderTimeout,
		ReadTimeout: b.cfg.HeaderTimeout + b.cfg.BodyTimeout, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, b.cfg.MaxConns)) }()
	select {
	case err := <-errc:
		_ = b.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := b.Shutdown(sctx); err == nil {
		err = serr
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown after %s: %w", grace, err)
	}
	return nil
}
