package release

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ReleaseService requests, approves and runs releases: deploys, restores,
// rollbacks, switches and restarts. It reaches backups, migrations,
// versions and variables through their services.
type ReleaseService struct {
	*Core
	Store      ReleaseStore
	Backups    *BackupService
	Migrations *MigrationService
	Versions   *VersionService
	Variables  *VariableService
	Hooks      Hooks
	Checker    Checker
	// Notifier, when set, hears every change of a release.
	Notifier Notifier
	// LeaseTTL is how long a runner's claim lasts without renewal: how soon
	// a dead runner is noticed (default 30s).
	LeaseTTL time.Duration
	// Pause, when set, is called as a step starts (and inside the apply
	// before it commits, with step "apply migration (before commit)"): a
	// fault-injection point for the crash tests. Production leaves it nil.
	Pause func(step string)

	// ClassicWindow makes deploys requested through this service run the
	// plan before issue 13 (the backup inside the window, no preparation,
	// no snapshot). Only `relbot bench window` sets it, to compare.
	ClassicWindow bool

	// steps replaces stepTable in tests that fake the engines' steps.
	steps map[string]stepDef
}

func (s *ReleaseService) leaseTTL() time.Duration {
	if s.LeaseTTL > 0 {
		return s.LeaseTTL
	}
	return 30 * time.Second
}

func (s *ReleaseService) notify(ctx context.Context, r *Release, e Event) {
	if s.Notifier != nil {
		s.Notifier.ReleaseChanged(ctx, r, e)
	}
}

// move is every state change of a release: it refuses a move Transitions
// does not allow, then makes it in the store as a compare-and-set on from
// (to running by taking the release's lease for this process, which clears
// the stored reason), and records the new state in r. r.Reason takes the
// reason of a move that ends or stops the release (Release.Reason); the
// note of a move to scheduled, running or succeeded is the store's only,
// so replies and messages built from r read as they did.
func (s *ReleaseService) move(ctx context.Context, r *Release, from, to State, reason string) error {
	if err := CheckMove(r.ID, from, to); err != nil {
		return err
	}
	var err error
	if to == StateRunning {
		err = s.Store.TakeLease(ctx, r.ID, from, s.Owner, s.Now().UTC().Add(s.leaseTTL()))
	} else {
		err = s.Store.MoveRelease(ctx, r.ID, from, to, reason)
	}
	if err != nil {
		return err
	}
	r.State = to
	if to != StateScheduled && to != StateRunning && to != StateSucceeded {
		r.Reason = reason
	}
	return nil
}

// RequestDeploy asks for migration id to be deployed to env, at a time or
// as soon as approved. Preflight runs now and again at the start.
//
// A file the target already has is refused, naming who applied it and
// when; one that brings plugins the target lacks is refused unless
// allowNewPlugins (deploy --allow-new-plugins), a choice the release keeps.
func (s *ReleaseService) RequestDeploy(ctx context.Context, actor, migrationID, env string, at *time.Time, allowNewPlugins bool) (*Release, error) {
	if at != nil && at.After(s.Now().Add(MaxScheduleAhead)) {
		return nil, Errorf(CodeInvalid, "--at %s is more than %d days ahead: a release holds its environment until it runs, so schedule it closer to the time",
			at.UTC().Format("2006-01-02 15:04 MST"), int(MaxScheduleAhead.Hours()/24))
	}
	m, a, e, err := s.Migrations.migrationTarget(ctx, migrationID, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActDeploy, a, e); err != nil {
		return nil, err
	}
	pf, err := s.preflightDeploy(ctx, a, e, m, at, allowNewPlugins)
	if err != nil {
		return nil, err
	}
	return s.request(ctx, &Release{App: a.Name, Env: e.Name, Kind: KindDeploy, Migration: m.ID, FileHash: m.SHA256, RequestedBy: actor, At: at,
		AllowNewPlugins: allowNewPlugins, Changes: pf.changes}, a, e)
}

