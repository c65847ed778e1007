package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// fakeService keeps backups in memory; verify and restore answer with the
// report set on it.
type fakeService struct {
	mu      sync.Mutex
	apps    []*release.App
	backups []*release.Backup
	verify  *release.VerifyReport
	listErr error
	calls   []string
	// newPlugins, when set, makes a deploy without --allow-new-plugins
	// refused for them; applied makes a plan find its file applied.
	newPlugins []release.NewPlugin
	applied    *release.AppliedBy
	// releases, when set, is what GetRelease and ListReleases answer
	// (ListReleases: newest first, as the store lists them).
	releases []*release.Release
	// runs, when set, is what ShowMigration lists as the applies.
	runs []*release.MigrationRun
	// snapshots is what Snapshots answers (status).
	snapshots []release.EnvSnapshots
}

var _ everything = (*fakeService)(nil)

// everything is a fake of every area's service.
type everything interface {
	Core
	Backups
	Migrations
	Versions
	Variables
	Releases
}

// all serves every area from one fake.
func all(s everything) Services { return Services{s, s, s, s, s, s} }

func newFake() *fakeService {
	env := func(n string) *release.Environment { return &release.Environment{Name: n} }
	production := env("production")
	production.Hooks = map[string]release.Hook{release.HookRestart: {Exec: []string{"kubectl", "rollout", "restart", "deploy/crm"}}}
	return &fakeService{
		apps: []*release.App{
			{Name: "crm", Channel: "C1", Environments: []*release.Environment{env("development"), env("staging"), production}, Recovery: env("recovery")},
			{Name: "tickets", Environments: []*release.Environment{env("development"), env("production")}},
		},
		backups: []*release.Backup{{
			ID: "crm-b1", App: "crm", Env: "production", Kind: release.BackupScheduled, CreatedBy: "scheduler",
			CreatedAt: t0.Add(-3 * time.Hour), Size: 5 << 20, Manifest: release.BackupSummary{Tables: 40, Rows: 1000, Files: 3},
		}},
	}
}

func (f *fakeService) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeService) Apps() []*release.App { return f.apps }

func (f *fakeService) App(name string) (*release.App, error) {
	for _, a := range f.apps {
		if a.Name == name {
			return a, nil
		}
	}
	return nil, release.Errorf(release.CodeNotFound, "no app %q", name)
}

// Permit checks only the place: roles are release's (permissions_test.go).
func (f *fakeService) Permit(_ context.Context, _ string, _ release.Action, app, env string) error {
	a, err := f.App(app)
	if err != nil {
		return err
	}
	_, err = a.Env(env)
	return err
}

func (f *fakeService) CreateBackup(_ context.Context, actor, app, env string, kind release.BackupKind) (*release.Backup, error) {
	f.record("create %s %s %s %s", actor, app, env, kind)
	a, err := f.App(app)
	if err != nil {
		return nil, err
	}
	if _, err := a.Env(env); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := &release.Backup{
		ID: fmt.Sprintf("%s-b%d", app, len(f.backups)+1), App: app, Env: env, Kind: kind, CreatedBy: actor, CreatedAt: t0,
		Size: 12_900_000, SHA256: strings.Repeat("ab", 32),
		Manifest: release.BackupSummary{Tables: 42, Rows: 1234567, Files: 310, FileBytes: 45 << 20, Duration: 12345 * time.Millisecond,
			Warnings: []string{"table tmp_import has no primary key"}},
	}
	f.backups = append([]*release.Backup{b}, f.backups...)
	return b, nil
}

