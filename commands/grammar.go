package commands

import "strings"

// argKind says what a word must look like; validation and the "missing ..."
// messages follow from it.
type argKind int

const (
	kindApp argKind = iota
	kindEnv
	kindVersion   // crm-v3
	kindMigration // crm-m7
	kindBackup    // crm-b12
	kindRelease   // crm-r5
	kindVarName   // TOKEN
	kindAssign    // NAME=VALUE
	kindText      // free words: DESCRIPTION..., REASON..., --note TEXT
	kindTopic     // help's COMMAND
	kindAt        // --at TIME
	kindSwitch    // a flag without a value: --allow-new-plugins
	kindFile      // a path on the host the command runs on
)

// arg is one positional argument. A rest argument takes every remaining
// word; it must be last.
type arg struct {
	meta     string // as in the usage line: APP, ENV, FROM
	kind     argKind
	optional bool
	rest     bool
}

type flag struct {
	name string // without "--"
	meta string
	kind argKind
}

// spec is one command of the grammar: its shape, its help, and how to build
// its typed value from validated words.
type spec struct {
	name    string
	args    []arg
	flags   []flag
	summary string // one line for the command list
	help    string // a short paragraph for "help NAME"
	// build gets one value per arg ("" when an optional one is absent) and
	// the flags given, by name.
	build func(a []string, f map[string]string) Command
	// check, if set, validates across arguments (an ID's app matches APP).
	check func(c Command) error
	// precheck, if set, runs on the raw words before anything else, so a
	// command can refuse input without echoing it (secret set).
	precheck func(words []token) error
}

func (s *spec) usage() string {
	var b strings.Builder
	b.WriteString(s.name)
	for _, a := range s.args {
		m := a.meta
		if a.kind == kindText {
			m += "..."
		}
		if a.optional {
			m = "[" + m + "]"
		}
		b.WriteString(" " + m)
	}
	for _, f := range s.flags {
		if f.kind == kindSwitch {
			b.WriteString(" [--" + f.name + "]")
			continue
		}
		b.WriteString(" [--" + f.name + " " + f.meta + "]")
	}
	return b.String()
}

func (s *spec) flag(name string) *flag {
	for i := range s.flags {
		if s.flags[i].name == name {
			return &s.flags[i]
		}
	}
	return nil
}

var (
	aApp       = arg{meta: "APP", kind: kindApp}
	aEnv       = arg{meta: "ENV", kind: kindEnv}
	aName      = arg{meta: "NAME", kind: kindVarName}
	aRelease   = arg{meta: "RELEASE", kind: kindRelease}
	aMigr      = arg{meta: "MIGRATION", kind: kindMigration}
	aBackup    = arg{meta: "BACKUP", kind: kindBackup}
	fInto      = flag{name: "into", meta: "ENV", kind: kindEnv}
	fNoAnalyze = flag{name: "no-analyze", kind: kindSwitch}
)

