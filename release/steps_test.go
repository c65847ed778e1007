package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the step table and the runner against small fakes of
// the interfaces the runner calls (store, locker, hooks, checks) and fake
// engine steps (preflight, backup, apply, restore): no PostgreSQL.

// memReleases is the least ReleaseStore the runner needs: compare-and-set
// moves (checking nothing else, so that the domain's own check is what is
// tested) and a log of the moves made.
type memReleases struct {
	mu    sync.Mutex
	rs    map[string]*Release
	moves []string // "id: from -> to"
}

func newMemReleases() *memReleases { return &memReleases{rs: map[string]*Release{}} }

func (m *memReleases) copyOf(r *Release) *Release {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.Checks = slices.Clone(r.Checks)
	c.Approvals = slices.Clone(r.Approvals)
	return &c
}

func (m *memReleases) get(id string) (*Release, error) {
	r, ok := m.rs[id]
	if !ok {
		return nil, Errorf(CodeNotFound, "no release %s", id)
	}
	return r, nil
}

func (m *memReleases) CreateRelease(_ context.Context, r *Release) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.rs {
		if o.App == r.App && o.Env == r.Env && o.State.Open() {
			return Errorf(CodeConflict, "%s %s already has an open release, %s", r.App, r.Env, o.ID)
		}
	}
	m.rs[r.ID] = m.copyOf(r)
	return nil
}

func (m *memReleases) GetRelease(_ context.Context, id string) (*Release, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return nil, err
	}
	return m.copyOf(r), nil
}

func (m *memReleases) ListReleases(_ context.Context, app, env string) ([]*Release, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Release
	for _, r := range m.rs {
		if r.App == app && (env == "" || r.Env == env) {
			out = append(out, m.copyOf(r))
		}
	}
	slices.SortFunc(out, func(a, b *Release) int { return b.RequestedAt.Compare(a.RequestedAt) })
	return out, nil
}

func (m *memReleases) MoveRelease(_ context.Context, id string, from, to State, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return err
	}
	if r.State != from {
		return Errorf(CodeConflict, "%s is %s, not %s", id, r.State, from)
	}
	r.State, r.Reason = to, reason
	m.moves = append(m.moves, fmt.Sprintf("%s: %s -> %s", id, from, to))
	return nil
}

func (m *memReleases) AddApproval(_ context.Context, id string, a Approval) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return false, err
	}
	for _, x := range r.Approvals {
		if x.By == a.By {
			return false, nil
		}
	}
	r.Approvals = append(r.Approvals, a)
	return true, nil
}

func (m *memReleases) SaveSteps(_ context.Context, id string, steps []Step) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err == nil {
		r.Steps = slices.Clone(steps)
	}
	return err
}

func (m *memReleases) SaveChecks(_ context.Context, id string, checks []CheckResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err == nil {
		r.Checks = slices.Clone(checks)
	}
	return err
}

func (m *memReleases) SetBackup(_ context.Context, id, backup string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err == nil {
		r.Backup = backup
	}
	return err
}

func (m *memReleases) TakeLease(_ context.Context, id string, from State, owner string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return err
	}
	if r.State != from {
		return Errorf(CodeConflict, "%s is %s, not %s", id, r.State, from)
	}
	r.State, r.Reason, r.LeaseOwner, r.LeaseUntil = StateRunning, "", owner, &until
	m.moves = append(m.moves, fmt.Sprintf("%s: %s -> %s", id, from, StateRunning))
	return nil
}

func (m *memReleases) RenewLease(_ context.Context, id, owner string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err != nil {
		return err
	}
	if r.State != StateRunning || r.LeaseOwner != owner {
		return Errorf(CodeConflict, "lease of %s lost", id)
	}
	r.LeaseUntil = &until
	return nil
}

func (m *memReleases) ExpiredLeases(_ context.Context, now time.Time) ([]*Release, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Release
	for _, r := range m.rs {
		if r.State == StateRunning && r.LeaseUntil != nil && r.LeaseUntil.Before(now) {
			out = append(out, m.copyOf(r))
		}
	}
	return out, nil
}

func (m *memReleases) SetMessage(context.Context, string, string, string) error { return nil }
func (m *memReleases) PutHold(context.Context, Hold) error                      { return nil }
func (m *memReleases) DeleteHold(context.Context, string, string) error         { return nil }
func (m *memReleases) GetHold(context.Context, string, string) (*Hold, error)   { return nil, nil }
func (m *memReleases) ListHolds(context.Context) ([]Hold, error)                { return nil, nil }

// freeLocker grants every lock.
type freeLocker struct{}

func (freeLocker) TryLock(context.Context, string, string, time.Duration) (Lock, error) {
	return freeLock{}, nil
}

type freeLock struct{}

func (freeLock) Refresh(context.Context, time.Duration) error { return nil }
func (freeLock) Unlock(context.Context) error                 { return nil }

func (m *memReleases) SetSnapshot(_ context.Context, id, snapshot string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.get(id)
	if err == nil {
		r.Snapshot = snapshot
	}
	return err
}

