package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// secretPW is inside the base DSN: no error text may ever contain it.
const secretPW = "S3cretPW"

const base = `apps:
  crm:
    channel: C1
    environments:
      - name: development
        database: postgres://relbot:S3cretPW@localhost/dev
      - name: production
        database: postgres://relbot:S3cretPW@localhost/prod
`

// prod appends lines (given at the production environment's indentation)
// to the base document.
func prod(lines string) string { return base + indent(lines, "        ") }

// app appends lines at the app's indentation.
func app(lines string) string { return base + indent(lines, "    ") }

func indent(lines, pad string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.Trim(lines, "\n"), "\n") {
		b.WriteString(pad + l + "\n")
	}
	return b.String()
}

func noEnv(string) string { return "" }

func TestParseAppsErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		field string // the exact field path that must appear
		want  string // the problem text that must appear
	}{
		{"unknown key", strings.Replace(base, "database: postgres://relbot:S3cretPW@localhost/dev", "databse: postgres://relbot:S3cretPW@localhost/dev", 1),
			nil, "apps.crm.environments[0].databse", `unknown key (did you mean "database"?)`},
		{"unknown key line", strings.Replace(base, "database: postgres://relbot:S3cretPW@localhost/dev", "databse: x", 1),
			nil, "line 6: apps.crm.environments[0].databse", "unknown key"},
		{"unknown key far from any", app("flavour: vanilla"), nil, "apps.crm.flavour", "unknown key (known keys: channel, builtin"},
		{"unknown top key", "appz: {}\n", nil, "appz", `did you mean "apps"?`},
		{"undefined variable", `apps:
  crm:
    environments:
      - name: development
        database: postgres://localhost/dev
      - name: staging
        database: ${CRM_STAGING_DATABASE_URL}
`, nil, "apps.crm.environments[1].database", "${CRM_STAGING_DATABASE_URL} is not set"},
		{"undefined variable in list", prod(`hooks:
  scale_down: {exec: [kubectl, "--context=${KUBE_CONTEXT}"]}`), nil, "apps.crm.environments[1].hooks.scale_down.exec[1]", "${KUBE_CONTEXT} is not set"},
		{"unterminated reference", strings.Replace(base, "channel: C1", "channel: ${CHAN", 1), nil, "apps.crm.channel", `unterminated "${"`},
		{"empty file", "", nil, "apps", "no apps defined"},
		{"no apps", "apps: {}\n", nil, "apps", "no apps defined"},
		{"apps not a mapping", "apps: [crm]\n", nil, "apps", "must be a mapping"},
		{"bad app name", strings.Replace(base, "crm:", "CRM:", 1), nil, "apps.CRM", "app name must match"},
		{"app name with dot", strings.Replace(base, "crm:", "crm.v2:", 1), nil, `apps."crm.v2"`, "app name must match"},
		{"environments missing", "apps:\n  crm:\n    channel: C1\n", nil, "apps.crm.environments", "required"},
		{"one environment", "apps:\n  crm:\n    environments:\n      - {name: development, database: 'dbname=dev'}\n", nil,
			"apps.crm.environments", "need at least 2 environments"},
		{"environments not a list", "apps:\n  crm:\n    environments: development\n", nil, "apps.crm.environments", "must be a list"},
		{"duplicate environment", strings.Replace(base, "name: production", "name: development", 1), nil,
			"apps.crm.environments[1].name", `"development" is already the name of environments[0]`},
		{"environment named recovery", strings.Replace(base, "name: production", "name: recovery", 1), nil,
			"apps.crm.environments[1].name", `"recovery" is reserved`},
		{"bad environment name", strings.Replace(base, "name: production", "name: Prod", 1), nil,
			"apps.crm.environments[1].name", "environment name must match"},
		{"environment name missing", strings.Replace(base, "- name: production\n        database", "- database", 1), nil,
			"apps.crm.environments[1].name", "required"},
		{"database missing", "apps:\n  crm:\n    environments:\n      - {name: development, database: 'dbname=dev'}\n      - {name: production}\n", nil,
			"apps.crm.environments[1].database", "required"},
		{"database not postgres", strings.Replace(base, "postgres://relbot:S3cretPW@localhost/prod", "mysql://relbot:S3cretPW@localhost/prod", 1), nil,
			"apps.crm.environments[1].database", "must be a postgres:// or postgresql:// URL or a key=value DSN"},
		{"database garbage from env", strings.Replace(base, "postgres://relbot:S3cretPW@localhost/prod", "${PROD_DB}", 1), map[string]string{"PROD_DB": "S3cretPW"},
			"apps.crm.environments[1].database", "must be a postgres://"},
		{"database bad url", strings.Replace(base, "postgres://relbot:S3cretPW@localhost/prod", `"postgres://relbot:S3cretPW@local host:x/prod"`, 1), nil,
			"apps.crm.environments[1].database", "does not parse"},
		{"storage relative", prod("storage: srv/crm"), nil, "apps.crm.environments[1].storage", "must be an absolute path"},
		{"storage_exclude absolute", prod("storage_exclude: [/etc/passwd]"), nil, "apps.crm.environments[1].storage_exclude[0]", "relative to the storage directory"},
		{"storage_exclude bad glob", prod(`storage_exclude: ["logs/["]`), nil, "apps.crm.environments[1].storage_exclude[0]", "not a valid glob"},
		{"rule invalid", app("rules: {users: replace}"), nil, "apps.crm.rules.users", `unknown rule "replace"`},
		{"rule not a string", app("rules: {users: [overwrite]}"), nil, "apps.crm.rules.users", "must be a string, not a list"},
		{"variables table with values", app("builtin: nocobase\nrules: {environmentVariables: overwrite}"), nil,
			"apps.crm.rules.environmentVariables", "never carries values"},
		{"builtin unknown", app("builtin: wordpress"), nil, "apps.crm.builtin", `unknown preset "wordpress"`},
		{"builtin wrong type", app("builtin: {a: b}"), nil, "apps.crm.builtin", "must be a string, not a mapping"},
		{"builtin list duplicate", app("builtin: [roles, roles]"), nil, "apps.crm.builtin[1]", `table "roles" is listed twice`},
		{"version_tables empty name", app(`version_tables: [roles, ""]`), nil, "apps.crm.version_tables[1]", "must not be empty"},
		{"versions keep zero", app("versions: {keep: 0}"), nil, "apps.crm.versions.keep", "must be 1 or more"},
		{"versions unknown key", app("versions: {kept: 3}"), nil, "apps.crm.versions.kept", ""},
		{"approvals negative", prod("approvals: {required: -1}"), nil, "apps.crm.environments[1].approvals.required", "must be 0 or more"},
		{"approvals more than approvers", prod("approvals: {required: 3, approvers: [U1, U2]}"), nil,
			"apps.crm.environments[1].approvals.required", "3 approvals required but only 2 approvers listed"},
		{"approvals not a number", prod("approvals: {required: two}"), nil, "apps.crm.environments[1].approvals.required", "must be a whole number"},
		{"approver twice", prod("approvals: {approvers: [U1, U1]}"), nil, "apps.crm.environments[1].approvals.approvers[1]", `approver "U1" is listed twice`},
		{"approvers not a list", prod("approvals: {approvers: U1}"), nil, "apps.crm.environments[1].approvals.approvers", "must be a list"},
		{"allow_self not bool", prod("approvals: {allow_self: maybe}"), nil, "apps.crm.environments[1].approvals.allow_self", "must be true or false"},
		{"expire zero", prod("approvals: {expire: 0s}"), nil, "apps.crm.environments[1].approvals.expire", "must be a positive duration"},
		{"expire negative", prod("approvals: {expire: -1h}"), nil, "apps.crm.environments[1].approvals.expire", "must be a positive duration"},
		{"expire not a duration", prod("approvals: {expire: soon}"), nil, "apps.crm.environments[1].approvals.expire", `"soon" is not a duration`},
		{"approvals unknown key", prod("approvals: {requried: 1}"), nil, "apps.crm.environments[1].approvals.requried", `did you mean "required"?`},
		{"freeze bad form", prod(`freeze: ["Fri 16:00 to Mon 08:00"]`), nil, "apps.crm.environments[1].freeze[0]", "is not a freeze window"},
		{"freeze bad day", prod(`freeze: ["Fry 16:00 - Mon 08:00"]`), nil, "apps.crm.environments[1].freeze[0]", `"Fry" is not a day`},
		{"freeze bad time", prod(`freeze: ["Mon 08:00 - Fri 25:00"]`), nil, "apps.crm.environments[1].freeze[0]", "25:00 is not a 24-hour time"},
		{"freeze empty window", prod(`freeze: ["Fri 16:00 - Fri 16:00"]`), nil, "apps.crm.environments[1].freeze[0]", "starts and ends at the same time"},
		{"freeze not a list", prod(`freeze: "Fri 16:00 - Mon 08:00"`), nil, "apps.crm.environments[1].freeze", "must be a list"},
		{"notice bad", prod("notice: half an hour"), nil, "apps.crm.environments[1].notice", "is not a duration"},
		{"notice negative", prod("notice: -5m"), nil, "apps.crm.environments[1].notice", "must not be negative"},
		{"backup schedule bad", prod(`backup: {schedule: "61 * * * *"}`), nil, "apps.crm.environments[1].backup.schedule", "not a valid cron schedule"},
		{"backup schedule six fields", prod(`backup: {schedule: "0 0 2 * * *"}`), nil, "apps.crm.environments[1].backup.schedule", "not a valid cron schedule"},
		{"backup verify bad", prod(`backup: {verify: "@sometimes"}`), nil, "apps.crm.environments[1].backup.verify", "not a valid cron schedule"},
		{"backup keep negative", prod("backup: {keep: -1}"), nil, "apps.crm.environments[1].backup.keep", "must be 0 (keep all) or more"},
		{"backup keep not a number", prod("backup: {keep: many}"), nil, "apps.crm.environments[1].backup.keep", "must be a whole number"},
		{"hook unknown", prod("hooks: {scale_sideways: {exec: [true]}}"), nil, "apps.crm.environments[1].hooks.scale_sideways", "unknown key (known keys: maintenance_on"},
		{"hook both", prod(`hooks: {scale_up: {http: "POST https://x.example/up", exec: [up]}}`), nil, "apps.crm.environments[1].hooks.scale_up", "has both http and exec"},
		{"hook neither", prod("hooks: {scale_up: {timeout: 1m}}"), nil, "apps.crm.environments[1].hooks.scale_up", "needs exactly one of http or exec"},
		{"hook http without method", prod(`hooks: {maintenance_on: {http: "https://x.example/on"}}`), nil, "apps.crm.environments[1].hooks.maintenance_on.http", `must be "METHOD URL"`},
		{"hook http bad method", prod(`hooks: {maintenance_on: {http: "PSOT https://x.example/on"}}`), nil, "apps.crm.environments[1].hooks.maintenance_on.http", `unknown HTTP method "PSOT"`},
		{"hook http bad scheme", prod(`hooks: {maintenance_on: {http: "POST ftp://tok:S3cretPW@x.example/on"}}`), nil, "apps.crm.environments[1].hooks.maintenance_on.http", "must be an http:// or https:// URL"},
		{"hook exec empty", prod("hooks: {scale_up: {exec: []}}"), nil, "apps.crm.environments[1].hooks.scale_up.exec", "must list the program"},
		{"hook exec not a list", prod(`hooks: {scale_up: {exec: "kubectl scale"}}`), nil, "apps.crm.environments[1].hooks.scale_up.exec", "must be a list"},
		{"hook timeout bad", prod("hooks: {scale_up: {exec: [up], timeout: 0s}}"), nil, "apps.crm.environments[1].hooks.scale_up.timeout", "must be a positive duration"},
		{"check without name", prod("checks: [{sql: SELECT true}]"), nil, "apps.crm.environments[1].checks[0].name", "required"},
		{"check neither", prod("checks: [{name: a}]"), nil, "apps.crm.environments[1].checks[0]", "needs exactly one of sql or http"},
		{"check both", prod(`checks: [{name: a, sql: SELECT true, http: "GET https://x.example/"}]`), nil, "apps.crm.environments[1].checks[0]", "has both sql and http"},
		{"check duplicate name", prod("checks:\n  - {name: a, sql: SELECT true}\n  - {name: a, sql: SELECT 1}"), nil,
			"apps.crm.environments[1].checks[1].name", `check "a" is already defined at checks[0]`},
		{"check expect with sql", prod("checks: [{name: a, sql: SELECT true, expect: 200}]"), nil, "apps.crm.environments[1].checks[0].expect", "applies only to http checks"},
		{"check expect out of range", prod(`checks: [{name: a, http: "GET https://x.example/", expect: 999}]`), nil, "apps.crm.environments[1].checks[0].expect", "must be an HTTP status code"},
		{"check http bad", prod(`checks: [{name: a, http: "GET /health"}]`), nil, "apps.crm.environments[1].checks[0].http", "must be an http:// or https:// URL"},
		{"check timeout bad", prod("checks: [{name: a, sql: SELECT true, timeout: forever}]"), nil, "apps.crm.environments[1].checks[0].timeout", "is not a duration"},
		{"checks not a list", prod("checks: {name: a}"), nil, "apps.crm.environments[1].checks", "must be a list"},
		{"recovery without database", app("recovery: {storage: /srv/crm/recovery}"), nil, "apps.crm.recovery.database", "required"},
		{"recovery with name", app("recovery: {name: dr, database: 'dbname=dr'}"), nil, "apps.crm.recovery.name", "unknown key"},
		{"recovery bad database", app("recovery: {database: 'sqlite:///S3cretPW'}"), nil, "apps.crm.recovery.database", "must be a postgres://"},
		{"bad time zone", "time_zone: Mars/Olympus\n" + base, nil, "time_zone", `unknown time zone "Mars/Olympus"`},
		{"bad app time zone", app("time_zone: Europe/Lutetia"), nil, "apps.crm.time_zone", `unknown time zone "Europe/Lutetia"`},
		{"bad RELBOT_TIME_ZONE", base, map[string]string{"RELBOT_TIME_ZONE": "Nowhere"}, "RELBOT_TIME_ZONE", "unknown time zone"},
		{"duplicate key", app("channel: C2"), nil, "apps.crm.channel", "duplicate key"},
		{"unknown alias", prod("hooks: {scale_up: *nothing}"), nil, "apps.crm.environments[1].hooks.scale_up", "unknown alias"},
		{"syntax error", base + "      - name: [unclosed\n", nil, "line ", "not valid YAML"},
		{"two documents", base + "---\n" + base, nil, "", "single YAML document"},
		{"layout unknown key", app("nocobase: {schema: nocobase, prefix: nb_}"), nil, "apps.crm.nocobase.prefix", "unknown key (known keys: schema, table_prefix, underscored, collection_schema, sub_app_schemas)"},
		{"layout bad collection schema", app("nocobase: {collection_schema: 1x}"), nil, "apps.crm.nocobase.collection_schema", `"1x" is not a schema name (COLLECTION_MANAGER_SCHEMA`},
		{"layout collection schema not a string", app("nocobase: {collection_schema: [a]}"), nil, "apps.crm.nocobase.collection_schema", "must be"},
		{"layout sub-app schemas", prod("nocobase: {sub_app_schemas: true}"), nil, "apps.crm.environments[1].nocobase.sub_app_schemas", "USE_DB_SCHEMA_IN_SUBAPP (each sub-app's tables in a schema of its own) is not supported"},
		{"layout sub-app schemas not a boolean", app("nocobase: {sub_app_schemas: yes please}"), nil, "apps.crm.nocobase.sub_app_schemas", "must be true or false"},
		{"layout empty", app("nocobase: {}"), nil, "apps.crm.nocobase", "states no layout"},
		{"layout not a mapping", app("nocobase: nb_"), nil, "apps.crm.nocobase", "must be a mapping"},
		{"layout bad schema", prod("nocobase: {schema: 'no such'}"), nil, "apps.crm.environments[1].nocobase.schema", `"no such" is not a schema name`},
		{"layout bad prefix", prod("nocobase: {table_prefix: nb-}"), nil, "apps.crm.environments[1].nocobase.table_prefix", "is not a table prefix"},
		{"layout underscored not a boolean", app("nocobase: {underscored: maybe}"), nil, "apps.crm.nocobase.underscored", "must be true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			apps, err := ParseApps([]byte(tc.yaml), getenv)
			if err == nil {
				t.Fatalf("no error; got %d apps", len(apps))
			}
			msg := err.Error()
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is %T, want *Error", err)
			}
			if !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not name %q", msg, tc.field)
			}
			if tc.field != "" && ce != nil && ce.Field != "" && !strings.HasPrefix(tc.field, "line ") && ce.Field != tc.field {
				t.Errorf("Field = %q, want %q", ce.Field, tc.field)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if strings.Contains(msg, secretPW) {
				t.Errorf("error leaks a password: %q", msg)
			}
			if ce != nil && ce.Field != "RELBOT_TIME_ZONE" && ce.Line == 0 && tc.name != "empty file" {
				t.Errorf("error has no line number: %q", msg)
			}
		})
	}
}

