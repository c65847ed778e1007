package commands

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// The fake's releases: deploy needs one approval; Run finishes a release.

func (f *fakeService) RequestDeploy(_ context.Context, actor, migration, env string, at *time.Time, allowNewPlugins bool) (*release.Release, error) {
	if f.newPlugins != nil && !allowNewPlugins {
		return nil, &release.Error{Code: release.CodeConflict, Message: migration + " brings plugins " + env + " does not have", Err: &release.NewPluginsRefusal{App: "crm", Env: env, Migration: migration, Plugins: f.newPlugins}}
	}
	f.record("deploy %s %s by %s", migration, env, actor)
	return &release.Release{ID: "crm-r1", App: "crm", Env: env, Kind: release.KindDeploy, Migration: migration, RequestedBy: actor,
		RequestedAt: t0, At: at, State: release.StateAwaitingApproval, Steps: []release.Step{{Name: release.StepApply, State: release.StepPending}}}, nil
}

func (f *fakeService) Approve(_ context.Context, actor, id string) (*release.Release, bool, error) {
	f.record("approve %s by %s", id, actor)
	r := &release.Release{ID: id, App: "crm", Env: "production", Kind: release.KindDeploy, RequestedBy: "alice", State: release.StateScheduled,
		Approvals: []release.Approval{{By: actor, At: t0}}}
	// Where production needs more than this one approval, it waits.
	if a, err := f.App("crm"); err == nil {
		if e, err := a.Env("production"); err == nil && e.Approvals.Required > len(r.Approvals) {
			r.State = release.StateAwaitingApproval
			return r, false, nil
		}
	}
	return r, true, nil
}

func (f *fakeService) Reject(_ context.Context, actor, id, reason string) (*release.Release, error) {
	return &release.Release{ID: id, State: release.StateRejected, Reason: "rejected by " + actor + ": " + reason}, nil
}

func (f *fakeService) Cancel(_ context.Context, actor, id string) (*release.Release, error) {
	return &release.Release{ID: id, State: release.StateCancelled}, nil
}

func (f *fakeService) Resume(_ context.Context, actor, id string) (*release.Release, error) {
	return &release.Release{ID: id, State: release.StateSucceeded}, nil
}

func (f *fakeService) RequestRollback(_ context.Context, actor, id, into string, full, noAnalyze bool) (*release.Release, error) {
	f.record("rollback %s %s into=%q full=%v%s", actor, id, into, full, noAnalyzeWord(noAnalyze))
	return &release.Release{ID: "crm-r2", Kind: release.KindRollback, RollbackOf: id, Env: into, State: release.StateAwaitingApproval}, nil
}

func (f *fakeService) RequestSwitch(_ context.Context, actor, id string) (*release.Release, error) {
	f.record("switch %s %s", actor, id)
	return &release.Release{ID: "crm-r3", App: "crm", Env: "production", Kind: release.KindSwitch, SwitchTo: id, State: release.StateAwaitingApproval}, nil
}

func (f *fakeService) Run(_ context.Context, id string) (*release.Release, error) {
	f.record("run %s", id)
	return &release.Release{ID: id, State: release.StateSucceeded}, nil
}

func (f *fakeService) GetRelease(_ context.Context, id string) (*release.Release, error) {
	for _, r := range f.releases {
		if r.ID == id {
			return r, nil
		}
	}
	f.mu.Lock()
	ran := false
	for _, c := range f.calls {
		ran = ran || c == "run "+id
	}
	f.mu.Unlock()
	state := release.StateScheduled
	if ran {
		state = release.StateSucceeded
	}
	return &release.Release{ID: id, App: "crm", Env: "production", Kind: release.KindDeploy, State: state,
		Steps: []release.Step{{Name: release.StepApply, State: release.StepDone, Log: "applied"}}}, nil
}

