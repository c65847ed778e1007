package release

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Run runs a scheduled release (or resumes an interrupted one) to its end
// in this process: it waits for the release's time, takes the
// environment's lock and the release's lease, then runs the steps, each
// persisted before and after. Another process already running the release
// or the environment makes it fail at once, naming the holder.
func (s *ReleaseService) Run(ctx context.Context, id string) (*Release, error) {
	r, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != StateScheduled && r.State != StateInterrupted {
		return nil, Errorf(CodeConflict, "%s is %s: there is nothing to run", id, r.State)
	}
	a, e, err := s.releaseEnv(r)
	if err != nil {
		return nil, err
	}
	if r.State == StateScheduled {
		if r, err = s.waitForStart(ctx, r, e); err != nil {
			return r, err
		}
	}
	ttl := s.leaseTTL()
	from := r.State
	renew := func(ctx context.Context) error {
		return s.Store.RenewLease(ctx, id, s.Owner, s.Now().UTC().Add(ttl))
	}
	err = s.holding(ctx, envLockKey(a.Name, e.Name), s.Owner+" running "+id, ttl, renew, func(ctx context.Context) error {
		if err := s.move(ctx, r, from, StateRunning, ""); err != nil {
			return err
		}
		s.Log.Info("release running", "app", a.Name, "env", e.Name, "release", id, "resumed", from == StateInterrupted)
		return s.runSteps(ctx, r, a, e)
	})
	if err != nil && r.State != StateRunning && r.State != StateSucceeded && r.State != StateFailed {
		return nil, err // refused before it started: the lock or the lease was someone else's
	}
	return r, err
}

// waitForStart waits for a scheduled release's time, telling users notice
// before it. The release stays cancellable meanwhile.
func (s *ReleaseService) waitForStart(ctx context.Context, r *Release, e *Environment) (*Release, error) {
	if r.At == nil || !r.At.After(s.Now()) {
		return r, nil
	}
	noticed := e.Notice <= 0
	s.notify(ctx, r, Event{Kind: EventWaiting, Detail: fmt.Sprintf("starts at %s; %s waits to run it (cancel %s withdraws it)",
		r.At.UTC().Format("2006-01-02 15:04 MST"), s.Owner, r.ID)})
	for s.Now().Before(*r.At) {
		if !noticed && !s.Now().Before(r.At.Add(-e.Notice)) {
			noticed = true
			s.notify(ctx, r, Event{Kind: EventNotice, Detail: fmt.Sprintf("%s %s starts at %s: the app goes into maintenance then", r.App, r.Env, r.At.UTC().Format("15:04 MST"))})
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(min(time.Second, time.Until(*r.At))):
		}
		cur, err := s.Store.GetRelease(ctx, r.ID)
		if err != nil {
			return r, err
		}
		if cur.State != StateScheduled {
			return cur, Errorf(CodeConflict, "%s is %s: it will not run", r.ID, cur.State)
		}
	}
	return r, nil
}

func (s *ReleaseService) saveSteps(ctx context.Context, r *Release) error {
	return s.Store.SaveSteps(ctx, r.ID, r.Steps)
}