// stepLog records, in order, the hooks and engine steps a run called.
type stepLog struct {
	mu     sync.Mutex
	called []string
	fail   map[string]bool // hook or engine step names that fail
	errs   []error         // the errors they returned
}

func (l *stepLog) call(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.called = append(l.called, name)
	if l.fail[name] && name != "checks" {
		err := errors.New(name + " broke")
		l.errs = append(l.errs, err)
		return err
	}
	if l.fail[name] {
		return errors.New("check failed")
	}
	return nil
}

// Run is the Hooks fake: a hook env does not define did not run.
func (l *stepLog) Run(_ context.Context, env *Environment, name string) (string, bool, error) {
	if _, ok := env.Hooks[name]; !ok {
		return "", false, nil
	}
	if err := l.call(name); err != nil {
		return "", true, err
	}
	return name + " ok", true, nil
}

// checks is the Checker fake: its checks fail when "checks" fails.
type checks struct{ l *stepLog }

func (c checks) Run(_ context.Context, env *Environment) []CheckResult {
	ok := c.l.call("checks") == nil
	return []CheckResult{{Name: env.Checks[0].Name, OK: ok}}
}

// engine replaces the steps that reach databases and archives; each calls
// the log under its own name.
func engineSteps(l *stepLog) map[string]stepDef {
	table := maps.Clone(stepTable)
	fake := func(name string) stepFunc {
		return func(_ context.Context, s *ReleaseService, r *Release, _ *App, _ *Environment) (string, bool, error) {
			if err := l.call(name); err != nil {
				return "", true, Errorf(CodeConflict, "%s: %w", name, err)
			}
			if name == "backup" {
				r.Backup = "crm-b1"
				return "", true, s.Store.SetBackup(context.Background(), r.ID, r.Backup)
			}
			if name == "apply" && applyOptions(r).Snapshot != "" {
				return "apply done", true, s.keptSnapshot(context.Background(), r)
			}
			return name + " done", true, nil
		}
	}
	for step, engine := range map[string]string{StepPreflight: "preflight", StepBackup: "backup", StepPrepare: "prepare", StepApply: "apply", StepRestore: "restore"} {
		d := table[step]
		d.do = fake(engine)
		table[step] = d
	}
	apply := table[StepApply]
	probe := *apply.resume
	probe.committed = probeApply(func(context.Context, *ReleaseService, *Release) (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.fail["committed"], nil // "committed" in fail: the marker is there
	})
	apply.resume = &probe
	table[StepApply] = apply
	return table
}

// windowEngine is the fake of the engine's window methods the real steps
// call (revert, its probe, retention, unprepare); the rest of the engine
// is faked as steps above.
type windowEngine struct {
	MigrationEngine // nil: the faked steps call nothing else
	l               *stepLog
	// snapshots are those the target keeps, newest first.
	snapshots []SnapshotInfo
}

func (w *windowEngine) Unprepare(_ context.Context, _ *App, _ *Environment, key string) error {
	return w.l.call("unprepare " + key)
}

func (w *windowEngine) Revert(_ context.Context, _ *App, _ *Environment, snapshot string, _ RevertOptions) (*ApplyResult, error) {
	if err := w.l.call("revert " + snapshot); err != nil {
		return nil, err
	}
	return &ApplyResult{Steps: []ExecutedStep{{What: "put back"}}}, nil
}

func (w *windowEngine) Reverted(context.Context, *App, *Environment, string) (bool, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.fail["reverted"], nil
}

func (w *windowEngine) Snapshots(context.Context, *App, *Environment) ([]SnapshotInfo, error) {
	return slices.Clone(w.snapshots), nil
}

func (w *windowEngine) DropSnapshot(_ context.Context, _ *App, _ *Environment, name string) error {
	if err := w.l.call("drop " + name); err != nil {
		return err
	}
	w.snapshots = slices.DeleteFunc(w.snapshots, func(s SnapshotInfo) bool { return s.Name == name })
	return nil
}

var allHooks = map[string]Hook{HookMaintenanceOn: {}, HookMaintenanceOff: {}, HookScaleDown: {}, HookScaleUp: {}, HookRestart: {}, HookSwitchTraffic: {}}

// stepsApp has a staging with every hook and a check, a production that
// needs an approval, a recovery, and a bare development without hooks.
func stepsApp() *App {
	return &App{Name: "crm", Environments: []*Environment{
		{Name: "development"},
		{Name: "staging", Hooks: allHooks, Checks: []Check{{Name: "home page"}}},
		{Name: "production", Hooks: allHooks, Checks: []Check{{Name: "home page"}}, Notice: 10 * time.Minute,
			Approvals: ApprovalPolicy{Required: 1, Approvers: []string{"U01AAA"}}},
	}, Recovery: &Environment{Name: RecoveryEnv, Hooks: allHooks, Checks: []Check{{Name: "home page"}}}}
}