// grammar is every command, in the order of SPEC.md; help lists it so.
var grammar = []*spec{
	{
		name: "help", args: []arg{{meta: "COMMAND", kind: kindTopic, optional: true, rest: true}},
		summary: "list every command, or explain one",
		help:    "Without a command, lists every command with a one-line summary. With one (\"help backup create\") or a group (\"help backup\"), shows its usage and what it does.",
		build:   func(a []string, _ map[string]string) Command { return Help{Topic: strings.ToLower(a[0])} },
	},
	{
		name:    "apps",
		summary: "apps, environments, locks, last release and backup",
		help:    "Lists every app relbot manages, its environments in chain order (the first is the source of migrations), its recovery environment if any, and its latest backup.",
		build:   func([]string, map[string]string) Command { return Apps{} },
	},
	{
		name: "status", args: []arg{aApp},
		summary: "an app's environments: what runs where, releases in flight, locks",
		help:    "Shows, for each environment of APP, the last release and its state, any release waiting or running, locks and freezes in force, and the latest backup.",
		build:   func(a []string, _ map[string]string) Command { return Status{App: a[0]} },
	},
	{
		name:    "version",
		summary: "relbot's own version and the commit it was built from (also --version)",
		help: "With no subcommand (or as --version), prints relbot's module version and the VCS stamp Go recorded when it was built: the revision, its time, and whether the work tree had uncommitted changes. " +
			"A binary built without the stamp (go run, -buildvcs=false) says so. The subcommands below are versions of an app's configuration.",
		build: func([]string, map[string]string) Command { return Version{} },
	},
	{
		name: "version create", args: []arg{aApp, {meta: "DESCRIPTION", kind: kindText, rest: true}},
		summary: "checkpoint development's configuration with a business description",
		help:    "Saves the configuration tables of APP's development environment as a new version (e.g. crm-v3). Every remaining word is the description; quotes are optional.",
		build:   func(a []string, _ map[string]string) Command { return VersionCreate{App: a[0], Description: a[1]} },
	},
	{
		name: "version list", args: []arg{aApp},
		summary: "an app's versions, newest first",
		help:    "Lists APP's versions with their descriptions, authors and dates, newest first.",
		build:   func(a []string, _ map[string]string) Command { return VersionList{App: a[0]} },
	},
	{
		name: "version diff", args: []arg{aApp, {meta: "FROM", kind: kindVersion}, {meta: "TO", kind: kindVersion, optional: true}},
		summary: "what changed between two versions; TO defaults to the live development environment",
		help:    "Compares version FROM with version TO, table by table and row by row. Without TO, compares FROM with APP's development environment as it is now.",
		build:   func(a []string, _ map[string]string) Command { return VersionDiff{App: a[0], From: a[1], To: a[2]} },
		check: func(c Command) error {
			v := c.(VersionDiff)
			return sameApp("version diff", v.App, v.From, v.To)
		},
	},
	{
		name: "version restore", args: []arg{aApp, {meta: "VERSION", kind: kindVersion}},
		summary: "put a version's configuration back into development",
		help:    "Replaces the configuration tables of APP's development environment with those saved in VERSION. Other environments are untouched; they change only through releases.",
		build:   func(a []string, _ map[string]string) Command { return VersionRestore{App: a[0], Version: a[1]} },
		check: func(c Command) error {
			v := c.(VersionRestore)
			return sameApp("version restore", v.App, v.Version)
		},
	},
	{
		name: "var list", args: []arg{aApp, aEnv},
		summary: "an environment's variables; secrets shown masked",
		help:    "Lists the variables and secrets of ENV. Secret values are never shown, only that they are set.",
		build:   func(a []string, _ map[string]string) Command { return VarList{App: a[0], Env: a[1]} },
	},
	{
		name: "var set", args: []arg{aApp, aEnv, {meta: "NAME=VALUE", kind: kindAssign}},
		summary: "set a plain (non-secret) variable",
		help:    "Sets variable NAME of ENV to VALUE. Quote the whole NAME=VALUE, or just the value, when it holds spaces: NAME=\"two words\". The value may contain '='. For anything confidential use \"secret set\".",
		build: func(a []string, _ map[string]string) Command {
			name, value, _ := strings.Cut(a[2], "=")
			return VarSet{App: a[0], Env: a[1], Var: name, Value: value}
		},
	},
	{
		name: "var unset", args: []arg{aApp, aEnv, aName},
		summary: "remove a variable",
		help:    "Removes variable NAME from ENV. A migration that references it will be refused until it is set again.",
		build:   func(a []string, _ map[string]string) Command { return VarUnset{App: a[0], Env: a[1], Var: a[2]} },
	},
	{
		name: "secret set", args: []arg{aApp, aEnv, aName},
		summary:  "value from a Slack modal, or stdin in a terminal; never on the command line",
		help:     "Sets secret NAME of ENV. The value is never typed on the command line: in Slack a private form opens for it, in a terminal it is read from stdin. It is stored encrypted and never shown again.",
		build:    func(a []string, _ map[string]string) Command { return SecretSet{App: a[0], Env: a[1], Var: a[2]} },
		precheck: refuseSecretValue,
	},
	{
		name: "secret unset", args: []arg{aApp, aEnv, aName},
		summary: "remove a secret",
		help:    "Removes secret NAME from ENV.",
		build:   func(a []string, _ map[string]string) Command { return SecretUnset{App: a[0], Env: a[1], Var: a[2]} },
	},
	{
		name: "restart", args: []arg{aApp, aEnv},
		summary: "run ENV's restart hook, so the app sees changed variables and configuration",
		help:    "Runs the restart hook apps.yaml defines for ENV. A running NocoBase reads its variables and configuration at start: after var set, secret set or their unset it sees the change only once restarted (releases restart it themselves after the apply). Refused while ENV is locked or a release runs there.",
		build:   func(a []string, _ map[string]string) Command { return Restart{App: a[0], Env: a[1]} },
	},
	{
		name: "migration create", args: []arg{aApp},
		flags:   []flag{{name: "version", meta: "VERSION", kind: kindVersion}, {name: "note", meta: "TEXT", kind: kindText}},
		summary: "generate a migration file from development",
		help:    "Generates an immutable migration file (e.g. crm-m7) from APP's development environment, or from VERSION with --version, following the app's table rules. --note adds a free text note; quote it when it has spaces.",
		build: func(a []string, f map[string]string) Command {
			return MigrationCreate{App: a[0], Version: f["version"], Note: f["note"]}
		},
		check: func(c Command) error {
			m := c.(MigrationCreate)
			return sameApp("migration create", m.App, m.Version)
		},
	},
	{
		name: "migration list", args: []arg{aApp},
		summary: "an app's migration files, newest first",
		help:    "Lists APP's migration files with their notes, hashes and the environments they reached.",
		build:   func(a []string, _ map[string]string) Command { return MigrationList{App: a[0]} },
	},
	{
		name: "migration show", args: []arg{aMigr},
		summary: "a migration file's tables, rules, variables and hash",
		help:    "Shows what MIGRATION holds: each table with its rule and row count, the names of the variables and secrets it needs, and its content hash.",
		build:   func(a []string, _ map[string]string) Command { return MigrationShow{Migration: a[0]} },
	},
	{
		name: "migration plan", args: []arg{aMigr, aEnv},
		summary: "what applying would do to ENV: DDL, row counts, destructive changes, missing variables",
		help:    "Computes, without changing anything, what applying MIGRATION to ENV would do: the DDL, rows inserted, updated and deleted per table, destructive changes, and variables ENV lacks.",
		build:   func(a []string, _ map[string]string) Command { return MigrationPlan{Migration: a[0], Env: a[1]} },
	},
	{
		name: "backup create", args: []arg{aApp, aEnv},
		summary: "back up an environment's database and storage now",
		help:    "Takes a consistent manual backup of ENV: the whole database (schema, every row, sequences) and its storage directory, with a manifest of checksums. Replies with the backup ID (e.g. crm-b12).",
		build:   func(a []string, _ map[string]string) Command { return BackupCreate{App: a[0], Env: a[1]} },
	},
	{
		name: "backup list", args: []arg{aApp, aEnv},
		summary: "an environment's backups, newest first",
		help:    "Lists ENV's backups newest first, with kind (manual, pre-release, scheduled), size, contents and when each was last verified.",
		build:   func(a []string, _ map[string]string) Command { return BackupList{App: a[0], Env: a[1]} },
	},
	{
		name: "backup verify", args: []arg{aBackup},
		summary: "restore into a scratch database and compare with the manifest",
		help:    "Checks every checksum of BACKUP, restores it into a scratch database and compares tables, rows and files with its manifest. Nothing of the app is touched.",
		build:   func(a []string, _ map[string]string) Command { return BackupVerify{Backup: a[0]} },
	},
	{
		name: "backup show", args: []arg{aBackup},
		summary: "one backup's manifest: versions, tables with rows, files, warnings, verification",
		help:    "Shows BACKUP's manifest: PostgreSQL, NocoBase core and plugin versions, tables and rows, storage files, its warnings, and when its checksums were last checked and when a verify last restored it.",
		build:   func(a []string, _ map[string]string) Command { return BackupShow{Backup: a[0]} },
	},
	{
		name: "backup download", args: []arg{aBackup},
		summary: "a signed link that downloads a backup's archive, as stored",
		help: "Answers with a link that downloads BACKUP's archive as it is stored (an encrypted backup stays encrypted) until the link expires (RELBOT_LINK_TTL). " +
			"Needs relbot serve's pages (RELBOT_PUBLIC_URL) and the backup role on the backup's environment; by default its approvers hold it for downloads. The link is answered to you alone.",
		build: func(a []string, _ map[string]string) Command { return BackupDownload{Backup: a[0]} },
	},
	{
		name: "backup import", args: []arg{aApp, aEnv, {meta: "FILE", kind: kindFile}},
		summary: "take in a backup archive made by another relbot installation",
		help: "Copies the archive FILE (a path on the host relbot runs on, so from a terminal there) into ENV's backups once every checksum matched and a restore into a scratch database agreed with its manifest; " +
			"a damaged file, one of another app, a migration file or anything not a relbot backup is refused with one line and leaves nothing behind. An encrypted archive needs the RELBOT_BACKUP_KEY it was written with. " +
			"The backup keeps the time it was taken and is listed as imported; its secrets stay those of the environment it was taken of, so a restore into another environment keeps that one's own. " +
			"Needs the backup role on ENV; by default its approvers hold it for imports.",
		build: func(a []string, _ map[string]string) Command { return BackupImport{App: a[0], Env: a[1], File: a[2]} },
	},
	{
		name: "backup delete", args: []arg{aBackup},
		summary: "delete a backup's archive and record",
		help: "Deletes BACKUP. Refused for the newest verified backup of its environment (the one to restore from) and for a pre-release backup a rollback may still restore (its release is open or is the environment's latest deploy). " +
			"Needs the backup role there; by default the environment's approvers hold it for deletion.",
		build: func(a []string, _ map[string]string) Command { return BackupDelete{Backup: a[0]} },
	},
	{
		name: "backup restore", args: []arg{aBackup}, flags: []flag{fInto, fNoAnalyze},
		summary: "restore a backup in place or --into another environment; approval as for a release",
		help: "Restores BACKUP into its own environment, or with --into into another environment of the app (\"recovery\" names its independent recovery environment). Needs the same approvals as a release to that environment. " +
			"The restored database is analyzed (planner statistics gathered) before the restore is reported done; --no-analyze skips that for a faster restore, and queries plan badly until autovacuum or an ANALYZE gathers them.",
		build: func(a []string, f map[string]string) Command {
			_, noAnalyze := f["no-analyze"]
			return BackupRestore{Backup: a[0], Into: f["into"], NoAnalyze: noAnalyze}
		},
	},
	{
		name: "deploy", args: []arg{aMigr, aEnv}, flags: []flag{{name: "at", meta: "TIME", kind: kindAt}, {name: "allow-new-plugins", kind: kindSwitch}},
		summary: "request a release of a migration to an environment",
		help: "Requests a release of MIGRATION to ENV. It runs once the environment's approvals are given, at once or at --at TIME: \"22:00\" (the next 22:00 in the app's time zone), \"2026-12-01 22:00\", or RFC 3339 (\"2026-12-01T22:00:00+01:00\"). " +
			"A file ENV already has is refused. One that registers or enables plugins ENV does not have is refused unless --allow-new-plugins is given; the release records the choice.",
		build: func(a []string, f map[string]string) Command {
			_, allow := f["allow-new-plugins"]
			return Deploy{Migration: a[0], Env: a[1], At: f["at"], AllowNewPlugins: allow}
		},
	},
	{
		name: "approve", args: []arg{aRelease},
		summary: "approve a release",
		help:    "Adds your approval to RELEASE. You may approve only if the environment's policy lists you, and not your own request unless the policy allows it.",
		build:   func(a []string, _ map[string]string) Command { return Approve{Release: a[0]} },
	},
	{
		name: "reject", args: []arg{aRelease, {meta: "REASON", kind: kindText, optional: true, rest: true}},
		summary: "reject a release, with an optional reason",
		help:    "Rejects RELEASE; it will not run. Every remaining word is the reason, shown to the requester.",
		build:   func(a []string, _ map[string]string) Command { return Reject{Release: a[0], Reason: a[1]} },
	},
	{
		name: "cancel", args: []arg{aRelease},
		summary: "withdraw a release that has not started",
		help:    "Cancels RELEASE while it waits for approval or its scheduled time. A running release cannot be cancelled.",
		build:   func(a []string, _ map[string]string) Command { return Cancel{Release: a[0]} },
	},
	{
		name: "resume", args: []arg{aRelease},
		summary: "continue an interrupted release from its first unfinished step",
		help:    "Continues RELEASE after an interruption (a restart of the bot, a lost lease) from its first unfinished step.",
		build:   func(a []string, _ map[string]string) Command { return Resume{Release: a[0]} },
	},
	{
		name: "rollback", args: []arg{aRelease}, flags: []flag{{name: "full", kind: kindSwitch}, fInto, fNoAnalyze},
		summary: "take a deploy back: put back what it changed, or --full restore its pre-release backup",
		help: "Takes RELEASE, a deploy, back. When its apply kept a release snapshot (and the environment still has it, and no later release changed the environment), " +
			"the rollback is targeted: it puts back exactly what RELEASE changed and keeps the rows users wrote since. " +
			"With --full, or when no snapshot is left, it restores the pre-release backup in place; with --into (e.g. recovery), always full, into an independent environment, where its checks run before traffic may be switched to it. " +
			"A full rollback analyzes the restored database before it is done; --no-analyze (full rollbacks only) skips that.",
		build: func(a []string, f map[string]string) Command {
			_, full := f["full"]
			_, noAnalyze := f["no-analyze"]
			return Rollback{Release: a[0], Into: f["into"], Full: full, NoAnalyze: noAnalyze}
		},
	},
	{
		name: "switch", args: []arg{aRelease},
		summary: "move users to the recovery environment a rollback or restore brought back",
		help: "Runs the recovery environment's switch_traffic hook after RELEASE — a rollback or restore into recovery — succeeded with its checks passed. " +
			"It is a release of the environment users leave (the restored backup's), approved as a release there; it is refused if recovery changed since RELEASE.",
		build: func(a []string, _ map[string]string) Command { return Switch{Release: a[0]} },
	},
	{
		name: "release list", args: []arg{aApp, {meta: "ENV", kind: kindEnv, optional: true}},
		summary: "an app's releases, newest first, optionally of one environment",
		help:    "Lists APP's releases newest first, with migration, environment, requester and state; ENV narrows the list to one environment.",
		build:   func(a []string, _ map[string]string) Command { return ReleaseList{App: a[0], Env: a[1]} },
	},
	{
		name: "release show", args: []arg{aRelease}, flags: []flag{{name: "step", meta: "NAME", kind: kindText}},
		summary: "a release's steps, approvals, validation results and state",
		help: "Shows RELEASE in full: who requested and approved it, the file hash, the pre-release backup, each step with its times and outcome, and the validation results. " +
			"The steps' logs are cut to a line there; --step NAME prints one step's whole log (quote a NAME with spaces: --step \"restore backup\").",
		build: func(a []string, f map[string]string) Command { return ReleaseShow{Release: a[0], Step: f["step"]} },
	},
	{
		name: "drift", args: []arg{aApp, aEnv, aEnv},
		summary: "schema, plugin/core versions and variable names compared",
		help:    "Compares two environments of APP: table schemas, core and plugin versions, and the names of variables and secrets (never their values).",
		build:   func(a []string, _ map[string]string) Command { return Drift{App: a[0], From: a[1], To: a[2]} },
		check: func(c Command) error {
			d := c.(Drift)
			if d.From == d.To {
				return usageErr("drift", "drift compares two different environments; both are %s", d.From)
			}
			return nil
		},
	},
	{
		name: "lock", args: []arg{aApp, aEnv, {meta: "REASON", kind: kindText, rest: true}},
		summary: "hold all releases and restores of ENV (incident, freeze)",
		help:    "Holds every release and restore of ENV until \"unlock\". Every remaining word is the reason, shown to whoever is held.",
		build:   func(a []string, _ map[string]string) Command { return Lock{App: a[0], Env: a[1], Reason: a[2]} },
	},
	{
		name: "unlock", args: []arg{aApp, aEnv},
		summary: "lift a lock",
		help:    "Lifts the lock on ENV; held releases may run again.",
		build:   func(a []string, _ map[string]string) Command { return Unlock{App: a[0], Env: a[1]} },
	},
}

// byName indexes grammar; groups lists each first word of two-word commands
// with its subcommands, in grammar order.
var (
	byName = map[string]*spec{}
	groups = map[string][]*spec{}
)

func init() {
	for _, s := range grammar {
		byName[s.name] = s
		if g, _, ok := strings.Cut(s.name, " "); ok {
			groups[g] = append(groups[g], s)
		}
	}
}

// Names returns every command name of the grammar, in SPEC.md's order.
func Names() []string {
	names := make([]string, len(grammar))
	for i, s := range grammar {
		names[i] = s.name
	}
	return names
}

// Usage returns the usage line of a command ("backup create APP ENV"), or ""
// for an unknown name.
func Usage(name string) string {
	if s := byName[name]; s != nil {
		return s.usage()
	}
	return ""
}