func TestLoadAppsNamesFileAndLine(t *testing.T) {
	_, err := LoadApps("testdata/apps.yaml", noEnv)
	want := "testdata/apps.yaml:10: apps.crm.environments[0].database: ${CRM_DEV_DATABASE_URL} is not set"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	_, err = LoadApps("testdata/missing.yaml", noEnv)
	abs, _ := filepath.Abs("testdata/missing.yaml")
	if err == nil || err.Error() != "apps.yaml: cannot read "+abs+" (RELBOT_APPS_FILE): no such file or directory" {
		t.Fatalf("err = %v", err)
	}
}

var specEnv = map[string]string{
	"CRM_DEV_DATABASE_URL":      "postgres://crm:devpw@localhost/crm_dev",
	"CRM_STAGING_DATABASE_URL":  "host=db.internal dbname=crm_staging user=crm password='s p#w: {x}'",
	"CRM_PROD_DATABASE_URL":     "postgresql://crm:prodpw@db.internal:5432/crm?sslmode=require",
	"CRM_RECOVERY_DATABASE_URL": "postgres:///crm_recovery?host=/var/run/postgresql",
}

// TestSpecExample decodes SPEC.md's apps.yaml (testdata/apps.yaml is a copy).
func TestSpecExample(t *testing.T) {
	apps, err := LoadApps("testdata/apps.yaml", func(k string) string { return specEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	exclude := []string{"logs/**", "gateway.sock"}
	none := map[string]release.Hook{}
	want := []*release.App{{
		Name:    "crm",
		Channel: "C0123456789",
		Builtin: "nocobase",
		Rules:   map[string]release.Rule{"categories": release.RuleOverwrite, "audit_logs": release.RuleSkip},
		Environments: []*release.Environment{
			{
				Name: "development", Database: specEnv["CRM_DEV_DATABASE_URL"], Storage: "/srv/crm/dev/storage",
				StorageExclude: exclude, Hooks: none,
			},
			{
				Name: "staging", Database: specEnv["CRM_STAGING_DATABASE_URL"], Storage: "/srv/crm/staging/storage",
				StorageExclude: exclude, Hooks: none,
				Checks: []release.Check{{Name: "pages exist", SQL: `SELECT count(*) > 0 FROM "uiSchemas"`, Timeout: 30 * time.Second}},
			},
			{
				Name: "production", Database: specEnv["CRM_PROD_DATABASE_URL"], Storage: "/srv/crm/prod/storage",
				StorageExclude: exclude,
				Approvals:      release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}, Expire: 24 * time.Hour},
				Freeze: []release.FreezeWindow{{
					Text: "Fri 16:00 - Mon 08:00", Location: time.UTC,
					Start: release.WeekTime(5*24*60 + 16*60), End: release.WeekTime(1*24*60 + 8*60),
				}},
				Notice: 30 * time.Minute,
				Backup: release.BackupPolicy{Schedule: "CRON_TZ=UTC 0 2 * * *", Keep: 14, Verify: "CRON_TZ=UTC 0 4 * * 0"},
				Hooks: map[string]release.Hook{
					"maintenance_on":  {HTTP: "POST https://crm.example.com/internal/maintenance/on", Timeout: 5 * time.Minute},
					"maintenance_off": {HTTP: "POST https://crm.example.com/internal/maintenance/off", Timeout: 5 * time.Minute},
					"scale_down":      {Exec: []string{"kubectl", "scale", "deploy/crm", "--replicas=1"}, Timeout: 5 * time.Minute},
					"scale_up":        {Exec: []string{"kubectl", "scale", "deploy/crm", "--replicas=3"}, Timeout: 5 * time.Minute},
				},
				Checks: []release.Check{{Name: "health", HTTP: "GET https://crm.example.com/api/__health_check", Expect: 200, Timeout: 30 * time.Second}},
			},
		},
		Recovery: &release.Environment{
			Name: "recovery", Database: specEnv["CRM_RECOVERY_DATABASE_URL"], Storage: "/srv/crm/recovery/storage",
			StorageExclude: exclude,
			Hooks: map[string]release.Hook{
				"switch_traffic": {Exec: []string{"kubectl", "patch", "svc/crm", "-p", `{"spec":{"selector":{"env":"recovery"}}}`}, Timeout: 5 * time.Minute},
			},
		},
	}}
	if !reflect.DeepEqual(apps, want) {
		for i, e := range apps[0].Environments {
			if !reflect.DeepEqual(e, want[0].Environments[i]) {
				t.Errorf("environment %d:\n got %#v\nwant %#v", i, e, want[0].Environments[i])
			}
		}
		if !reflect.DeepEqual(apps[0].Recovery, want[0].Recovery) {
			t.Errorf("recovery:\n got %#v\nwant %#v", apps[0].Recovery, want[0].Recovery)
		}
		t.Fatalf("apps differ:\n got %+v\nwant %+v", apps[0], want[0])
	}
	prod := apps[0].Environments[2]
	fri17 := time.Date(2025, 6, 6, 17, 0, 0, 0, time.UTC) // a Friday
	if !prod.Freeze[0].Contains(fri17) || prod.Freeze[0].Contains(fri17.Add(-48*time.Hour)) {
		t.Error("freeze window does not hold Friday 17:00 but Wednesday")
	}
}

