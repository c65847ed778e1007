package release

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The release steps as data: stepTable says what each step runs, whether
// it commits and what its failure leads to; plans lists, per kind, the
// steps a release runs. The runner (release_run.go) only reads them.
//
// Adding a step: a name constant (release.go), an entry in stepTable with
// its function, and its place in the plans of the kinds that run it.

// stepFunc does one step of r and returns its log; ran is false for a step
// the environment does not configure (a hook it lacks): it is skipped.
type stepFunc func(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (log string, ran bool, err error)

// stepDef is one step.
type stepDef struct {
	do stepFunc
	// commits marks the point of no return: once the step is done the
	// target holds the change, so a later failure leaves the target, and
	// maintenance, as they are (users must not meet a release that failed
	// after changing the target) instead of bringing the app back.
	commits bool
	// resume, when set, asks the target whether the step committed before
	// its runner died: resume then marks it done instead of running it
	// again, and the interruption's reason says which. Without it a step
	// interrupted while running runs again (it is safe to repeat).
	resume *commitProbe
	// undo steps bring the app back after a failure before anything
	// committed (scale up, maintenance off): they still run then, marked
	// done, skipped or failed, and the next one runs whatever this one did.
	// Every other step after a failure is skipped.
	undo bool
	// explain is what a failure of this step adds to the release's reason,
	// given whether a committing step was done; nil is failedDefault.
	explain func(r *Release, failed int, committed bool) string
}

// commitProbe is how a committing step is resumed.
type commitProbe struct {
	committed func(ctx context.Context, s *ReleaseService, r *Release) (bool, error)
	// doneLog is the step's log when resume finds it committed.
	doneLog string
	// yes and no are what an interrupted release's reason adds.
	yes, no string
}

// stepTable is every step a plan may name.
var stepTable = map[string]stepDef{
	StepPreflight:      {do: preflightStep},
	StepNotice:         {do: noticeStep},
	StepMaintenanceOn:  {do: hookStep(HookMaintenanceOn)},
	StepScaleDown:      {do: hookStep(HookScaleDown)},
	StepBackup:         {do: backupStep},
	StepPrepare:        {do: prepareStep},
	StepApply:          {do: applyStep, commits: true, resume: applyProbe},
	StepRevert:         {do: revertStep, commits: true, resume: revertProbe},
	StepRestore:        {do: restoreStep, commits: true},
	StepRestart:        {do: hookStep(HookRestart), explain: failedRestart},
	StepChecks:         {do: checksStep},
	StepSwitch:         {do: switchStep},
	StepScaleUp:        {do: hookStep(HookScaleUp), undo: true},
	StepMaintenanceOff: {do: hookStep(HookMaintenanceOff), undo: true},
	StepRetention:      {do: retentionStep},
}

// planStep is one step of a kind's plan; when, if set, says whether a
// release runs it.
type planStep struct {
	name string
	when func(r *Release, e *Environment) bool
}

// plans lists the steps of each kind, in order.
//
// A deploy's window (maintenance on to off) holds only what its migration
// changes: the verified pre-release backup and the preparation of the
// apply (the file's rows loaded into shadow tables) run before it, while
// users work; inside, the apply swaps the prepared tables in and keeps the
// release snapshot a targeted rollback puts back.
var plans = map[ReleaseKind][]planStep{
	KindDeploy: {
		{name: StepPreflight},
		{name: StepNotice, when: noticed},
		{name: StepBackup},
		{name: StepPrepare},
		{name: StepMaintenanceOn},
		{name: StepScaleDown},
		{name: StepApply},
		{name: StepRestart},
		{name: StepChecks},
		{name: StepScaleUp},
		{name: StepMaintenanceOff},
		{name: StepRetention},
	},
	KindRollback: restorePlan,
	KindRestore:  restorePlan,
	KindSwitch: {
		{name: StepPreflight},
		{name: StepSwitch},
	},
}

// classicDeployPlan is the deploy before issue 13: the backup inside the
// window, no preparation, no snapshot. Only `relbot bench window` runs it
// (ReleaseService.ClassicWindow), to measure what the new plan saves.
var classicDeployPlan = []planStep{
	{name: StepPreflight},
	{name: StepNotice, when: noticed},
	{name: StepMaintenanceOn},
	{name: StepScaleDown},
	{name: StepBackup},
	{name: StepApply},
	{name: StepRestart},
	{name: StepChecks},
	{name: StepScaleUp},
	{name: StepMaintenanceOff},
}

// targetedPlan puts back what a deploy changed, from its release snapshot;
// the app is down while the revert runs, as while the apply ran.
var targetedPlan = []planStep{
	{name: StepPreflight},
	{name: StepMaintenanceOn},
	{name: StepScaleDown},
	{name: StepRevert},
	{name: StepRestart},
	{name: StepChecks},
	{name: StepScaleUp},
	{name: StepMaintenanceOff},
}

// restorePlan restores a backup. Into the independent recovery environment
// nobody works there yet, so there is no maintenance or scaling.
var restorePlan = []planStep{
	{name: StepPreflight},
	{name: StepMaintenanceOn, when: inPlace},
	{name: StepScaleDown, when: inPlace},
	{name: StepRestore},
	{name: StepRestart},
	{name: StepChecks},
	{name: StepScaleUp, when: inPlace},
	{name: StepMaintenanceOff, when: inPlace},
}

// noticed: a scheduled release of an environment that gives notice told
// users before its start.
func noticed(r *Release, e *Environment) bool { return r.At != nil && e.Notice > 0 }

// inPlace: the release changes an environment users work in.
func inPlace(_ *Release, e *Environment) bool { return e.Name != RecoveryEnv }

// planFor is the plan r runs.
func planFor(r *Release, classic bool) []planStep {
	switch {
	case r.Targeted():
		return targetedPlan
	case r.Kind == KindDeploy && classic:
		return classicDeployPlan
	}
	return plans[r.Kind]
}

// stepsFor lists the steps a release will run, in order.
func stepsFor(r *Release, e *Environment) []Step { return stepsOf(planFor(r, false), r, e) }

func stepsOf(plan []planStep, r *Release, e *Environment) []Step {
	var steps []Step
	for _, p := range plan {
		if p.when == nil || p.when(r, e) {
			steps = append(steps, Step{Name: p.name, State: StepPending})
		}
	}
	return steps
}

// step finds a step's definition in the service's table; a name no table
// knows (a release recorded by another relbot) fails when it runs.
func (s *ReleaseService) step(name string) stepDef {
	table := s.steps
	if table == nil {
		table = stepTable
	}
	if d, ok := table[name]; ok {
		return d
	}
	return stepDef{do: func(context.Context, *ReleaseService, *Release, *App, *Environment) (string, bool, error) {
		return "", false, Errorf(CodeInternal, "unknown step %q", name)
	}}
}

func preflightStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	switch r.Kind {
	case KindDeploy:
		m, err := s.Migrations.Store.GetMigration(ctx, r.Migration)
		if err != nil {
			return "", true, err
		}
		if m.SHA256 != r.FileHash {
			return "", true, Errorf(CodeDamaged, "migration %s's file changed since the release was requested", m.ID)
		}
		pf, err := s.preflightDeploy(ctx, a, e, m, nil, r.AllowNewPlugins)
		if err != nil {
			return "", true, err
		}
		log := "chain, marker, plugins, variables, freeze and locks checked" + s.driftSummary(ctx, a, e)
		if pf.note != "" {
			log += "\n" + pf.note
		}
		if moved := r.Changes.Since(pf.changes); len(moved) > 0 {
			// Approvers judged the summary of the request; say what the
			// target's own changes since then make different.
			log += "\nthe change summary differs from the one approved (" + e.Name + " changed since the request):\n  " + strings.Join(moved, "\n  ")
		}
		return log, true, nil
	case KindSwitch:
		if err := s.checkSwitch(ctx, a, r); err != nil {
			return "", true, err
		}
		return fmt.Sprintf("%s still what %s holds, its checks passed; freeze and locks checked", r.SwitchTo, RecoveryEnv), true, s.preflightWindow(ctx, a, e, nil)
	}
	if r.Targeted() {
		if err := s.checkSnapshot(ctx, r, a, e); err != nil {
			return "", true, err
		}
		return fmt.Sprintf("snapshot %s still in the target and not reverted; freeze and locks checked", r.Snapshot), true, s.preflightWindow(ctx, a, e, nil)
	}
	return "freeze and locks checked", true, s.preflightWindow(ctx, a, e, nil)
}