// runSteps runs every unfinished step in order, as the step table says.
func (s *ReleaseService) runSteps(ctx context.Context, r *Release, a *App, e *Environment) error {
	for i := range r.Steps {
		st := &r.Steps[i]
		if st.State == StepDone || st.State == StepSkipped {
			continue
		}
		def := s.step(st.Name)
		if def.resume != nil && st.State != StepPending {
			// Resumed at a committing step: the target says whether it
			// committed before the runner died.
			if committed, err := def.resume.committed(ctx, s, r); err == nil && committed {
				now := s.Now().UTC()
				st.State, st.Ended, st.Log = StepDone, &now, def.resume.doneLog
				if err := s.saveSteps(ctx, r); err != nil {
					return err
				}
				continue
			}
		}
		now := s.Now().UTC()
		st.State, st.Started, st.Ended, st.Log = StepRunning, &now, nil, ""
		if err := s.saveSteps(ctx, r); err != nil {
			return err
		}
		s.notify(ctx, r, Event{Kind: EventStepStarted, Step: st.Name})
		if s.Pause != nil {
			s.Pause(st.Name)
		}
		out, ran, err := def.do(ctx, s, r, a, e)
		end := s.Now().UTC()
		st.Ended, st.Log = &end, out
		switch {
		case err != nil:
			st.State = StepFailed
			st.Log = strings.TrimSpace(out + "\n" + ErrorMessage(err))
		case !ran:
			st.State = StepSkipped
		default:
			st.State = StepDone
		}
		if serr := s.saveSteps(context.WithoutCancel(ctx), r); serr != nil {
			return serr
		}
		s.notify(ctx, r, Event{Kind: EventStepFinished, Step: st.Name, Detail: st.Log})
		if err != nil {
			return s.fail(context.WithoutCancel(ctx), r, a, e, i, err)
		}
	}
	if err := s.move(ctx, r, StateRunning, StateSucceeded, ""); err != nil {
		return err
	}
	// A release that is no longer running has no lease to renew: the
	// holder cancels ctx at its next tick, and what follows must not be
	// cut short by that.
	ctx = context.WithoutCancel(ctx)
	s.unprepare(ctx, r)
	if r.Kind == KindRollback {
		// In place, the rolled-back release's story ends here; a restore
		// into another environment leaves it as it was.
		orig, err := s.Store.GetRelease(ctx, r.RollbackOf)
		switch {
		case err != nil:
			s.Log.Warn("mark rolled back", "release", r.RollbackOf, "err", err)
		case orig.Env == r.Env:
			if err := s.move(ctx, orig, orig.State, StateRolledBack, "rolled back by "+r.ID); err != nil {
				s.Log.Warn("mark rolled back", "release", orig.ID, "err", err)
			}
		}
	}
	s.Log.Info("release succeeded", "release", r.ID)
	s.notify(ctx, r, Event{Kind: EventSucceeded, Detail: r.RestartNeeded()})
	if r.Switchable() && a.Recovery != nil {
		if _, ok := a.Recovery.Hooks[HookSwitchTraffic]; ok {
			s.notify(ctx, r, Event{Kind: EventSwitchOffered, Detail: fmt.Sprintf("users can be moved to %s: switch %s", RecoveryEnv, r.ID)})
		}
	}
	return nil
}

// fail ends a run at step i. When no committing step was done, the undo
// steps bring the app back (scale up, maintenance off) and the target is as
// before; after a commit the rest is skipped and maintenance stays on, so
// users do not meet a release that failed its checks.
func (s *ReleaseService) fail(ctx context.Context, r *Release, a *App, e *Environment, failed int, cause error) error {
	committed := false
	for _, st := range r.Steps[:failed] {
		if s.step(st.Name).commits && st.State == StepDone {
			committed = true
		}
	}
	for i := failed + 1; i < len(r.Steps); i++ {
		st := &r.Steps[i]
		def := s.step(st.Name)
		if committed || !def.undo {
			st.State = StepSkipped
			continue
		}
		out, ran, err := def.do(ctx, s, r, a, e)
		now := s.Now().UTC()
		st.Started, st.Ended, st.Log = &now, &now, out
		switch {
		case err != nil:
			st.State, st.Log = StepFailed, ErrorMessage(err)
		case ran:
			st.State = StepDone
		default:
			st.State = StepSkipped
		}
	}
	_ = s.saveSteps(ctx, r)
	name := r.Steps[failed].Name
	explain := s.step(name).explain
	if explain == nil {
		explain = failedDefault
	}
	why := fmt.Sprintf("%s failed: %s", name, ErrorMessage(cause)) + explain(r, failed, committed)
	if err := s.move(ctx, r, StateRunning, StateFailed, why); err != nil {
		return err
	}
	s.unprepare(ctx, r)
	s.Log.Error("release failed", "release", r.ID, "step", name, "err", cause)
	s.notify(ctx, r, Event{Kind: EventFailed, Step: name, Detail: why})
	return &Error{Code: CodeConflict, Message: fmt.Sprintf("%s failed at %s: %s", r.ID, name, ErrorMessage(cause)), Err: cause}
}

// inMaintenance reports whether steps turned maintenance on.
func inMaintenance(steps []Step) bool {
	for _, st := range steps {
		if st.Name == StepMaintenanceOn && st.State == StepDone {
			return true
		}
	}
	return false
}

// withWarnings is a step's log: what it did, then a line per warning.
func withWarnings(log string, warnings []string) string {
	for _, w := range warnings {
		log += "\nwarning: " + w
	}
	return log
}

