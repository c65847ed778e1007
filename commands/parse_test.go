package commands

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type parseCase struct {
	in   string
	want Command // nil: an error is expected
	// errHas are substrings the error must contain; errLacks must not
	// appear in it (a secret value).
	errHas   []string
	errLacks string
}

var parseCases = []parseCase{
	// help
	{in: "", want: Help{}},
	{in: "help", want: Help{}},
	{in: "HELP", want: Help{}},
	{in: "help backup create", want: Help{Topic: "backup create"}},
	{in: "help backup", want: Help{Topic: "backup"}},
	{in: "help deploy", want: Help{Topic: "deploy"}},
	{in: "help bakup", errHas: []string{`did you mean "backup"`}},
	{in: "help frobnicate", errHas: []string{`there is no command "frobnicate"`, "usage: help [COMMAND]"}},
	{in: "backup create --help", want: Help{Topic: "backup create"}},
	{in: "deploy crm-m7 production --help", want: Help{Topic: "deploy"}},
	{in: "reject crm-r5 -h", want: Help{Topic: "reject"}},
	{in: "backup --help", want: Help{Topic: "backup"}},
	{in: "Release -h", want: Help{Topic: "release"}},
	{in: "--help status", want: Help{Topic: "status"}},
	{in: "--help backup create", want: Help{Topic: "backup create"}},
	{in: "--help", want: Help{}},
	{in: "--help nosuch", errHas: []string{`there is no command "nosuch". Type "help"`}},
	{in: "backup nosuch --help", errHas: []string{`backup has no subcommand "nosuch"`}},
	{in: `"--help" status`, errHas: []string{`unknown command "--help".`}}, // quoted: a word

	// "--" ends the flags and is not part of the text; a later one is text.
	{in: "lock crm development -- --note is a word here", want: Lock{App: "crm", Env: "development", Reason: "--note is a word here"}},
	{in: "version create crm -- --note hello", want: VersionCreate{App: "crm", Description: "--note hello"}},
	{in: "lock crm development -- -- twice", want: Lock{App: "crm", Env: "development", Reason: "-- twice"}},
	{in: "lock crm -- development -- x", want: Lock{App: "crm", Env: "development", Reason: "-- x"}},
	{in: "lock crm development before -- after", want: Lock{App: "crm", Env: "development", Reason: "before -- after"}},
	{in: `lock crm development "--" quoted`, want: Lock{App: "crm", Env: "development", Reason: "-- quoted"}},
	{in: "lock crm development -- see --help", want: Lock{App: "crm", Env: "development", Reason: "see --help"}},
	{in: "reject crm-r5 -- -h", want: Reject{Release: "crm-r5", Reason: "-h"}},
	{in: "reject crm-r5 --", want: Reject{Release: "crm-r5"}},
	{in: "lock crm development --", errHas: []string{"missing REASON"}},
	{in: "migration create crm -- --note x", errHas: []string{`unexpected extra argument "--note"`}},

	// apps, status
	{in: "apps", want: Apps{}},
	{in: "  apps  ", want: Apps{}},
	{in: "Apps", want: Apps{}},
	{in: "apps crm", errHas: []string{"apps takes no arguments", "usage: apps"}},
	{in: "apps --json", errHas: []string{"apps takes no flags, but got --json"}},
	{in: "status crm", want: Status{App: "crm"}},
	{in: "status", errHas: []string{"missing APP", "usage: status APP"}},
	{in: "status CRM", errHas: []string{`"CRM" is not a valid app name`}},
	{in: "status crm prod", errHas: []string{`unexpected extra argument "prod"`}},

	// version
	{in: "version create crm Add invoice pages", want: VersionCreate{App: "crm", Description: "Add invoice pages"}},
	{in: `version create crm "Add invoice pages"`, want: VersionCreate{App: "crm", Description: "Add invoice pages"}},
	{in: "version create crm “Add invoice pages” for Q4", want: VersionCreate{App: "crm", Description: "Add invoice pages for Q4"}},
	{in: "version create crm don't touch users", want: VersionCreate{App: "crm", Description: "don't touch users"}},
	{in: "version create crm don’t touch users", want: VersionCreate{App: "crm", Description: "don’t touch users"}},
	{in: "version create crm --note x", want: VersionCreate{App: "crm", Description: "--note x"}},
	{in: "version create crm", errHas: []string{"missing DESCRIPTION", "usage: version create APP DESCRIPTION..."}},
	{in: `version create crm ""`, errHas: []string{"DESCRIPTION must not be empty"}},
	{in: "version list crm", want: VersionList{App: "crm"}},
	{in: "version diff crm crm-v2", want: VersionDiff{App: "crm", From: "crm-v2"}},
	{in: "version diff crm crm-v2 crm-v3", want: VersionDiff{App: "crm", From: "crm-v2", To: "crm-v3"}},
	{in: "version diff crm crm-m2", errHas: []string{"crm-m2 is a migration ID; version diff takes a version ID like crm-v3"}},
	{in: "version diff crm tickets-v2", errHas: []string{"tickets-v2 belongs to app tickets, not crm"}},
	{in: "version restore crm crm-v3", want: VersionRestore{App: "crm", Version: "crm-v3"}},
	{in: "version restore crm", errHas: []string{"missing VERSION", "version ID such as crm-v3"}},
	// "version" alone, or as --version, is relbot's own version; with a
	// word after it, a configuration version's subcommand.
	{in: "version", want: Version{}},
	{in: "Version", want: Version{}},
	{in: "--version", want: Version{}},
	{in: "version --json", errHas: []string{"version takes no flags, but got --json", "usage: version"}},
	{in: "--version crm", errHas: []string{`version takes no arguments, but got "crm"`}},
	{in: "version crm", errHas: []string{`version has no subcommand "crm"`, `("version" alone is a command too)`, "usage: version\n       version create APP"}},
	{in: "version craete crm x", errHas: []string{`did you mean "version create"`}},
	{in: "version delete crm", errHas: []string{`version has no subcommand "delete"; it has create, list, diff or restore`}},

	// var
	{in: "var list crm production", want: VarList{App: "crm", Env: "production"}},
	{in: "var set crm production API_URL=https://x.example/a?b=c", want: VarSet{App: "crm", Env: "production", Var: "API_URL", Value: "https://x.example/a?b=c"}},
	{in: `var set crm production GREETING="hello world"`, want: VarSet{App: "crm", Env: "production", Var: "GREETING", Value: "hello world"}},
	{in: `var set crm production 'GREETING=a = b'`, want: VarSet{App: "crm", Env: "production", Var: "GREETING", Value: "a = b"}},
	{in: `var set crm production EMPTY=`, want: VarSet{App: "crm", Env: "production", Var: "EMPTY", Value: ""}},
	{in: "var set crm production API_URL", errHas: []string{"var set takes NAME=VALUE"}},
	{in: "var set crm production API_URL = x", errHas: []string{"var set takes NAME=VALUE"}},
	{in: "var set crm production 1API=x", errHas: []string{`"1API" is not a valid variable name`}},
	{in: "var set crm production A=1 extra", errHas: []string{`unexpected extra argument "extra"`}},
	{in: "var unset crm production API_URL", want: VarUnset{App: "crm", Env: "production", Var: "API_URL"}},
	{in: "var unset crm production API-URL", errHas: []string{"not a valid variable name"}},
	{in: "var list crm Prod", errHas: []string{`"Prod" is not a valid environment name for ENV`}},

	// secret
	{in: "secret set crm production SMTP_PASSWORD", want: SecretSet{App: "crm", Env: "production", Var: "SMTP_PASSWORD"}},
	{in: "secret set crm production TOKEN=abc123xyz", errHas: []string{"never accepted on the command line", "Slack", "stdin"}, errLacks: "abc123xyz"},
	{in: "secret set crm production TOKEN abc123xyz", errHas: []string{"never accepted on the command line"}, errLacks: "abc123xyz"},
	{in: `secret set crm production TOKEN "abc123xyz with space"`, errHas: []string{"never accepted"}, errLacks: "abc123xyz"},
	{in: "secret set crm production TOKEN --value=abc123xyz", errHas: []string{"never accepted"}, errLacks: "abc123xyz"},
	{in: "secret set crm production TOKEN --value abc123xyz", errHas: []string{"never accepted"}, errLacks: "abc123xyz"},
	{in: "secret set crm production abc123xyz=", errHas: []string{"never accepted"}, errLacks: "abc123xyz"},
	{in: `secret set crm production "TOKEN abc123xyz`, errHas: []string{"never closed"}, errLacks: "abc123xyz"},
	{in: "secret set crm production", errHas: []string{"missing NAME"}},
	{in: "secret unset crm production TOKEN", want: SecretUnset{App: "crm", Env: "production", Var: "TOKEN"}},
	{in: "secret unset crm production TOKEN=abc123xyz", errHas: []string{"NAME is a variable name only"}, errLacks: "abc123xyz"},
	{in: "restart crm production", want: Restart{App: "crm", Env: "production"}},
	{in: "Restart crm production", want: Restart{App: "crm", Env: "production"}},
	{in: "restart crm", errHas: []string{"missing ENV", "usage: restart APP ENV"}},
	{in: "restart crm production now", errHas: []string{`unexpected extra argument "now"`}},
	{in: "restart crm Production!", errHas: []string{"not a valid environment"}},

	// migration
	{in: "migration create crm", want: MigrationCreate{App: "crm"}},
	{in: "migration create crm --version crm-v3", want: MigrationCreate{App: "crm", Version: "crm-v3"}},
	{in: "migration create crm --version=crm-v3 --note=\"two words\"", want: MigrationCreate{App: "crm", Version: "crm-v3", Note: "two words"}},
	{in: "migration create crm --note 'two words' --version crm-v3", want: MigrationCreate{App: "crm", Version: "crm-v3", Note: "two words"}},
	{in: "migration create crm --note “smart quotes” ", want: MigrationCreate{App: "crm", Note: "smart quotes"}},
	{in: "migration create crm --note \"--not a flag\"", want: MigrationCreate{App: "crm", Note: "--not a flag"}},
	{in: "migration create crm --note", errHas: []string{"--note needs a value (TEXT)"}},
	{in: "migration create crm --note --version crm-v3", errHas: []string{"--note needs a value"}},
	{in: "migration create crm --version crm-v3 --version crm-v4", errHas: []string{"--version is given twice"}},
	{in: "migration create crm --version crm-b3", errHas: []string{"crm-b3 is a backup ID; migration create takes a version ID like crm-v3"}},
	{in: "migration create crm --version tickets-v3", errHas: []string{"belongs to app tickets"}},
	{in: "migration create crm --force", errHas: []string{"unknown flag --force; migration create takes --version or --note"}},
	{in: "migration create crm extra", errHas: []string{`unexpected extra argument "extra"`}},
	{in: "migration list crm", want: MigrationList{App: "crm"}},
	{in: "migration show crm-m7", want: MigrationShow{Migration: "crm-m7"}},
	{in: "migration show crm", errHas: []string{`"crm" is not a migration ID; migration show takes a migration ID like crm-m7`}},
	{in: "migration plan crm-m7 production", want: MigrationPlan{Migration: "crm-m7", Env: "production"}},
	{in: "migration plan crm-m7", errHas: []string{"missing ENV"}},

	// backup
	{in: "backup create crm production", want: BackupCreate{App: "crm", Env: "production"}},
	{in: "Backup Create crm production", want: BackupCreate{App: "crm", Env: "production"}},
	{in: "backup create my-app_2 staging-eu", want: BackupCreate{App: "my-app_2", Env: "staging-eu"}},
	{in: "backup create crm", errHas: []string{"missing ENV", "usage: backup create APP ENV"}},
	{in: "backup create", errHas: []string{"missing APP"}},
	{in: "backup create crm production now", errHas: []string{`unexpected extra argument "now"`}},
	{in: "backup list crm production", want: BackupList{App: "crm", Env: "production"}},
	{in: "backup verify crm-b12", want: BackupVerify{Backup: "crm-b12"}},
	{in: "backup verify my-app-b3", want: BackupVerify{Backup: "my-app-b3"}},
	{in: "backup verify crm-m7", errHas: []string{"crm-m7 is a migration ID; backup verify takes a backup ID like crm-b12", "usage: backup verify BACKUP"}},
	{in: "backup verify crm-b", errHas: []string{"is not a backup ID"}},
	{in: "backup show crm-b12", want: BackupShow{Backup: "crm-b12"}},
	{in: "backup download crm-b12", want: BackupDownload{Backup: "crm-b12"}},
	{in: "backup import crm production /var/backups/crm-b7.relbot", want: BackupImport{App: "crm", Env: "production", File: "/var/backups/crm-b7.relbot"}},
	{in: `backup import crm staging "old backups/crm b7.relbot"`, want: BackupImport{App: "crm", Env: "staging", File: "old backups/crm b7.relbot"}},
	{in: "backup import crm production", errHas: []string{"missing FILE", "usage: backup import APP ENV FILE"}},
	{in: "backup import crm production a.relbot b.relbot", errHas: []string{`unexpected extra argument "b.relbot"`}},
	{in: "backup show crm-r3", errHas: []string{"backup show takes a backup ID like crm-b12"}},
	{in: "backup delete crm-b12", want: BackupDelete{Backup: "crm-b12"}},
	{in: "backup delete", errHas: []string{"usage: backup delete BACKUP"}},
	{in: "backup restore crm-b12", want: BackupRestore{Backup: "crm-b12"}},
	{in: "backup restore crm-b12 --into recovery", want: BackupRestore{Backup: "crm-b12", Into: "recovery"}},
	{in: "backup restore crm-b12 --into=staging", want: BackupRestore{Backup: "crm-b12", Into: "staging"}},
	{in: "backup restore --into recovery crm-b12", want: BackupRestore{Backup: "crm-b12", Into: "recovery"}},
	{in: "backup restore crm-b12 --into", errHas: []string{"--into needs a value (ENV)"}},
	{in: "backup restore crm-b12 --into Recovery", errHas: []string{"not a valid environment name for --into ENV"}},
	{in: "backup restore crm-r5", errHas: []string{"crm-r5 is a release ID"}},
	{in: "backup restore crm-b12 --into recovery --no-analyze", want: BackupRestore{Backup: "crm-b12", Into: "recovery", NoAnalyze: true}},
	{in: "backup restore crm-b12 --no-analyze=yes", errHas: []string{"--no-analyze takes no value"}},
	{in: "rollback crm-r5 --full --no-analyze", want: Rollback{Release: "crm-r5", Full: true, NoAnalyze: true}},
	{in: "backup", errHas: []string{"backup needs a subcommand: create, list, verify, show, download, import, delete or restore"}},
	{in: "bakup create crm production", errHas: []string{`unknown command "bakup"; did you mean "backup create"?`, `"help"`}},

	// deploy
	{in: "deploy crm-m7 production", want: Deploy{Migration: "crm-m7", Env: "production"}},
	{in: "deploy crm-m7 production --at 22:00", want: Deploy{Migration: "crm-m7", Env: "production", At: "22:00"}},
	{in: `deploy crm-m7 production --at "2026-12-01 22:00"`, want: Deploy{Migration: "crm-m7", Env: "production", At: "2026-12-01 22:00"}},
	{in: `deploy crm-m7 production --at 2026-12-01 22:00`, want: Deploy{Migration: "crm-m7", Env: "production", At: "2026-12-01 22:00"}},
	{in: `deploy crm-m7 production --at=2026-12-01T22:00:00+01:00`, want: Deploy{Migration: "crm-m7", Env: "production", At: "2026-12-01T22:00:00+01:00"}},
	{in: `deploy crm-m7 production --at tomorrow`, errHas: []string{`"tomorrow" is not a time`}},
	{in: `deploy crm-m7 production --at 25:00`, errHas: []string{"is not a time"}},
	{in: "deploy crm-v7 production", errHas: []string{"crm-v7 is a version ID; deploy takes a migration ID like crm-m7"}},
	{in: "deploy crm-m7", errHas: []string{"missing ENV", "usage: deploy MIGRATION ENV [--at TIME] [--allow-new-plugins]"}},
	{in: "deploy crm-m7 production --allow-new-plugins", want: Deploy{Migration: "crm-m7", Env: "production", AllowNewPlugins: true}},
	{in: "deploy crm-m7 production --allow-new-plugins --at 22:00", want: Deploy{Migration: "crm-m7", Env: "production", At: "22:00", AllowNewPlugins: true}},
	{in: "deploy --allow-new-plugins crm-m7 production", want: Deploy{Migration: "crm-m7", Env: "production", AllowNewPlugins: true}},
	{in: "deploy crm-m7 production --allow-new-plugins=yes", errHas: []string{"--allow-new-plugins takes no value"}},
	{in: "deploy crm-m7 production --allow-new-plugins --allow-new-plugins", errHas: []string{"--allow-new-plugins is given twice"}},
	{in: "deploy crm-m7 production --allow-plugins", errHas: []string{"--allow-plugins"}},
	{in: "deplyo crm-m7 production", errHas: []string{`did you mean "deploy"`}},

	// approvals and release control
	{in: "approve crm-r5", want: Approve{Release: "crm-r5"}},
	{in: "approve crm-m5", errHas: []string{"crm-m5 is a migration ID; approve takes a release ID like crm-r5"}},
	{in: "approve", errHas: []string{"missing RELEASE"}},
	{in: "reject crm-r5", want: Reject{Release: "crm-r5"}},
	{in: "reject crm-r5 not during the sale", want: Reject{Release: "crm-r5", Reason: "not during the sale"}},
	{in: "reject crm-r5 'not during' the sale", want: Reject{Release: "crm-r5", Reason: "not during the sale"}},
	{in: "cancel crm-r5", want: Cancel{Release: "crm-r5"}},
	{in: "cancel crm-r5 now", errHas: []string{"unexpected extra argument"}},
	{in: "resume crm-r5", want: Resume{Release: "crm-r5"}},
	{in: "rollback crm-r5", want: Rollback{Release: "crm-r5"}},
	{in: "rollback crm-r5 --into recovery", want: Rollback{Release: "crm-r5", Into: "recovery"}},
	{in: "rollback crm-r5 --full", want: Rollback{Release: "crm-r5", Full: true}},
	{in: "rollback --full crm-r5", want: Rollback{Release: "crm-r5", Full: true}},
	{in: "rollback crm-r5 --full --into recovery", want: Rollback{Release: "crm-r5", Into: "recovery", Full: true}},
	{in: "rollback crm-r5 --full=yes", errHas: []string{"--full takes no value"}},
	{in: "rollback crm-r5 --full --full", errHas: []string{"--full is given twice"}},
	{in: "rollback crm-r5 --targeted", errHas: []string{"unknown flag --targeted"}},
	{in: "switch crm-r6", want: Switch{Release: "crm-r6"}},
	{in: "switch", errHas: []string{"RELEASE"}},
	{in: "switch crm-r6 crm-r7", errHas: []string{"crm-r7"}},
	{in: "rollback crm-r5 --at 22:00", errHas: []string{"unknown flag --at; rollback takes --full, --into or --no-analyze"}},
	{in: "release list crm", want: ReleaseList{App: "crm"}},
	{in: "release list crm production", want: ReleaseList{App: "crm", Env: "production"}},
	{in: "release show crm-r5", want: ReleaseShow{Release: "crm-r5"}},
	{in: "release", errHas: []string{"release needs a subcommand: list or show"}},

	// drift, lock
	{in: "drift crm staging production", want: Drift{App: "crm", From: "staging", To: "production"}},
	{in: "drift crm staging staging", errHas: []string{"two different environments"}},
	{in: "drift crm staging", errHas: []string{"missing ENV"}},
	{in: "lock crm production incident 42: db failover", want: Lock{App: "crm", Env: "production", Reason: "incident 42: db failover"}},
	{in: "lock crm production", errHas: []string{"missing REASON", "usage: lock APP ENV REASON..."}},
	{in: "unlock crm production", want: Unlock{App: "crm", Env: "production"}},
	{in: "unlock crm production now", errHas: []string{"unexpected extra argument"}},

	// unknown and malformed
	{in: "frobnicate", errHas: []string{`unknown command "frobnicate"`, `Type "help"`}},
	{in: "aps", errHas: []string{`did you mean "apps"`}},
	{in: `status "crm`, errHas: []string{"a quote is opened but never closed"}},
	{in: "status ‘crm", errHas: []string{"never closed"}},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.in, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Parse(%q) = %#v, want %#v", tc.in, got, tc.want)
				}
				if got.Name() != tc.want.Name() {
					t.Fatalf("Name() = %q, want %q", got.Name(), tc.want.Name())
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want an error", tc.in, got)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse(%q) error %T, want *UsageError", tc.in, err)
			}
			if ExitCode(err) != 2 {
				t.Errorf("ExitCode = %d, want 2", ExitCode(err))
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Parse(%q) error\n%s\nlacks %q", tc.in, err, s)
				}
			}
			if tc.errLacks != "" && strings.Contains(err.Error(), tc.errLacks) {
				t.Errorf("Parse(%q) error echoes %q:\n%s", tc.in, tc.errLacks, err)
			}
		})
	}
}