// request records a new release and, when its environment needs no
// approval, makes it scheduled at once.
func (s *ReleaseService) request(ctx context.Context, r *Release, a *App, e *Environment) (*Release, error) {
	id, err := s.IDs.NextID(ctx, a.Name, "r")
	if err != nil {
		return nil, err
	}
	r.ID = id
	r.RequestedAt = s.Now().UTC()
	r.State = StateAwaitingApproval
	r.Channel = a.Channel
	r.Steps = stepsOf(planFor(r, s.ClassicWindow), r, e)
	if err := s.Store.CreateRelease(ctx, r); err != nil {
		return nil, err
	}
	s.Log.Info("release requested", "app", a.Name, "env", e.Name, "release", id, "kind", r.Kind, "by", r.RequestedBy)
	s.notify(ctx, r, Event{Kind: EventRequested, Actor: r.RequestedBy})
	if e.Approvals.Required == 0 {
		if err := s.move(ctx, r, StateAwaitingApproval, StateScheduled, "no approval required"); err != nil {
			return nil, err
		}
		return r, nil
	}
	detail := Count(e.Approvals.Required, "approval") + " needed"
	if r.SecretsTravel() {
		detail += "; " + SecretsTravelNote
	}
	s.notify(ctx, r, Event{Kind: EventNeedsApproval, Detail: detail})
	return r, nil
}

// preflightDeploy refuses what must not run: a file that has not passed
// the previous environment, a file the target already has, plugins the
// target lacks (unless allowed), missing variables, a freeze, a hold. Its
// note says what was let through (new plugins allowed).
// deployPreflight is what a deploy's checks found: a note for the log and
// the change summary against the target as it is now.
type deployPreflight struct {
	note    string
	changes *Changes
}

func (s *ReleaseService) preflightDeploy(ctx context.Context, a *App, e *Environment, m *Migration, at *time.Time, allowNewPlugins bool) (deployPreflight, error) {
	if prev := a.Previous(e.Name); prev != nil && prev != a.Source() {
		rs, err := s.Store.ListReleases(ctx, a.Name, prev.Name)
		if err != nil {
			return deployPreflight{}, err
		}
		passed := false
		for _, r := range rs {
			if r.Kind == KindDeploy && r.FileHash == m.SHA256 && r.State == StateSucceeded {
				passed = true
				break
			}
		}
		if !passed {
			return deployPreflight{}, Errorf(CodeForbidden, "%s has not passed %s: deploy %s to %s first (the same file, validated there, is what %s receives)", m.ID, prev.Name, m.ID, prev.Name, e.Name)
		}
	}
	if err := s.Migrations.checkLayouts(ctx, a, e, m); err != nil {
		return deployPreflight{}, err
	}
	// The plugins are judged after the variables: a refusal for missing
	// variables leads to a form, and the deploy that follows to the
	// plugins' confirmation, each once.
	check, err := s.checkTarget(ctx, a, e, m)
	if err != nil {
		return deployPreflight{}, err
	}
	known, err := s.Migrations.knownVariables(ctx, a, e)
	if err != nil {
		return deployPreflight{}, err
	}
	if known != nil {
		var missing []string
		for _, v := range m.Summary.Variables {
			if _, ok := known[v]; !ok {
				missing = append(missing, v)
			}
		}
		if len(missing) > 0 {
			return deployPreflight{}, &Error{Code: CodeConflict,
				Message: fmt.Sprintf("%s lacks variables %s references: %s; supply them with var set %s %s NAME=VALUE or secret set %s %s NAME, then deploy again",
					e.Name, m.ID, List(missing), a.Name, e.Name, a.Name, e.Name),
				Err: &MissingVariables{App: a.Name, Env: e.Name, Migration: m.ID, Names: missing}}
		}
	}
	note, err := newPluginsAllowed(a, e, m, check.NewPlugins, allowNewPlugins)
	if err != nil {
		return deployPreflight{}, err
	}
	return deployPreflight{note: note, changes: check.Changes}, s.preflightWindow(ctx, a, e, at)
}