func stepsService(l *stepLog) (*ReleaseService, *memReleases) {
	store := newMemReleases()
	core := NewCore([]*App{stepsApp()}, nil, freeLocker{}, nil)
	s := &ReleaseService{Core: core, Store: store, Hooks: l, Checker: checks{l}, steps: engineSteps(l),
		Migrations: &MigrationService{Core: core, Engine: &windowEngine{l: l, snapshots: []SnapshotInfo{{Name: "crm-r1"}, {Name: "crm-r0"}}}}}
	return s, store
}

// scheduled records a release of kind to env, ready to run.
func scheduled(t *testing.T, s *ReleaseService, store *memReleases, kind ReleaseKind, env string) *Release {
	t.Helper()
	a, _ := s.App("crm")
	e, err := a.Env(env)
	if err != nil {
		t.Fatal(err)
	}
	r := &Release{ID: "crm-r1", App: "crm", Env: e.Name, Kind: kind, State: StateScheduled, RequestedAt: time.Now(), RequestedBy: "alice"}
	switch kind {
	case kindTargeted:
		r.Kind, r.Snapshot, r.RollbackOf = KindRollback, "crm-r0", "crm-r0"
	case KindRollback:
		r.Backup, r.RollbackOf = "crm-b1", "crm-r0"
	case KindRestore:
		r.Backup = "crm-b1"
	}
	r.Steps = stepsFor(r, e)
	if err := store.CreateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// kindTargeted stands, in these tables, for a targeted rollback.
const kindTargeted ReleaseKind = "targeted rollback"

func stepStates(r *Release) string {
	var b []string
	for _, st := range r.Steps {
		b = append(b, st.Name+"="+string(st.State))
	}
	return strings.Join(b, ", ")
}

func names(steps []Step) []string {
	out := make([]string, len(steps))
	for i, st := range steps {
		out[i] = st.Name
	}
	return out
}

// The plan of every kind, with and without the variants that change it:
// a notice before a scheduled start, a restore into recovery. Approvals
// and hooks do not change a plan (hooks an environment lacks are skipped
// when the release runs).
func TestStepPlans(t *testing.T) {
	// The backup and the preparation run before the window, while users
	// work; the retention after it.
	deploy := []string{StepPreflight, StepBackup, StepPrepare, StepMaintenanceOn, StepScaleDown, StepApply, StepRestart, StepChecks, StepScaleUp, StepMaintenanceOff, StepRetention}
	withNotice := slices.Insert(slices.Clone(deploy), 1, StepNotice)
	classic := []string{StepPreflight, StepMaintenanceOn, StepScaleDown, StepBackup, StepApply, StepRestart, StepChecks, StepScaleUp, StepMaintenanceOff}
	restoreInPlace := []string{StepPreflight, StepMaintenanceOn, StepScaleDown, StepRestore, StepRestart, StepChecks, StepScaleUp, StepMaintenanceOff}
	restoreRecovery := []string{StepPreflight, StepRestore, StepRestart, StepChecks}
	targeted := []string{StepPreflight, StepMaintenanceOn, StepScaleDown, StepRevert, StepRestart, StepChecks, StepScaleUp, StepMaintenanceOff}
	at := time.Now().Add(time.Hour)
	a := stepsApp()
	staging, production := a.Environments[1], a.Environments[2]
	for _, c := range []struct {
		name    string
		r       Release
		e       *Environment
		classic bool
		want    []string
	}{
		{"deploy now", Release{Kind: KindDeploy}, staging, false, deploy},
		{"deploy now where notice is given", Release{Kind: KindDeploy}, production, false, deploy},
		{"deploy --at where no notice is given", Release{Kind: KindDeploy, At: &at}, staging, false, deploy},
		{"deploy --at with notice", Release{Kind: KindDeploy, At: &at}, production, false, withNotice},
		{"deploy without hooks or checks", Release{Kind: KindDeploy}, a.Environments[0], false, deploy},
		{"deploy the classic way (bench window)", Release{Kind: KindDeploy}, staging, true, classic},
		{"deploy --at with notice the classic way", Release{Kind: KindDeploy, At: &at}, production, true, slices.Insert(slices.Clone(classic), 1, StepNotice)},
		{"rollback in place", Release{Kind: KindRollback, Backup: "crm-b1"}, production, false, restoreInPlace},
		{"rollback --at in place (no notice step)", Release{Kind: KindRollback, At: &at}, production, false, restoreInPlace},
		{"rollback into recovery", Release{Kind: KindRollback, Backup: "crm-b1"}, a.Recovery, false, restoreRecovery},
		{"targeted rollback", Release{Kind: KindRollback, Snapshot: "crm-r1", RollbackOf: "crm-r1"}, production, false, targeted},
		{"targeted rollback, classic service (only deploys change)", Release{Kind: KindRollback, Snapshot: "crm-r1"}, staging, true, targeted},
		{"restore in place", Release{Kind: KindRestore, Backup: "crm-b1"}, staging, false, restoreInPlace},
		{"restore in place, classic service", Release{Kind: KindRestore, Backup: "crm-b1"}, staging, true, restoreInPlace},
		{"restore into recovery", Release{Kind: KindRestore, Backup: "crm-b1"}, a.Recovery, false, restoreRecovery},
		{"switch", Release{Kind: KindSwitch, SwitchTo: "crm-r2"}, production, false, []string{StepPreflight, StepSwitch}},
	} {
		got := stepsOf(planFor(&c.r, c.classic), &c.r, c.e)
		if !slices.Equal(names(got), c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, names(got), c.want)
		}
		for _, st := range got {
			if st.State != StepPending {
				t.Errorf("%s: step %s starts %s, want pending", c.name, st.Name, st.State)
			}
		}
		// The apply swaps in a preparation and keeps a snapshot exactly
		// when the plan prepared it.
		r := c.r
		r.ID, r.Steps = "crm-r9", got
		want := ApplyOptions{}
		if slices.Contains(c.want, StepPrepare) {
			want = ApplyOptions{Prepared: "crm-r9", Snapshot: "crm-r9"}
		}
		if opts := applyOptions(&r); opts.Prepared != want.Prepared || opts.Snapshot != want.Snapshot {
			t.Errorf("%s: apply options %+v, want %+v", c.name, opts, want)
		}
	}
	for _, p := range [][]planStep{classicDeployPlan, targetedPlan} {
		for _, st := range p {
			if d, ok := stepTable[st.name]; !ok || d.do == nil {
				t.Errorf("a plan names step %q the table does not define", st.name)
			}
		}
	}
	// Every kind has a plan, and every step a plan names is in the table.
	for _, k := range []ReleaseKind{KindDeploy, KindRollback, KindRestore, KindSwitch} {
		if len(plans[k]) == 0 {
			t.Errorf("kind %s has no plan", k)
		}
		for _, p := range plans[k] {
			if d, ok := stepTable[p.name]; !ok || d.do == nil {
				t.Errorf("plan of %s names step %q the table does not define", k, p.name)
			}
		}
	}
	// The committing steps are exactly the three that change the target's
	// data, and the apply and the revert are resumed by asking the target.
	for name, d := range stepTable {
		if want := name == StepApply || name == StepRestore || name == StepRevert; d.commits != want {
			t.Errorf("step %s commits=%v, want %v", name, d.commits, want)
		}
		if want := name == StepApply || name == StepRevert; (d.resume != nil) != want {
			t.Errorf("step %s has a resume probe: %v, want %v", name, d.resume != nil, want)
		}
		if want := name == StepScaleUp || name == StepMaintenanceOff; d.undo != want {
			t.Errorf("step %s undo=%v, want %v", name, d.undo, want)
		}
	}
}