func noticeStep(context.Context, *ReleaseService, *Release, *App, *Environment) (string, bool, error) {
	return "users were told before the start", true, nil
}

// hookStep runs one of the environment's hooks.
func hookStep(hook string) stepFunc {
	return func(ctx context.Context, s *ReleaseService, _ *Release, _ *App, e *Environment) (string, bool, error) {
		return s.hook(ctx, e, hook)
	}
}

func backupStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	return s.preReleaseBackup(ctx, r, a, e)
}

// retentionStep keeps, of the environment's release snapshots, only the
// one this deploy's apply kept: a targeted rollback goes back from the
// last release applied, and older snapshots hold data users have since
// changed. The release has succeeded in all but name, so a snapshot that
// cannot be dropped is a warning, not a failure.
func retentionStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	if r.Snapshot == "" {
		return "", false, nil
	}
	snaps, err := s.Migrations.Engine.Snapshots(ctx, a, e)
	if err != nil {
		s.Log.Warn("list release snapshots", "release", r.ID, "err", err)
		return "warning: release snapshots not listed, none dropped: " + ErrorMessage(err), true, nil
	}
	var dropped, warnings []string
	for _, sn := range snaps {
		if sn.Name == r.Snapshot {
			continue
		}
		if err := s.Migrations.Engine.DropSnapshot(ctx, a, e, sn.Name); err != nil {
			s.Log.Warn("drop release snapshot", "release", r.ID, "snapshot", sn.Name, "err", err)
			warnings = append(warnings, fmt.Sprintf("snapshot %s not dropped: %s", sn.Name, ErrorMessage(err)))
			continue
		}
		dropped = append(dropped, sn.Name)
	}
	log := fmt.Sprintf("kept release snapshot %s, the newest of %s %s", r.Snapshot, a.Name, e.Name)
	if len(dropped) > 0 {
		log += "; dropped the older " + List(dropped)
	} else {
		log += "; no older ones to drop"
	}
	return withWarnings(log, warnings), true, nil
}