// TestParseCoversGrammar makes sure every command has a valid case above.
func TestParseCoversGrammar(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range parseCases {
		if tc.want != nil {
			seen[tc.want.Name()] = true
		}
	}
	for _, name := range Names() {
		if !seen[name] {
			t.Errorf("no valid Parse case for %q", name)
		}
	}
}

// TestUsageMatchesSpec holds the generated usage lines to SPEC.md's grammar.
func TestUsageMatchesSpec(t *testing.T) {
	spec := []string{
		"help [COMMAND]",
		"apps",
		"status APP",
		// Not in SPEC.md's list: relbot's own version (issue 11), in
		// Slack as in a terminal; "version" with a subcommand is below.
		"version",
		"version create APP DESCRIPTION...",
		"version list APP",
		"version diff APP FROM [TO]",
		"version restore APP VERSION",
		"var list APP ENV",
		"var set APP ENV NAME=VALUE",
		"var unset APP ENV NAME",
		"secret set APP ENV NAME",
		"secret unset APP ENV NAME",
		// Not in SPEC.md's list: the restart hook's command, offered after
		// var and secret changes (SPEC "Added in the second wave").
		"restart APP ENV",
		"migration create APP [--version VERSION] [--note TEXT]",
		"migration list APP",
		"migration show MIGRATION",
		"migration plan MIGRATION ENV",
		"backup create APP ENV",
		"backup list APP ENV",
		"backup verify BACKUP",
		// Not in SPEC.md's list: issue 14's backup commands.
		"backup show BACKUP",
		"backup download BACKUP",
		"backup import APP ENV FILE",
		"backup delete BACKUP",
		"backup restore BACKUP [--into ENV] [--no-analyze]",
		"deploy MIGRATION ENV [--at TIME] [--allow-new-plugins]",
		"approve RELEASE",
		"reject RELEASE [REASON...]",
		"cancel RELEASE",
		"resume RELEASE",
		"rollback RELEASE [--full] [--into ENV] [--no-analyze]",
		// Not in SPEC.md's list: SPEC's "separate, approved action" that
		// runs switch_traffic after a restore into recovery.
		"switch RELEASE",
		"release list APP [ENV]",
		"release show RELEASE [--step NAME]",
		"drift APP ENV ENV",
		"lock APP ENV REASON...",
		"unlock APP ENV",
	}
	names := Names()
	if len(names) != len(spec) {
		t.Fatalf("grammar has %d commands, SPEC.md %d", len(names), len(spec))
	}
	for i, name := range names {
		if got := Usage(name); got != spec[i] {
			t.Errorf("Usage(%q) = %q, want %q", name, got, spec[i])
		}
	}
}

