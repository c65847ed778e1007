package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release/pgschema"
	"github.com/relbot/relbot/release/pgsnap"
)

// releaseEnv is the sample app with a secret key (migration files are
// signed with it) and the variable the new configuration references set in
// staging and production.
func releaseEnv(t *testing.T) map[string]string {
	t.Helper()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("ab", 32)
	// Production's variables are its approvers' (U01AAA is one).
	for e, as := range map[string]string{"staging": "alice", "production": "U01AAA"} {
		if r := run(t, env, "var", "set", "crm", e, "CONTRACTS_SIGN_URL=https://sign."+e+".example.com", "--as", as); r.code != 0 {
			t.Fatalf("var set: %+v", r)
		}
	}
	return env
}

func must(t *testing.T, r result, want ...string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, w := range want {
		if !strings.Contains(r.out, w) {
			t.Fatalf("output lacks %q:\n%s", w, r.out)
		}
	}
	return r
}

func refused(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.err, want) {
		t.Fatalf("want exit 1 saying %q, got %d\nstdout:\n%s\nstderr:\n%s", want, r.code, r.out, r.err)
	}
}

func createMigration(t *testing.T, env map[string]string) string {
	t.Helper()
	r := must(t, run(t, env, "migration", "create", "crm", "--note", "contracts", "--as", "alice", "--json"))
	var m struct{ ID string }
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	return m.ID
}

// dbState is a database's schema dump and every table's rows, but for
// relbot's own schemas in a target (relbot: the marker and the engine's
// bookkeeping; relbot_prep_*, relbot_snap_*: preparations and release
// snapshots), which come and go beside the app's data; tests count the
// marker rows themselves (markers).
func dbState(t *testing.T, dsn string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--schema-only", "--exclude-schema=relbot*", "--dbname", dsn).Output()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict`) && !strings.HasPrefix(l, `\unrestrict`) {
			b.WriteString(l + "\n")
		}
	}
	conn, err := pgschema.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Tables {
		if strings.HasPrefix(s.Tables[i].Schema, "relbot") {
			continue
		}
		ti, err := pgsnap.TableChecksum(context.Background(), conn, &s.Tables[i])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", ti.Key, ti.Rows, ti.Checksum)
	}
	return b.String()
}

// The whole chain from the terminal: staging first, then the same file to
// production with two approvals; refusals along the way.
func TestReleaseChain(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	m := createMigration(t, env)

	refused(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "has not passed staging")

	r := must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded", "apply migration", "validation checks", "pages exist")
	if !strings.Contains(r.out, "pre-release backup") {
		t.Fatalf("no pre-release backup step:\n%s", r.out)
	}
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "awaiting approval", "approve crm-r2")
	refused(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "bob"), "already has an open release crm-r2")
	refused(t, run(t, env, "approve", "crm-r2", "--as", "alice"), "may not approve it too")
	refused(t, run(t, env, "approve", "crm-r2", "--as", "mallory"), "may not approve")
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"), "awaiting approval")
	refused(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"), "already approved")
	r = must(t, run(t, env, "approve", "crm-r2", "--as", "U02BBB"), "succeeded")
	refused(t, run(t, env, "approve", "crm-r2", "--as", "U03CCC"), "not awaiting approval")

	show := must(t, run(t, env, "release", "show", "crm-r2"), "succeeded", "U01AAA and U02BBB", "crm-b", "admin can sign in")
	for _, step := range []string{"preflight", "maintenance on", "scale down", "pre-release backup", "apply migration", "validation checks", "scale up", "maintenance off"} {
		if !strings.Contains(show.out, step) {
			t.Fatalf("release show lacks step %q:\n%s", step, show.out)
		}
	}
	must(t, run(t, env, "release", "list", "crm"), "crm-r1", "crm-r2")

	// A different file never passed staging.
	m2 := createMigration(t, env)
	refused(t, run(t, env, "deploy", m2, "production", "--allow-new-plugins", "--as", "alice"), "has not passed staging")

	// Holds.
	must(t, run(t, env, "lock", "crm", "staging", "incident", "42", "--as", "alice"), "locked")
	refused(t, run(t, env, "lock", "crm", "staging", "mine\nnow", "--as", "bob"), "locked already, by alice")
	refused(t, run(t, env, "deploy", m2, "staging", "--allow-new-plugins", "--as", "alice"), "incident 42")
	must(t, run(t, env, "unlock", "crm", "staging", "--as", "alice"), "unlocked")
}