// What a failure at each step leads to: the release's state and reason,
// the state of every step, and which undo steps ran.
func TestStepFailures(t *testing.T) {
	const (
		notApplied  = "the migration was not applied: the target is as it was"
		applied     = "the migration was applied and maintenance stays on: roll back with `rollback crm-r1`"
		offByHand   = "turn maintenance off by hand: run the maintenance_off hook of crm staging in apps.yaml (relbot has no command for it)"
		broughtBack = "scale up=done, maintenance off=done"
	)
	const (
		before     = "preflight=done, pre-release backup=done, prepare apply=done, "
		unprepare  = "unprepare crm-r1"
		targetedUp = "preflight=done, maintenance on=done, scale down=done, "
	)
	all := []string{"preflight", "backup", "prepare", HookMaintenanceOn, HookScaleDown, "apply", HookRestart, "checks", HookScaleUp, HookMaintenanceOff}
	upTo := func(n int, more ...string) []string { return append(slices.Clone(all[:n]), more...) }
	broughtBackCalls := []string{HookScaleUp, HookMaintenanceOff, unprepare}
	for _, c := range []struct {
		kind   ReleaseKind
		env    string
		fail   []string // what breaks
		states string   // every step's state afterwards
		calls  []string // hooks and engines called, in order
		reason []string // the release's reason contains each
	}{
		{KindDeploy, "staging", []string{"preflight"},
			"preflight=failed, pre-release backup=skipped, prepare apply=skipped, maintenance on=skipped, scale down=skipped, apply migration=skipped, restart app=skipped, validation checks=skipped, " + broughtBack + ", snapshot retention=skipped",
			upTo(1, broughtBackCalls...), []string{"preflight failed: preflight: preflight broke", notApplied}},
		// The backup and the preparation fail while users still work.
		{KindDeploy, "staging", []string{"backup"},
			"preflight=done, pre-release backup=failed, prepare apply=skipped, maintenance on=skipped, scale down=skipped, apply migration=skipped, restart app=skipped, validation checks=skipped, " + broughtBack + ", snapshot retention=skipped",
			upTo(2, broughtBackCalls...), []string{"pre-release backup failed", notApplied}},
		{KindDeploy, "staging", []string{"prepare"},
			"preflight=done, pre-release backup=done, prepare apply=failed, maintenance on=skipped, scale down=skipped, apply migration=skipped, restart app=skipped, validation checks=skipped, " + broughtBack + ", snapshot retention=skipped",
			upTo(3, broughtBackCalls...), []string{"prepare apply failed: prepare: prepare broke", notApplied}},
		{KindDeploy, "staging", []string{HookMaintenanceOn},
			before + "maintenance on=failed, scale down=skipped, apply migration=skipped, restart app=skipped, validation checks=skipped, " + broughtBack + ", snapshot retention=skipped",
			upTo(4, broughtBackCalls...), []string{"maintenance on failed: hook maintenance_on: maintenance_on broke", notApplied}},
		{KindDeploy, "staging", []string{"apply"},
			before + "maintenance on=done, scale down=done, apply migration=failed, restart app=skipped, validation checks=skipped, " + broughtBack + ", snapshot retention=skipped",
			upTo(6, broughtBackCalls...),
			[]string{"apply migration failed", notApplied + " (rollback crm-r1 restores crm-b1 if needed)"}},
		// An undo step that fails is marked so, and the next still runs.
		{KindDeploy, "staging", []string{"apply", HookScaleUp},
			before + "maintenance on=done, scale down=done, apply migration=failed, restart app=skipped, validation checks=skipped, scale up=failed, maintenance off=done, snapshot retention=skipped",
			upTo(6, broughtBackCalls...), []string{notApplied}},
		// After the apply committed nothing is undone: maintenance stays on.
		{KindDeploy, "staging", []string{HookRestart},
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=failed, validation checks=skipped, scale up=skipped, maintenance off=skipped, snapshot retention=skipped",
			upTo(7, unprepare),
			[]string{"the change was made but the app was not restarted", "maintenance stays on: restart it (`restart crm staging`", "check it, and " + offByHand,
				"or roll back: `rollback crm-r1` puts back what it changed, keeping rows written since; `rollback crm-r1 --full` restores crm-b1"}},
		{KindDeploy, "staging", []string{"checks"},
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=done, validation checks=failed, scale up=skipped, maintenance off=skipped, snapshot retention=skipped",
			upTo(8, unprepare),
			[]string{"validation checks failed: 1 of 1 checks failed: home page", applied, "(it ends by turning maintenance off), or fix it and " + offByHand}},
		{KindDeploy, "staging", []string{HookScaleUp},
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=done, validation checks=done, scale up=failed, maintenance off=skipped, snapshot retention=skipped",
			upTo(9, unprepare), []string{"scale up failed", applied}},
		{KindDeploy, "staging", []string{HookMaintenanceOff},
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=done, validation checks=done, scale up=done, maintenance off=failed, snapshot retention=skipped",
			upTo(10, unprepare), []string{"maintenance off failed", applied}},
		// Success: the retention drops the older snapshot, keeps this one's.
		{KindDeploy, "staging", nil,
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=done, validation checks=done, scale up=done, maintenance off=done, snapshot retention=done",
			upTo(10, "drop crm-r0", unprepare), nil},
		// A snapshot retention cannot drop is a warning: the release succeeded.
		{KindDeploy, "staging", []string{"drop crm-r0"},
			before + "maintenance on=done, scale down=done, apply migration=done, restart app=done, validation checks=done, scale up=done, maintenance off=done, snapshot retention=done",
			upTo(10, "drop crm-r0", unprepare), nil},
		// Without hooks, a restart that cannot run is skipped, and a failed
		// restart outside maintenance says to restart and check.
		{KindDeploy, "development", nil,
			before + "maintenance on=skipped, scale down=skipped, apply migration=done, restart app=skipped, validation checks=skipped, scale up=skipped, maintenance off=skipped, snapshot retention=done",
			[]string{"preflight", "backup", "prepare", "apply", "drop crm-r0", unprepare}, nil},
		{KindRestore, "staging", []string{"restore"},
			"preflight=done, maintenance on=done, scale down=done, restore backup=failed, restart app=skipped, validation checks=skipped, " + broughtBack,
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "restore", HookScaleUp, HookMaintenanceOff}, []string{"restore backup failed: restore: restore broke"}},
		{KindRestore, "staging", []string{"checks"},
			"preflight=done, maintenance on=done, scale down=done, restore backup=done, restart app=done, validation checks=failed, scale up=skipped, maintenance off=skipped",
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "restore", HookRestart, "checks"}, []string{"validation checks failed"}},
		{KindRollback, RecoveryEnv, []string{HookRestart},
			"preflight=done, restore backup=done, restart app=failed, validation checks=skipped",
			[]string{"preflight", "restore", HookRestart},
			[]string{"the app was not restarted and still runs its old configuration: restart it (`restart crm recovery`"}},
		{KindRollback, RecoveryEnv, nil,
			"preflight=done, restore backup=done, restart app=done, validation checks=done",
			[]string{"preflight", "restore", HookRestart, "checks"}, nil},
		{KindRollback, "staging", nil,
			"preflight=done, maintenance on=done, scale down=done, restore backup=done, restart app=done, validation checks=done, scale up=done, maintenance off=done",
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "restore", HookRestart, "checks", HookScaleUp, HookMaintenanceOff}, nil},
		// The targeted rollback: the revert instead of the restore.
		{kindTargeted, "staging", nil,
			targetedUp + "revert=done, restart app=done, validation checks=done, scale up=done, maintenance off=done",
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "revert crm-r0", HookRestart, "checks", HookScaleUp, HookMaintenanceOff}, nil},
		{kindTargeted, "staging", []string{"revert crm-r0"},
			targetedUp + "revert=failed, restart app=skipped, validation checks=skipped, " + broughtBack,
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "revert crm-r0", HookScaleUp, HookMaintenanceOff},
			[]string{"revert failed: targeted rollback of crm-r0 failed"}},
		// After the revert committed, maintenance stays on.
		{kindTargeted, "staging", []string{"checks"},
			targetedUp + "revert=done, restart app=done, validation checks=failed, scale up=skipped, maintenance off=skipped",
			[]string{"preflight", HookMaintenanceOn, HookScaleDown, "revert crm-r0", HookRestart, "checks"}, []string{"validation checks failed"}},
		{kindTargeted, "development", nil,
			"preflight=done, maintenance on=skipped, scale down=skipped, revert=done, restart app=skipped, validation checks=skipped, scale up=skipped, maintenance off=skipped",
			[]string{"preflight", "revert crm-r0"}, nil},
	} {
		name := fmt.Sprintf("%s %s failing %v", c.kind, c.env, c.fail)
		t.Run(name, func(t *testing.T) {
			l := &stepLog{fail: map[string]bool{}}
			for _, f := range c.fail {
				l.fail[f] = true
			}
			s, store := stepsService(l)
			scheduled(t, s, store, c.kind, c.env)
			r, err := s.Run(context.Background(), "crm-r1")
			if r == nil {
				t.Fatalf("no release: %v", err)
			}
			wantState := StateFailed
			if len(c.fail) == 0 || strings.HasPrefix(c.fail[0], "drop ") {
				wantState = StateSucceeded
			}
			stored, _ := store.GetRelease(context.Background(), "crm-r1")
			if r.State != wantState || stored.State != wantState {
				t.Fatalf("state %s (stored %s), want %s; err %v", r.State, stored.State, wantState, err)
			}
			if (err != nil) != (wantState == StateFailed) {
				t.Fatalf("err %v for a release that is %s", err, r.State)
			}
			if got := stepStates(stored); got != c.states {
				t.Errorf("steps\n got %s\nwant %s", got, c.states)
			}
			if !slices.Equal(l.called, c.calls) {
				t.Errorf("called\n got %v\nwant %v", l.called, c.calls)
			}
			for _, want := range c.reason {
				if !strings.Contains(stored.Reason, want) {
					t.Errorf("reason %q lacks %q", stored.Reason, want)
				}
			}
			if stored.Reason != r.Reason {
				t.Errorf("the release says %q, the store %q", r.Reason, stored.Reason)
			}
			if err != nil {
				failed := c.states[:strings.Index(c.states, "=failed")]
				failed = failed[strings.LastIndex(failed, ", ")+1:]
				if want := "crm-r1 failed at " + strings.TrimSpace(failed) + ": "; !strings.HasPrefix(ErrorMessage(err), want) {
					t.Errorf("error %q, want it to start %q", ErrorMessage(err), want)
				}
				// The log gets the cause once, and it stays reachable (a
				// hook's error is wrapped twice on the way). Failed checks
				// have no cause but their results.
				if len(l.errs) > 0 {
					if n := strings.Count(err.Error(), " broke"); n != 1 {
						t.Errorf("Error() names the cause %d times: %q", n, err.Error())
					}
					if !errors.Is(err, l.errs[0]) {
						t.Errorf("the cause of %q is not reachable", err)
					}
				}
			}
			want := []string{"crm-r1: scheduled -> running", "crm-r1: running -> " + string(wantState)}
			if !slices.Equal(store.moves, want) {
				t.Errorf("moves %v, want %v", store.moves, want)
			}
		})
	}
}

