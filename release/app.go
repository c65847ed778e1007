package release

import (
	"fmt"
	"time"
)

// Rule says what a migration does with one table.
type Rule string

const (
	RuleOverwrite    Rule = "overwrite"
	RuleUpsert       Rule = "upsert"
	RuleInsertIgnore Rule = "insert-ignore"
	RuleSchemaOnly   Rule = "schema-only"
	RuleSkip         Rule = "skip"
)

// Rules lists every rule in the order users read them.
var Rules = []Rule{RuleOverwrite, RuleUpsert, RuleInsertIgnore, RuleSchemaOnly, RuleSkip}

// Valid reports whether r is one of Rules.
func (r Rule) Valid() bool {
	for _, k := range Rules {
		if r == k {
			return true
		}
	}
	return false
}

// CarriesRows reports whether a migration file holds the table's rows.
func (r Rule) CarriesRows() bool {
	return r == RuleOverwrite || r == RuleUpsert || r == RuleInsertIgnore
}

// NeedsPrimaryKey reports whether the rule matches rows by primary key.
func (r Rule) NeedsPrimaryKey() bool { return r == RuleUpsert || r == RuleInsertIgnore }

// RecoveryEnv is the name under which commands reach an app's independent
// recovery environment.
const RecoveryEnv = "recovery"

// App is one application with its chain of environments.
type App struct {
	Name    string
	Channel string
	// Builtin names the preset of built-in tables ("nocobase") or is empty
	// when BuiltinTables lists them explicitly.
	Builtin       string
	BuiltinTables []string
	// Rules are per-table overrides of the preset's defaults.
	Rules         map[string]Rule
	VersionTables []string
	// VersionKeep is how many versions to keep (apps.yaml versions.keep);
	// 0 means DefaultVersionKeep.
	VersionKeep int
	// Environments is the chain in order; the first is the source.
	Environments []*Environment
	Recovery     *Environment
	// Roles are the app's roles (permissions.go); an environment's own
	// Roles take precedence.
	Roles Roles
}

// Env finds an environment of the chain, or the recovery environment by the
// name "recovery".
func (a *App) Env(name string) (*Environment, error) {
	for _, e := range a.Environments {
		if e.Name == name {
			return e, nil
		}
	}
	if name == RecoveryEnv && a.Recovery != nil {
		return a.Recovery, nil
	}
	return nil, Errorf(CodeNotFound, "app %s has no environment %q (it has %s)", a.Name, name, a.envNames())
}

func (a *App) envNames() string {
	s := ""
	for i, e := range a.Environments {
		if i > 0 {
			s += ", "
		}
		s += e.Name
	}
	if a.Recovery != nil {
		s += ", " + RecoveryEnv
	}
	return s
}

// Source is the first environment of the chain, where configuration is made.
func (a *App) Source() *Environment { return a.Environments[0] }

// Previous returns the environment before env in the chain, or nil for the
// source and for environments outside the chain.
func (a *App) Previous(env string) *Environment {
	for i, e := range a.Environments {
		if e.Name == env && i > 0 {
			return a.Environments[i-1]
		}
	}
	return nil
}

// Environment is one database plus storage directory of an app.
type Environment struct {
	Name     string
	Database string // DSN; never printed (it may hold a password)
	Storage  string // directory of uploads and other files; may be empty
	// StorageExclude are path patterns (relative to Storage) left out of backups.
	StorageExclude []string
	Approvals      ApprovalPolicy
	Checks         []Check
	Freeze         []FreezeWindow
	Notice         time.Duration
	Backup         BackupPolicy
	Hooks          map[string]Hook
	Roles          Roles
	// Layout is the NocoBase layout apps.yaml states (nocobase: of the
	// environment or its app); nil means it is detected from the database.
	Layout *Layout
}

// Hook names that apps.yaml may define.
const (
	HookMaintenanceOn  = "maintenance_on"
	HookMaintenanceOff = "maintenance_off"
	HookScaleDown      = "scale_down"
	HookScaleUp        = "scale_up"
	HookSwitchTraffic  = "switch_traffic"
	// HookRestart restarts the app: a running NocoBase reads its variables
	// and configuration at start, so it runs after an apply or a restore,
	// and is offered after a variable changes.
	HookRestart = "restart"
)

// HookNames lists the hooks apps.yaml may define.
var HookNames = []string{HookMaintenanceOn, HookMaintenanceOff, HookScaleDown, HookScaleUp, HookSwitchTraffic, HookRestart}

// Hook is an action relbot runs on the app's side. Definitions come only
// from apps.yaml, never from user input.
type Hook struct {
	// HTTP is "METHOD URL".
	HTTP    string
	Exec    []string
	Timeout time.Duration
	// Env names the variables of relbot's environment an exec hook is
	// given, besides PATH, HOME, LANG and TZ; it sees no others.
	Env []string
}

// Check is one validation run after a release or restore.
type Check struct {
	Name    string
	SQL     string
	HTTP    string // "METHOD URL"
	Expect  int    // HTTP status expected; 200 when zero
	Timeout time.Duration
}

// ApprovalPolicy says who must approve a release to an environment.
type ApprovalPolicy struct {
	Required  int
	Approvers []string
	AllowSelf bool
	Expire    time.Duration
}

// FreezeWindow is a weekly period during which releases are held, e.g.
// "Fri 16:00 - Mon 08:00" in Location.
type FreezeWindow struct {
	Text       string
	Start, End WeekTime
	Location   *time.Location
}

// WeekTime is a moment of the week: minutes since Sunday 00:00.
type WeekTime int

// Contains reports whether t falls inside the window.
func (f FreezeWindow) Contains(t time.Time) bool {
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	m := WeekTime(int(lt.Weekday())*24*60 + lt.Hour()*60 + lt.Minute())
	if f.Start <= f.End {
		return m >= f.Start && m < f.End
	}
	return m >= f.Start || m < f.End // wraps over the week's end
}

// BackupPolicy is the schedule and retention of an environment's backups.
type BackupPolicy struct {
	Schedule string // cron; empty: no scheduled backups
	Keep     int    // how many to keep; 0 keeps all
	Verify   string // cron for verifying the newest backup
}

func (e *Environment) String() string { return fmt.Sprintf("environment %s", e.Name) }