func (f *fakeService) ListReleases(_ context.Context, app, env string) ([]*release.Release, error) {
	if f.releases != nil {
		var out []*release.Release
		for _, r := range f.releases {
			if r.App == app && (env == "" || r.Env == env) {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return []*release.Release{{ID: "crm-r1", App: app, Env: "production", Kind: release.KindDeploy, Migration: "crm-m1", State: release.StateSucceeded, RequestedAt: t0}}, nil
}

func (f *fakeService) Lock(_ context.Context, actor, app, env, reason string) (*release.Hold, error) {
	return &release.Hold{App: app, Env: env, Reason: reason, By: actor, At: t0}, nil
}

func (f *fakeService) Unlock(_ context.Context, actor, app, env string) error { return nil }

func (f *fakeService) Holds(context.Context) ([]release.Hold, error) {
	return []release.Hold{{App: "crm", Env: "staging", Reason: "incident 7", By: "bob", At: t0}}, nil
}

// Layouts: crm's production is laid out as NocoBase with all three
// settings, its other environments are plain, recovery does not answer.
func (f *fakeService) Snapshots(_ context.Context, app string) ([]release.EnvSnapshots, error) {
	return f.snapshots, nil
}

func (f *fakeService) Layouts(_ context.Context, app string) ([]release.LayoutReport, error) {
	a, err := f.App(app)
	if err != nil {
		return nil, err
	}
	var out []release.LayoutReport
	for _, e := range a.Environments {
		r := release.LayoutReport{Env: e.Name, Found: true, How: "detected"}
		if e.Name == "production" && app == "crm" {
			r.Layout = release.Layout{Schema: "nocobase", TablePrefix: "nb_", Underscored: true}
		}
		out = append(out, r)
	}
	if a.Recovery != nil {
		out = append(out, release.LayoutReport{Env: release.RecoveryEnv, Error: "cannot connect to database crm_recovery of recovery"})
	}
	return out, nil
}

func TestStatus(t *testing.T) {
	d := &Dispatcher{Services: all(newFake())}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "status crm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"production", "crm-r1 succeeded", "crm-b1", "locked by bob: incident 7", "recovery",
		"NocoBase layout", "schema nocobase, table prefix nb_, underscored names (detected)",
		"schema public, no table prefix, camelCase names (detected)", "unknown: cannot connect to database crm_recovery"} {
		if !strings.Contains(r.Text, want) {
			t.Fatalf("status lacks %q:\n%s", want, r.Text)
		}
	}
	// --json: a default layout is left out rather than printed as {}; a
	// stated or detected other one is there.
	b, _ := json.Marshal(r.Data)
	var envs []struct {
		Env    string
		Layout map[string]any
	}
	if err := json.Unmarshal(b, &envs); err != nil || len(envs) < 3 {
		t.Fatalf("status --json: %v %s", err, b)
	}
	for _, e := range envs {
		_, has := e.Layout["layout"]
		if e.Env == "production" {
			if l, _ := e.Layout["layout"].(map[string]any); l["table_prefix"] != "nb_" || l["schema"] != "nocobase" {
				t.Errorf("production's layout: %v", e.Layout)
			}
		} else if has {
			t.Errorf("%s: the default layout is printed: %v", e.Env, e.Layout)
		}
	}
	if strings.Contains(string(b), "{}") {
		t.Errorf("status --json has an empty object: %s", b)
	}
}

// status shows the release snapshots each target keeps, in the table and
// in --json, and says so when a target cannot be read.
func TestStatusShowsReleaseSnapshots(t *testing.T) {
	f := newFake()
	f.snapshots = []release.EnvSnapshots{
		{Env: "staging", Snapshots: []release.SnapshotInfo{}},
		{Env: "production", Snapshots: []release.SnapshotInfo{{Name: "crm-r7", Migration: "crm-m3", TakenAt: t0, Tables: 4, Bytes: 2 << 20}}},
		{Env: release.RecoveryEnv, Error: "cannot connect to database crm_recovery of recovery"},
	}
	d := &Dispatcher{Services: all(f)}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "status crm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Release snapshots", "crm-r7 (crm-m3, 4 tables, 2.0 MiB)", "none"} {
		if !strings.Contains(r.Text, want) {
			t.Fatalf("status lacks %q:\n%s", want, r.Text)
		}
	}
	b, err := json.Marshal(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"snapshots":[{"name":"crm-r7","migration":"crm-m3","taken_at":"2026-03-10T12:00:00Z","tables":4,"size_bytes":2097152,"reverted":false}]`,
		`"snapshots_error":"cannot connect to database crm_recovery of recovery"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("--json lacks %s:\n%s", want, b)
		}
	}
}

// rollback passes --full on; the reply says which rollback it is.
func TestRollbackFullFlag(t *testing.T) {
	f := newFake()
	d := &Dispatcher{Services: all(f)}
	for in, want := range map[string]string{
		"rollback crm-r1":                 `rollback alice crm-r1 into="" full=false`,
		"rollback crm-r1 --full":          `rollback alice crm-r1 into="" full=true`,
		"rollback crm-r1 --into recovery": `rollback alice crm-r1 into="recovery" full=false`,
	} {
		f.calls = nil
		if _, err := d.Handle(context.Background(), Request{User: "alice", Text: in}); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !slices.Contains(f.calls, want) {
			t.Errorf("%s called %v, want %s", in, f.calls, want)
		}
	}
}