// Where maintenance never went on (the environment has no maintenance_on
// hook), a failure after the apply does not say it stays on.
func TestFailedAfterApplyWithoutMaintenance(t *testing.T) {
	r := &Release{ID: "crm-r1", App: "crm", Env: "staging", Kind: KindDeploy, Steps: []Step{
		{Name: StepPreflight, State: StepDone}, {Name: StepMaintenanceOn, State: StepSkipped}, {Name: StepApply, State: StepDone},
		{Name: StepChecks, State: StepFailed}, {Name: StepMaintenanceOff, State: StepSkipped},
	}}
	if got, want := failedDefault(r, 3, true), "; the migration was applied: roll back with `rollback crm-r1`, or fix it"; got != want {
		t.Errorf("without maintenance: %q, want %q", got, want)
	}
	r.Steps[1].State = StepDone
	if got := failedDefault(r, 3, true); !strings.Contains(got, "maintenance stays on") || !strings.Contains(got, "maintenance_off hook of crm staging") {
		t.Errorf("in maintenance: %q", got)
	}
}

// A runner that died inside the apply: the interruption says whether the
// migration committed, and resume either marks the apply done without
// running it again or runs it.
func TestResumeAtTheApply(t *testing.T) {
	for _, committed := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			l := &stepLog{fail: map[string]bool{"committed": committed}}
			s, store := stepsService(l)
			r := scheduled(t, s, store, KindDeploy, "staging")
			// As the runner left it: running, its lease run out, at the apply.
			past := time.Now().Add(-time.Minute)
			stored := store.rs[r.ID]
			stored.State, stored.LeaseOwner, stored.LeaseUntil = StateRunning, "relbot on x (pid 1)", &past
			for i := range stored.Steps {
				switch {
				case stored.Steps[i].Name == StepApply:
					stored.Steps[i].State = StepRunning
				case i < 5:
					stored.Steps[i].State = StepDone
				}
			}
			got, err := s.GetRelease(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := "the migration had not committed: the target is as before it"
			if committed {
				want = "the migration had committed (its marker is in the target)"
			}
			if got.State != StateInterrupted || !strings.Contains(got.Reason, `stopped during "apply migration"; `+want) {
				t.Fatalf("after the runner died: %s, %q", got.State, got.Reason)
			}
			if got, err = s.Resume(context.Background(), "alice", r.ID); err != nil {
				t.Fatal(err)
			}
			if stored := store.rs[r.ID]; got.State != StateSucceeded || stored.State != StateSucceeded || stored.Reason != "" {
				t.Fatalf("resumed: %s, stored %s %q", got.State, stored.State, stored.Reason)
			}
			// Resumed after the commit, the probe records the snapshot the
			// apply kept, so the retention still keeps it alone.
			wantCalls := []string{"apply", HookRestart, "checks", HookScaleUp, HookMaintenanceOff, "drop crm-r0", "unprepare crm-r1"}
			if stored := store.rs[r.ID]; stored.Snapshot != "crm-r1" {
				t.Errorf("snapshot recorded %q, want crm-r1", stored.Snapshot)
			}
			if committed {
				wantCalls = wantCalls[1:]
				if log := got.Steps[5].Log; log != "committed before the interruption (the target's marker records it)" {
					t.Errorf("apply log %q", log)
				}
			}
			if !slices.Equal(l.called, wantCalls) {
				t.Errorf("resume called %v, want %v", l.called, wantCalls)
			}
		})
	}
}

