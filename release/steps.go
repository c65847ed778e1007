package release

import (
	"context"
	"fmt"
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
	StepApply:          {do: applyStep, commits: true, resume: applyProbe},
	StepRestore:        {do: restoreStep, commits: true},
	StepRestart:        {do: hookStep(HookRestart), explain: failedRestart},
	StepChecks:         {do: checksStep},
	StepSwitch:         {do: switchStep},
	StepScaleUp:        {do: hookStep(HookScaleUp), undo: true},
	StepMaintenanceOff: {do: hookStep(HookMaintenanceOff), undo: true},
}

// planStep is one step of a kind's plan; when, if set, says whether a
// release runs it.
type planStep struct {
	name string
	when func(r *Release, e *Environment) bool
}

// plans lists the steps of each kind, in order.
var plans = map[ReleaseKind][]planStep{
	KindDeploy: {
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
	},
	KindRollback: restorePlan,
	KindRestore:  restorePlan,
	KindSwitch: {
		{name: StepPreflight},
		{name: StepSwitch},
	},
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

// stepsFor lists the steps a release will run, in order.
func stepsFor(r *Release, e *Environment) []Step {
	var steps []Step
	for _, p := range plans[r.Kind] {
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
		note, err := s.preflightDeploy(ctx, a, e, m, nil, r.AllowNewPlugins)
		if err != nil {
			return "", true, err
		}
		log := "chain, marker, plugins, variables, freeze and locks checked" + s.driftSummary(ctx, a, e)
		if note != "" {
			log += "\n" + note
		}
		return log, true, nil
	case KindSwitch:
		if err := s.checkSwitch(ctx, a, r); err != nil {
			return "", true, err
		}
		return fmt.Sprintf("%s still what %s holds, its checks passed; freeze and locks checked", r.SwitchTo, RecoveryEnv), true, s.preflightWindow(ctx, a, e, nil)
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

func applyStep(ctx context.Context, s *ReleaseService, r *Release, _ *App, e *Environment) (string, bool, error) {
	opts := ApplyOptions{}
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
	return withWarnings(fmt.Sprintf("%s in one transaction, %s", Count(len(res.Steps), "statement and load|statements and loads"), res.Duration.Round(time.Millisecond)), res.Warnings), true, nil
}

// applyProbe: the target's marker row, written in the apply's own
// transaction, says whether the migration committed.
var applyProbe = &commitProbe{
	committed: func(ctx context.Context, s *ReleaseService, r *Release) (bool, error) {
		return s.migrationApplied(ctx, r)
	},
	doneLog: "committed before the interruption (the target's marker records it)",
	yes:     "the migration had committed (its marker is in the target)",
	no:      "the migration had not committed: the target is as before it",
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
	rep, err := s.Backups.Engine.Restore(ctx, art, a.Name, e, restoreOptions(b, e.Name))
	if err != nil {
		return "", true, err
	}
	return withWarnings(fmt.Sprintf("%s restored %s: %s, %s, %s in %s", b.ID, rep.Mode, Count(rep.Tables, "table"), Count(rep.Rows, "row"), Count(rep.Files, "file"), rep.Duration.Round(time.Millisecond)), rep.Warnings), true, nil
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
	if r.Kind == KindDeploy && r.Backup != "" {
		why += fmt.Sprintf("; or roll back with `rollback %s` (restores %s)", r.ID, r.Backup)
	}
	return why
}