func TestDefaults(t *testing.T) {
	apps, err := ParseApps([]byte(`apps:
  crm:
    environments:
      - {name: development, database: 'dbname=dev'}
      - name: staging
        database: dbname=staging
        checks: [{name: up, http: "GET https://x.example/"}]
        hooks: {scale_up: {http: "PUT https://x.example/up"}}
      - {name: production, database: 'dbname=prod', storage_exclude: ["tmp/*"]}
  tickets:
    builtin: [roles, uiSchemas]
    version_tables: [roles]
    versions: {keep: 7}
    environments:
      - {name: dev, database: 'dbname=dev'}
      - {name: prod, database: 'dbname=prod', approvals: {required: 0}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	crm, tickets := apps[0], apps[1]
	if crm.Name != "crm" || tickets.Name != "tickets" {
		t.Fatalf("apps out of file order: %s, %s", crm.Name, tickets.Name)
	}
	if got := crm.Environments[1].Approvals.Required; got != 0 {
		t.Errorf("staging required = %d, want 0", got)
	}
	if got := crm.Environments[2].Approvals.Required; got != 1 {
		t.Errorf("production (last) required = %d, want 1 by default", got)
	}
	if got := tickets.Environments[1].Approvals.Required; got != 0 {
		t.Errorf("explicit required: 0 = %d", got)
	}
	c := crm.Environments[1].Checks[0]
	if c.Expect != 200 || c.Timeout != 30*time.Second {
		t.Errorf("check defaults = %+v", c)
	}
	if h := crm.Environments[1].Hooks["scale_up"]; h.Timeout != 5*time.Minute {
		t.Errorf("hook timeout = %v", h.Timeout)
	}
	if got := crm.Environments[0].StorageExclude; got != nil {
		t.Errorf("no preset: storage_exclude = %v, want none", got)
	}
	if got := crm.Environments[2].StorageExclude; !reflect.DeepEqual(got, []string{"tmp/*"}) {
		t.Errorf("storage_exclude = %v", got)
	}
	if tickets.Builtin != "" || !reflect.DeepEqual(tickets.BuiltinTables, []string{"roles", "uiSchemas"}) ||
		!reflect.DeepEqual(tickets.VersionTables, []string{"roles"}) || tickets.VersionKeep != 7 || crm.VersionKeep != 0 {
		t.Errorf("tickets = %+v", tickets)
	}
	if crm.Environments[1].Notice != 0 || crm.Environments[1].Backup != (release.BackupPolicy{}) {
		t.Errorf("notice/backup not zero: %+v", crm.Environments[1])
	}
}

func TestTimeZones(t *testing.T) {
	doc := `time_zone: Europe/Paris
apps:
  crm:
    environments:
      - {name: development, database: 'dbname=dev'}
      - name: production
        database: dbname=prod
        freeze: ["Fri 16:00 - Mon 08:00"]
        backup: {schedule: "@daily", verify: "TZ=Asia/Tokyo 0 4 * * 0"}
  tickets:
    time_zone: America/New_York
    environments:
      - {name: development, database: 'dbname=dev'}
      - {name: production, database: 'dbname=prod', freeze: ["friday 16:00 - monday 8:00"], backup: {schedule: "0 2 * * *"}}
`
	apps, err := ParseApps([]byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	crm, tickets := apps[0].Environments[1], apps[1].Environments[1]
	if got := crm.Freeze[0].Location.String(); got != "Europe/Paris" {
		t.Errorf("crm freeze zone = %s", got)
	}
	if crm.Backup.Schedule != "CRON_TZ=Europe/Paris @daily" || crm.Backup.Verify != "TZ=Asia/Tokyo 0 4 * * 0" {
		t.Errorf("crm backup = %+v", crm.Backup)
	}
	if got := tickets.Freeze[0].Location.String(); got != "America/New_York" {
		t.Errorf("tickets freeze zone = %s", got)
	}
	if tickets.Backup.Schedule != "CRON_TZ=America/New_York 0 2 * * *" {
		t.Errorf("tickets schedule = %q", tickets.Backup.Schedule)
	}
	if tickets.Freeze[0].Start != release.WeekTime(5*24*60+16*60) || tickets.Freeze[0].End != release.WeekTime(24*60+8*60) {
		t.Errorf("tickets freeze = %+v", tickets.Freeze[0])
	}

	// Without time_zone in apps.yaml, RELBOT_TIME_ZONE applies.
	apps, err = ParseApps([]byte(base+indent("freeze: [\"Sat 00:00 - Sun 00:00\"]", "        ")), func(k string) string {
		return map[string]string{"RELBOT_TIME_ZONE": "Australia/Sydney"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := apps[0].Environments[1].Freeze[0].Location.String(); got != "Australia/Sydney" {
		t.Errorf("default zone = %s", got)
	}
}

func TestExpansion(t *testing.T) {
	env := map[string]string{
		"DB":    "postgres://u:p@h/db",
		"CHAN":  "C42",
		"KEEP":  "7",
		"SELF":  "true",
		"WEIRD": `a: b # {c} [d], 'e' "f"`,
	}
	doc := `apps:
  crm:
    channel: ${CHAN}
    environments:
      - {name: development, database: "${DB}"}
      - name: production
        database: ${DB}
        approvals: {allow_self: "${SELF}"}
        backup: {keep: "${KEEP}"}
        checks:
          - {name: "${WEIRD}", sql: "SELECT '$$HOME', $1 = $$ok$$"}
`
	apps, err := ParseApps([]byte(doc), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a := apps[0]
	p := a.Environments[1]
	if a.Channel != "C42" || p.Database != env["DB"] || p.Backup.Keep != 7 || !p.Approvals.AllowSelf {
		t.Errorf("expanded app = %+v / %+v", a, p)
	}
	if p.Checks[0].Name != env["WEIRD"] {
		t.Errorf("value with YAML characters = %q", p.Checks[0].Name)
	}
	if p.Checks[0].SQL != "SELECT '$HOME', $1 = $ok$" {
		t.Errorf("$$ and lone $ = %q", p.Checks[0].SQL)
	}
}

func TestExpand(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"A": "x", "B": "${A}"}[k] }
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}-${A}", "x-x", ""},
		{"${B}", "${A}", ""}, // substituted values are not expanded again
		{"$$A and $$$$", "$A and $$", ""},
		{"$1 $", "$1 $", ""},
		{"${C}", "", "${C} is not set"},
		{"${A", "", `unterminated "${"`},
		{"${1A}", "", "invalid variable reference"},
	}
	for _, tc := range tests {
		got, err := expand(tc.in, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	doc := `apps:
  crm:
    environments:
      - {name: development, database: 'dbname=dev'}
      - name: staging
        database: dbname=staging
        hooks: &hooks
          scale_down: {exec: [down]}
          scale_up: &up {exec: [up], timeout: 1m}
      - name: production
        database: dbname=prod
        hooks:
          <<: *hooks
          scale_up: {<<: *up, timeout: 2m}
`
	apps, err := ParseApps([]byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := apps[0].Environments[2].Hooks
	if !reflect.DeepEqual(h["scale_down"].Exec, []string{"down"}) || h["scale_up"].Timeout != 2*time.Minute || h["scale_up"].Exec[0] != "up" {
		t.Errorf("merged hooks = %+v", h)
	}
}

func TestValidateRulesAgainstSchema(t *testing.T) {
	a := &release.App{
		Name: "crm",
		Rules: map[string]release.Rule{
			"categories": release.RuleUpsert,
			"audit_logs": release.RuleSkip,
		},
		VersionTables: []string{"categories"},
	}
	tables := map[string]bool{"categories": true, "audit_logs": false, "uiButtonSchemasRoles": false}
	if err := ValidateRulesAgainstSchema(a, tables); err != nil {
		t.Fatalf("valid rules refused: %v", err)
	}
	tests := []struct {
		rules   map[string]release.Rule
		version []string
		want    string
	}{
		{map[string]release.Rule{"nope": release.RuleSkip}, nil, `apps.crm.rules.nope: table "nope" does not exist`},
		{map[string]release.Rule{"uiButtonSchemasRoles": release.RuleUpsert}, nil,
			`apps.crm.rules.uiButtonSchemasRoles: upsert matches rows by primary key and table "uiButtonSchemasRoles" has none`},
		{map[string]release.Rule{"audit_logs": release.RuleInsertIgnore}, nil, `apps.crm.rules.audit_logs: insert-ignore matches rows by primary key`},
		{nil, []string{"categories", "ghost"}, `apps.crm.version_tables[1]: table "ghost" does not exist`},
	}
	for _, tc := range tests {
		a := &release.App{Name: "crm", Rules: tc.rules, VersionTables: tc.version}
		err := ValidateRulesAgainstSchema(a, tables)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	// overwrite and schema-only need no primary key.
	a = &release.App{Name: "crm", Rules: map[string]release.Rule{"uiButtonSchemasRoles": release.RuleOverwrite}}
	if err := ValidateRulesAgainstSchema(a, tables); err != nil {
		t.Errorf("overwrite on a table without primary key refused: %v", err)
	}
}

func TestParseFreezeWindow(t *testing.T) {
	w, err := ParseFreezeWindow("Mon 09:00 - Mon 17:30", nil)
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{9 * time.Hour, true}, {17*time.Hour + 29*time.Minute, true}, {17*time.Hour + 30*time.Minute, false}, {8 * time.Hour, false}} {
		if got := w.Contains(mon.Add(c.at)); got != c.want {
			t.Errorf("Contains(Mon +%v) = %v", c.at, got)
		}
	}
}

// nocobase: states the layout for the app and each environment; an
// environment's own replaces the app's, and a stated layout brings
// NocoBase's storage exclusions to an app that lists its built-in tables.
func TestLayouts(t *testing.T) {
	yaml := `apps:
  crm:
    builtin: [uiSchemas, nb_roles]
    nocobase: {schema: nocobase, table_prefix: nb_, underscored: true}
    environments:
      - name: development
        database: postgres://localhost/dev
      - name: production
        database: postgres://localhost/prod
        nocobase: {schema: public}
      - name: qa
        database: postgres://localhost/qa
        nocobase: {schema: nocobase, collection_schema: nocobase, sub_app_schemas: false}
      - name: uat
        database: postgres://localhost/uat
        nocobase: {collection_schema: user_data}
    recovery:
      database: postgres://localhost/rec
  plain:
    builtin: nocobase
    environments:
      - name: development
        database: postgres://localhost/pdev
      - name: production
        database: postgres://localhost/pprod
`
	apps, err := ParseApps([]byte(yaml), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	crm, plain := apps[0], apps[1]
	all := release.Layout{Schema: "nocobase", TablePrefix: "nb_", Underscored: true}
	if l := crm.Environments[0].Layout; l == nil || *l != all {
		t.Fatalf("development: %v", l)
	}
	if l := crm.Recovery.Layout; l == nil || *l != all {
		t.Fatalf("recovery: %v", l)
	}
	if l := crm.Environments[1].Layout; l == nil || *l != (release.Layout{}) {
		t.Fatalf("production states schema public alone: %v", l)
	}
	if l := crm.Environments[2].Layout; l == nil || *l != (release.Layout{Schema: "nocobase"}) {
		t.Fatalf("qa states its collections in DB_SCHEMA, NocoBase's default: %v", l)
	}
	if l := crm.Environments[3].Layout; l == nil || *l != (release.Layout{CollectionSchema: "user_data"}) || l.String() != "schema public, no table prefix, camelCase names, collections in schema user_data" {
		t.Fatalf("uat: %v", l)
	}
	if plain.Environments[0].Layout != nil {
		t.Fatalf("no statement is detection: %v", plain.Environments[0].Layout)
	}
	for _, e := range []*release.Environment{crm.Environments[0], plain.Environments[0]} {
		if !reflect.DeepEqual(e.StorageExclude, []string{"logs/**", "gateway.sock"}) {
			t.Fatalf("%s storage_exclude: %v", e.Name, e.StorageExclude)
		}
	}
}
