package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/memory"
)

func TestRecordsAtScrape(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore()
	created := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	verified := created.Add(10 * time.Minute)
	for _, b := range []*release.Backup{
		{ID: "crm-b1", App: "crm", Env: "production", Kind: release.BackupScheduled, CreatedAt: created, Size: 1000, VerifiedAt: &verified,
			Manifest: release.BackupSummary{Duration: 3 * time.Second}},
		{ID: "crm-b2", App: "crm", Env: "production", Kind: release.BackupPreRelease, CreatedAt: created.Add(time.Hour), Size: 2000,
			Manifest: release.BackupSummary{Duration: 5 * time.Second}},
	} {
		if err := store.SaveBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*release.Release{
		{ID: "crm-r1", App: "crm", Env: "production", Kind: release.KindDeploy, State: release.StateSucceeded, RequestedBy: "alice", RequestedAt: created},
		{ID: "crm-r2", App: "crm", Env: "production", Kind: release.KindDeploy, State: release.StateInterrupted, RequestedBy: "alice", RequestedAt: created.Add(time.Hour)},
	} {
		if err := store.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	app := &release.App{Name: "crm", Environments: []*release.Environment{{Name: "development"}, {Name: "production"}}}
	m := New(func() int { return 3 }, slog.New(slog.DiscardHandler))
	m.Records(store, store, []*release.App{app})
	want := `
# HELP relbot_last_backup_size_bytes The size of the newest backup's archive.
# TYPE relbot_last_backup_size_bytes gauge
relbot_last_backup_size_bytes{app="crm",env="production"} 2000
# HELP relbot_last_backup_timestamp_seconds When the newest backup of the environment was taken (any kind), as a Unix time; alert when it is too old.
# TYPE relbot_last_backup_timestamp_seconds gauge
relbot_last_backup_timestamp_seconds{app="crm",env="production"} 1.796094e+09
# HELP relbot_last_release_failed 1 when the environment's newest ended release failed or was interrupted, else 0.
# TYPE relbot_last_release_failed gauge
relbot_last_release_failed{app="crm",env="production"} 1
# HELP relbot_last_verified_backup_timestamp_seconds When the newest backup whose verify passed was taken, as a Unix time.
# TYPE relbot_last_verified_backup_timestamp_seconds gauge
relbot_last_verified_backup_timestamp_seconds{app="crm",env="production"} 1.7960904e+09
# HELP relbot_last_verify_timestamp_seconds When a verify of the environment's backups last passed, as a Unix time.
# TYPE relbot_last_verify_timestamp_seconds gauge
relbot_last_verify_timestamp_seconds{app="crm",env="production"} 1.796091e+09
# HELP relbot_work_queue_depth Slack commands and clicks waiting for a worker in this process.
# TYPE relbot_work_queue_depth gauge
relbot_work_queue_depth 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "relbot_last_backup_size_bytes", "relbot_last_backup_timestamp_seconds",
		"relbot_last_release_failed", "relbot_last_verified_backup_timestamp_seconds", "relbot_last_verify_timestamp_seconds", "relbot_work_queue_depth"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(m.Registry(), "relbot_releases_open")
	if err != nil || n != 8 { // four states, two environments
		t.Fatalf("open releases: %d series, %v", n, err)
	}
	if got := testutil.CollectAndCount(m.releases); got != 0 {
		t.Fatalf("nothing ran in this process, yet %d release series", got)
	}
}

// A scrape that cannot read an environment's records says so in a
// figure of its own rather than failing the whole scrape.
func TestRecordsThatCannotBeRead(t *testing.T) {
	m := New(nil, slog.New(slog.DiscardHandler))
	m.Records(failing{}, failing{}, []*release.App{{Name: "crm", Environments: []*release.Environment{{Name: "production"}}}})
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP relbot_records_scrape_errors Environments whose records could not be read during this scrape.
# TYPE relbot_records_scrape_errors gauge
relbot_records_scrape_errors 1
`), "relbot_records_scrape_errors"); err != nil {
		t.Fatal(err)
	}
}

type failing struct{}

func (failing) ListBackups(context.Context, string, string) ([]*release.Backup, error) {
	return nil, errors.New("down")
}
func (failing) ListReleases(context.Context, string, string) ([]*release.Release, error) {
	return nil, errors.New("down")
}

func TestSlackCallsCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/chat.update":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/views.open":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	m := New(nil, slog.New(slog.DiscardHandler))
	client := &http.Client{Transport: m.SlackTransport(nil)}
	for _, method := range []string{"chat.postMessage", "chat.postMessage", "chat.update", "views.open"} {
		resp, err := client.Post(srv.URL+"/api/"+method, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := client.Post("http://127.0.0.1:1/api/auth.test", "application/json", nil); err == nil {
		t.Fatal("a closed port answered")
	}
	for _, c := range []struct {
		method, result string
		want           float64
	}{{"chat.postMessage", "ok", 2}, {"chat.update", "rate_limited", 1}, {"views.open", "error", 1}, {"auth.test", "unreachable", 1}} {
		if got := testutil.ToFloat64(m.slack.WithLabelValues(c.method, c.result)); got != c.want {
			t.Errorf("%s %s: %v calls, want %v", c.method, c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.limited.WithLabelValues("chat.update")); got != 1 {
		t.Errorf("429s of chat.update: %v", got)
	}
}

// Releases are counted by outcome and steps timed as the events arrive,
// and every event still reaches the next notifier.
func TestNotifierCountsAndPassesOn(t *testing.T) {
	m := New(nil, slog.New(slog.DiscardHandler))
	var passed []release.EventKind
	n := m.Notifier(notifyFunc(func(_ context.Context, _ *release.Release, e release.Event) { passed = append(passed, e.Kind) }))
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	end := start.Add(90 * time.Second)
	r := &release.Release{ID: "crm-r1", App: "crm", Env: "production", Kind: release.KindDeploy,
		Steps: []release.Step{{Name: release.StepApply, State: release.StepDone, Started: &start, Ended: &end}}}
	ctx := context.Background()
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventApproved})
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventStepFinished, Step: release.StepApply})
	n.ReleaseChanged(ctx, r, release.Event{Kind: release.EventFailed})
	if len(passed) != 3 {
		t.Fatalf("events passed on: %v", passed)
	}
	if got := testutil.ToFloat64(m.releases.WithLabelValues("crm", "production", "deploy", "failed")); got != 1 {
		t.Fatalf("failed releases: %v", got)
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP relbot_release_step_duration_seconds How long each release step took, by step and outcome.
# TYPE relbot_release_step_duration_seconds histogram
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="0.1"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="0.5"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="1"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="5"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="15"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="30"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="60"} 0
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="120"} 1
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="300"} 1
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="600"} 1
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="1800"} 1
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="3600"} 1
relbot_release_step_duration_seconds_bucket{app="crm",env="production",outcome="done",step="apply migration",le="+Inf"} 1
relbot_release_step_duration_seconds_sum{app="crm",env="production",outcome="done",step="apply migration"} 90
relbot_release_step_duration_seconds_count{app="crm",env="production",outcome="done",step="apply migration"} 1
`), "relbot_release_step_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}

type notifyFunc func(context.Context, *release.Release, release.Event)

func (f notifyFunc) ReleaseChanged(ctx context.Context, r *release.Release, e release.Event) {
	f(ctx, r, e)
}

// The shipped alert rules and dashboard name only figures relbot exports,
// and the rules file is well-formed: a rename here cannot silence an
// alert there.
func TestDeployedRulesAndDashboardNameRealMetrics(t *testing.T) {
	m := New(func() int { return 0 }, slog.New(slog.DiscardHandler))
	store := memory.NewStore()
	now := time.Now()
	ctx := context.Background()
	if err := store.SaveBackup(ctx, &release.Backup{ID: "crm-b1", App: "crm", Env: "production", Kind: release.BackupScheduled, CreatedAt: now, VerifiedAt: &now}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateRelease(ctx, &release.Release{ID: "crm-r1", App: "crm", Env: "production", Kind: release.KindDeploy, State: release.StateFailed, RequestedBy: "a", RequestedAt: now}); err != nil {
		t.Fatal(err)
	}
	m.Records(store, store, []*release.App{{Name: "crm", Environments: []*release.Environment{{Name: "production"}}}})
	// Every vector gets a series, so that it is gathered.
	m.releases.WithLabelValues("crm", "production", "deploy", "succeeded").Inc()
	m.steps.WithLabelValues("crm", "production", "apply migration", "done").Observe(1)
	m.slack.WithLabelValues("chat.update", "ok").Inc()
	m.limited.WithLabelValues("chat.update").Inc()
	m.ObserveAck("command", time.Millisecond)
	m.ScheduledRun("crm", "production", "verify", false)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				For         string
				Annotations map[string]string
			}
		}
	}
	raw, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil || len(rules.Groups) == 0 {
		t.Fatalf("alerts.yaml: %v", err)
	}
	dashboard, err := os.ReadFile("../../deploy/grafana/relbot-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dashboard, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert rule %+v lacks a name, an expression or a summary", r)
			}
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %q #%d", p.Title, i)] = tg.Expr
		}
	}
	name := regexp.MustCompile(`relbot_[a-z_]+`)
	for where, e := range exprs {
		names := name.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%s reads no relbot figure: %s", where, e)
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if trimmed, ok := strings.CutSuffix(n, suffix); ok && exported[trimmed] {
					base = trimmed
				}
			}
			if !exported[base] {
				t.Errorf("%s reads %s, which relbot does not export", where, n)
			}
		}
	}
}