func TestReleaseCommands(t *testing.T) {
	fake := newFake()
	d := &Dispatcher{Services: all(fake)}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "deploy crm-m1 production"})
	if err != nil || !strings.Contains(r.Text, "approve crm-r1") {
		t.Fatalf("deploy: %v\n%s", err, r.Text)
	}
	// Without a server behind it, the approval that makes the release
	// runnable runs it before answering.
	d.Foreground = true
	r, err = d.Handle(context.Background(), Request{User: "bob", Text: "approve crm-r1"})
	if err != nil || !strings.Contains(r.Text, "succeeded") {
		t.Fatalf("approve: %v\n%s", err, r.Text)
	}
	found := false
	for _, c := range fake.calls {
		found = found || c == "run crm-r1"
	}
	if !found {
		t.Fatalf("the runnable release was not run: %v", fake.calls)
	}
	if _, err := d.Handle(context.Background(), Request{User: "bob", Text: "deploy crm-m1 production --at yesterday"}); ExitCode(err) != 2 {
		t.Fatalf("bad --at: %v", err)
	}
	r, err = d.Handle(context.Background(), Request{User: "bob", Text: "lock crm production incident 42"})
	if err != nil || !strings.Contains(r.Text, "incident 42") {
		t.Fatalf("lock: %v\n%s", err, r.Text)
	}
}