func (f *fakeService) ListBackups(_ context.Context, app, env string) ([]*release.Backup, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*release.Backup
	for _, b := range f.backups {
		if b.App == app && b.Env == env {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeService) get(id string) (*release.Backup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backups {
		if b.ID == id {
			return b, nil
		}
	}
	return nil, release.Errorf(release.CodeNotFound, "backup %s not found", id)
}

func (f *fakeService) VerifyBackup(_ context.Context, actor, id string) (*release.Backup, *release.VerifyReport, error) {
	f.record("verify %s %s", actor, id)
	b, err := f.get(id)
	if err != nil {
		return nil, nil, err
	}
	return b, f.verify, nil
}

func (f *fakeService) ShowBackup(_ context.Context, id string) (*release.Backup, error) {
	return f.get(id)
}

func (f *fakeService) DeleteBackup(_ context.Context, actor, id string) (*release.Backup, error) {
	f.record("delete %s %s", actor, id)
	return f.get(id)
}

func (f *fakeService) DownloadBackup(_ context.Context, actor, id string) (*release.Backup, error) {
	f.record("download %s %s", actor, id)
	return f.get(id)
}

func (f *fakeService) ImportBackup(_ context.Context, actor, app, env, name string, file io.Reader) (*release.Backup, error) {
	n, err := io.Copy(io.Discard, file)
	if err != nil {
		return nil, err
	}
	f.record("import %s %s %s %s %d", actor, app, env, name, n)
	return &release.Backup{ID: app + "-b99", App: app, Env: env, Kind: release.BackupImported, Size: n}, nil
}

func (f *fakeService) RestoreBackup(_ context.Context, actor, id, into string, noAnalyze bool) (*release.Release, error) {
	f.record("restore %s %s %q%s", actor, id, into, noAnalyzeWord(noAnalyze))
	b, err := f.get(id)
	if err != nil {
		return nil, err
	}
	env := b.Env
	if into != "" {
		env = into
	}
	return &release.Release{ID: "crm-r9", App: b.App, Env: env, Kind: release.KindRestore, Backup: id, RequestedBy: actor,
		State: release.StateAwaitingApproval}, nil
}

func newDispatcher(f *fakeService) *Dispatcher {
	return &Dispatcher{Services: all(f), Now: func() time.Time { return t0 }, Location: time.UTC}
}

func TestHandle(t *testing.T) {
	type check func(t *testing.T, f *fakeService, r Reply, err error)
	has := func(subs ...string) check {
		return func(t *testing.T, _ *fakeService, r Reply, _ error) {
			for _, s := range subs {
				if !strings.Contains(r.Text, s) {
					t.Errorf("reply lacks %q:\n%s", s, r.Text)
				}
			}
		}
	}
	ok := func(t *testing.T, _ *fakeService, _ Reply, err error) {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	fails := func(code release.Code, msg string) check {
		return func(t *testing.T, _ *fakeService, _ Reply, err error) {
			if err == nil {
				t.Fatal("want an error")
			}
			if release.ErrorCode(err) != code || !strings.Contains(release.ErrorMessage(err), msg) || ExitCode(err) != 1 {
				t.Errorf("error = %v (code %q), want %q containing %q", err, release.ErrorCode(err), code, msg)
			}
		}
	}
	public := func(want bool) check {
		return func(t *testing.T, _ *fakeService, r Reply, _ error) {
			if r.Public != want {
				t.Errorf("Public = %v, want %v", r.Public, want)
			}
		}
	}
	called := func(want string) check {
		return func(t *testing.T, f *fakeService, _ Reply, _ error) {
			if len(f.calls) != 1 || f.calls[0] != want {
				t.Errorf("calls = %q, want [%q]", f.calls, want)
			}
		}
	}
	cases := []struct {
		text   string
		setup  func(f *fakeService)
		checks []check
	}{
		{"help", nil, []check{ok, has("relbot commands", "backup create APP ENV", "lock APP ENV REASON...")}},
		{"help backup", nil, []check{ok, has("usage: backup verify BACKUP", "scratch database")}},
		{"apps", nil, []check{ok, public(false), has("crm", "development -> staging -> production", "recovery", "crm-b1 (production, 3h ago)", "tickets", "none",
			"NocoBase layout", "production: schema nocobase, table prefix nb_, underscored names (detected)", "recovery: unknown: cannot connect")}},
		{"apps", func(f *fakeService) { f.listErr = errors.New("db down") }, []check{ok, has("unknown")}},
		{"apps", func(f *fakeService) { f.apps = nil }, []check{ok, has("No apps are configured")}},
		{"backup create crm production", nil, []check{ok, public(true), called("create alice crm production manual"),
			has("Backup crm-b2 of crm production created", "12.3 MiB", "42 tables, 1,234,567 rows", "310 files, 45.0 MiB", "12.3s",
				"1 warning:", "tmp_import", "backup verify crm-b2")}},
		{"backup create crm nowhere", nil, []check{fails(release.CodeNotFound, `no environment "nowhere"`)}},
		{"backup list crm production", nil, []check{ok, public(false), has("1 backup of crm production", "crm-b1", "scheduled", "2026-03-10 09:00 UTC", "5.0 MiB", "1,000", "never")}},
		{"backup list crm staging", nil, []check{ok, has("No backups of crm staging yet", "backup create crm staging")}},
		{"backup verify crm-b1", func(f *fakeService) {
			f.verify = &release.VerifyReport{Tables: 40, Rows: 1000, Files: 3, Duration: 2 * time.Minute}
		}, []check{ok, called("verify alice crm-b1"), has("Backup crm-b1 verified", "40 tables, 1,000 rows, 3 files", "2m0s")}},
		{"backup verify crm-b1", func(f *fakeService) {
			f.verify = &release.VerifyReport{Tables: 40, Problems: []string{"table users: 999 rows, manifest says 1000"}}
		}, []check{fails(release.CodeDamaged, "failed verification: 1 problem"), has("FAILED", "table users: 999 rows")}},
		{"backup verify crm-b9", nil, []check{fails(release.CodeNotFound, "backup crm-b9 not found")}},
		{"backup restore crm-b1 --into recovery", nil, []check{ok, public(true), called(`restore alice crm-b1 "recovery"`), has("Restore crm-r9 requested: restore crm-b1 into crm recovery")}},
		{"backup restore crm-b1", nil, []check{ok, called(`restore alice crm-b1 ""`), has("Restore crm-r9 requested: restore crm-b1 into crm production", "approve crm-r9")}},
		{"backup restore crm-b1 --no-analyze", nil, []check{ok, called(`restore alice crm-b1 "" no-analyze`)}},
		{"backup download crm-b1", nil, []check{fails(release.CodeUnavailable, "set RELBOT_PUBLIC_URL")}},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			r, err := newDispatcher(f).Handle(context.Background(), Request{User: "alice", Channel: "C1", Text: tc.text})
			for _, c := range tc.checks {
				c(t, f, r, err)
			}
			if err == nil {
				if r.Text == "" {
					t.Error("empty reply text")
				}
				if _, jerr := json.Marshal(r.Data); jerr != nil {
					t.Errorf("Data does not marshal: %v", jerr)
				}
			}
		})
	}
}

type fakeLinks struct{}

func (fakeLinks) ReleaseLink(id string) string { return "https://relbot.test/releases/" + id + "?sig" }
func (fakeLinks) AppLink(app string) string    { return "https://relbot.test/apps/" + app + "?sig" }
func (fakeLinks) BackupsLink(app, env string) string {
	return "https://relbot.test/apps/" + app + "/" + env + "/backups?sig"
}
func (fakeLinks) BackupFileLink(id string) string {
	return "https://relbot.test/backups/" + id + "/file?sig"
}

// With pages on, backup download answers the asker alone with the
// archive's link (the service checked who asks), and status and backup
// list name their pages.
func TestPageLinks(t *testing.T) {
	f := newFake()
	d := newDispatcher(f)
	d.Links = fakeLinks{}
	ctx := context.Background()
	r, err := d.Handle(ctx, Request{User: "alice", Channel: "C1", Text: "backup download crm-b1"})
	if err != nil || r.Public || len(f.calls) != 1 || f.calls[0] != "download alice crm-b1" ||
		!strings.Contains(r.Text, "https://relbot.test/backups/crm-b1/file?sig") || !strings.Contains(r.Text, "holds production's data") {
		t.Errorf("backup download: %v public=%v calls=%q\n%s", err, r.Public, f.calls, r.Text)
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "backup download crm-b9"}); release.ErrorCode(err) != release.CodeNotFound {
		t.Errorf("unknown backup: %v", err)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "backup list crm production"})
	if err != nil || !strings.HasSuffix(r.Text, "Page: https://relbot.test/apps/crm/production/backups?sig") {
		t.Errorf("backup list: %v\n%s", err, r.Text)
	}
}

