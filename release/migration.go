package release

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Migration is the bot's record of one migration file.
type Migration struct {
	ID        string // crm-m7
	App       string
	SourceEnv string
	Version   string // the saved version it was made from, if any
	Note      string
	CreatedBy string
	CreatedAt time.Time
	Artifact  string
	Size      int64
	SHA256    string // identity of the file: sha256 of its bytes
	Summary   MigrationSummary
}

// MigrationSummary is what the engine reports about a file it wrote.
type MigrationSummary struct {
	CoreVersion string            `json:"core_version,omitempty"`
	Plugins     map[string]string `json:"plugins,omitempty"`
	Tables      []TableSummary    `json:"tables"`
	Variables   []string          `json:"variables"` // names referenced as {{$env.NAME}}
	Warnings    []string          `json:"warnings,omitempty"`
	// Layout is the source's NocoBase layout; nil in files made before
	// layouts were recorded.
	Layout *Layout `json:"layout,omitempty"`
}

// TableSummary is one table of a migration file.
type TableSummary struct {
	Table   string `json:"table"`
	Rule    Rule   `json:"rule"`
	Reason  string `json:"reason"`
	Rows    int64  `json:"rows"`    // in the source
	Carried bool   `json:"carried"` // the file holds its rows
}

// MigrationInput is what the engine needs to write a migration file.
type MigrationInput struct {
	App       *App
	Source    *Environment
	ID        string
	By        string
	Note      string
	Version   string
	CreatedAt time.Time
	// Secrets are the clear values of every secret relbot knows; a file
	// whose rows contain one is refused.
	Secrets []string
}

// MigrationPlan is what applying a file would do to an environment.
type MigrationPlan struct {
	Migration      string      `json:"migration"`
	Env            string      `json:"env"`
	AlreadyApplied *AppliedBy  `json:"already_applied,omitempty"`
	Destructive    []string    `json:"destructive"`
	Statements     []string    `json:"statements"`
	Tables         []TablePlan `json:"tables"`
	// MissingVariables are referenced by the file but unknown in the target.
	MissingVariables []string `json:"missing_variables"`
	VersionChanges   []string `json:"version_changes"`
	Warnings         []string `json:"warnings,omitempty"`

	// NewPlugins are plugins the file registers or enables that the
	// target does not have (a deploy needs --allow-new-plugins for them).
	NewPlugins []NewPlugin `json:"new_plugins"`

	// Changes is the change summary: what the apply changes in the
	// app's own terms (nil when the file was applied already).
	Changes *Changes `json:"changes,omitempty"`
}

// NewPlugin is a plugin a migration registers or enables that its target
// does not have, as NocoBase's Migration Manager warns: the target's app
// lacks its package, or has not installed or enabled it, so the carried
// configuration may use what the target cannot run.
type NewPlugin struct {
	Name        string `json:"name"`
	PackageName string `json:"package_name,omitempty"`
	Version     string `json:"version,omitempty"`
	// InTarget is what the target has: "not registered", "registered but
	// not installed" or "installed but disabled".
	InTarget string `json:"in_target"`
}

func (p NewPlugin) String() string {
	s := p.Name
	if p.PackageName != "" {
		s += " (" + p.PackageName
		if p.Version != "" {
			s += " " + p.Version
		}
		s += ")"
	}
	return s + ": " + p.InTarget + " in the target"
}

// TargetCheck is what a deploy's preflight learns from the target itself:
// whether the file was applied there already, the plugins it would bring
// that the target lacks, and what it would change there.
type TargetCheck struct {
	AlreadyApplied *AppliedBy
	NewPlugins     []NewPlugin
	Changes        *Changes
}

// NewPluginsRefusal is why a deploy was refused when its migration brings
// plugins the target lacks: transports can offer to go on anyway (Slack
// shows a confirmation button).
type NewPluginsRefusal struct {
	App, Env, Migration string
	Plugins             []NewPlugin
}

func (n *NewPluginsRefusal) Error() string {
	return fmt.Sprintf("%s brings %s %s lacks", n.Migration, Count(len(n.Plugins), "plugin"), n.Env)
}

