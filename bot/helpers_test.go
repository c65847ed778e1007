package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// call is one request relbot made to the fake Slack.
type call struct {
	Method string
	Form   url.Values
	Body   string
	At     time.Time
}

// fakeSlack is slacktest's server with the endpoints it lacks registered
// (chat.update, views.open, conversations.open) and every call recorded.
type fakeSlack struct {
	*slacktest.Server
	mu    sync.Mutex
	calls []call
	ts    int
	// limitUpdates makes the next n chat.update calls answer 429.
	limitUpdates int
	// notInChannel makes chat.postEphemeral fail as for a channel the
	// bot is not in.
	notInChannel bool
}

func newFakeSlack(t *testing.T, extra ...slacktest.Binder) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	record := func(method string, answer func(form url.Values) (int, any)) slacktest.Binder {
		return func(c slacktest.Customize) {
			c.Handle("/"+method, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
					form = url.Values{}
				}
				status, v := answer(form)
				f.mu.Lock()
				f.calls = append(f.calls, call{Method: method, Form: form, Body: string(body), At: time.Now()})
				f.mu.Unlock()
				if status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(status)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(v)
			})
		}
	}
	nextTS := func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ts++
		return fmt.Sprintf("1700000000.%06d", f.ts)
	}
	f.Server = slacktest.NewTestServer(append(extra,
		record("chat.postMessage", func(form url.Values) (int, any) {
			return 200, map[string]any{"ok": true, "channel": form.Get("channel"), "ts": nextTS()}
		}),
		record("chat.update", func(form url.Values) (int, any) {
			f.mu.Lock()
			limited := f.limitUpdates > 0
			if limited {
				f.limitUpdates--
			}
			f.mu.Unlock()
			if limited {
				return http.StatusTooManyRequests, nil
			}
			return 200, map[string]any{"ok": true, "channel": form.Get("channel"), "ts": form.Get("ts"), "text": form.Get("text")}
		}),
		record("chat.postEphemeral", func(url.Values) (int, any) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.notInChannel {
				return 200, map[string]any{"ok": false, "error": "channel_not_found"}
			}
			f.ts++
			return 200, map[string]any{"ok": true, "message_ts": fmt.Sprintf("1700000000.%06d", f.ts)}
		}),
		record("views.open", func(url.Values) (int, any) {
			return 200, map[string]any{"ok": true, "view": map[string]any{"id": "V0999", "hash": "h1"}}
		}),
		record("views.update", func(url.Values) (int, any) {
			return 200, map[string]any{"ok": true, "view": map[string]any{"id": "V0999", "hash": "h2"}}
		}),
		record("views.publish", func(url.Values) (int, any) {
			return 200, map[string]any{"ok": true, "view": map[string]any{"id": "V0HOME"}}
		}),
		record("conversations.open", func(url.Values) (int, any) {
			return 200, map[string]any{"ok": true, "channel": map[string]any{"id": "D0DIRECT"}}
		}),
		// response_url: Slack's hooks.slack.com, here on the same server.
		record("response/", func(url.Values) (int, any) { return 200, map[string]any{"ok": true} }),
	)...)
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

func (f *fakeSlack) api() *slack.Client {
	return NewClient("xoxb-test-token", slack.OptionAPIURL(f.GetAPIURL()))
}

func (f *fakeSlack) responseURL() string { return f.GetAPIURL() + "response/1234/5678" }

// Calls returns the recorded calls of method ("" for all).
func (f *fakeSlack) Calls(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitFor polls until cond holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// services serves every area the commands call from svc.
func services(svc *fakeService) commands.Services {
	return commands.Services{Core: svc, Backups: svc, Migrations: svc, Versions: svc, Variables: svc, Releases: svc}
}

// fakeService is the domain as the commands see it, for the few methods
// the bot's paths reach; the others panic (nil embedded interface).
type fakeService struct {
	commands.Core
	commands.Backups
	commands.Migrations
	commands.Versions
	commands.Variables
	commands.Releases
	mu       sync.Mutex
	app      *release.App
	rels     map[string]*release.Release
	calls    []string
	secrets  map[string]string
	notifier release.Notifier
	runs     chan string
}

func newFakeService() *fakeService {
	app := &release.App{Name: "crm", Channel: "C0123456789", Environments: []*release.Environment{
		{Name: "development"}, {Name: "staging"},
		{Name: "production", Approvals: release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}}},
	}}
	return &fakeService{app: app, rels: map[string]*release.Release{"crm-r5": awaitingRelease()}, secrets: map[string]string{}, runs: make(chan string, 10)}
}