func TestHandleUsageError(t *testing.T) {
	d := newDispatcher(newFake())
	_, err := d.Handle(context.Background(), Request{User: "alice", Text: "backup verify crm-m7"})
	if ExitCode(err) != 2 {
		t.Fatalf("ExitCode = %d, want 2 (err %v)", ExitCode(err), err)
	}
	r := ErrorReply(err)
	if !strings.Contains(r.Text, "crm-m7 is a migration ID") || !strings.Contains(r.Text, "usage: backup verify BACKUP") {
		t.Errorf("ErrorReply text:\n%s", r.Text)
	}
	b, _ := json.Marshal(r.Data)
	if !strings.Contains(string(b), `"code":"usage"`) {
		t.Errorf("ErrorReply data: %s", b)
	}
}

func TestErrorReplyHidesInternals(t *testing.T) {
	r := ErrorReply(fmt.Errorf("dial tcp 10.0.0.1:5432: password=hunter2"))
	if strings.Contains(r.Text, "hunter2") || !strings.Contains(r.Text, "internal error") {
		t.Errorf("ErrorReply leaks: %q", r.Text)
	}
}

// TestEveryCommandAnswers runs one valid line of each command: each either
// works or says clearly that it is not available yet, never panics.
func TestEveryCommandAnswers(t *testing.T) {
	for _, tc := range parseCases {
		if tc.want == nil {
			continue
		}
		f := newFake()
		f.verify = &release.VerifyReport{}
		_, err := newDispatcher(f).Handle(context.Background(), Request{User: "alice", Text: tc.in})
		if err != nil && release.ErrorCode(err) != release.CodeUnavailable && release.ErrorCode(err) != release.CodeNotFound {
			t.Errorf("%q: %v", tc.in, err)
		}
	}
}