// unprepare drops what r's prepare step left in the target, once r ended
// (the apply swapped it in, or will not run); failing to is only logged.
func (s *ReleaseService) unprepare(ctx context.Context, r *Release) {
	if r.Kind != KindDeploy || !hasStep(r, StepPrepare) {
		return
	}
	a, e, err := s.releaseEnv(r)
	if err == nil {
		err = s.Migrations.Engine.Unprepare(ctx, a, e, r.ID)
	}
	if err != nil {
		s.Log.Warn("drop the preparation", "release", r.ID, "err", err)
	}
}

// hasStep reports whether r's plan has step name (releases recorded with
// an older plan, or the classic one, lack the preparation).
func hasStep(r *Release, name string) bool {
	for _, st := range r.Steps {
		if st.Name == name {
			return true
		}
	}
	return false
}

// prepareStep prepares the apply ahead of the window, with the options the
// apply will use, under the release's ID.
func prepareStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	p, err := s.Migrations.PrepareMigration(ctx, r.Migration, e.Name, PrepareOptions{Key: r.ID})
	if err != nil {
		return "", true, err
	}
	log := fmt.Sprintf("ready to swap in: %s", tablesOrNone(p.Tables))
	if len(p.InWindow) > 0 {
		log += fmt.Sprintf("; loads inside the window: %s", strings.Join(p.InWindow, "; "))
	} else {
		log += "; nothing left to load inside the window"
	}
	return log + fmt.Sprintf(" (%s)", p.Duration.Round(time.Millisecond)), true, nil
}

func tablesOrNone(ts []string) string {
	if len(ts) == 0 {
		return "no tables"
	}
	return Count(len(ts), "table") + " (" + strings.Join(ts, ", ") + ")"
}