// checkTarget asks the target whether it has m already (refused: a file
// is applied once) and which plugins m brings that it lacks.
func (s *ReleaseService) checkTarget(ctx context.Context, a *App, e *Environment, m *Migration) (*TargetCheck, error) {
	c, err := s.Migrations.checkFile(ctx, m, a, e)
	if err != nil {
		return nil, wrapUser(err, "cannot check %s %s before deploying %s", a.Name, e.Name, m.ID)
	}
	if done := c.AlreadyApplied; done != nil {
		return nil, Errorf(CodeConflict, "%s was applied to %s %s already, by %s at %s (the target's relbot.applied_migrations records it): a file is applied once; make a new migration for further changes",
			m.ID, a.Name, e.Name, done.By, done.At.UTC().Format("2006-01-02 15:04 MST"))
	}
	return c, nil
}

// newPluginsAllowed refuses plugins the target lacks unless the requester
// allowed them, as NocoBase's Migration Manager warns of them; allowed,
// the note names them for the preflight's log.
func newPluginsAllowed(a *App, e *Environment, m *Migration, plugins []NewPlugin, allow bool) (string, error) {
	if len(plugins) == 0 {
		return "", nil
	}
	names := make([]string, len(plugins))
	for i, p := range plugins {
		names[i] = p.String()
	}
	if allow {
		return fmt.Sprintf("new plugins allowed by the requester: %s", strings.Join(names, "; ")), nil
	}
	return "", &Error{Code: CodeConflict,
		Message: fmt.Sprintf("%s brings plugins %s %s does not have: %s; install them there first, or deploy %s %s --allow-new-plugins to go on",
			m.ID, a.Name, e.Name, strings.Join(names, "; "), m.ID, e.Name),
		Err: &NewPluginsRefusal{App: a.Name, Env: e.Name, Migration: m.ID, Plugins: plugins}}
}

// preflightWindow refuses a frozen or held environment.
func (s *ReleaseService) preflightWindow(ctx context.Context, a *App, e *Environment, at *time.Time) error {
	when := s.Now()
	if at != nil && at.After(when) {
		when = *at
	}
	for _, f := range e.Freeze {
		if f.Contains(when) {
			return Errorf(CodeForbidden, "%s %s is frozen (%s): releases wait until the window ends, or deploy --at a time outside it", a.Name, e.Name, f.Text)
		}
	}
	h, err := s.Store.GetHold(ctx, a.Name, e.Name)
	if err != nil {
		return err
	}
	if h != nil {
		return Errorf(CodeForbidden, "%s %s is locked by %s since %s: %s; unlock %s %s when it is over", a.Name, e.Name, h.By, h.At.UTC().Format("2006-01-02 15:04 MST"), h.Reason, a.Name, e.Name)
	}
	return nil
}

// GetRelease returns a release, expiring it first if its approval window
// has passed.
func (s *ReleaseService) GetRelease(ctx context.Context, id string) (*Release, error) {
	if err := s.RecoverInterrupted(ctx); err != nil {
		s.Log.Warn("recover interrupted releases", "err", err)
	}
	r, err := s.Store.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.expire(ctx, r)
}

func (s *ReleaseService) expire(ctx context.Context, r *Release) (*Release, error) {
	if r.State != StateAwaitingApproval {
		return r, nil
	}
	a, err := s.App(r.App)
	if err != nil {
		return r, nil
	}
	e, err := a.Env(r.Env)
	if err != nil || e.Approvals.Expire <= 0 || s.Now().Before(r.RequestedAt.Add(e.Approvals.Expire)) {
		return r, nil
	}
	reason := fmt.Sprintf("not approved within %s", e.Approvals.Expire)
	if err := s.move(ctx, r, StateAwaitingApproval, StateExpired, reason); err != nil {
		if ErrorCode(err) != CodeConflict {
			return nil, err
		}
		r.State, r.Reason = StateExpired, reason // another reader expired it first
	}
	s.notify(ctx, r, Event{Kind: EventExpired, Detail: reason})
	return r, nil
}