// A validation check that fails after the apply fails the release; the
// rollback restores production exactly as it was before.
func TestFailedCheckAndRollback(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	apps, _ := os.ReadFile(env["RELBOT_APPS_FILE"])
	anchor := "          - {name: customers kept, sql: 'SELECT count(*) > 0 FROM customers'}\n"
	if !strings.Contains(string(apps), anchor) {
		t.Fatal("sample apps.yaml changed: no production check to add after")
	}
	// Production-only check that the new column breaks.
	broken := strings.Replace(string(apps), anchor, anchor+
		"          - {name: no segment column yet, sql: \"SELECT count(*) = 0 FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'segment'\"}\n", 1)
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(broken), 0o600)

	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	before := dbState(t, env["CRM_PROD_DATABASE_URL"])
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"))
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"))
	r := run(t, env, "approve", "crm-r2", "--as", "U02BBB")
	if r.code != 1 || !strings.Contains(r.out, "failed") || !strings.Contains(r.err, "no segment column yet") {
		t.Fatalf("want the release to fail its check:\n%s\n%s", r.out, r.err)
	}
	show := must(t, run(t, env, "release", "show", "crm-r2"), "failed", "FAIL  no segment column yet", "maintenance stays on", "rollback crm-r2")
	_ = show
	if after := dbState(t, env["CRM_PROD_DATABASE_URL"]); after == before {
		t.Fatal("the failed release did not change production: the test proves nothing")
	}
	// Production's approvers may restore its data; U01AAA asks, two others approve.
	must(t, run(t, env, "rollback", "crm-r2", "--full", "--as", "U01AAA"), "awaiting approval", "full: restores backup crm-b")
	must(t, run(t, env, "approve", "crm-r3", "--as", "U02BBB"))
	r = run(t, env, "approve", "crm-r3", "--as", "U03CCC")
	// The rollback's own checks run on the restored production: the
	// broken check passes again.
	if r.code != 0 || !strings.Contains(r.out, "succeeded") {
		t.Fatalf("rollback: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if after := dbState(t, env["CRM_PROD_DATABASE_URL"]); after != before {
		t.Fatalf("production after rollback differs from before the release:\n%s", firstDifference(before, after))
	}
	must(t, run(t, env, "release", "show", "crm-r2"), "rolled back")
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(al), len(bl))
}

// 20 concurrent deploys and approvals of one environment: one release,
// each approval counted once, one run.
func TestConcurrentDeploysAndApprovals(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	var wg sync.WaitGroup
	results := make([]result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", fmt.Sprintf("dev%d", i))
		}()
	}
	wg.Wait()
	created := 0
	id := ""
	for _, r := range results {
		switch {
		case r.code == 0:
			created++
			// Refused requests use up IDs too: the one created is named in
			// its reply, not necessarily crm-r2.
			id = regexp.MustCompile(`crm-r\d+`).FindString(r.out)
		case !strings.Contains(r.err, "already has an open release"):
			t.Fatalf("unexpected refusal: %+v", r)
		}
	}
	if created != 1 || id == "" {
		t.Fatalf("%d releases created (%q), want 1", created, id)
	}
	approvers := []string{"U01AAA", "U02BBB", "U03CCC"}
	ran := 0
	var mu sync.Mutex
	var outcomes []string
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := run(t, env, "approve", id, "--as", approvers[i%3])
			mu.Lock()
			defer mu.Unlock()
			if r.code == 0 && strings.Contains(r.out, "succeeded") {
				ran++
			}
			outcomes = append(outcomes, fmt.Sprintf("exit %d: %s %s", r.code, firstDetailLine(r.out), firstDetailLine(r.err)))
		}()
	}
	wg.Wait()
	if ran != 1 {
		t.Fatalf("%d approvals ran the release, want exactly 1:\n%s", ran, strings.Join(outcomes, "\n"))
	}
	var rel struct {
		State     string
		Approvals []struct{ By string }
	}
	r := must(t, run(t, env, "release", "show", id, "--json"))
	if err := json.Unmarshal([]byte(r.out), &rel); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range rel.Approvals {
		if seen[a.By] {
			t.Fatalf("%s's approval counted twice", a.By)
		}
		seen[a.By] = true
	}
	// Two approvals make it runnable; a third may land in the same instant.
	if rel.State != "succeeded" || len(rel.Approvals) < 2 || len(rel.Approvals) > 3 {
		t.Fatalf("state %s with %d approvals, want succeeded with 2 or 3 distinct", rel.State, len(rel.Approvals))
	}
	var list []struct{ ID string }
	json.Unmarshal([]byte(must(t, run(t, env, "release", "list", "crm", "production", "--json")).out), &list)
	if len(list) != 1 {
		t.Fatalf("%d production releases, want 1", len(list))
	}
}