// TestReleaseShowStep: the release view cuts each log to a line, with "…"
// at a word boundary, and says how to read the rest; --step prints one
// step's whole log; an unknown step is refused with the steps there are.
func TestReleaseShowStep(t *testing.T) {
	started, ended := t0, t0.Add(90*time.Second)
	long := "restored 40 tables and 1000 rows from crm-b1\n" + strings.Repeat("copied table nb_contracts with its rows ", 10) + "\nlast line: done"
	fake := newFake()
	fake.releases = []*release.Release{{ID: "crm-r4", App: "crm", Env: "recovery", Kind: release.KindRestore, Backup: "crm-b1", State: release.StateSucceeded,
		RequestedBy: "alice", RequestedAt: t0, Steps: []release.Step{
			{Name: release.StepPreflight, State: release.StepDone, Log: "ok"},
			{Name: release.StepRestore, State: release.StepDone, Started: &started, Ended: &ended, Log: long},
		}}}
	d := &Dispatcher{Services: all(fake)}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"})
	if err != nil {
		t.Fatal(err)
	}
	cell := r.Table.Rows[1][3]
	if !strings.HasSuffix(cell, "…") || strings.HasSuffix(strings.TrimSuffix(cell, "…"), " ") || len([]rune(cell)) > maxLogCell ||
		!strings.HasPrefix(long, strings.TrimSuffix(strings.ReplaceAll(cell, " | ", "\n"), "…")) {
		t.Fatalf("cut log cell %q", cell)
	}
	if last := strings.TrimSuffix(cell, "…"); !strings.HasSuffix(last, "nb_contracts") && !strings.HasSuffix(last, "with") &&
		!strings.HasSuffix(last, "its") && !strings.HasSuffix(last, "rows") && !strings.HasSuffix(last, "copied") && !strings.HasSuffix(last, "table") {
		t.Fatalf("the cut is not at a word boundary: %q", cell)
	}
	if !strings.Contains(r.Text, `release show crm-r4 --step "restore backup"`) {
		t.Fatalf("no hint to the whole log:\n%s", r.Text)
	}

	r, err = d.Handle(context.Background(), Request{User: "alice", Text: `release show crm-r4 --step "Restore backup"`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Text, "Release crm-r4, step restore backup: done, took ") || !strings.HasSuffix(r.Text, "\n"+strings.TrimSpace(long)) {
		t.Fatalf("--step does not print the whole log:\n%s", r.Text)
	}
	data, _ := json.Marshal(r.Data)
	var v struct {
		Release, Name, Log string
	}
	if err := json.Unmarshal(data, &v); err != nil || v.Release != "crm-r4" || v.Name != release.StepRestore || v.Log != long {
		t.Fatalf("--step --json: %s (%v)", data, err)
	}

	_, err = d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4 --step backup"})
	if err == nil || ExitCode(err) != 1 || ErrorReply(err).Text != `crm-r4 has no step "backup"; its steps are "preflight", "restore backup"` {
		t.Fatalf("unknown step: %v", err)
	}
}

// The first of two approvals says how many more the release needs, in
// the title and in JSON.
func TestApproveSaysHowManyMore(t *testing.T) {
	fake := newFake()
	prod, _ := fake.apps[0].Env("production")
	prod.Approvals.Required = 3
	d := &Dispatcher{Services: all(fake)}
	r, err := d.Handle(context.Background(), Request{User: "bob", Text: "approve crm-r3"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "bob approved crm-r3; it still needs 2 more approvals"; r.Title != want || !strings.HasPrefix(r.Text, want+"\n") {
		t.Fatalf("title %q, want %q:\n%s", r.Title, want, r.Text)
	}
	if v := r.Data.(ReleaseView); v.ApprovalsLeft != 2 {
		t.Fatalf("approvals_left %d, want 2", v.ApprovalsLeft)
	}
	prod.Approvals.Required = 2
	if r, err = d.Handle(context.Background(), Request{User: "bob", Text: "approve crm-r3"}); err != nil || r.Title != "bob approved crm-r3; it still needs 1 more approval" {
		t.Fatalf("title %q (%v)", r.Title, err)
	}
}

// Steps that never ran in a release that ended read "not run", not
// pending, in the view and in --step, and --json says not_run. A release
// that may still run keeps them pending, in text and JSON.
func TestEndedReleaseStepsNotRun(t *testing.T) {
	fake := newFake()
	rel := &release.Release{ID: "crm-r4", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m1", State: release.StateRejected,
		RequestedBy: "alice", RequestedAt: t0, Steps: []release.Step{
			{Name: release.StepPreflight, State: release.StepPending},
			{Name: release.StepApply, State: release.StepPending},
		}}
	fake.releases = []*release.Release{rel}
	d := &Dispatcher{Services: all(fake)}
	for _, st := range []release.State{release.StateRejected, release.StateCancelled, release.StateExpired} {
		rel.State = st
		r, err := d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Text, "pending") || r.Table.Rows[0][1] != "– not run" || r.Table.Rows[1][1] != "– not run" {
			t.Fatalf("%s: steps shown as %q, %q:\n%s", st, r.Table.Rows[0][1], r.Table.Rows[1][1], r.Text)
		}
		if b, _ := json.Marshal(r.Data); strings.Count(string(b), `"state":"not_run"`) != 2 || strings.Contains(string(b), "pending") ||
			!strings.Contains(string(b), `"state":"`+JSONWord(st)+`"`) {
			t.Fatalf("%s: --json %s", st, b)
		}
		if r, err = d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4 --step preflight"}); err != nil ||
			!strings.HasPrefix(r.Text, "Release crm-r4, step preflight: not run") {
			t.Fatalf("%s --step: %v\n%s", st, err, r.Text)
		}
		if b, _ := json.Marshal(r.Data); !strings.HasPrefix(string(b), `{"release":"crm-r4","name":"preflight",`) || !strings.Contains(string(b), `"state":"not_run"`) {
			t.Fatalf("%s --step --json: %s", st, b)
		}
	}
	for _, st := range []release.State{release.StateAwaitingApproval, release.StateScheduled, release.StateInterrupted} {
		rel.State = st
		r, err := d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"})
		if err != nil || r.Table.Rows[0][1] != "· pending" {
			t.Fatalf("%s: step shown as %q (%v)", st, r.Table.Rows[0][1], err)
		}
		if b, _ := json.Marshal(r.Data); strings.Count(string(b), `"state":"pending"`) != 2 || strings.Contains(string(b), "not_run") {
			t.Fatalf("%s: --json %s", st, b)
		}
	}
	// A deploy that failed at its first step never ran the second.
	rel.State, rel.Steps[0].State = release.StateFailed, release.StepFailed
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"})
	b, _ := json.Marshal(r.Data)
	var got struct {
		State string
		Steps []struct{ Name, State string }
	}
	if err != nil || json.Unmarshal(b, &got) != nil || got.State != "failed" || len(got.Steps) != 2 || got.Steps[0].State != "failed" || got.Steps[1].State != "not_run" {
		t.Fatalf("failed: --json %s (%v)", b, err)
	}
}

// The cut-log hint names the failed step when its log is cut, not the
// first cut step before it.
func TestReleaseShowHintNamesFailedStep(t *testing.T) {
	long := strings.Repeat("checked chain, marker, plugins and variables ", 10)
	fake := newFake()
	fake.releases = []*release.Release{{ID: "crm-r4", App: "crm", Env: "staging", Kind: release.KindDeploy, Migration: "crm-m1", State: release.StateFailed,
		RequestedBy: "alice", RequestedAt: t0, Steps: []release.Step{
			{Name: release.StepPreflight, State: release.StepDone, Log: long},
			{Name: release.StepApply, State: release.StepDone, Log: long},
			{Name: release.StepChecks, State: release.StepFailed, Log: "1 of 2 checks failed: " + long},
			{Name: release.StepScaleUp, State: release.StepSkipped, Log: long},
		}}}
	d := &Dispatcher{Services: all(fake)}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, `a step's whole log: release show crm-r4 --step "validation checks"`) {
		t.Fatalf("the hint does not name the failed step:\n%s", r.Text)
	}
	// Without a failed step it names the first cut one.
	fake.releases[0].Steps[2].State = release.StepDone
	if r, err = d.Handle(context.Background(), Request{User: "alice", Text: "release show crm-r4"}); err != nil ||
		!strings.Contains(r.Text, "a step's whole log: release show crm-r4 --step preflight") {
		t.Fatalf("the hint does not name the first cut step: %v\n%s", err, r.Text)
	}
}

// release list names the environment it lists when one is given.
func TestReleaseListHeader(t *testing.T) {
	fake := newFake()
	fake.releases = []*release.Release{
		{ID: "crm-r2", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m1", State: release.StateSucceeded, RequestedAt: t0},
		{ID: "crm-r1", App: "crm", Env: "staging", Kind: release.KindDeploy, Migration: "crm-m1", State: release.StateSucceeded, RequestedAt: t0},
	}
	d := &Dispatcher{Services: all(fake)}
	for text, want := range map[string]string{
		"release list crm":            "2 releases of crm, newest first",
		"release list crm production": "1 release of crm production, newest first",
		"release list crm recovery":   "No releases of crm recovery yet.",
	} {
		r, err := d.Handle(context.Background(), Request{User: "alice", Text: text})
		if err != nil || !strings.HasPrefix(r.Text, want) {
			t.Fatalf("%s: %v\n%s\nwant it to start %q", text, err, r.Text, want)
		}
	}
}

// TestStatusAfterASwitch: once a switch moved production's users to
// recovery, status says so, in text and JSON, whatever ran in production
// since (here a cancelled deploy).
func TestStatusAfterASwitch(t *testing.T) {
	ended := t0.Add(time.Hour)
	fake := newFake()
	fake.releases = []*release.Release{ // newest first
		{ID: "crm-r9", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m2", State: release.StateCancelled, RequestedAt: t0.Add(2 * time.Hour)},
		{ID: "crm-r2", App: "crm", Env: "production", Kind: release.KindSwitch, SwitchTo: "crm-r1", Backup: "crm-b1", State: release.StateSucceeded, RequestedAt: t0,
			Steps: []release.Step{{Name: release.StepSwitch, State: release.StepDone, Ended: &ended}}},
		{ID: "crm-r1", App: "crm", Env: release.RecoveryEnv, Kind: release.KindRestore, Backup: "crm-b1", State: release.StateSucceeded, RequestedAt: t0.Add(-time.Hour)},
	}
	d := &Dispatcher{Services: all(fake), Location: time.UTC}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "status crm"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Users of crm production are on recovery since crm-r2 switched them (to what crm-r1 restored), 2026-03-10 13:00 UTC; production no longer serves them."
	if !strings.Contains(r.Text, want) || !strings.Contains(r.Text, "crm-r9 cancelled") {
		t.Fatalf("status after a switch lacks %q:\n%s", want, r.Text)
	}
	users := map[string]*UsersView{}
	for _, v := range r.Data.([]EnvStatus) {
		users[v.Env] = v.Users
	}
	if u := users["production"]; u == nil || u.ServedBy != "recovery" || u.Switch != "crm-r2" || u.Restore != "crm-r1" || !u.Since.Equal(ended) {
		t.Fatalf("production's users: %+v", u)
	}
	if u := users["recovery"]; u == nil || u.ServedBy != "recovery" || u.UsersOf != "production" || u.Switch != "crm-r2" {
		t.Fatalf("recovery's users: %+v", u)
	}
	if u := users["staging"]; u == nil || u.ServedBy != "staging" || u.Switch != "" {
		t.Fatalf("staging's users: %+v", u)
	}

	// Without a switch no sentence, and recovery serves nobody.
	fake.releases = fake.releases[2:]
	r, err = d.Handle(context.Background(), Request{User: "alice", Text: "status crm"})
	if err != nil || strings.Contains(r.Text, "Users of") {
		t.Fatalf("status without a switch: %v\n%s", err, r.Text)
	}
	for _, v := range r.Data.([]EnvStatus) {
		if (v.Env == "recovery") != (v.Users == nil) {
			t.Fatalf("%s users: %+v", v.Env, v.Users)
		}
	}
}