// ListReleases lists an app's releases (of env when given), newest first.
func (s *ReleaseService) ListReleases(ctx context.Context, app, env string) ([]*Release, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	if env != "" {
		e, err := a.Env(env)
		if err != nil {
			return nil, err
		}
		env = e.Name
	}
	if err := s.RecoverInterrupted(ctx); err != nil {
		s.Log.Warn("recover interrupted releases", "err", err)
	}
	rs, err := s.Store.ListReleases(ctx, app, env)
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		if rs[i], err = s.expire(ctx, r); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func (s *Core) releaseEnv(r *Release) (*App, *Environment, error) {
	a, err := s.App(r.App)
	if err != nil {
		return nil, nil, err
	}
	e, err := a.Env(r.Env)
	return a, e, err
}

// Approve records actor's approval. When the policy is met the release
// becomes scheduled; the caller that made it so gets runnable=true.
func (s *ReleaseService) Approve(ctx context.Context, actor, id string) (r *Release, runnable bool, err error) {
	if r, err = s.GetRelease(ctx, id); err != nil {
		return nil, false, err
	}
	if r.State != StateAwaitingApproval {
		return nil, false, Errorf(CodeConflict, "%s is %s, not awaiting approval", id, r.State)
	}
	a, e, err := s.releaseEnv(r)
	if err != nil {
		return nil, false, err
	}
	p := e.Approvals
	if actor == r.RequestedBy && !p.AllowSelf {
		return nil, false, Errorf(CodeForbidden, "%s requested %s and may not approve it too: someone else must", actor, id)
	}
	if err := s.authorize(ctx, actor, ActApprove, a, e); err != nil {
		return nil, false, err
	}
	added, err := s.Store.AddApproval(ctx, id, Approval{By: actor, At: s.Now().UTC()})
	if err != nil {
		return nil, false, err
	}
	if !added {
		return nil, false, Errorf(CodeConflict, "%s already approved %s", actor, id)
	}
	if r, err = s.Store.GetRelease(ctx, id); err != nil {
		return nil, false, err
	}
	s.notify(ctx, r, Event{Kind: EventApproved, Actor: actor, Detail: fmt.Sprintf("%d of %d", len(r.Approvals), p.Required)})
	if len(r.Approvals) < p.Required {
		return r, false, nil
	}
	err = s.move(ctx, r, StateAwaitingApproval, StateScheduled, fmt.Sprintf("approved by %s", approverNames(r.Approvals)))
	if ErrorCode(err) == CodeConflict {
		return r, false, nil // another approval made it runnable first
	}
	if err != nil {
		return nil, false, err
	}
	return r, true, nil
}

func approverNames(as []Approval) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.By
	}
	return List(names)
}

// Reject ends a release awaiting approval.
func (s *ReleaseService) Reject(ctx context.Context, actor, id, reason string) (*Release, error) {
	r, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != StateAwaitingApproval {
		return nil, Errorf(CodeConflict, "%s is %s, not awaiting approval", id, r.State)
	}
	a, e, err := s.releaseEnv(r)
	if err != nil {
		return nil, err
	}
	// Its requester may always withdraw a release.
	if actor != r.RequestedBy {
		if err := s.authorize(ctx, actor, ActReject, a, e); err != nil {
			return nil, err
		}
	}
	why := "rejected by " + actor
	if reason != "" {
		why += ": " + reason
	}
	if err := s.move(ctx, r, StateAwaitingApproval, StateRejected, why); err != nil {
		return nil, err
	}
	s.notify(ctx, r, Event{Kind: EventRejected, Actor: actor, Detail: why})
	return r, nil
}

