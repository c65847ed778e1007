package release

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ReleaseKind is what a release does to its environment.
type ReleaseKind string

const (
	// KindDeploy applies a migration file.
	KindDeploy ReleaseKind = "deploy"
	// KindRollback takes a deploy back: targeted (Release.Snapshot set),
	// it puts back what the deploy's apply changed from the release
	// snapshot the apply kept; full, it restores the pre-release backup.
	KindRollback ReleaseKind = "rollback"
	// KindRestore restores a backup (backup restore, approved like a release).
	KindRestore ReleaseKind = "restore"
	// KindSwitch moves users to the recovery environment after a rollback
	// or restore into it passed its checks (its switch_traffic hook). It is
	// a release of the environment users leave, approved as one.
	KindSwitch ReleaseKind = "switch traffic"
)

// State is where a release stands. Transitions lists the allowed moves.
type State string

const (
	StateAwaitingApproval State = "awaiting approval"
	StateScheduled        State = "scheduled" // approved, waiting for its time or its runner
	StateRunning          State = "running"
	StateSucceeded        State = "succeeded"
	StateFailed           State = "failed"
	StateRolledBack       State = "rolled back"
	StateRejected         State = "rejected"
	StateCancelled        State = "cancelled"
	StateExpired          State = "expired"
	StateInterrupted      State = "interrupted" // its runner died; resume or roll back
)

// Transitions is the state machine: every move a release may make. Each
// move is persisted before its side effects start.
var Transitions = map[State][]State{
	StateAwaitingApproval: {StateScheduled, StateRejected, StateCancelled, StateExpired},
	StateScheduled:        {StateRunning, StateCancelled},
	StateRunning:          {StateSucceeded, StateFailed, StateInterrupted},
	StateInterrupted:      {StateRunning, StateRolledBack, StateFailed},
	StateFailed:           {StateRolledBack},
	StateSucceeded:        {StateRolledBack},
}

