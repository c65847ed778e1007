package commands

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
)

const fakeSecret = "s3cr3t-canary-4711"

func (f *fakeService) RefuseSecretIn(_ context.Context, what, text string) error {
	if strings.Contains(text, fakeSecret) {
		return release.Errorf(release.CodeForbidden, "%s holds the value of a secret; write it without", what)
	}
	return nil
}

// recording notes which free-text commands reached the domain.
type recording struct {
	*fakeService
	reached []string
	fail    error
}

func (r *recording) Lock(ctx context.Context, actor, app, env, reason string) (*release.Hold, error) {
	r.reached = append(r.reached, "lock")
	if r.fail != nil {
		return nil, r.fail
	}
	return r.fakeService.Lock(ctx, actor, app, env, reason)
}

func (r *recording) Reject(ctx context.Context, actor, id, reason string) (*release.Release, error) {
	r.reached = append(r.reached, "reject")
	return r.fakeService.Reject(ctx, actor, id, reason)
}

func (r *recording) CreateVersion(ctx context.Context, actor, app, description string) (*release.Version, error) {
	r.reached = append(r.reached, "version")
	return r.fakeService.CreateVersion(ctx, actor, app, description)
}

func (r *recording) CreateMigration(ctx context.Context, actor, app, version, note string) (*release.Migration, error) {
	r.reached = append(r.reached, "migration")
	return r.fakeService.CreateMigration(ctx, actor, app, version, note)
}

// Every free-text field (lock and reject reasons, version descriptions,
// migration notes), whether typed as a command or built by a transport
// (a Slack modal), is refused with a message naming it when it holds a
// control character, an escape sequence, a bidirectional override,
// invalid UTF-8 or a known secret; the domain is not called. Tabs and
// line breaks are text.
func TestFreeTextIsChecked(t *testing.T) {
	fields := []struct {
		what string
		cmd  func(text string) Command
	}{
		{"the lock reason", func(s string) Command { return Lock{App: "crm", Env: "production", Reason: s} }},
		{"the reject reason", func(s string) Command { return Reject{Release: "crm-r1", Reason: s} }},
		{"the version description", func(s string) Command { return VersionCreate{App: "crm", Description: s} }},
		{"the migration note", func(s string) Command { return MigrationCreate{App: "crm", Note: s} }},
	}
	bad := map[string]struct{ text, want string }{
		"NUL":          {"db\x00failover", "holds the control character NUL (U+0000) at byte 3"},
		"title escape": {"\x1b]0;pwned\x07 incident", "holds the control character ESC (U+001B) at byte 1"},
		"CSI":          {"red \x1b[31malert", "ESC (U+001B) at byte 5"},
		"8-bit CSI":    {"x \u009b31m", "U+009B"},
		"DEL":          {"a\x7fb", "U+007F"},
		"bidi":         {"admin\u202etxt.exe", "U+202E"},
		"not UTF-8":    {"caf\xe9", "is not valid UTF-8 text (byte 4)"},
		"secret":       {"token " + fakeSecret + " leaked", "holds the value of a secret"},
	}
	for _, f := range fields {
		for name, b := range bad {
			svc := &recording{fakeService: newFake()}
			d := &Dispatcher{Services: all(svc)}
			_, err := d.Run(context.Background(), Request{User: "alice"}, f.cmd(b.text))
			msg := release.ErrorMessage(err)
			if err == nil || !strings.HasPrefix(msg, f.what+" ") || !strings.Contains(msg, b.want) {
				t.Errorf("%s with %s: %v, want %q", f.what, name, err, f.what+" ... "+b.want)
			}
			if strings.Contains(msg, fakeSecret) || strings.ContainsAny(msg, "\x00\x1b\u009b\u202e") {
				t.Errorf("%s with %s: the refusal repeats what it refused: %q", f.what, name, msg)
			}
			if len(svc.reached) != 0 {
				t.Errorf("%s with %s reached the domain: %v", f.what, name, svc.reached)
			}
		}
		svc := &recording{fakeService: newFake()}
		d := &Dispatcher{Services: all(svc)}
		if _, err := d.Run(context.Background(), Request{User: "alice"}, f.cmd("two\tlines\r\nof text, café")); err != nil || len(svc.reached) != 1 {
			t.Errorf("%s with tabs and line breaks: %v (%v)", f.what, err, svc.reached)
		}
	}
	// Typed as a command, the same text is refused the same way.
	svc := &recording{fakeService: newFake()}
	d := &Dispatcher{Services: all(svc)}
	_, err := d.Handle(context.Background(), Request{User: "alice", Text: "lock crm production db\x00failover"})
	if !strings.Contains(release.ErrorMessage(err), "the lock reason holds the control character NUL") || len(svc.reached) != 0 {
		t.Fatalf("typed lock with NUL: %v (%v)", err, svc.reached)
	}
}

// An internal error reaches users as "internal error" and the log with
// its cause; refusals are not logged as errors.
func TestInternalErrorsAreLogged(t *testing.T) {
	var logs bytes.Buffer
	svc := &recording{fakeService: newFake(), fail: errors.New("pq: connection reset by peer")}
	d := &Dispatcher{Services: all(svc), Log: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err := d.Run(context.Background(), Request{User: "alice"}, Lock{App: "crm", Env: "production", Reason: "incident"})
	if ErrorReply(err).Text != "internal error (see the bot's log)" {
		t.Fatalf("user reads %q", ErrorReply(err).Text)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "connection reset by peer") ||
		!strings.Contains(l, "command=lock") || !strings.Contains(l, "user=alice") {
		t.Fatalf("log: %s", l)
	}
	logs.Reset()
	svc.fail = release.Errorf(release.CodeConflict, "crm production is locked already")
	if _, err := d.Run(context.Background(), Request{User: "alice"}, Lock{App: "crm", Env: "production", Reason: "incident"}); err == nil || logs.Len() != 0 {
		t.Fatalf("a refusal: %v, logged %q", err, logs.String())
	}
}