// Cancel ends a release that has not started running.
func (s *ReleaseService) Cancel(ctx context.Context, actor, id string) (*Release, error) {
	r, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != StateAwaitingApproval && r.State != StateScheduled {
		return nil, Errorf(CodeConflict, "%s is %s: only a release that has not started can be cancelled", id, r.State)
	}
	// Its requester may always withdraw a release.
	if actor != r.RequestedBy {
		a, e, err := s.releaseEnv(r)
		if err != nil {
			return nil, err
		}
		if err := s.authorize(ctx, actor, ActCancel, a, e); err != nil {
			return nil, err
		}
	}
	why := "cancelled by " + actor
	if err := s.move(ctx, r, r.State, StateCancelled, why); err != nil {
		return nil, err
	}
	s.unprepare(ctx, r)
	s.notify(ctx, r, Event{Kind: EventCancelled, Actor: actor})
	return r, nil
}

// RequestRollback asks for a deploy to be taken back. The default for a
// deploy whose apply kept a release snapshot is the targeted rollback: it
// puts back what the deploy changed and keeps rows users wrote since to
// other tables; it is refused, naming --full, when the environment no
// longer keeps the snapshot or a later release changed it. full (and any
// rollback --into another environment, and the default for a deploy
// without a snapshot) restores the pre-release backup: in place, or into
// the app's recovery. It needs the approvals a release to that
// environment needs. noAnalyze (a rollback that restores the backup only)
// leaves the restored database without planner statistics.
func (s *ReleaseService) RequestRollback(ctx context.Context, actor, id, into string, full, noAnalyze bool) (*Release, error) {
	orig, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	if orig.Kind != KindDeploy {
		return nil, Errorf(CodeInvalid, "%s is a %s; only a deploy can be rolled back", id, orig.Kind)
	}
	if orig.Backup == "" && orig.Snapshot == "" {
		return nil, Errorf(CodeConflict, "%s has no pre-release backup (it stopped before taking one): nothing to roll back to", id)
	}
	switch orig.State {
	case StateFailed, StateSucceeded, StateInterrupted:
	default:
		return nil, Errorf(CodeConflict, "%s is %s; a rollback needs a release that ran", id, orig.State)
	}
	a, err := s.App(orig.App)
	if err != nil {
		return nil, err
	}
	if into == "" {
		into = orig.Env
	}
	if into != orig.Env && into != RecoveryEnv {
		return nil, Errorf(CodeInvalid, "rollback --into takes the independent %s environment (or none, for %s itself): %s would get %s's data without %s's approval; backup restore %s --into %s asks for %s's",
			RecoveryEnv, orig.Env, into, orig.Env, orig.Env, orig.Backup, into, into)
	}
	e, err := a.Env(into)
	if err != nil {
		return nil, err
	}
	// Either kind puts orig.Env's data back (the targeted one from its
	// snapshot): the roles a restore of it there needs, before anything
	// is read of the target.
	if err := s.authorizeRestore(ctx, actor, ActRollback, a, e, orig.Env); err != nil {
		return nil, err
	}
	r := &Release{App: a.Name, Env: e.Name, Kind: KindRollback, RollbackOf: id, RequestedBy: actor}
	if !full && e.Name == orig.Env && orig.Snapshot != "" {
		r.Snapshot = orig.Snapshot
		// A targeted rollback that cannot run any more is refused rather
		// than turned into a full one: the full one loses what users
		// wrote since, so it is asked for by name (--full).
		if err := s.checkSnapshot(ctx, r, a, e); err != nil {
			return nil, err
		}
	}
	if r.Snapshot == "" {
		if orig.Backup == "" {
			return nil, Errorf(CodeConflict, "%s has no pre-release backup: a full rollback has nothing to restore (rollback %s without --full puts back what it changed)", id, id)
		}
		r.Backup = orig.Backup
	}
	if noAnalyze && r.Snapshot != "" {
		why := fmt.Sprintf("--no-analyze is for a rollback that restores a backup; rollback %s puts back what it changed from its snapshot and restores none", id)
		if orig.Backup != "" {
			why += fmt.Sprintf(" (rollback %s --full --no-analyze restores %s)", id, orig.Backup)
		}
		return nil, Errorf(CodeInvalid, "%s", why)
	}
	r.NoAnalyze = noAnalyze
	if err := s.preflightWindow(ctx, a, e, nil); err != nil {
		return nil, err
	}
	if orig.State == StateInterrupted && e.Name == orig.Env {
		// The interrupted release holds its environment; the rollback
		// takes over from it.
		if err := s.move(ctx, orig, StateInterrupted, StateFailed, "interrupted; rolled back by a rollback release"); err != nil {
			return nil, err
		}
		s.unprepare(ctx, orig)
	}
	return s.request(ctx, r, a, e)
}