// TablePlan is what happens to one table's rows.
type TablePlan struct {
	Table  string `json:"table"`
	Rule   Rule   `json:"rule"`
	Insert int64  `json:"insert"`
	Update int64  `json:"update"`
	Delete int64  `json:"delete"`
	Note   string `json:"note,omitempty"`
}

// AppliedBy tells when and by whom a file was applied to a database.
type AppliedBy struct {
	Migration string    `json:"migration"`
	At        time.Time `json:"at"`
	By        string    `json:"by"`
}

// ApplyOptions are the caller's choices for an apply.
type ApplyOptions struct {
	By string
	// AllowDestructive lets the apply drop what the plan lists as
	// destructive on tables whose rows the target keeps.
	AllowDestructive bool
	// KnownVariables are the variable names the target has; with it set,
	// a file referencing others is refused.
	KnownVariables map[string]bool
	// BeforeCommit, when set, is called after every statement ran and
	// before the transaction commits (a fault-injection point for tests).
	BeforeCommit func()
	// Prepared names a preparation (WindowEngine.Prepare) to swap in; if
	// the target changed since it was made, the apply does that work in
	// its transaction instead and its log says so.
	Prepared string
	// Snapshot, when set, names the release snapshot the apply keeps, in
	// its own transaction, of everything it changes.
	Snapshot string
	// SQL, when set, receives every statement the apply runs, in full and
	// in order, its steps as comments: the SQL it executed, for people.
	SQL io.Writer
	// SQLArtifact, when set, is where MigrationService.ApplyMigration
	// keeps that SQL in the artifact store (it sets SQL), committed or
	// failed alike.
	SQLArtifact string
}

// ApplyResult is the execution log of an apply.
type ApplyResult struct {
	AlreadyApplied *AppliedBy     `json:"already_applied,omitempty"`
	Steps          []ExecutedStep `json:"steps"`
	Duration       time.Duration  `json:"duration"`
	// Warnings say what the apply could not keep as the target had it
	// (an owner relbot's role may not give objects to).
	Warnings []string `json:"warnings,omitempty"`
}

// ExecutedStep is one line of the execution log.
type ExecutedStep struct {
	What     string        `json:"what"`
	Rows     int64         `json:"rows,omitempty"`
	Duration time.Duration `json:"duration"`
}

// MigrationEngine makes, plans and applies migration files.
type MigrationEngine interface {
	Create(ctx context.Context, in MigrationInput, w io.Writer) (*MigrationSummary, error)
	Plan(ctx context.Context, file ArchiveReader, app *App, target *Environment, known map[string]bool) (*MigrationPlan, error)
	Apply(ctx context.Context, file ArchiveReader, app *App, target *Environment, opts ApplyOptions) (*ApplyResult, error)
	// Applied reads the target's marker: whether this file committed there.
	Applied(ctx context.Context, file ArchiveReader, app *App, target *Environment) (*AppliedBy, error)
	// Check reads, without changing it, what a deploy must know of the
	// target before it is requested: the marker and the plugins it lacks.
	Check(ctx context.Context, file ArchiveReader, app *App, target *Environment) (*TargetCheck, error)
	WindowEngine
}

// MigrationRun is the record of one apply of a migration to an
// environment: who, when, how it ended, and its execution log.
type MigrationRun struct {
	Migration string
	Env       string
	By        string
	StartedAt time.Time
	OK        bool
	Error     string
	Result    *ApplyResult
}

// MigrationStore keeps migration records.
type MigrationStore interface {
	SaveMigration(ctx context.Context, m *Migration) error
	GetMigration(ctx context.Context, id string) (*Migration, error)
	// ListMigrations returns an app's migrations, newest first.
	ListMigrations(ctx context.Context, app string) ([]*Migration, error)
	SaveMigrationRun(ctx context.Context, r *MigrationRun) error
	// ListMigrationRuns returns a migration's applies, oldest first.
	ListMigrationRuns(ctx context.Context, id string) ([]*MigrationRun, error)
}