// applyOptions are the apply's options for r: it swaps in what the
// prepare step made and keeps the release snapshot, as the plan has it.
func applyOptions(r *Release) ApplyOptions {
	var opts ApplyOptions
	if hasStep(r, StepPrepare) {
		opts.Prepared, opts.Snapshot = r.ID, r.ID
	}
	return opts
}

func applyStep(ctx context.Context, s *ReleaseService, r *Release, _ *App, e *Environment) (string, bool, error) {
	opts := applyOptions(r)
	opts.SQLArtifact = SQLArtifact(r.App, r.ID)
	if s.Pause != nil {
		opts.BeforeCommit = func() { s.Pause(StepApply + " (before commit)") }
	}
	res, err := s.Migrations.ApplyMigration(ctx, r.RequestedBy, r.Migration, e.Name, opts)
	if err != nil {
		return "", true, err
	}
	if res.AlreadyApplied != nil {
		return fmt.Sprintf("already applied by %s at %s: nothing to do", res.AlreadyApplied.By, res.AlreadyApplied.At.Format(time.RFC3339)), true, nil
	}
	log := fmt.Sprintf("%s in one transaction, %s", Count(len(res.Steps), "statement and load|statements and loads"), res.Duration.Round(time.Millisecond))
	if opts.Snapshot != "" {
		if err := s.keptSnapshot(ctx, r); err != nil {
			return log, true, err
		}
		log += fmt.Sprintf("; kept release snapshot %s (what it changed, for a targeted rollback)", r.Snapshot)
	}
	return withWarnings(log, res.Warnings), true, nil
}

// keptSnapshot records that r's apply committed with its snapshot.
func (s *ReleaseService) keptSnapshot(ctx context.Context, r *Release) error {
	if err := s.Store.SetSnapshot(ctx, r.ID, r.ID); err != nil {
		return err
	}
	r.Snapshot = r.ID
	return nil
}

// applyProbe: the target's marker row, written in the apply's own
// transaction, says whether the migration committed (and so whether the
// snapshot it keeps in the same transaction is there).
var applyProbe = &commitProbe{
	committed: probeApply(func(ctx context.Context, s *ReleaseService, r *Release) (bool, error) {
		return s.migrationApplied(ctx, r)
	}),
	doneLog: "committed before the interruption (the target's marker records it)",
	yes:     "the migration had committed (its marker is in the target)",
	no:      "the migration had not committed: the target is as before it",
}

// probeApply asks marker whether the apply committed and, if it did with
// a snapshot, records the snapshot the runner had no time to record.
func probeApply(marker func(context.Context, *ReleaseService, *Release) (bool, error)) func(context.Context, *ReleaseService, *Release) (bool, error) {
	return func(ctx context.Context, s *ReleaseService, r *Release) (bool, error) {
		done, err := marker(ctx, s, r)
		if err == nil && done && applyOptions(r).Snapshot != "" && r.Snapshot == "" {
			err = s.keptSnapshot(ctx, r)
		}
		return done, err
	}
}

// revertStep puts back, in one transaction, what the rolled-back deploy's
// apply changed, from the snapshot it kept.
func revertStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	opts := RevertOptions{By: r.RequestedBy}
	if s.Pause != nil {
		opts.BeforeCommit = func() { s.Pause(StepRevert + " (before commit)") }
	}
	res, err := s.Migrations.Engine.Revert(ctx, a, e, r.Snapshot, opts)
	if err != nil {
		return "", true, wrapUser(err, "targeted rollback of %s failed", r.RollbackOf)
	}
	return withWarnings(fmt.Sprintf("put back what %s changed from snapshot %s, in one transaction: %s, %s; rows written since to other tables kept",
		r.RollbackOf, r.Snapshot, Count(len(res.Steps), "statement|statements"), res.Duration.Round(time.Millisecond)), res.Warnings), true, nil
}

// revertProbe: the engine records the revert in its own transaction.
var revertProbe = &commitProbe{
	committed: func(ctx context.Context, s *ReleaseService, r *Release) (bool, error) {
		a, e, err := s.releaseEnv(r)
		if err != nil {
			return false, err
		}
		return s.Migrations.Engine.Reverted(ctx, a, e, r.Snapshot)
	},
	doneLog: "committed before the interruption (the target records the revert)",
	yes:     "the revert had committed (the target records it)",
	no:      "the revert had not committed: the target is as before it",
}