// checkSnapshot refuses a targeted rollback r that cannot run: the
// snapshot is gone (dropped by a later release's retention) or reverted
// already, or a later release changed the environment since.
func (s *ReleaseService) checkSnapshot(ctx context.Context, r *Release, a *App, e *Environment) error {
	rs, err := s.Store.ListReleases(ctx, a.Name, e.Name)
	if err != nil {
		return err
	}
	var orig *Release
	for _, o := range rs {
		if o.ID == r.RollbackOf {
			orig = o
		}
	}
	if orig == nil {
		return Errorf(CodeNotFound, "no release %s of %s %s", r.RollbackOf, a.Name, e.Name)
	}
	for _, o := range rs {
		if o.ID == orig.ID || o.ID == r.ID || !o.RequestedAt.After(orig.RequestedAt) {
			continue
		}
		if changedTarget(o) {
			return Errorf(CodeConflict, "%s changed %s %s after %s: a targeted rollback of %s would undo it too; roll back %s first, or rollback %s --full restores %s",
				o.ID, a.Name, e.Name, orig.ID, orig.ID, o.ID, orig.ID, orig.Backup)
		}
	}
	snaps, err := s.Migrations.Engine.Snapshots(ctx, a, e)
	if err != nil {
		return wrapUser(err, "cannot list the release snapshots of %s %s", a.Name, e.Name)
	}
	for _, sn := range snaps {
		if sn.Name == r.Snapshot {
			if sn.Reverted {
				return Errorf(CodeConflict, "the release snapshot of %s was put back already (by an earlier targeted rollback)", orig.ID)
			}
			return nil
		}
	}
	return Errorf(CodeConflict, "%s %s no longer keeps the release snapshot of %s (a later release's retention dropped it): rollback %s --full restores %s",
		a.Name, e.Name, orig.ID, orig.ID, orig.Backup)
}

// changedTarget reports whether release o changed its environment's data:
// its committing step (apply, revert, restore) was done, and a deploy
// that was rolled back since does not count.
func changedTarget(o *Release) bool {
	if o.State == StateRolledBack {
		return false
	}
	for _, st := range o.Steps {
		if (st.Name == StepApply || st.Name == StepRevert || st.Name == StepRestore) && st.State == StepDone {
			return true
		}
	}
	return false
}

// Lock holds every release and restore of an environment.
func (s *ReleaseService) Lock(ctx context.Context, actor, app, env, reason string) (*Hold, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActLock, a, e); err != nil {
		return nil, err
	}
	reason = strings.Join(strings.Fields(reason), " ") // one line, whatever was typed
	if reason == "" {
		return nil, Errorf(CodeInvalid, "a lock needs a reason: lock %s %s REASON...", app, e.Name)
	}
	if n := utf8.RuneCountInString(reason); n > MaxHoldReason {
		return nil, Errorf(CodeInvalid, "the reason is %d characters long; a lock takes at most %d", n, MaxHoldReason)
	}
	h := Hold{App: app, Env: e.Name, Reason: reason, By: actor, At: s.Now().UTC()}
	// One statement places the hold or finds one placed already, so of two
	// users locking at once only one is told "locked".
	if err := s.Store.PutHold(ctx, h); err != nil {
		return nil, err
	}
	s.Log.Info("environment locked", "app", app, "env", e.Name, "by", actor)
	return &h, nil
}