// driftSummary says in one line how the previous environment and this one
// differ (informational: the migration brings the structure along).
func (s *ReleaseService) driftSummary(ctx context.Context, a *App, e *Environment) string {
	prev := a.Previous(e.Name)
	if prev == nil {
		return ""
	}
	d, err := s.Versions.Drift(ctx, a.Name, prev.Name, e.Name)
	if err != nil {
		return "; drift not computed: " + ErrorMessage(err)
	}
	vars := 0
	for _, names := range d.VariablesOnlyIn {
		vars += len(names)
	}
	return fmt.Sprintf("; drift %s -> %s: %d schema, %d version, %d variable-name differences", prev.Name, e.Name, len(d.Schema), len(d.Versions), vars)
}

func (s *ReleaseService) hook(ctx context.Context, e *Environment, name string) (string, bool, error) {
	if s.Hooks == nil {
		return "", false, nil
	}
	out, ran, err := s.Hooks.Run(ctx, e, name)
	if err != nil {
		return out, true, Errorf(CodeConflict, "hook %s: %w", name, err)
	}
	return out, ran, nil
}

// preReleaseBackup takes the backup a rollback restores, and checks every
// checksum of it before the migration may run.
func (s *ReleaseService) preReleaseBackup(ctx context.Context, r *Release, a *App, e *Environment) (string, bool, error) {
	b, err := s.Backups.backup(ctx, r.RequestedBy, a, e, BackupPreRelease, r.ID)
	if err != nil {
		return "", true, err
	}
	if err := s.Store.SetBackup(ctx, r.ID, b.ID); err != nil {
		return "", true, err
	}
	r.Backup = b.ID
	art, err := s.Backups.Artifacts.Open(ctx, b.Artifact)
	if err != nil {
		return "", true, err
	}
	defer art.Close()
	if _, _, err := s.Backups.Engine.Check(ctx, art, a.Name); err != nil {
		return "", true, err
	}
	checked := s.Now().UTC()
	b.CheckedAt = &checked
	if err := s.Backups.Store.SaveBackup(ctx, b); err != nil {
		return "", true, err
	}
	return fmt.Sprintf("%s: %s, %s, %s; every checksum verified", b.ID, Count(b.Manifest.Tables, "table"), Count(b.Manifest.Rows, "row"), Count(b.Manifest.Files, "file")), true, nil
}

// validate runs the environment's checks; any failure fails the step.
func (s *ReleaseService) validate(ctx context.Context, r *Release, e *Environment) (string, bool, error) {
	if s.Checker == nil || len(e.Checks) == 0 {
		return "", false, nil
	}
	results := s.Checker.Run(ctx, e)
	r.Checks = results
	if err := s.Store.SaveChecks(ctx, r.ID, results); err != nil {
		return "", true, err
	}
	var lines, failed []string
	for _, c := range results {
		mark := "pass"
		if !c.OK {
			mark = "FAIL"
			failed = append(failed, c.Name)
		}
		lines = append(lines, fmt.Sprintf("%s  %s (%s) %s", mark, c.Name, c.Duration.Round(time.Millisecond), c.Detail))
		s.notify(ctx, r, Event{Kind: EventCheck, Step: StepChecks, Detail: lines[len(lines)-1]})
	}
	out := strings.Join(lines, "\n")
	if len(failed) > 0 {
		return out, true, Errorf(CodeConflict, "%d of %d checks failed: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return out, true, nil
}

// Resume continues an interrupted release from its first unfinished step.
func (s *ReleaseService) Resume(ctx context.Context, actor, id string) (*Release, error) {
	r, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != StateInterrupted {
		return nil, Errorf(CodeConflict, "%s is %s; only an interrupted release can be resumed", id, r.State)
	}
	if err := s.authorizeResume(ctx, actor, r); err != nil {
		return nil, err
	}
	s.Log.Info("release resumed", "release", id, "by", actor)
	return s.Run(ctx, id)
}

// authorizeResume checks what requesting r checked: the role of its kind
// on its environment and, for a restore or rollback, the restore role of
// the environment its backup's data belongs to.
func (s *ReleaseService) authorizeResume(ctx context.Context, actor string, r *Release) error {
	act := resumeActions[r.Kind]
	if (r.Kind != KindRestore && r.Kind != KindRollback) || r.Backup == "" {
		return s.authorizeOnRelease(ctx, actor, act, r)
	}
	b, a, err := s.Backups.backupOf(ctx, r.Backup)
	if err != nil {
		return err
	}
	e, err := a.Env(r.Env)
	if err != nil {
		return err
	}
	return s.authorizeRestore(ctx, actor, act, a, e, b.Env)
}