// Every pair of states: the moves Transitions lists are accepted, every
// other is refused with CodeInvalid naming both states, without touching
// the store.
func TestStateMoves(t *testing.T) {
	legal := map[string]bool{
		"awaiting approval -> scheduled": true, "awaiting approval -> rejected": true,
		"awaiting approval -> cancelled": true, "awaiting approval -> expired": true,
		"scheduled -> running": true, "scheduled -> cancelled": true,
		"running -> succeeded": true, "running -> failed": true, "running -> interrupted": true,
		"interrupted -> running": true, "interrupted -> rolled back": true, "interrupted -> failed": true,
		"failed -> rolled back": true, "succeeded -> rolled back": true,
	}
	states := []State{StateAwaitingApproval, StateScheduled, StateRunning, StateSucceeded, StateFailed,
		StateRolledBack, StateRejected, StateCancelled, StateExpired, StateInterrupted}
	accepted := 0
	for _, from := range states {
		for _, to := range states {
			pair := string(from) + " -> " + string(to)
			store := newMemReleases()
			store.rs["crm-r1"] = &Release{ID: "crm-r1", State: from}
			s := &ReleaseService{Core: &Core{Now: time.Now, Owner: "test"}, Store: store}
			r := &Release{ID: "crm-r1", State: from}
			err := s.move(context.Background(), r, from, to, "why")
			if legal[pair] {
				accepted++
				if err != nil {
					t.Errorf("%s refused: %v", pair, err)
				} else if r.State != to || store.rs["crm-r1"].State != to {
					t.Errorf("%s: release %s, stored %s", pair, r.State, store.rs["crm-r1"].State)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s accepted", pair)
				continue
			}
			msg := ErrorMessage(err)
			if ErrorCode(err) != CodeInvalid || !strings.Contains(msg, "crm-r1 cannot become "+string(to)) || !strings.Contains(msg, "a release that is "+string(from)) {
				t.Errorf("%s: %s %q", pair, ErrorCode(err), msg)
			}
			if len(store.moves) != 0 || r.State != from {
				t.Errorf("%s refused, yet the store moved %v (release now %s)", pair, store.moves, r.State)
			}
		}
	}
	if accepted != len(legal) {
		t.Errorf("%d legal moves accepted, want %d", accepted, len(legal))
	}
	// The map and the test agree (a move added to one must be added to the other).
	n := 0
	for _, to := range Transitions {
		n += len(to)
	}
	if n != len(legal) {
		t.Errorf("Transitions has %d moves, this test %d", n, len(legal))
	}
	msg := ErrorMessage(CheckMove("crm-r1", StateScheduled, StateSucceeded))
	if want := "crm-r1 cannot become succeeded: a release that is scheduled can only become running or cancelled"; msg != want {
		t.Errorf("message %q\nwant    %q", msg, want)
	}
	msg = ErrorMessage(CheckMove("crm-r1", StateRejected, StateRunning))
	if want := "crm-r1 cannot become running: a release that is rejected does not change any more"; msg != want {
		t.Errorf("message %q\nwant    %q", msg, want)
	}
}

// Approvals and expiry, one action after another on a production release
// needing two approvals from three approvers, expiring after a day.
func TestApprovalsAndExpiry(t *testing.T) {
	type act struct {
		do       string // approve, reject, cancel or clock (advance by d)
		by       string
		d        time.Duration
		state    State  // afterwards
		runnable bool   // approve: the caller may run it
		refused  string // the refusal's message contains it
	}
	for _, c := range []struct {
		name string
		acts []act
	}{
		{"two approvals schedule it", []act{
			{do: "approve", by: "U01AAA", state: StateAwaitingApproval},
			{do: "approve", by: "U01AAA", state: StateAwaitingApproval, refused: "U01AAA already approved crm-r1"},
			{do: "approve", by: "U02BBB", state: StateScheduled, runnable: true},
			{do: "approve", by: "U03CCC", state: StateScheduled, refused: "crm-r1 is scheduled, not awaiting approval"},
			{do: "reject", by: "U03CCC", state: StateScheduled, refused: "crm-r1 is scheduled, not awaiting approval"},
			{do: "cancel", by: "alice", state: StateCancelled},
			{do: "cancel", by: "alice", state: StateCancelled, refused: "only a release that has not started can be cancelled"},
		}},
		{"the requester may not approve, others must be approvers", []act{
			{do: "approve", by: "alice", state: StateAwaitingApproval, refused: "alice requested crm-r1 and may not approve it too"},
			{do: "approve", by: "U09MALLORY", state: StateAwaitingApproval, refused: "the approvers of crm production: U01AAA, U02BBB, U03CCC"},
		}},
		{"the requester withdraws it", []act{
			{do: "reject", by: "alice", state: StateRejected},
			{do: "approve", by: "U01AAA", state: StateRejected, refused: "crm-r1 is rejected, not awaiting approval"},
		}},
		{"not approved in time it expires, approved in time it does not", []act{
			{do: "approve", by: "U01AAA", state: StateAwaitingApproval},
			{do: "clock", d: 23 * time.Hour, state: StateAwaitingApproval},
			{do: "clock", d: 2 * time.Hour, state: StateExpired},
			{do: "approve", by: "U02BBB", state: StateExpired, refused: "crm-r1 is expired, not awaiting approval"},
		}},
		{"a scheduled release does not expire", []act{
			{do: "approve", by: "U01AAA", state: StateAwaitingApproval},
			{do: "approve", by: "U03CCC", state: StateScheduled, runnable: true},
			{do: "clock", d: 48 * time.Hour, state: StateScheduled},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, store := stepsService(&stepLog{})
			now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			s.Now = func() time.Time { return now }
			a, _ := s.App("crm")
			e, _ := a.Env("production")
			e.Approvals = ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}, Expire: 24 * time.Hour}
			r := &Release{ID: "crm-r1", App: "crm", Env: "production", Kind: KindDeploy, State: StateAwaitingApproval, RequestedAt: now, RequestedBy: "alice"}
			r.Steps = stepsFor(r, e)
			if err := store.CreateRelease(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i, x := range c.acts {
				var err error
				runnable := false
				switch x.do {
				case "approve":
					_, runnable, err = s.Approve(ctx, x.by, "crm-r1")
				case "reject":
					_, err = s.Reject(ctx, x.by, "crm-r1", "")
				case "cancel":
					_, err = s.Cancel(ctx, x.by, "crm-r1")
				case "clock":
					now = now.Add(x.d)
					_, err = s.GetRelease(ctx, "crm-r1")
				}
				switch {
				case x.refused == "" && err != nil:
					t.Fatalf("%d %s by %s: %v", i, x.do, x.by, err)
				case x.refused != "" && (err == nil || !strings.Contains(ErrorMessage(err), x.refused)):
					t.Fatalf("%d %s by %s: %v, want a refusal saying %q", i, x.do, x.by, err, x.refused)
				}
				if runnable != x.runnable {
					t.Fatalf("%d %s by %s: runnable %v", i, x.do, x.by, runnable)
				}
				if got := store.rs["crm-r1"].State; got != x.state {
					t.Fatalf("%d %s by %s: %s, want %s", i, x.do, x.by, got, x.state)
				}
			}
			if got := store.rs["crm-r1"]; got.State == StateExpired && got.Reason != "not approved within 24h0m0s" {
				t.Errorf("expired with reason %q", got.Reason)
			}
		})
	}
}