func restoreStep(ctx context.Context, s *ReleaseService, r *Release, a *App, e *Environment) (string, bool, error) {
	b, err := s.Backups.Store.GetBackup(ctx, r.Backup)
	if err != nil {
		return "", true, err
	}
	art, err := s.Backups.Artifacts.Open(ctx, b.Artifact)
	if err != nil {
		return "", true, err
	}
	defer art.Close()
	opts := restoreOptions(b, e.Name)
	opts.NoAnalyze = r.NoAnalyze
	rep, err := s.Backups.Engine.Restore(ctx, art, a.Name, e, opts)
	if err != nil {
		return "", true, err
	}
	return withWarnings(fmt.Sprintf("%s restored %s: %s, %s, %s in %s; %s", b.ID, rep.Mode, Count(rep.Tables, "table"), Count(rep.Rows, "row"), Count(rep.Files, "file"), rep.Duration.Round(time.Millisecond), analyzedLog(rep, opts)), rep.Warnings), true, nil
}

// analyzedLog says whether the restored database has planner statistics.
func analyzedLog(rep *RestoreReport, opts RestoreOptions) string {
	switch {
	case opts.NoAnalyze:
		return "not analyzed (--no-analyze): the planner has no statistics until autovacuum or an ANALYZE gathers them"
	case rep.Analyzed == 0 && rep.AnalyzeTime == 0:
		return "not analyzed (see the warnings)"
	}
	return fmt.Sprintf("analyzed %s in %.1f s", Count(rep.Analyzed, "table"), rep.AnalyzeTime.Seconds())
}

func checksStep(ctx context.Context, s *ReleaseService, r *Release, _ *App, e *Environment) (string, bool, error) {
	return s.validate(ctx, r, e)
}

func switchStep(ctx context.Context, s *ReleaseService, r *Release, a *App, _ *Environment) (string, bool, error) {
	return s.switchTraffic(ctx, r, a)
}

// failedDefault says where a failed deploy left the target.
func failedDefault(r *Release, failed int, committed bool) string {
	switch {
	case r.Kind == KindDeploy && committed && !inMaintenance(r.Steps[:failed]):
		// The environment has no maintenance_on hook: nothing stays on.
		return fmt.Sprintf("; the migration was applied: roll back with `rollback %s`, or fix it", r.ID)
	case r.Kind == KindDeploy && committed:
		return fmt.Sprintf("; the migration was applied and maintenance stays on: roll back with `rollback %s` (it ends by turning maintenance off), or fix it and %s", r.ID, maintenanceOffByHand(r))
	case r.Kind == KindDeploy:
		why := "; the migration was not applied: the target is as it was"
		if r.Backup != "" {
			why += fmt.Sprintf(" (rollback %s restores %s if needed)", r.ID, r.Backup)
		}
		return why
	}
	return ""
}

// maintenanceOffByHand names the only way to end maintenance outside a
// release: relbot has no command for it, so it is the environment's hook.
func maintenanceOffByHand(r *Release) string {
	return fmt.Sprintf("turn maintenance off by hand: run the maintenance_off hook of %s %s in apps.yaml (relbot has no command for it)", r.App, r.Env)
}

// failedRestart: the change is in the database; the app still runs what
// it read at start, so users must not meet it before it restarts.
func failedRestart(r *Release, failed int, _ bool) string {
	why := "; the change was made but the app was not restarted and still runs its old configuration"
	if inMaintenance(r.Steps[:failed]) {
		why += fmt.Sprintf("; maintenance stays on: restart it (`restart %s %s` runs the hook again, or restart it by hand), check it, and %s", r.App, r.Env, maintenanceOffByHand(r))
	} else {
		why += fmt.Sprintf(": restart it (`restart %s %s` runs the hook again, or restart it by hand) and check it", r.App, r.Env)
	}
	if r.Kind == KindDeploy && (r.Backup != "" || r.Snapshot != "") {
		why += "; or roll back: " + r.RollbackWays()
	}
	return why
}
