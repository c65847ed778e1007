package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
)

// shareAsReplicas gives env what replicas on two hosts share beside the
// bot's database: Redis (a database of the test's own, redisDB) and a
// bucket for the artifacts, with the credentials the processes need.
func shareAsReplicas(t *testing.T, env map[string]string, redisDB int) {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = fmt.Sprintf("/%d", redisDB)
	env["RELBOT_REDIS_URL"] = u.String()
	env["RELBOT_ARTIFACT_DIR"] = testenv.S3(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		env[k] = os.Getenv(k) // set by testenv.S3; the replicas are processes of their own
	}
}

// TestScheduledBackupsAcrossTwoProcesses: two `relbot serve` processes
// share the bot's database, Redis and the artifacts' bucket; an @every schedule ticks several
// times while both run, and each tick gives exactly one scheduled backup.
func TestScheduledBackupsAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	env := sampleEnv(t)
	slackEnv(env, newTestStandIn(t))
	// Claim and lock keys name the app and the tick, and other tests back
	// up an app called crm too.
	shareAsReplicas(t, env, 11)
	apps, _ := os.ReadFile(env["RELBOT_APPS_FILE"])
	if !strings.Contains(string(apps), `schedule: "0 2 * * *"`) {
		t.Fatal("sample apps.yaml changed: no production backup schedule to shorten")
	}
	// Ticks far enough apart for a backup to end before the next one,
	// however loaded the machine: three times what one takes here now (a
	// backup still running at the next tick rightly fails that tick).
	t0 := time.Now()
	must(t, run(t, env, "backup", "create", "crm", "production"))
	every := max(4*time.Second, 3*time.Since(t0)).Round(time.Second)
	os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(string(apps), `schedule: "0 2 * * *"`, fmt.Sprintf(`schedule: "@every %s"`, every), 1)), 0o600)

	type replica struct {
		cmd    *exec.Cmd
		stderr *lockedBuffer
	}
	start := func() replica {
		cmd := binaryCommand(bin, env, "serve")
		r := replica{cmd: cmd, stderr: &lockedBuffer{}}
		cmd.Stderr = r.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return r
	}
	replicas := []replica{start(), start()}
	for _, r := range replicas {
		eventually(t, "a replica listening", 30*time.Second, func() bool { return strings.Contains(r.stderr.String(), listeningOn+"=") })
	}
	// Both run until three ticks are backed up and one was contested (the
	// loser of a claim says so), however slow the machine.
	done := regexp.MustCompile(`msg="scheduled backup done" app=crm env=production tick=(\S+) backup=(\S+)`)
	count := func(what func(log string) int) (n int) {
		for _, r := range replicas {
			n += what(r.stderr.String())
		}
		return n
	}
	contested := func() int {
		return count(func(log string) int { return strings.Count(log, "scheduled run taken by another replica") })
	}
	eventually(t, "three scheduled backups, one tick contested", max(90*time.Second, 8*every), func() bool {
		return count(func(log string) int { return len(done.FindAllString(log, -1)) }) >= 3 && contested() > 0
	})
	for _, r := range replicas {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range replicas {
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("replica %d: %v\n%s", i, err, r.stderr.String())
		}
	}

	// Every tick a replica backed up, and by which replica.
	byTick := map[string][]string{}
	taken := 0
	for i, r := range replicas {
		for _, m := range done.FindAllStringSubmatch(r.stderr.String(), -1) {
			byTick[m[1]] = append(byTick[m[1]], m[2])
			taken++
		}
		if strings.Contains(r.stderr.String(), "scheduled backup failed") {
			t.Errorf("replica %d: a scheduled backup failed:\n%s", i, r.stderr.String())
		}
	}
	for tick, ids := range byTick {
		if len(ids) != 1 {
			t.Errorf("tick %s backed up %d times: %v", tick, len(ids), ids)
		}
	}
	if len(byTick) < 3 || contested() == 0 {
		t.Fatalf("%d ticks backed up, %d contested", len(byTick), contested())
	}

	// The store agrees: one scheduled backup per tick, nothing else.
	var list []struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	}
	r := must(t, run(t, env, "backup", "list", "crm", "production", "--json"))
	if err := json.Unmarshal([]byte(r.out), &list); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	scheduled := 0
	for _, b := range list {
		if b.Kind == "scheduled" {
			scheduled++
		}
	}
	if scheduled != taken || taken != len(byTick) {
		t.Fatalf("%d scheduled backups stored, %d logged, %d ticks: %s", scheduled, taken, len(byTick), r.out)
	}
}