func TestHelpCoversEveryCommand(t *testing.T) {
	list, err := helpReply("")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range grammar {
		if strings.TrimSpace(s.summary) == "" || strings.TrimSpace(s.help) == "" {
			t.Errorf("%s: empty summary or help", s.name)
		}
		if !strings.Contains(list.Text, s.usage()) || !strings.Contains(list.Text, s.summary) {
			t.Errorf("help list lacks %q", s.name)
		}
		r, err := helpReply(s.name)
		if err != nil {
			t.Errorf("help %s: %v", s.name, err)
			continue
		}
		if !strings.Contains(r.Text, "usage: "+s.usage()) || !strings.Contains(r.Text, s.help) {
			t.Errorf("help %s:\n%s", s.name, r.Text)
		}
		// "X --help" is the same as "help X".
		c, err := Parse(s.name + " --help")
		if err != nil || c != (Help{Topic: s.name}) {
			t.Errorf("Parse(%q) = %#v, %v", s.name+" --help", c, err)
		}
	}
	for g := range groups {
		r, err := helpReply(g)
		if err != nil {
			t.Errorf("help %s: %v", g, err)
			continue
		}
		for _, s := range groups[g] {
			if !strings.Contains(r.Text, s.usage()) {
				t.Errorf("help %s lacks %s", g, s.name)
			}
		}
	}
}

