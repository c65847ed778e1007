// Package commands is the one grammar both transports share: it parses the
// words of SPEC.md's "Commands" block into typed commands, dispatches them to
// the domain, and returns a transport-neutral Reply. It knows neither Slack
// nor the terminal.
package commands

// Command is one parsed command. Name is its grammar name, e.g. "backup
// create". (So the variable-name fields below are called Var, not Name.)
type Command interface {
	Name() string
}

// Help asks for the command list, or for one command or group ("backup").
type Help struct{ Topic string }

// Apps lists apps and their environments.
type Apps struct{}

// Status shows the state of one app.
type Status struct{ App string }

// VersionCreate checkpoints development's configuration tables.
type VersionCreate struct{ App, Description string }

// VersionList lists an app's versions.
type VersionList struct{ App string }

// VersionDiff compares two versions; an empty To means live development.
type VersionDiff struct{ App, From, To string }

// VersionRestore puts a version back into development.
type VersionRestore struct{ App, Version string }

// VarList lists an environment's variables (secrets masked).
type VarList struct{ App, Env string }

// VarSet sets a plain variable.
type VarSet struct{ App, Env, Var, Value string }

// VarUnset removes a variable.
type VarUnset struct{ App, Env, Var string }

// SecretSet asks for a secret's value out of band; it never carries the value.
type SecretSet struct{ App, Env, Var string }

// SecretUnset removes a secret.
type SecretUnset struct{ App, Env, Var string }

// MigrationCreate generates a migration file from development, or from a
// version when Version is set.
type MigrationCreate struct{ App, Version, Note string }

// MigrationList lists an app's migration files.
type MigrationList struct{ App string }

// MigrationShow describes one migration file.
type MigrationShow struct{ Migration string }

// MigrationPlan says what applying a migration would do to an environment.
type MigrationPlan struct{ Migration, Env string }

// BackupCreate takes a manual backup of an environment.
type BackupCreate struct{ App, Env string }

// BackupList lists an environment's backups.
type BackupList struct{ App, Env string }

// BackupVerify restores a backup into a scratch database and compares it
// with its manifest.
type BackupVerify struct{ Backup string }

// BackupShow shows one backup's manifest and verification.
type BackupShow struct{ Backup string }

// BackupImport takes in an archive file made by another installation.
type BackupImport struct{ App, Env, File string }

// BackupDownload gives a signed link that downloads a backup's archive.
type BackupDownload struct{ Backup string }

// BackupDelete removes a backup's archive and record.
type BackupDelete struct{ Backup string }

// BackupRestore restores a backup; an empty Into means the backup's own
// environment. NoAnalyze skips the ANALYZE after the restore.
type BackupRestore struct {
	Backup, Into string
	NoAnalyze    bool
}

// Deploy requests a release. At is the raw --at text (empty: now); resolve
// it with ParseAt in the app's time zone.
type Deploy struct {
	Migration, Env, At string
	// AllowNewPlugins goes on with plugins the target does not have.
	AllowNewPlugins bool
}

// Restart runs an environment's restart hook.
type Restart struct{ App, Env string }

// Approve approves a release.
type Approve struct{ Release string }

// Reject rejects a release; Reason may be empty.
type Reject struct{ Release, Reason string }

// Cancel cancels a release that has not started.
type Cancel struct{ Release string }

// Resume continues an interrupted release.
type Resume struct{ Release string }

// Rollback takes a deploy back: targeted by default where it can be, Full
// restores the pre-release backup; an empty Into means in place (any other
// is a full rollback). NoAnalyze (a full rollback only) skips the ANALYZE
// after the restore.
type Rollback struct {
	Release, Into   string
	Full, NoAnalyze bool
}

// Switch moves users to the recovery environment a rollback or restore
// brought back.
type Switch struct{ Release string }

// ReleaseList lists an app's releases; Env may be empty (all).
type ReleaseList struct{ App, Env string }

// ReleaseShow shows one release; with Step, that step's whole log.
type ReleaseShow struct{ Release, Step string }

// Drift compares two environments of an app.
type Drift struct{ App, From, To string }

// Lock holds all releases and restores of an environment.
type Lock struct{ App, Env, Reason string }

// Unlock lifts a lock.
type Unlock struct{ App, Env string }

func (Help) Name() string            { return "help" }
func (Apps) Name() string            { return "apps" }
func (Status) Name() string          { return "status" }
func (VersionCreate) Name() string   { return "version create" }
func (VersionList) Name() string     { return "version list" }
func (VersionDiff) Name() string     { return "version diff" }
func (VersionRestore) Name() string  { return "version restore" }
func (VarList) Name() string         { return "var list" }
func (VarSet) Name() string          { return "var set" }
func (VarUnset) Name() string        { return "var unset" }
func (SecretSet) Name() string       { return "secret set" }
func (SecretUnset) Name() string     { return "secret unset" }
func (MigrationCreate) Name() string { return "migration create" }
func (MigrationList) Name() string   { return "migration list" }
func (MigrationShow) Name() string   { return "migration show" }
func (MigrationPlan) Name() string   { return "migration plan" }
func (BackupCreate) Name() string    { return "backup create" }
func (BackupList) Name() string      { return "backup list" }
func (BackupVerify) Name() string    { return "backup verify" }
func (BackupShow) Name() string      { return "backup show" }
func (BackupDownload) Name() string  { return "backup download" }
func (BackupImport) Name() string    { return "backup import" }
func (BackupDelete) Name() string    { return "backup delete" }
func (BackupRestore) Name() string   { return "backup restore" }
func (Deploy) Name() string          { return "deploy" }
func (Restart) Name() string         { return "restart" }
func (Approve) Name() string         { return "approve" }
func (Reject) Name() string          { return "reject" }
func (Cancel) Name() string          { return "cancel" }
func (Resume) Name() string          { return "resume" }
func (Rollback) Name() string        { return "rollback" }
func (Switch) Name() string          { return "switch" }
func (ReleaseList) Name() string     { return "release list" }
func (ReleaseShow) Name() string     { return "release show" }
func (Drift) Name() string           { return "drift" }
func (Lock) Name() string            { return "lock" }
func (Unlock) Name() string          { return "unlock" }