func (s *fakeService) called(what string) {
	s.calls = append(s.calls, what)
}

func (s *fakeService) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *fakeService) App(name string) (*release.App, error) {
	if name != s.app.Name {
		return nil, release.Errorf(release.CodeNotFound, "no app %q", name)
	}
	return s.app, nil
}

func (s *fakeService) GetRelease(_ context.Context, id string) (*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rels[id]
	if !ok {
		return nil, release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	return copyRelease(r), nil
}

func (s *fakeService) Apps() []*release.App { return []*release.App{s.app} }

func (s *fakeService) ListReleases(_ context.Context, app, env string) ([]*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*release.Release
	for _, r := range s.rels {
		if r.App == app && (env == "" || r.Env == env) {
			out = append(out, copyRelease(r))
		}
	}
	slices.SortFunc(out, func(a, b *release.Release) int { return b.RequestedAt.Compare(a.RequestedAt) })
	return out, nil
}

func (s *fakeService) Holds(context.Context) ([]release.Hold, error) { return nil, nil }

func (s *fakeService) SetMessage(_ context.Context, id, channel, ts string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("SetMessage " + id + " " + channel + " " + ts)
	if r, ok := s.rels[id]; ok {
		r.Channel, r.MessageTS = channel, ts
	}
	return nil
}

// Approve applies the same policy as release.ReleaseService.Approve.
func (s *fakeService) Approve(ctx context.Context, actor, id string) (*release.Release, bool, error) {
	s.mu.Lock()
	s.called("Approve " + actor + " " + id)
	r, ok := s.rels[id]
	if !ok {
		s.mu.Unlock()
		return nil, false, release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	p := s.app.Environments[2].Approvals
	switch {
	case r.State != release.StateAwaitingApproval:
		s.mu.Unlock()
		return nil, false, release.Errorf(release.CodeConflict, "%s is %s, not awaiting approval", id, r.State)
	case actor == r.RequestedBy:
		s.mu.Unlock()
		return nil, false, release.Errorf(release.CodeForbidden, "%s requested %s and may not approve it too: someone else must", actor, id)
	case !slices.Contains(p.Approvers, actor):
		s.mu.Unlock()
		return nil, false, release.Errorf(release.CodeForbidden, "%s may not approve releases to crm production (approvers: %s)", actor, strings.Join(p.Approvers, ", "))
	}
	for _, a := range r.Approvals {
		if a.By == actor {
			s.mu.Unlock()
			return nil, false, release.Errorf(release.CodeConflict, "%s already approved %s", actor, id)
		}
	}
	r.Approvals = append(r.Approvals, release.Approval{By: actor, At: r.RequestedAt.Add(time.Minute)})
	runnable := len(r.Approvals) >= p.Required
	if runnable {
		r.State = release.StateScheduled
	}
	snap := copyRelease(r)
	s.mu.Unlock()
	if s.notifier != nil {
		s.notifier.ReleaseChanged(ctx, snap, release.Event{Kind: release.EventApproved, Actor: actor})
	}
	return snap, runnable, nil
}

// RequestSwitch refuses what is not a restore into recovery that passed,
// as release.ReleaseService does, and otherwise records a switch awaiting the
// approvals of production.
func (s *fakeService) RequestSwitch(_ context.Context, actor, id string) (*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("RequestSwitch " + actor + " " + id)
	src, ok := s.rels[id]
	if !ok || !src.Switchable() {
		return nil, release.Errorf(release.CodeConflict, "%s: users can be moved only to the recovery environment, after a rollback or restore into it succeeded", id)
	}
	r := &release.Release{ID: "crm-r7", App: "crm", Env: "production", Kind: release.KindSwitch, Backup: src.Backup, SwitchTo: id,
		RequestedBy: actor, RequestedAt: src.RequestedAt.Add(time.Hour), State: release.StateAwaitingApproval, Channel: src.Channel,
		Steps: []release.Step{{Name: release.StepPreflight, State: release.StepPending}, {Name: release.StepSwitch, State: release.StepPending}}}
	s.rels[r.ID] = r
	return copyRelease(r), nil
}

// RequestRollback records a rollback of id awaiting approval: targeted
// unless full (the fake's deploys all kept a snapshot).
func (s *fakeService) RequestRollback(_ context.Context, actor, id, into string, full, _ bool) (*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called(fmt.Sprintf("RequestRollback %s %s full=%v", actor, id, full))
	src, ok := s.rels[id]
	if !ok || src.Kind != release.KindDeploy {
		return nil, release.Errorf(release.CodeInvalid, "%s is not a deploy", id)
	}
	r := &release.Release{ID: "crm-r8", App: "crm", Env: src.Env, Kind: release.KindRollback, RollbackOf: id,
		RequestedBy: actor, RequestedAt: src.RequestedAt.Add(time.Hour), State: release.StateAwaitingApproval, Channel: src.Channel}
	if full {
		r.Backup = src.Backup
	} else {
		r.Snapshot = id
	}
	s.rels[r.ID] = r
	return copyRelease(r), nil
}

func (s *fakeService) Reject(ctx context.Context, actor, id, reason string) (*release.Release, error) {
	s.mu.Lock()
	s.called("Reject " + actor + " " + id + " " + reason)
	r, ok := s.rels[id]
	if !ok || r.State != release.StateAwaitingApproval {
		s.mu.Unlock()
		return nil, release.Errorf(release.CodeConflict, "%s is not awaiting approval", id)
	}
	r.State, r.Reason = release.StateRejected, "rejected by "+actor+": "+reason
	snap := copyRelease(r)
	s.mu.Unlock()
	if s.notifier != nil {
		s.notifier.ReleaseChanged(ctx, snap, release.Event{Kind: release.EventRejected, Actor: actor})
	}
	return snap, nil
}

// Permit lets everyone: roles are checked by release (and tested with the
// real service in permissions_test.go).
func (s *fakeService) Permit(_ context.Context, _ string, _ release.Action, app, _ string) error {
	_, err := s.App(app)
	return err
}

func (s *fakeService) SetSecret(_ context.Context, actor, app, env, name, value string) (*release.VariableView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("SetSecret " + actor + " " + app + " " + env + " " + name) // never the value
	s.secrets[app+"/"+env+"/"+name] = value
	return &release.VariableView{Name: name, Secret: true, Value: "••••", InRelbot: true, UpdatedBy: actor}, nil
}

// RefuseSecretIn knows no secrets: the bot's tests of free text are about
// what reaches the domain, commands' tests about what is refused.
func (s *fakeService) RefuseSecretIn(context.Context, string, string) error { return nil }

func (s *fakeService) Run(_ context.Context, id string) (*release.Release, error) {
	s.mu.Lock()
	s.called("Run " + id)
	s.mu.Unlock()
	s.runs <- id
	return nil, nil
}

// newTestBot wires a bot to the fake Slack and the fake service through
// the real commands.Dispatcher, as relbot serve does.
func newTestBot(t *testing.T, f *fakeSlack, svc *fakeService, logs io.Writer) (*Bot, *httptest.Server) {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := NewNotifier(NotifierConfig{API: f.api(), Messages: svc, Policies: PolicyFunc(svc.App), Log: log, Interval: 50 * time.Millisecond})
	svc.notifier = n
	b, srv := serveBot(t, f, services(svc), Config{Runner: svc, Log: log, Workers: 2})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return b, srv
}

// serveBot starts a bot on the fake Slack over s, with what cfg sets
// besides, and an HTTP server for it; both stop with the test.
func serveBot(t *testing.T, f *fakeSlack, s commands.Services, cfg Config) (*Bot, *httptest.Server) {
	t.Helper()
	cfg.SigningSecret, cfg.API = testSecret, f.api()
	cfg.Dispatcher = &commands.Dispatcher{Services: s, Location: time.UTC}
	cfg.Dedupe = newMemDedupe()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := New(cfg)
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b, srv
}

// memDedupe is a minimal in-process Dedupe (storage/memory's, which bot
// may not import, behaves the same).
type memDedupe struct {
	mu   sync.Mutex
	seen map[string]bool
	n    int
}

func newMemDedupe() *memDedupe { return &memDedupe{seen: map[string]bool{}} }

func (d *memDedupe) First(_ context.Context, key string, _ time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.seen[key] {
		return false, nil
	}
	d.seen[key] = true
	return true, nil
}

func (d *memDedupe) Seen(_ context.Context, key string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[key], nil
}

func sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends body to path, signed with secret at time at (no signature
// when secret is empty).
func post(t *testing.T, srv *httptest.Server, path string, body []byte, secret string, at time.Time, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ctype := "application/x-www-form-urlencoded"
	if path == "/slack/events" {
		ctype = "application/json"
	}
	req.Header.Set("Content-Type", ctype)
	if secret != "" {
		ts := at.Unix()
		req.Header.Set("X-Slack-Request-Timestamp", fmt.Sprint(ts))
		req.Header.Set("X-Slack-Signature", sign(secret, ts, body))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// fixture reads a recorded payload from fixtures/slack, pointing its
// response_url at the fake Slack.
func fixture(t *testing.T, f *fakeSlack, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "fixtures", "slack", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if f != nil {
		s = strings.ReplaceAll(s, "https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678", url.QueryEscape(f.responseURL()))
		s = strings.ReplaceAll(s, "https://hooks.slack.com/actions/T0001/1234567890/AbCdEfGhIjKlMnOp", f.responseURL())
	}
	return []byte(s)
}

// interaction wraps a JSON payload as Slack posts it: payload=<json>.
func interaction(payload []byte) []byte {
	return []byte("payload=" + url.QueryEscape(string(payload)))
}

// command builds a slash command form like the recorded one, with text.
func command(t *testing.T, f *fakeSlack, text string) []byte {
	form, err := url.ParseQuery(string(fixture(t, f, "slash_command.form")))
	if err != nil {
		t.Fatal(err)
	}
	form.Set("text", text)
	return []byte(form.Encode())
}

// awaitingRelease is crm-r5 awaiting its approvals, at fixed times.
// recoveredRelease is a restore into recovery that passed its checks: one
// users may be switched to.
func recoveredRelease() *release.Release {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	end := at.Add(40 * time.Second)
	return &release.Release{ID: "crm-r6", App: "crm", Env: release.RecoveryEnv, Kind: release.KindRestore, Backup: "crm-b12",
		RequestedBy: "U04ALICE", RequestedAt: at, State: release.StateSucceeded, Channel: "C0123456789",
		Steps: []release.Step{
			{Name: release.StepPreflight, State: release.StepDone, Started: &at, Ended: &at, Log: "freeze and locks checked"},
			{Name: release.StepRestore, State: release.StepDone, Started: &at, Ended: &end, Log: "crm-b12 restored into an empty database"},
			{Name: release.StepChecks, State: release.StepDone, Started: &end, Ended: &end, Log: "pass  pages exist"},
		},
		Checks: []release.CheckResult{{Name: "pages exist", OK: true, Duration: 5 * time.Millisecond, Detail: "returned true"}}}
}

func awaitingRelease() *release.Release {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	steps := []release.Step{}
	for _, n := range []string{release.StepPreflight, release.StepMaintenanceOn, release.StepScaleDown, release.StepBackup,
		release.StepApply, release.StepChecks, release.StepScaleUp, release.StepMaintenanceOff} {
		steps = append(steps, release.Step{Name: n, State: release.StepPending})
	}
	return &release.Release{ID: "crm-r5", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m7",
		FileHash: "9f2c4e1ab37d5c60e8f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7", RequestedBy: "U04ALICE", RequestedAt: at,
		State: release.StateAwaitingApproval, Channel: "C0123456789", Steps: steps}
}
