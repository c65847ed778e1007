package release

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// counterIDs numbers releases crm-r10, crm-r11, ...
type counterIDs struct{ n atomic.Int64 }

func (c *counterIDs) NextID(_ context.Context, app, kind string) (string, error) {
	return fmt.Sprintf("%s-%s%d", app, kind, 10+c.n.Add(1)-1), nil
}

// ranDeploy records a deploy of staging that ran to state with its apply
// done, its pre-release backup and (if snapshot) its release snapshot.
func ranDeploy(t *testing.T, store *memReleases, id string, at time.Time, state State, snapshot bool) {
	t.Helper()
	a := stepsApp()
	r := &Release{ID: id, App: "crm", Env: "staging", Kind: KindDeploy, Migration: "crm-m1", State: state, RequestedAt: at, RequestedBy: "alice",
		Backup: "crm-b" + strings.TrimPrefix(id, "crm-r")}
	r.Steps = stepsFor(r, a.Environments[1])
	for i := range r.Steps {
		if state != StateCancelled {
			r.Steps[i].State = StepDone
		}
	}
	if snapshot {
		r.Snapshot = id
	}
	if err := store.CreateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// Which rollback `rollback` requests: targeted by default where the
// deploy kept a snapshot the target still has and nothing changed the
// target since; full with --full, --into recovery, or when the targeted
// one cannot run any more. The release says which, and runs its plan.
func TestRollbackModes(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	targeted := "targeted: puts back what crm-r1 changed, keeps rows written since"
	full := "full: restores backup crm-b1 taken before crm-r1"
	for _, c := range []struct {
		name      string
		snapshot  bool           // crm-r1 kept one
		kept      []SnapshotInfo // what the target keeps
		later     State          // a later deploy of staging, in this state ("" none)
		into      string
		full      bool
		noAnalyze bool
		mode      string // the rollback's RollbackMode; "" refused
		refused   string
		steps     string
	}{
		{name: "default: targeted", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, mode: targeted, steps: "revert"},
		{name: "--full", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, full: true, mode: full, steps: "restore backup"},
		{name: "--full --no-analyze", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, full: true, noAnalyze: true, mode: full, steps: "restore backup"},
		{name: "--no-analyze on a targeted one: refused", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, noAnalyze: true,
			refused: "--no-analyze is for a rollback that restores a backup; rollback crm-r1 puts back what it changed from its snapshot and restores none (rollback crm-r1 --full --no-analyze restores crm-b1)"},
		{name: "--no-analyze without a snapshot: full", noAnalyze: true, mode: full, steps: "restore backup"},
		{name: "--into recovery is always full", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, into: RecoveryEnv, mode: full, steps: "restore backup"},
		{name: "no snapshot kept (an older plan): full", mode: full, steps: "restore backup"},
		// Never silently full: that would lose what users wrote since.
		{name: "snapshot dropped since: refused, naming --full", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r2"}},
			refused: "crm staging no longer keeps the release snapshot of crm-r1 (a later release's retention dropped it): rollback crm-r1 --full restores crm-b1"},
		{name: "snapshot dropped since, --full", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r2"}}, full: true, mode: full, steps: "restore backup"},
		{name: "snapshot reverted already: refused", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1", Reverted: true}}, refused: "the release snapshot of crm-r1 was put back already (by an earlier targeted rollback)"},
		{name: "a later deploy changed staging: refused", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}, {Name: "crm-r2"}}, later: StateSucceeded,
			refused: "crm-r2 changed crm staging after crm-r1: a targeted rollback of crm-r1 would undo it too; roll back crm-r2 first, or rollback crm-r1 --full restores crm-b1"},
		{name: "a later deploy that failed before its apply does not count", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, later: StateCancelled, mode: targeted, steps: "revert"},
		{name: "a later deploy that was rolled back does not count", snapshot: true, kept: []SnapshotInfo{{Name: "crm-r1"}}, later: StateRolledBack, mode: targeted, steps: "revert"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &stepLog{}
			s, store := stepsService(l)
			s.IDs = &counterIDs{}
			s.Migrations.Engine.(*windowEngine).snapshots = c.kept
			ranDeploy(t, store, "crm-r1", t0, StateSucceeded, c.snapshot)
			if c.later != "" {
				ranDeploy(t, store, "crm-r2", t0.Add(time.Minute), c.later, true)
			}
			r, err := s.RequestRollback(context.Background(), "alice", "crm-r1", c.into, c.full, c.noAnalyze)
			if c.refused != "" {
				if err == nil || !strings.Contains(ErrorMessage(err), c.refused) {
					t.Fatalf("err %v, want a refusal saying %q", err, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.RollbackMode(); got != c.mode {
				t.Errorf("mode %q, want %q", got, c.mode)
			}
			stored, _ := store.GetRelease(context.Background(), r.ID)
			if stored.Targeted() != (c.mode == targeted) || stored.RollbackMode() != c.mode {
				t.Errorf("stored: snapshot %q backup %q", stored.Snapshot, stored.Backup)
			}
			if !strings.Contains(stepStates(stored), c.steps+"=pending") {
				t.Errorf("steps %s lack %s", stepStates(stored), c.steps)
			}
			if stored.NoAnalyze != c.noAnalyze {
				t.Errorf("stored NoAnalyze %v, want %v", stored.NoAnalyze, c.noAnalyze)
			}
			if c.mode == targeted && stored.Backup != "" {
				t.Errorf("a targeted rollback names backup %s it does not restore", stored.Backup)
			}
		})
	}
}

// What cannot be rolled back the asked way is refused, saying why and
// what can be done instead.
func TestRollbackRefusals(t *testing.T) {
	l := &stepLog{}
	s, store := stepsService(l)
	s.IDs = &counterIDs{}
	s.Migrations.Engine.(*windowEngine).snapshots = nil
	// A deploy that kept a snapshot but whose backup record is lost
	// (not possible with the plan, but a record may say so).
	ranDeploy(t, store, "crm-r1", time.Now(), StateSucceeded, true)
	store.rs["crm-r1"].Backup = ""
	_, err := s.RequestRollback(context.Background(), "alice", "crm-r1", "", true, false)
	if err == nil || !strings.Contains(ErrorMessage(err), "crm-r1 has no pre-release backup: a full rollback has nothing to restore") {
		t.Fatalf("--full without a backup: %v", err)
	}
	_, err = s.RequestRollback(context.Background(), "alice", "crm-r1", "", false, false)
	if err == nil || !strings.Contains(ErrorMessage(err), "no longer keeps the release snapshot of crm-r1") {
		t.Fatalf("targeted without the snapshot: %v", err)
	}
	if len(store.rs) != 1 {
		t.Fatalf("a refused rollback was recorded: %d releases", len(store.rs))
	}
}

// The logs say what the window steps did: the apply that it kept the
// snapshot, the retention which snapshots it dropped and which it kept,
// or a warning when it could not drop one.
func TestWindowStepLogs(t *testing.T) {
	l := &stepLog{fail: map[string]bool{}}
	s, store := stepsService(l)
	s.steps[StepApply] = stepDef{do: func(ctx context.Context, s *ReleaseService, r *Release, _ *App, _ *Environment) (string, bool, error) {
		if err := s.keptSnapshot(ctx, r); err != nil {
			return "", true, err
		}
		return "applied", true, nil
	}, commits: true}
	scheduled(t, s, store, KindDeploy, "staging")
	r, err := s.Run(context.Background(), "crm-r1")
	if err != nil {
		t.Fatal(err)
	}
	logOf := func(r *Release, name string) string {
		for _, st := range r.Steps {
			if st.Name == name {
				return st.Log
			}
		}
		return ""
	}
	if got, want := logOf(r, StepRetention), "kept release snapshot crm-r1, the newest of crm staging; dropped the older crm-r0"; got != want {
		t.Errorf("retention log %q, want %q", got, want)
	}
	if stored := store.rs["crm-r1"]; stored.Snapshot != "crm-r1" {
		t.Errorf("stored snapshot %q", stored.Snapshot)
	}

	l = &stepLog{fail: map[string]bool{"drop crm-r0": true}}
	s, store = stepsService(l)
	s.steps[StepApply] = stepDef{do: func(ctx context.Context, s *ReleaseService, r *Release, _ *App, _ *Environment) (string, bool, error) {
		return "applied", true, s.keptSnapshot(ctx, r)
	}, commits: true}
	scheduled(t, s, store, KindDeploy, "staging")
	if r, err = s.Run(context.Background(), "crm-r1"); err != nil || r.State != StateSucceeded {
		t.Fatalf("a retention that cannot drop failed the release: %v", err)
	}
	if got := logOf(r, StepRetention); !strings.Contains(got, "no older ones to drop\nwarning: snapshot crm-r0 not dropped: internal error (see the bot's log)") {
		t.Errorf("retention log %q", got)
	}
}

// A runner that died inside the revert: resume asks the target whether
// the revert committed and marks it done, or runs it again.
func TestResumeAtTheRevert(t *testing.T) {
	for _, reverted := range []bool{true, false} {
		t.Run(fmt.Sprintf("reverted=%v", reverted), func(t *testing.T) {
			l := &stepLog{fail: map[string]bool{"reverted": reverted}}
			s, store := stepsService(l)
			r := scheduled(t, s, store, kindTargeted, "staging")
			past := time.Now().Add(-time.Minute)
			stored := store.rs[r.ID]
			stored.State, stored.LeaseOwner, stored.LeaseUntil = StateRunning, "relbot on x (pid 1)", &past
			for i := range stored.Steps {
				switch {
				case stored.Steps[i].Name == StepRevert:
					stored.Steps[i].State = StepRunning
				case i < 3:
					stored.Steps[i].State = StepDone
				}
			}
			got, err := s.GetRelease(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := "the revert had not committed: the target is as before it"
			if reverted {
				want = "the revert had committed (the target records it)"
			}
			if got.State != StateInterrupted || !strings.Contains(got.Reason, `stopped during "revert"; `+want) {
				t.Fatalf("after the runner died: %s, %q", got.State, got.Reason)
			}
			if got, err = s.Resume(context.Background(), "alice", r.ID); err != nil || got.State != StateSucceeded {
				t.Fatalf("resume: %v", err)
			}
			calls := strings.Join(l.called, ",")
			if ran := strings.Contains(calls, "revert crm-r0"); ran == reverted {
				t.Errorf("resume called %s: the revert ran again=%v though reverted=%v", calls, ran, reverted)
			}
			if reverted && got.Steps[3].Log != "committed before the interruption (the target records the revert)" {
				t.Errorf("revert log %q", got.Steps[3].Log)
			}
		})
	}
}

// A deploy cancelled before it ran drops whatever preparation its key
// may hold; a rollback or restore has none to drop.
func TestCancelDropsThePreparation(t *testing.T) {
	for _, kind := range []ReleaseKind{KindDeploy, KindRestore} {
		l := &stepLog{}
		s, store := stepsService(l)
		scheduled(t, s, store, kind, "staging")
		if _, err := s.Cancel(context.Background(), "alice", "crm-r1"); err != nil {
			t.Fatal(err)
		}
		want := []string{"unprepare crm-r1"}
		if kind != KindDeploy {
			want = nil
		}
		if strings.Join(l.called, ",") != strings.Join(want, ",") {
			t.Errorf("%s cancelled: called %v, want %v", kind, l.called, want)
		}
	}
}