// MaxScheduleAhead is how far ahead deploy --at may schedule a release.
const MaxScheduleAhead = 30 * 24 * time.Hour

// MaxHoldReason is the longest reason a lock takes.
const MaxHoldReason = 500

// Unlock lifts a hold.
func (s *ReleaseService) Unlock(ctx context.Context, actor, app, env string) error {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, actor, ActUnlock, a, e); err != nil {
		return err
	}
	if err := s.Store.DeleteHold(ctx, app, e.Name); err != nil {
		if ErrorCode(err) == CodeNotFound {
			return Errorf(CodeNotFound, "%s %s is not locked", app, e.Name)
		}
		return err
	}
	s.Log.Info("environment unlocked", "app", app, "env", e.Name, "by", actor)
	return nil
}

// Holds lists the manual locks in force.
func (s *ReleaseService) Holds(ctx context.Context) ([]Hold, error) {
	return s.Store.ListHolds(ctx)
}

// RecoverInterrupted marks running releases whose runner stopped renewing
// its lease as interrupted, naming the step they were at and, for the
// apply, whether the migration committed (its marker row says so).
func (s *ReleaseService) RecoverInterrupted(ctx context.Context) error {
	rs, err := s.Store.ExpiredLeases(ctx, s.Now().UTC())
	if err != nil {
		return err
	}
	for _, r := range rs {
		step := ""
		for _, st := range r.Steps {
			if st.State == StepRunning {
				step = st.Name
			}
		}
		why := fmt.Sprintf("its runner (%s) stopped during %q", r.LeaseOwner, step)
		if probe := s.step(step).resume; probe != nil {
			if committed, err := probe.committed(ctx, s, r); err == nil {
				if committed {
					why += "; " + probe.yes
				} else {
					why += "; " + probe.no
				}
			}
		}
		if err := s.move(ctx, r, StateRunning, StateInterrupted, why); err != nil {
			if ErrorCode(err) == CodeConflict {
				continue
			}
			return err
		}
		s.Log.Warn("release interrupted", "release", r.ID, "app", r.App, "env", r.Env, "step", step)
		s.notify(ctx, r, Event{Kind: EventInterrupted, Step: step, Detail: why})
	}
	return nil
}

// migrationApplied asks the target whether the release's file committed.
func (s *ReleaseService) migrationApplied(ctx context.Context, r *Release) (bool, error) {
	m, a, e, err := s.Migrations.migrationTarget(ctx, r.Migration, r.Env)
	if err != nil {
		return false, err
	}
	art, err := s.Migrations.Artifacts.Open(ctx, m.Artifact)
	if err != nil {
		return false, err
	}
	defer art.Close()
	done, err := s.Migrations.Engine.Applied(ctx, art, a, e)
	return done != nil, err
}

// RestoreBackup requests a restore of a backup: into its own environment,
// or into (any environment of the app, or "recovery"). Every restore is a
// release of its target — recorded, run under the environment's lock with
// its hooks and checks, approved as a release there when the environment
// asks for approvals — so that users may be switched to recovery only
// after its checks passed, and no environment is overwritten without a
// trace. noAnalyze leaves the restored database without planner
// statistics (the restore's log says so).
func (s *ReleaseService) RestoreBackup(ctx context.Context, actor, id, into string, noAnalyze bool) (*Release, error) {
	b, a, err := s.Backups.backupOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if into == "" {
		into = b.Env
	}
	target, err := a.Env(into)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeRestore(ctx, actor, ActRestore, a, target, b.Env); err != nil {
		return nil, err
	}
	if err := s.preflightWindow(ctx, a, target, nil); err != nil {
		return nil, err
	}
	return s.request(ctx, &Release{App: a.Name, Env: target.Name, Kind: KindRestore, Backup: b.ID, RequestedBy: actor, NoAnalyze: noAnalyze}, a, target)
}