// markers counts the migration marker rows of a target (0 when it has
// never had a migration applied).
func markers(t *testing.T, dsn string) int {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(context.Background(), `SELECT to_regclass('relbot.applied_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return 0
	}
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM relbot.applied_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func firstDetailLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "Outcome") || strings.Contains(l, "relbot:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

var relbotBinary struct {
	once sync.Once
	path string
	err  error
}

// binaryCommand runs the built relbot with args and env (and PATH, for
// pg_dump and hooks) as its whole environment.
func binaryCommand(bin string, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
	return cmd
}

// binary builds relbot once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	relbotBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "relbot-bin")
		if err != nil {
			relbotBinary.err = err
			return
		}
		relbotBinary.path = filepath.Join(dir, "relbot")
		out, err := exec.Command("go", "build", "-o", relbotBinary.path, ".").CombinedOutput()
		if err != nil {
			relbotBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if relbotBinary.err != nil {
		t.Fatal(relbotBinary.err)
	}
	return relbotBinary.path
}

// For each step, the process running a release is killed (SIGKILL) while
// it is at that step. The target is then either fully before or fully
// after the migration, the release is interrupted at that step, and
// resume finishes it. The steps before the window (the backup, the
// preparation) and the one after it (retention) are among them.
func TestKilledRunnerIsInterruptedAndResumes(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	for _, step := range []string{"preflight", "pre-release backup", "prepare apply", "maintenance on", "scale down", "apply migration",
		"apply migration (before commit)", "validation checks", "scale up", "maintenance off", "snapshot retention"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			env := releaseEnv(t)
			env["RELBOT_LEASE_TTL"] = testLeaseTTL.String()
			m := createMigration(t, env)
			before := dbState(t, env["CRM_STAGING_DATABASE_URL"])

			killAt(t, bin, env, step, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice")
			expireLeases(t, env)

			after := dbState(t, env["CRM_STAGING_DATABASE_URL"])
			committed := markers(t, env["CRM_STAGING_DATABASE_URL"])
			wantStep := strings.TrimSuffix(step, " (before commit)")
			show := must(t, run(t, env, "release", "show", "crm-r1"), "interrupted", fmt.Sprintf("during %q", wantStep), "resume crm-r1")
			if wantStep == "apply migration" && (committed != 0 || !strings.Contains(show.out, "had not committed")) {
				t.Fatalf("killed inside the apply: the migration must not have committed and the release must say so:\n%s", show.out)
			}
			if committed == 0 && after != before {
				t.Fatalf("staging changed although the migration did not commit:\n%s", firstDifference(before, after))
			}
			must(t, run(t, env, "resume", "crm-r1", "--as", "alice"), "succeeded")
			final := dbState(t, env["CRM_STAGING_DATABASE_URL"])
			if final == before {
				t.Fatal("resume did not apply the migration")
			}
			if committed == 1 && after != final {
				t.Fatalf("staging was half-way after the kill: it differs from the state the release ends in:\n%s", firstDifference(after, final))
			}
			if n := markers(t, env["CRM_STAGING_DATABASE_URL"]); n != 1 {
				t.Fatalf("marker rows %d, want 1: the file applied exactly once", n)
			}
			// The resumed release kept its snapshot: the targeted rollback is offered.
			must(t, run(t, env, "release", "show", "crm-r1"), "Release snapshot", "crm-r1")
		})
	}
	// The targeted rollback, killed at each of its steps: staging is either
	// as the deploy left it or as before the deploy, and resume ends it
	// as before the deploy.
	for _, step := range []string{"preflight", "maintenance on", "scale down", "revert", "revert (before commit)", "validation checks", "scale up", "maintenance off"} {
		t.Run("targeted rollback/"+step, func(t *testing.T) {
			t.Parallel()
			env := releaseEnv(t)
			env["RELBOT_LEASE_TTL"] = testLeaseTTL.String()
			m := createMigration(t, env)
			before := dbState(t, env["CRM_STAGING_DATABASE_URL"])
			must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
			deployed := dbState(t, env["CRM_STAGING_DATABASE_URL"])

			killAt(t, bin, env, step, "rollback", "crm-r1", "--as", "alice")
			expireLeases(t, env)

			after := dbState(t, env["CRM_STAGING_DATABASE_URL"])
			reverted := markers(t, env["CRM_STAGING_DATABASE_URL"]) == 0
			wantStep := strings.TrimSuffix(step, " (before commit)")
			show := must(t, run(t, env, "release", "show", "crm-r2"), "interrupted", fmt.Sprintf("during %q", wantStep), "resume crm-r2", "targeted")
			if wantStep == "revert" && (reverted || !strings.Contains(show.out, "the revert had not committed")) {
				t.Fatalf("killed inside the revert: it must not have committed and the release must say so:\n%s", show.out)
			}
			switch {
			case !reverted && after != deployed:
				t.Fatalf("staging changed although the revert did not commit:\n%s", firstDifference(deployed, after))
			case reverted && after != before:
				t.Fatalf("staging was half-way after the kill:\n%s", firstDifference(before, after))
			}
			must(t, run(t, env, "resume", "crm-r2", "--as", "alice"), "succeeded")
			if final := dbState(t, env["CRM_STAGING_DATABASE_URL"]); final != before {
				t.Fatalf("after the resumed rollback staging differs from before the deploy:\n%s", firstDifference(before, final))
			}
			if n := markers(t, env["CRM_STAGING_DATABASE_URL"]); n != 0 {
				t.Fatalf("marker rows %d after the rollback, want 0", n)
			}
			must(t, run(t, env, "release", "show", "crm-r1"), "rolled back")
		})
	}
}

// killAt runs relbot with args in a process of its own, kills it (SIGKILL)
// when the release it runs reaches step, and waits for the process to end.
// The release keeps the dead runner's lease (RELBOT_LEASE_TTL, testLeaseTTL
// in these tests) until it runs out.
func killAt(t *testing.T, bin string, env map[string]string, step string, args ...string) {
	t.Helper()
	cmd := binaryCommand(bin, env, args...)
	cmd.Env = append(cmd.Env, "RELBOT_FAULT_PAUSE="+step)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	paused := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "FAULT PAUSE") {
				paused <- true
				break
			}
		}
		for sc.Scan() {
		}
		paused <- false
	}()
	select {
	case ok := <-paused:
		if !ok {
			t.Fatal("the runner ended without reaching the step")
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the runner never reached the step")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// expireLeases ends the killed runner's lease on its release and its locks
// (of the environment, the app), as the clock would testLeaseTTL after the
// kill. The kill matrix's 19 runs would otherwise each sleep 3.5 s holding
// one of the package's parallel slots (a minute of slots, at the end of
// CI); TestSwitchAfterAnInterruptedProductionDeploy waits for its leases
// to run out on the clock.
func expireLeases(t *testing.T, env map[string]string) {
	t.Helper()
	conn := testenv.Connect(t, env["RELBOT_DATABASE_URL"])
	defer testenv.CloseAndWait(t, conn)
	ctx := context.Background()
	tag, err := conn.Exec(ctx, "UPDATE relbot_releases SET lease_until = now() - interval '1 second' WHERE state = 'running'")
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("expire the killed runner's lease: %d running releases, want 1", tag.RowsAffected())
	}
	if tag, err = conn.Exec(ctx, "UPDATE relbot_locks SET until = now() - interval '1 second' WHERE until > now()"); err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatal("expire the killed runner's locks: it held none")
	}
}

// testLeaseTTL is short, so that a killed runner's lease runs out soon, yet
// long enough that a live runner renews it in time on a loaded machine
// under -race (1s was not: resumes lost their lease).
const testLeaseTTL = 3 * time.Second

// The incident path: a production deploy whose runner died after the
// migration committed; its pre-release backup is rolled back into
// recovery, checked there, and users are switched to recovery, which
// abandons the interrupted deploy that held production.
func TestSwitchAfterAnInterruptedProductionDeploy(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	env := releaseEnv(t)
	env["RELBOT_LEASE_TTL"] = testLeaseTTL.String()
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "crm-r2", "awaiting approval")
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"))
	killAt(t, bin, env, "validation checks", "approve", "crm-r2", "--as", "U02BBB")
	time.Sleep(testLeaseTTL + 500*time.Millisecond) // the lease runs out on the clock
	must(t, run(t, env, "release", "show", "crm-r2"), "interrupted")

	refused(t, run(t, env, "rollback", "crm-r2", "--into", "staging", "--as", "alice"), "rollback --into takes the independent recovery environment")
	must(t, run(t, env, "rollback", "crm-r2", "--into", "recovery", "--as", "U03CCC"), "crm-r3 succeeded", "switch crm-r3")
	must(t, run(t, env, "switch", "crm-r3", "--as", "alice"), "crm-r4", "awaiting approval")
	must(t, run(t, env, "release", "show", "crm-r2"), "failed", "abandoned by alice, who asked to move users to recovery")
	must(t, run(t, env, "approve", "crm-r4", "--as", "U01AAA"))
	must(t, run(t, env, "approve", "crm-r4", "--as", "U02BBB"), "crm-r4 succeeded")
}

// A release waiting for its --at time can be cancelled; one not approved
// within expire ends as expired.
func TestScheduledCancelAndExpiry(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	apps, _ := os.ReadFile(env["RELBOT_APPS_FILE"])
	if !strings.Contains(string(apps), "expire: 24h") {
		t.Fatal("sample apps.yaml changed: no expire to shorten")
	}
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), "expire: 24h", "expire: 2s", 1)), 0o600)
	m := createMigration(t, env)

	deployAtThenCancel(t, env, m, time.Now().Add(20*time.Second), "crm-r1")
	if markers(t, env["CRM_STAGING_DATABASE_URL"]) != 0 {
		t.Fatal("a cancelled release changed staging")
	}

	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "awaiting approval")
	time.Sleep(2500 * time.Millisecond)
	refused(t, run(t, env, "approve", "crm-r3", "--as", "U01AAA"), "not awaiting approval")
	must(t, run(t, env, "release", "show", "crm-r3"), "expired", "not approved within 2s")
	// Back to a day, so that crm-r4 waits however slow the commands below.
	os.WriteFile(env["RELBOT_APPS_FILE"], apps, 0o600)
	// An expired release frees its environment.
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "crm-r4", "awaiting approval")
	// Only its requester or an approver may withdraw it.
	refused(t, run(t, env, "cancel", "crm-r4", "--as", "mallory"), "mallory may not cancel others' releases to crm production: that needs the reject role")
	must(t, run(t, env, "cancel", "crm-r4", "--as", "U03CCC"), "cancelled")
}

// TestFreezeWindow: a release into a frozen environment is refused now and
// at a time inside the window, and can be scheduled for after it.
func TestFreezeWindow(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	now := time.Now().UTC()
	window := fmt.Sprintf(`freeze: ["%s - %s"]`, now.Add(-time.Hour).Format("Mon 15:04"), now.Add(time.Hour).Format("Mon 15:04"))
	apps, _ := os.ReadFile(env["RELBOT_APPS_FILE"])
	staging := "        approvals: {required: 0}\n"
	if !strings.Contains(string(apps), staging) {
		t.Fatal("sample apps.yaml changed: no staging approvals line to put the window after")
	}
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), staging, staging+"        "+window+"\n", 1)), 0o600)
	m := createMigration(t, env)

	refused(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "crm staging is frozen")
	refused(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--at", now.AddDate(0, 2, 0).Format(time.RFC3339), "--as", "alice"), "more than 30 days ahead")
	if r := run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--at", "2020-01-01T00:00:00Z", "--as", "alice"); r.code != 2 || strings.Count(r.err, "usage:") != 1 {
		t.Fatalf("--at in the past: %+v", r)
	}
	inside := now.Add(30 * time.Minute).Format(time.RFC3339)
	refused(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--at", inside, "--as", "alice"), "crm staging is frozen")
	if markers(t, env["CRM_STAGING_DATABASE_URL"]) != 0 {
		t.Fatal("a refused release changed staging")
	}

	deployAtThenCancel(t, env, m, now.Add(2*time.Hour), "crm-r1")
}

// deployAtThenCancel deploys m to staging --at at from a terminal that
// waits for it, sees release id scheduled, cancels it from another
// terminal and checks that the waiting one says so and ends.
func deployAtThenCancel(t *testing.T, env map[string]string, m string, at time.Time, id string) {
	t.Helper()
	done := make(chan result, 1)
	go func() {
		done <- run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--at", at.UTC().Format(time.RFC3339), "--as", "alice")
	}()
	eventually(t, id+" scheduled", 15*time.Second, func() bool {
		r := run(t, env, "release", "show", id, "--json")
		return r.code == 0 && strings.Contains(r.out, `"scheduled"`)
	})
	must(t, run(t, env, "cancel", id, "--as", "bob"), "cancelled")
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.err, "cancelled") || !strings.Contains(r.out, id+" waiting: starts at") {
			t.Fatalf("the waiting deploy: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting deploy did not notice the cancel")
	}
}

// TestSwitchTrafficAfterRestoreIntoRecovery: a restore into recovery runs
// its checks; only then may users be switched to it, as a release of the
// environment they leave, approved there; a stale restore is refused.
func TestSwitchTrafficAfterRestoreIntoRecovery(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	switched := filepath.Join(t.TempDir(), "switched")
	apps, _ := os.ReadFile(env["RELBOT_APPS_FILE"])
	hook := `switch_traffic: {exec: ["true"]}`
	if !strings.Contains(string(apps), hook) {
		t.Fatal("sample apps.yaml changed: no switch_traffic hook to replace")
	}
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), hook, `switch_traffic: {exec: ["touch", "`+switched+`"]}`, 1)), 0o600)

	must(t, run(t, env, "backup", "create", "crm", "production", "--as", "alice"), "crm-b1")
	must(t, run(t, env, "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U03CCC"),
		"crm-r1 succeeded", "restore backup", "pages exist", "crm-r1 switch offered: users can be moved to recovery: switch crm-r1")
	refused(t, run(t, env, "switch", "crm-r9", "--as", "alice"), "crm-r9")

	must(t, run(t, env, "lock", "crm", "recovery", "checking", "it", "--as", "bob"))
	refused(t, run(t, env, "switch", "crm-r1", "--as", "alice"), "crm recovery is locked by bob")
	must(t, run(t, env, "unlock", "crm", "recovery", "--as", "bob"))
	must(t, run(t, env, "switch", "crm-r1", "--as", "alice"), "crm-r2", "awaiting approval", "move users of crm production to recovery")
	refused(t, run(t, env, "approve", "crm-r2", "--as", "alice"), "may not approve it too")
	must(t, run(t, env, "approve", "crm-r2", "--as", "U01AAA"), "awaiting approval")
	if _, err := os.Stat(switched); !os.IsNotExist(err) {
		t.Fatal("traffic switched before the approvals were in")
	}
	must(t, run(t, env, "approve", "crm-r2", "--as", "U02BBB"), "crm-r2 succeeded", "switch traffic")
	if _, err := os.Stat(switched); err != nil {
		t.Fatalf("the switch_traffic hook did not run: %v", err)
	}
	must(t, run(t, env, "release", "show", "crm-r2", "--json"), `"kind": "switch_traffic"`, `"switch_to": "crm-r1"`, `"env": "production"`)
	// Status says where users are now, in text and JSON.
	must(t, run(t, env, "status", "crm"), "Users of crm production are on recovery since crm-r2 switched them (to what crm-r1 restored)")
	must(t, run(t, env, "status", "crm", "--json"), `"served_by": "recovery"`, `"users_of": "production"`, `"switch": "crm-r2"`)
	// A step's whole log, and an unknown step named with those there are.
	must(t, run(t, env, "release", "show", "crm-r1", "--step", "restore backup"), "Release crm-r1, step restore backup: done")
	refused(t, run(t, env, "release", "show", "crm-r1", "--step", "restore"), `crm-r1 has no step "restore"; its steps are "preflight"`)
	refused(t, run(t, env, "switch", "crm-r1", "--as", "alice"), "were moved to what crm-r1 restored already, by crm-r2")

	// Recovery restored again: the older restore is no longer what it holds.
	must(t, run(t, env, "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U03CCC"), "crm-r3 succeeded")
	refused(t, run(t, env, "switch", "crm-r1", "--as", "alice"), "has changed since crm-r1 (crm-r3 is newer)")
	// Only a restore or rollback into recovery can be switched to.
	refused(t, run(t, env, "switch", "crm-r2", "--as", "alice"), "users can be moved only to the recovery environment")

	// A recovery without checks proves nothing: no switch to it.
	apps, _ = os.ReadFile(env["RELBOT_APPS_FILE"])
	checks := "      checks:\n        - {name: pages exist, sql: 'SELECT count(*) > 0 FROM \"uiSchemas\"'}\n      hooks:"
	if !strings.Contains(string(apps), checks) {
		t.Fatal("sample apps.yaml changed: no recovery checks to take away")
	}
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), checks, "      hooks:", 1)), 0o600)
	if r := must(t, run(t, env, "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U03CCC"), "crm-r4 succeeded"); strings.Contains(r.out, "switch") {
		t.Fatalf("a switch was offered after a restore that ran no checks:\n%s", r.out)
	}
	refused(t, run(t, env, "switch", "crm-r4", "--as", "alice"), "crm-r4 ran no validation checks")
}