func TestSplit(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`a  b	c`, []string{"a", "b", "c"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`'a "b"' c`, []string{`a "b"`, "c"}},
		{`“a b” ‘c d’`, []string{"a b", "c d"}},
		{`”a b“`, []string{"a b"}},
		{`“a b"`, []string{"a b"}},
		{`don't stop`, []string{"don't", "stop"}},
		{`--note="a b"`, []string{"--note=a b"}},
		{`N='x y'z`, []string{"N=x yz"}},
		{`""`, []string{""}},
		{"a\u00a0b", []string{"a", "b"}},
		{`C:\dir`, []string{`C:\dir`}},
	}
	for _, tc := range cases {
		toks, err := split(tc.in)
		if err != nil {
			t.Errorf("split(%q): %v", tc.in, err)
			continue
		}
		var got []string
		for _, tok := range toks {
			got = append(got, tok.text)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseAt(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	now := time.Date(2026, 3, 10, 21, 0, 0, 0, paris) // 21:00 local
	cases := []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "22:00", want: time.Date(2026, 3, 10, 22, 0, 0, 0, paris)},
		{in: "9:30", want: time.Date(2026, 3, 11, 9, 30, 0, 0, paris)}, // passed today: tomorrow
		{in: "21:00", want: time.Date(2026, 3, 11, 21, 0, 0, 0, paris)},
		{in: "now", want: now},
		{in: "2026-12-01 22:00", want: time.Date(2026, 12, 1, 22, 0, 0, 0, paris)},
		{in: "2026-12-01T22:00", want: time.Date(2026, 12, 1, 22, 0, 0, 0, paris)},
		{in: "2026-12-01T22:00:00Z", want: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)},
		{in: "2026-01-01 10:00", err: "in the past"},
		{in: "24:00", err: "is not a time"},
		{in: "noon", err: "is not a time"},
	}
	for _, tc := range cases {
		got, err := ParseAt(tc.in, now, paris)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAt(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseAt(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Across a DST change "02:30" tomorrow still resolves to a real time.
	if _, err := ParseAt("02:30", time.Date(2026, 3, 28, 23, 0, 0, 0, paris), paris); err != nil {
		t.Errorf("DST: %v", err)
	}
}

func TestExitCode(t *testing.T) {
	if ExitCode(nil) != 0 || ExitCode(&UsageError{Message: "x"}) != 2 || ExitCode(errors.New("x")) != 1 {
		t.Fatal("ExitCode mapping is wrong")
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"secret set crm prod TOKEN=abc": "secret set crm prod [redacted]",
		"secret set crm prod TOKEN abc": "secret set crm prod TOKEN [redacted]",
		"secret set crm prod TOKEN":     "secret set crm prod TOKEN",
		"var set crm prod A=b":          "var set crm prod A=b",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(in)
		if err == nil {
			if c == nil || c.Name() == "" {
				t.Fatalf("Parse(%q) = %#v with no error", in, c)
			}
			if _, ok := byName[c.Name()]; !ok {
				t.Fatalf("Parse(%q) gave unknown command %q", in, c.Name())
			}
			return
		}
		var ue *UsageError
		if !errors.As(err, &ue) || strings.TrimSpace(ue.Message) == "" {
			t.Fatalf("Parse(%q) error %T %q, want *UsageError with a message", in, err, err)
		}
	})
}

// TestParseWords: words a shell already split reach the command as they
// are, while the grammar (flags, rest arguments, errors) is Parse's.
func TestParseWords(t *testing.T) {
	note := `it's a "test" of C:\dir\ and  two  spaces, don’t “lose” it`
	for _, c := range []struct {
		words []string
		want  Command
	}{
		{[]string{"version", "create", "crm", `it's a "test"`}, VersionCreate{App: "crm", Description: `it's a "test"`}},
		{[]string{"version", "create", "crm", note}, VersionCreate{App: "crm", Description: note}},
		// An empty word stays a word of the rest argument.
		{[]string{"version", "create", "crm", "a", "", "b"}, VersionCreate{App: "crm", Description: "a  b"}},
		{[]string{"migration", "create", "crm", "--note", note}, MigrationCreate{App: "crm", Note: note}},
		{[]string{"migration", "create", "crm", "--note=" + note}, MigrationCreate{App: "crm", Note: note}},
		{[]string{"lock", "crm", "production", `'quoted'`, `"too"`}, Lock{App: "crm", Env: "production", Reason: `'quoted' "too"`}},
		{[]string{"var", "set", "crm", "staging", `URL=a "b" 'c'`}, VarSet{App: "crm", Env: "staging", Var: "URL", Value: `a "b" 'c'`}},
		{[]string{"deploy", "crm-m1", "production", "--at", "2026-12-01", "22:00"}, Deploy{Migration: "crm-m1", Env: "production", At: "2026-12-01 22:00"}},
		{nil, Help{}},
		{[]string{"status", "crm", "--help"}, Help{Topic: "status"}},
		{[]string{"backup", "--help"}, Help{Topic: "backup"}},
		{[]string{"--help", "status"}, Help{Topic: "status"}},
		// "--" ends the flags and is not text; a later one is.
		{[]string{"lock", "crm", "development", "--", "--note", "is", "a", "word", "here"}, Lock{App: "crm", Env: "development", Reason: "--note is a word here"}},
		{[]string{"version", "create", "crm", "--", "--note hello"}, VersionCreate{App: "crm", Description: "--note hello"}},
		{[]string{"version", "create", "crm", "--", "--", "x"}, VersionCreate{App: "crm", Description: "-- x"}},
	} {
		got, err := ParseWords(c.words)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseWords(%q) = %#v, %v; want %#v", c.words, got, err, c.want)
		}
	}
	// Errors are the grammar's: a word starting with "--" is a flag.
	for words, want := range map[string][]string{
		"unknown flag":  {"migration", "create", "crm", "--nte", "x"},
		"needs a value": {"migration", "create", "crm", "--note"},
		"must not be":   {"version", "create", "crm", ""},
	} {
		_, err := ParseWords(want)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), words) {
			t.Errorf("ParseWords(%q): want a usage error with %q, got %v", want, words, err)
		}
	}
	// The Slack text and the shell's words of one command agree.
	for _, text := range []string{"backup restore crm-b1 --into recovery", "reject crm-r5 not today", "release list crm production"} {
		a, errA := Parse(text)
		b, errB := ParseWords(strings.Fields(text))
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%q: Parse %#v, %v; ParseWords %#v, %v", text, a, errA, b, errB)
		}
	}
}