func TestHelpWithoutService(t *testing.T) {
	var d Dispatcher
	if _, err := d.Handle(context.Background(), Request{Text: "help"}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Handle(context.Background(), Request{Text: "apps"})
	if release.ErrorCode(err) != release.CodeUnavailable {
		t.Fatalf("apps without service: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 12_900_000: "12.3 MiB", 5 << 40: "5.0 TiB"} {
		if got := release.Bytes(in); got != want {
			t.Errorf("release.Bytes(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[time.Duration]string{0: "0s", 349_600 * time.Microsecond: "350ms", 4240 * time.Millisecond: "4.2s",
		192_400 * time.Millisecond: "3m12s", 65 * time.Minute: "1h5m"} {
		if got := humanDuration(in); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := count(in); got != want {
			t.Errorf("count(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorReplyCodes: --json carries every release code as it is
// (snake_case), and the text people read is the message alone.
func TestErrorReplyCodes(t *testing.T) {
	for _, code := range release.Codes {
		r := ErrorReply(release.Errorf(code, "backup crm-b9 was not found"))
		b, _ := json.Marshal(r.Data)
		want := fmt.Sprintf(`{"error":{"code":%q,"message":"backup crm-b9 was not found"}}`, code)
		if string(b) != want || strings.Contains(string(code), " ") {
			t.Errorf("%s: --json %s, want %s", code, b, want)
		}
		if r.Text != "backup crm-b9 was not found" {
			t.Errorf("%s: text %q", code, r.Text)
		}
	}
}

// noAnalyzeWord is how the fake records --no-analyze: only when given, so
// that the records of other restores read as before.
func noAnalyzeWord(noAnalyze bool) string {
	if noAnalyze {
		return " no-analyze"
	}
	return ""
}
