package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// editApps replaces one line of the sample apps.yaml (it must be there).
func editApps(t *testing.T, env map[string]string, old, new string) {
	t.Helper()
	b, err := os.ReadFile(env["RELBOT_APPS_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), old) != 1 {
		t.Fatalf("sample apps.yaml changed: %q is not there once", old)
	}
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

const (
	productionRestart = `          restart:    {exec: ["true"]}`
	stagingApprovals  = `        approvals: {required: 0}`
)

// restartHook is a restart hook that appends a line to a file each time it
// runs: the count of contracts rows in the target then, so the test sees
// that it ran after the apply (the table exists) and how often.
func restartHook(t *testing.T, env map[string]string, envName string) (line, marker string) {
	marker = filepath.Join(t.TempDir(), "restarts")
	dsn := env["CRM_"+envKey[envName]+"_DATABASE_URL"]
	script := `psql -XAtq -d "$0" -c "SELECT to_regclass('public.contracts') IS NOT NULL" >> "$1"`
	b, _ := json.Marshal([]string{"sh", "-c", script, dsn, marker})
	return "restart: {exec: " + string(b) + "}", marker
}

func restarts(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile(marker)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

type stepJSON struct {
	Name    string     `json:"name"`
	State   string     `json:"state"`
	Started *time.Time `json:"started"`
	Ended   *time.Time `json:"ended"`
	Log     string     `json:"log"`
}

func showRelease(t *testing.T, env map[string]string, id string) (steps []stepJSON, allowNewPlugins bool, reason string) {
	t.Helper()
	r := must(t, run(t, env, "release", "show", id, "--json"))
	var v struct {
		Steps           []stepJSON `json:"steps"`
		AllowNewPlugins bool       `json:"allow_new_plugins"`
		Reason          string     `json:"reason"`
	}
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	return v.Steps, v.AllowNewPlugins, v.Reason
}

func stepNamed(t *testing.T, steps []stepJSON, name string) (int, stepJSON) {
	t.Helper()
	for i, s := range steps {
		if s.Name == name {
			return i, s
		}
	}
	t.Fatalf("no step %q in %+v", name, steps)
	return 0, stepJSON{}
}

// The restart hook runs once per release, after the apply committed and
// before the checks, as its own persisted step; where an environment has
// none, the release's final message says the app must be restarted.
func TestRestartStepAfterTheApply(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	hook, marker := restartHook(t, env, "production")
	editApps(t, env, productionRestart, "          "+hook)
	m := createMigration(t, env)

	// Staging defines no restart hook: skipped, and said plainly.
	r := must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded", "restart app: skipped",
		"The app must be restarted to see the change: crm staging has no restart hook in apps.yaml")
	_ = r
	steps, _, _ := showRelease(t, env, "crm-r1")
	if _, s := stepNamed(t, steps, "restart app"); s.State != "skipped" {
		t.Fatalf("staging's restart step: %+v", s)
	}
	must(t, run(t, env, "release", "show", "crm-r1"), "must be restarted to see the change")

	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "awaiting approval")
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"))
	if got := restarts(t, marker); len(got) != 0 {
		t.Fatalf("restarted before the release ran: %v", got)
	}
	r = must(t, run(t, env, "approve", "crm-r2", "--as", "U02BBB"), "succeeded", "restart app: done")
	if strings.Contains(r.out, "must be restarted") {
		t.Fatalf("a release that restarted the app says it must be restarted:\n%s", r.out)
	}
	// Once, and the new table was there: it ran after the commit.
	if got := restarts(t, marker); len(got) != 1 || got[0] != "t" {
		t.Fatalf("restart hook runs: %v (want one, after the apply)", got)
	}
	steps, _, _ = showRelease(t, env, "crm-r2")
	ai, apply := stepNamed(t, steps, "apply migration")
	ri, restart := stepNamed(t, steps, "restart app")
	ci, checks := stepNamed(t, steps, "validation checks")
	if !(ai < ri && ri < ci) || restart.State != "done" || apply.State != "done" || checks.State != "done" ||
		restart.Started.Before(*apply.Ended) || checks.Started.Before(*restart.Ended) {
		t.Fatalf("restart must run after the apply and before the checks: %+v", steps)
	}

	// A rollback restores the database under the running app: restarted too.
	must(t, run(t, env, "rollback", "crm-r2", "--as", "U01AAA"), "awaiting approval")
	must(t, run(t, env, "approve", "crm-r3", "--as", "U02BBB"))
	must(t, run(t, env, "approve", "crm-r3", "--as", "U03CCC"), "succeeded", "restart app: done")
	if got := restarts(t, marker); len(got) != 2 || got[1] != "f" {
		t.Fatalf("restart after the rollback: %v (want a second run, contracts gone)", got)
	}
}

// A restart hook that fails is a failed step: the change stays applied,
// the checks do not run, and the ways out are named (maintenance stays on
// where it was turned on; staging has no maintenance hooks).
func TestFailedRestartStep(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	editApps(t, env, stagingApprovals, stagingApprovals+"\n        hooks:\n          restart: {exec: [\"sh\", \"-c\", \"echo cannot reach the cluster >&2; exit 3\"]}")
	m := createMigration(t, env)
	r := run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice")
	if r.code != 1 || !strings.Contains(r.err, "failed at restart app") || !strings.Contains(r.err, "cannot reach the cluster") {
		t.Fatalf("want the release to fail at its restart: %d\n%s\n%s", r.code, r.out, r.err)
	}
	steps, _, reason := showRelease(t, env, "crm-r1")
	for name, want := range map[string]string{"apply migration": "done", "restart app": "failed", "validation checks": "skipped", "maintenance off": "skipped"} {
		if _, s := stepNamed(t, steps, name); s.State != want {
			t.Errorf("step %s is %s, want %s", name, s.State, want)
		}
	}
	for _, want := range []string{"the app was not restarted", "still runs its old configuration", "restart crm staging", "rollback crm-r1"} {
		if !strings.Contains(reason, want) {
			t.Errorf("outcome lacks %q: %s", want, reason)
		}
	}
	if strings.Contains(reason, "maintenance") {
		t.Errorf("staging has no maintenance hooks, yet the outcome speaks of maintenance: %s", reason)
	}
	if _, s := stepNamed(t, steps, "restart app"); !strings.Contains(s.Log, "cannot reach the cluster") {
		t.Errorf("the restart step's log lacks the hook's output: %q", s.Log)
	}
	// The migration committed: the new table is there.
	if rows := testenv.Rows(t, env["CRM_STAGING_DATABASE_URL"], `SELECT 'contracts', (to_regclass('public.contracts') IS NOT NULL)::text`); rows["contracts"] != "true" {
		t.Fatal("the apply did not commit before the restart")
	}
}

// var set and secret set say the app must be restarted; where a restart
// hook exists they offer `restart APP ENV`, which runs it under the
// environment's lock and is refused while the environment is locked.
func TestRestartAfterVariableChanges(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	hook, marker := restartHook(t, env, "production")
	editApps(t, env, productionRestart, "          "+hook)

	must(t, run(t, env, "var", "set", "crm", "staging", "API_TIMEOUT=30", "--as", "alice"),
		"must be restarted to see the change", "crm staging has no restart hook in apps.yaml, so restart it yourself")
	must(t, run(t, env, "var", "set", "crm", "production", "API_TIMEOUT=30", "--as", "U01AAA"),
		"must be restarted to see the change", "restart crm production runs its restart hook")
	must(t, runIn(t, env, "s3cr3t-token-value\n", "secret", "set", "crm", "production", "SIGN_TOKEN", "--as", "U01AAA"),
		"restart crm production runs its restart hook")
	must(t, run(t, env, "var", "unset", "crm", "production", "API_TIMEOUT", "--as", "U01AAA"), "restart crm production runs its restart hook")
	if got := restarts(t, marker); len(got) != 0 {
		t.Fatalf("a variable change restarted the app by itself: %v", got)
	}

	r := must(t, run(t, env, "restart", "crm", "production", "--as", "U01AAA"), "crm production restarted by U01AAA")
	if got := restarts(t, marker); len(got) != 1 {
		t.Fatalf("restart ran the hook %d times:\n%s", len(got), r.out)
	}
	// Restarting production stops its app: its approvers' by default.
	refused(t, run(t, env, "restart", "crm", "production", "--as", "alice"), "that needs the restart role")
	if got := restarts(t, marker); len(got) != 1 {
		t.Fatalf("a refused restart ran the hook: %v", got)
	}
	refused(t, run(t, env, "restart", "crm", "staging", "--as", "alice"), "crm staging has no restart hook in apps.yaml")
	must(t, run(t, env, "lock", "crm", "production", "incident", "7", "--as", "U02BBB"), "locked")
	refused(t, run(t, env, "restart", "crm", "production", "--as", "U01AAA"), "locked by U02BBB")
	must(t, run(t, env, "unlock", "crm", "production", "--as", "U02BBB"))
	must(t, run(t, env, "restart", "crm", "production", "--as", "U01AAA"), "restarted")
	if got := restarts(t, marker); len(got) != 2 {
		t.Fatalf("restarts after the unlock: %v", got)
	}
	if r := run(t, env, "restart", "crm", "--as", "alice"); r.code != 2 || !strings.Contains(r.err, "usage: restart APP ENV") {
		t.Fatalf("restart without ENV: %+v", r)
	}
	must(t, run(t, env, "help", "restart"), "restart APP ENV", "restart hook")
}

// The sample migration enables workflow-json-query, which staging and
// production do not have: the plan names it, a deploy without
// --allow-new-plugins is refused and records nothing, one with it runs and
// keeps the choice. Production with the plugin disabled or not installed is
// still refused; with it enabled, it is not.
func TestDeployNewPlugins(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	m := createMigration(t, env)
	const plugin = "workflow-json-query (@nocobase/plugin-workflow-json-query 2.2.15): not registered in the target"

	must(t, run(t, env, "migration", "plan", m, "staging"), "Plugins staging does not have:", plugin, "needs --allow-new-plugins")
	r := run(t, env, "deploy", m, "staging", "--as", "alice")
	refused(t, r, "brings plugins crm staging does not have: "+plugin)
	if !strings.Contains(r.err, "deploy "+m+" staging --allow-new-plugins") {
		t.Fatalf("the refusal does not say how to go on: %s", r.err)
	}
	must(t, run(t, env, "release", "list", "crm"), "No releases of crm yet")

	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded", "New plugins:", "allowed by the requester")
	steps, allowed, _ := showRelease(t, env, "crm-r1")
	if _, pre := stepNamed(t, steps, "preflight"); !allowed || !strings.Contains(pre.Log, "new plugins allowed by the requester: "+plugin) {
		t.Fatalf("the release does not keep the choice: allowed=%v preflight %+v", allowed, pre)
	}
	must(t, run(t, env, "migration", "plan", m, "production"), plugin)

	prod := env["CRM_PROD_DATABASE_URL"]
	setPlugin := func(sql string) {
		t.Helper()
		conn := testenv.Connect(t, prod)
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	setPlugin(`INSERT INTO "applicationPlugins" ("name", "packageName", "version", "enabled", "installed", "builtIn", "options", "createdAt", "updatedAt")
		VALUES ('workflow-json-query', '@nocobase/plugin-workflow-json-query', '2.2.15', false, true, false, '{}', now(), now())`)
	refused(t, run(t, env, "deploy", m, "production", "--as", "alice"), "workflow-json-query (@nocobase/plugin-workflow-json-query 2.2.15): installed but disabled in the target")
	setPlugin(`UPDATE "applicationPlugins" SET "installed" = false, "enabled" = true WHERE "name" = 'workflow-json-query'`)
	refused(t, run(t, env, "deploy", m, "production", "--as", "alice"), "registered but not installed in the target")
	setPlugin(`UPDATE "applicationPlugins" SET "installed" = true WHERE "name" = 'workflow-json-query'`)
	must(t, run(t, env, "migration", "plan", m, "production"), "Plugins production does not have:\n  none")
	must(t, run(t, env, "deploy", m, "production", "--as", "alice"), "crm-r2", "awaiting approval")
	if _, allowed, _ := showRelease(t, env, "crm-r2"); allowed {
		t.Fatal("a deploy without --allow-new-plugins is recorded as allowing them")
	}
}

// A migration the target's marker records: the plan says who applied it
// and when and lists no changes; deploy refuses it at request time.
func TestDeployAlreadyApplied(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")

	r := must(t, run(t, env, "migration", "plan", m, "staging"), m+" was applied to crm staging already", "by alice", "No changes")
	for _, lacks := range []string{"Statements", "DESTRUCTIVE", "Rows:"} {
		if strings.Contains(r.out, lacks) {
			t.Fatalf("the plan of an applied file lists changes (%s):\n%s", lacks, r.out)
		}
	}
	var plan struct {
		AlreadyApplied *struct{ By string } `json:"already_applied"`
		Statements     []string             `json:"statements"`
	}
	if err := json.Unmarshal([]byte(must(t, run(t, env, "migration", "plan", m, "staging", "--json")).out), &plan); err != nil ||
		plan.AlreadyApplied == nil || plan.AlreadyApplied.By != "alice" || len(plan.Statements) != 0 {
		t.Fatalf("plan --json: %v %+v", err, plan)
	}

	r = run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "bob")
	refused(t, r, m+" was applied to crm staging already, by alice at ")
	if !strings.Contains(r.err, "UTC") {
		t.Fatalf("the refusal does not say when: %s", r.err)
	}
	out := must(t, run(t, env, "release", "list", "crm")).out
	if strings.Contains(out, "crm-r2") {
		t.Fatalf("a refused deploy was recorded:\n%s", out)
	}
}

// Missing variables are named before new plugins: the variables' form
// comes first, then the plugins' confirmation, each once.
func TestDeployRefusalOrder(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("ab", 32)
	m := createMigration(t, env)
	r := run(t, env, "deploy", m, "staging", "--as", "alice")
	refused(t, r, "staging lacks variables "+m+" references: CONTRACTS_SIGN_URL")
	if strings.Contains(r.err, "plugins") {
		t.Fatalf("the refusal for variables speaks of plugins: %s", r.err)
	}
	must(t, run(t, env, "var", "set", "crm", "staging", "CONTRACTS_SIGN_URL=https://sign.example.com", "--as", "alice"))
	refused(t, run(t, env, "deploy", m, "staging", "--as", "alice"), "brings plugins crm staging does not have")
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
}

// A deploy's request keeps the change summary approvers judge, in the
// reply, release show and its JSON; when the target changes between the
// request and the run, the preflight's log says how the summary moved.
// Then its pre-release backup through backup list, show and delete.
func TestDeployKeepsTheChangeSummary(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	apps, err := os.ReadFile(env["RELBOT_APPS_FILE"])
	if err != nil || !strings.Contains(string(apps), "keep: 14") {
		t.Fatalf("sample apps.yaml: no keep: 14 to lower (%v)", err)
	}
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), "keep: 14", "keep: 1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "migration", "show", m), "Changes in production, as it is now:", `page added: “Contracts” — in “CRM”`)

	prod := env["CRM_PROD_DATABASE_URL"]
	conn := testenv.Connect(t, prod)
	if _, err := conn.Exec(t.Context(), `INSERT INTO "applicationPlugins" ("name", "packageName", "version", "enabled", "installed", "builtIn", "options", "createdAt", "updatedAt")
		VALUES ('workflow-json-query', '@nocobase/plugin-workflow-json-query', '2.2.15', true, true, false, '{}', now(), now())`); err != nil {
		t.Fatal(err)
	}
	must(t, run(t, env, "deploy", m, "production", "--as", "U03CCC"), "crm-r2", "awaiting approval",
		"Changes against production at the request:", `page added: “Products” — in “CRM”`, `page renamed: “Tickets” → “Support tickets”`,
		`role menu access: “Sales” (sales) — now sees “Contracts”, “Products”`)
	var v struct {
		Changes *release.Changes `json:"changes"`
	}
	if err := json.Unmarshal([]byte(must(t, run(t, env, "release", "show", "crm-r2", "--json")).out), &v); err != nil || v.Changes == nil || v.Changes.Against != "production" {
		t.Fatalf("release show --json: %v %+v", err, v.Changes)
	}
	for _, c := range v.Changes.Items {
		if c.Kind == release.ChangePage && c.Action == "renamed" && c.Name != "“Tickets” → “Support tickets”" {
			t.Fatalf("renamed page: %+v", c)
		}
	}

	// Someone renames a page in production while the release waits.
	if _, err := conn.Exec(t.Context(), `UPDATE "desktopRoutes" SET "title" = 'Client list' WHERE "title" = 'Customers'`); err != nil {
		t.Fatal(err)
	}
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"))
	must(t, run(t, env, "approve", "crm-r2", "--as", "U02BBB"), "succeeded")
	steps, _, _ := showRelease(t, env, "crm-r2")
	if _, pre := stepNamed(t, steps, "preflight"); !strings.Contains(pre.Log, "the change summary differs from the one approved (production changed since the request):") ||
		!strings.Contains(pre.Log, "+ page renamed: “Client list” → “Customers”") {
		t.Fatalf("preflight log:\n%s", pre.Log)
	}

	// The same release's pre-release backup: backup show and delete from
	// the terminal, and retention (keep: 1) keeping what a rollback of the
	// latest deploy restores. (A newer deploy freeing it:
	// TestBackupDeleteKeepsWhatARollbackNeeds.)
	var rel struct{ Backup string }
	if err := json.Unmarshal([]byte(must(t, run(t, env, "release", "show", "crm-r2", "--json")).out), &rel); err != nil || rel.Backup == "" {
		t.Fatalf("release show crm-r2: %v %+v", err, rel)
	}
	first := rel.Backup
	must(t, run(t, env, "backup", "list", "crm", "production"), first, "pre-release (crm-r2)", "checksums, ")
	must(t, run(t, env, "backup", "show", first), "Backup "+first, "crm production, pre-release", "Release:", "crm-r2", "PostgreSQL:", "NocoBase:", "2.2.12", // production before the apply
		"Verified:", "checksums, ", "backup verify "+first)
	var shown struct {
		CheckedAt  *time.Time `json:"checked_at"`
		VerifiedAt *time.Time `json:"verified_at"`
		Manifest   struct{ Tables int }
	}
	if err := json.Unmarshal([]byte(must(t, run(t, env, "backup", "show", first, "--json")).out), &shown); err != nil || shown.CheckedAt == nil || shown.VerifiedAt != nil || shown.Manifest.Tables == 0 {
		t.Fatalf("backup show --json: %v %+v", err, shown)
	}
	refused(t, run(t, env, "backup", "delete", first, "--as", "U01AAA"), "is kept: it is the pre-release backup of crm-r2, the latest deploy of crm production, which a rollback restores")
	refused(t, run(t, env, "backup", "delete", first, "--as", "alice"), "alice may not delete backups of crm production: that needs the backup role (by default the approvers")

	// keep: 1, and a manual backup: the latest deploy's pre-release backup stays.
	manual := must(t, run(t, env, "backup", "create", "crm", "production", "--as", "alice", "--json")).out
	var mb struct{ ID string }
	if err := json.Unmarshal([]byte(manual), &mb); err != nil {
		t.Fatal(err)
	}
	must(t, run(t, env, "backup", "list", "crm", "production"), first, mb.ID)

	// Verified, it is refused as the newest verified one; the manual one
	// may go. (A newer deploy freeing the first: TestBackupDeleteKeepsWhatARollbackNeeds.)
	must(t, run(t, env, "backup", "verify", first))
	refused(t, run(t, env, "backup", "delete", first, "--as", "U01AAA"), "the newest verified backup of crm production")
	must(t, run(t, env, "backup", "delete", mb.ID, "--as", "U01AAA"), "Backup "+mb.ID+" of crm production deleted")
	if out := must(t, run(t, env, "backup", "list", "crm", "production")).out; strings.Contains(out, mb.ID+" ") {
		t.Fatalf("%s still listed:\n%s", mb.ID, out)
	}
	refused(t, run(t, env, "backup", "delete", "crm-b404", "--as", "U01AAA"), "no backup crm-b404")
}