// CanMove reports whether from -> to is allowed.
func CanMove(from, to State) bool {
	for _, s := range Transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckMove refuses a move Transitions does not allow, saying what the
// state allows instead.
func CheckMove(id string, from, to State) error {
	if CanMove(from, to) {
		return nil
	}
	next := Transitions[from]
	if len(next) == 0 {
		return Errorf(CodeInvalid, "%s cannot become %s: a release that is %s does not change any more", id, to, from)
	}
	allowed := make([]string, len(next))
	for i, s := range next {
		allowed[i] = string(s)
	}
	return Errorf(CodeInvalid, "%s cannot become %s: a release that is %s can only become %s", id, to, from, strings.Join(allowed, " or "))
}

// Open reports whether a release in state s still holds its environment:
// no other release of it may be requested meanwhile.
func (s State) Open() bool {
	switch s {
	case StateAwaitingApproval, StateScheduled, StateRunning, StateInterrupted:
		return true
	}
	return false
}

// Step names, in the order a deploy runs them.
const (
	StepPreflight      = "preflight"
	StepNotice         = "notice"
	StepMaintenanceOn  = "maintenance on"
	StepScaleDown      = "scale down"
	StepBackup         = "pre-release backup"
	StepPrepare        = "prepare apply"
	StepApply          = "apply migration"
	StepRevert         = "revert"
	StepRestore        = "restore backup"
	StepRestart        = "restart app"
	StepChecks         = "validation checks"
	StepSwitch         = "switch traffic"
	StepScaleUp        = "scale up"
	StepMaintenanceOff = "maintenance off"
	StepRetention      = "snapshot retention"
)

// StepState is where one step stands.
type StepState string

const (
	StepPending StepState = "pending"
	StepRunning StepState = "running"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	StepSkipped StepState = "skipped"
)

// Release is one deploy, rollback or restore of one environment, with its
// whole story.
type Release struct {
	ID        string // crm-r5
	App       string
	Env       string
	Kind      ReleaseKind
	Migration string // deploy: the migration ID
	FileHash  string // deploy: the migration file's sha256
	Backup    string // rollback/restore: the backup restored; deploy: the pre-release backup
	// Snapshot: deploy: the release snapshot its apply kept in the target
	// (named after the release), empty when it kept none; rollback: the
	// snapshot a targeted rollback puts back (empty: a full rollback).
	Snapshot    string
	RollbackOf  string // rollback: the release rolled back
	SwitchTo    string // switch: the rollback or restore into recovery users move to
	RequestedBy string
	RequestedAt time.Time
	At          *time.Time // scheduled start, if any
	State       State
	Reason      string // why it was rejected, cancelled, failed or interrupted
	Approvals   []Approval
	Steps       []Step
	Checks      []CheckResult
	// Lease says which process runs it and until when; a lease that ran out
	// means the process died.
	LeaseOwner string
	LeaseUntil *time.Time
	// Channel and message of the release's Slack message, for updates.
	Channel   string
	MessageTS string
	UpdatedAt time.Time

	// AllowNewPlugins records the requester's choice (deploy
	// --allow-new-plugins, or the Slack confirmation) to go on with a
	// migration that brings plugins the target does not have.
	AllowNewPlugins bool
	// NoAnalyze: restore, full rollback: the requester chose (--no-analyze)
	// a restore that leaves the database without planner statistics.
	NoAnalyze bool
	// Changes: deploy: the change summary approvers were shown, against
	// the target as it was at the request.
	Changes *Changes
}

// Rollbackable reports whether `rollback` can take r back: a deploy that
// took its pre-release backup and then ran, or was interrupted.
func (r *Release) Rollbackable() bool {
	return r.Kind == KindDeploy && (r.Backup != "" || r.Snapshot != "") &&
		(r.State == StateFailed || r.State == StateInterrupted || r.State == StateSucceeded)
}

// Targeted reports whether r is a targeted rollback: it puts back what a
// deploy changed, from the release snapshot its apply kept, instead of
// restoring the whole pre-release backup.
func (r *Release) Targeted() bool { return r.Kind == KindRollback && r.Snapshot != "" }

// RollbackWays says what `rollback` does to deploy r, in a few words:
// the targeted rollback when its apply kept a snapshot, then the full one.
func (r *Release) RollbackWays() string {
	var ways []string
	if r.Snapshot != "" {
		ways = append(ways, fmt.Sprintf("`rollback %s` puts back what it changed, keeping rows written since", r.ID))
	}
	if r.Backup != "" {
		flag := ""
		if r.Snapshot != "" {
			flag = " --full"
		}
		ways = append(ways, fmt.Sprintf("`rollback %s%s` restores %s", r.ID, flag, r.Backup))
	}
	return strings.Join(ways, "; ")
}

// RollbackMode says which rollback r is, and what it does: "targeted:
// puts back what crm-r7 changed, keeps rows written since" or "full:
// restores backup crm-b12 taken before crm-r7". Empty for other kinds.
func (r *Release) RollbackMode() string {
	switch {
	case r.Targeted():
		return fmt.Sprintf("targeted: puts back what %s changed, keeps rows written since", r.RollbackOf)
	case r.Kind == KindRollback:
		return fmt.Sprintf("full: restores backup %s taken before %s", r.Backup, r.RollbackOf)
	}
	return ""
}

// WaysOut names the commands that lead on from an interrupted release.
func (r *Release) WaysOut() string {
	s := fmt.Sprintf("resume %s (continues from its first unfinished step)", r.ID)
	if r.Rollbackable() {
		s += " or roll back: " + r.RollbackWays()
	}
	return s
}

// RestartNeeded says, once r succeeded, that the app must still be
// restarted to see what r changed: its environment has no restart hook (the
// step was skipped). Empty otherwise.
func (r *Release) RestartNeeded() string {
	if r.State != StateSucceeded || r.Kind == KindSwitch {
		return ""
	}
	for _, st := range r.Steps {
		if st.Name == StepRestart && st.State == StepSkipped {
			return fmt.Sprintf("The app must be restarted to see the change: %s %s has no restart hook in apps.yaml, and a running NocoBase keeps the configuration and variables it read at start.", r.App, r.Env)
		}
	}
	return ""
}

// Switchable reports whether users could be moved to what r restored: a
// rollback or restore into the recovery environment that succeeded, its
// checks passed. (ReleaseService.RequestSwitch checks the rest.)
func (r *Release) Switchable() bool {
	return r.restoredRecovery() && r.checksRan()
}

// restoredRecovery reports whether r is a rollback or restore into the
// recovery environment that succeeded.
func (r *Release) restoredRecovery() bool {
	return (r.Kind == KindRollback || r.Kind == KindRestore) && r.Env == RecoveryEnv && r.State == StateSucceeded
}

// checksRan reports whether r's validation step ran (it is skipped where
// the environment defines no checks) and so passed, r having succeeded.
func (r *Release) checksRan() bool {
	for _, st := range r.Steps {
		if st.Name == StepChecks {
			return st.State == StepDone
		}
	}
	return false
}

// Approval is one person's yes.
type Approval struct {
	By string
	At time.Time
}

// Step is one step of a run.
type Step struct {
	Name    string
	State   StepState
	Started *time.Time
	Ended   *time.Time
	Log     string
}

// CheckResult is the outcome of one validation check.
type CheckResult struct {
	Name     string
	OK       bool
	Duration time.Duration
	Detail   string
}

// ReleaseStore keeps releases. Every method that changes a release's state
// is a compare-and-set on the state it expects, so two processes cannot
// both make the same move.
type ReleaseStore interface {
	// CreateRelease inserts r. It fails with CodeConflict naming the open
	// release when r's environment already has one (State.Open).
	CreateRelease(ctx context.Context, r *Release) error
	GetRelease(ctx context.Context, id string) (*Release, error)
	// ListReleases returns an app's releases (of env, if not empty), newest first.
	ListReleases(ctx context.Context, app, env string) ([]*Release, error)
	// MoveRelease changes the state from `from` to `to` and records reason;
	// it fails with CodeConflict when the release is no longer in `from`.
	MoveRelease(ctx context.Context, id string, from, to State, reason string) error
	// AddApproval records an approval; false when this person already approved.
	AddApproval(ctx context.Context, id string, a Approval) (bool, error)
	// SaveSteps replaces the release's step list (names and states).
	SaveSteps(ctx context.Context, id string, steps []Step) error
	SaveChecks(ctx context.Context, id string, checks []CheckResult) error
	// SetBackup records the pre-release backup of a deploy.
	SetBackup(ctx context.Context, id, backup string) error
	// SetSnapshot records the release snapshot a deploy's apply kept.
	SetSnapshot(ctx context.Context, id, snapshot string) error
	// TakeLease makes owner the runner of a release in state `from`, moving
	// it to running, until `until`. Fails with CodeConflict otherwise.
	TakeLease(ctx context.Context, id string, from State, owner string, until time.Time) error
	// RenewLease extends the owner's lease; fails when owner lost it.
	RenewLease(ctx context.Context, id, owner string, until time.Time) error
	// ExpiredLeases lists running releases whose lease ran out.
	ExpiredLeases(ctx context.Context, now time.Time) ([]*Release, error)
	// SetMessage records where the release's Slack message is.
	SetMessage(ctx context.Context, id, channel, ts string) error

	// Holds are manual locks of an environment (lock/unlock). PutHold
	// places a hold atomically, or fails with HoldPlaced when the
	// environment has one already.
	PutHold(ctx context.Context, h Hold) error
	DeleteHold(ctx context.Context, app, env string) error
	GetHold(ctx context.Context, app, env string) (*Hold, error) // nil when none
	ListHolds(ctx context.Context) ([]Hold, error)
}

// Hold is a manual lock: no release or restore of the environment runs.
type Hold struct {
	App    string
	Env    string
	Reason string
	By     string
	At     time.Time
}

// Notifier hears every event of a release. Slack renders them; the
// terminal prints them.
type Notifier interface {
	ReleaseChanged(ctx context.Context, r *Release, event Event)
}

// Event says what just happened to a release.
type Event struct {
	Kind   EventKind
	Step   string // for step events
	Detail string
	Actor  string
}

// EventKind names an event.
type EventKind string

const (
	EventRequested     EventKind = "requested"
	EventNeedsApproval EventKind = "needs approval"
	EventApproved      EventKind = "approved"
	EventRejected      EventKind = "rejected"
	EventCancelled     EventKind = "cancelled"
	EventExpired       EventKind = "expired"
	EventNotice        EventKind = "notice"
	EventStepStarted   EventKind = "step started"
	EventStepFinished  EventKind = "step finished"
	EventCheck         EventKind = "check"
	EventSucceeded     EventKind = "succeeded"
	EventFailed        EventKind = "failed"
	EventInterrupted   EventKind = "interrupted"
	// EventWaiting says that a runner waits for a scheduled release's time.
	EventWaiting EventKind = "waiting"
	// EventSwitchOffered follows the success of a rollback or restore into
	// recovery whose checks ran, when recovery has a switch_traffic hook.
	EventSwitchOffered EventKind = "switch offered"
)

// Hooks runs an environment's hooks (maintenance, scaling, traffic).
type Hooks interface {
	// Run runs hook name of env and returns its output; a hook env does
	// not define is not an error (ran=false).
	Run(ctx context.Context, env *Environment, name string) (output string, ran bool, err error)
}

// Checker runs an environment's validation checks.
type Checker interface {
	Run(ctx context.Context, env *Environment) []CheckResult
}

// MissingVariables is why a deploy was refused when the target lacks
// variables the migration references: transports can ask the requester
// for them (Slack offers a form).
type MissingVariables struct {
	App, Env, Migration string
	Names               []string
}

func (m *MissingVariables) Error() string {
	return m.Env + " lacks variables: " + List(m.Names)
}
