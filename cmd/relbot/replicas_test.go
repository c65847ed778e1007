package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two relbot serve processes share the bot's database, Redis and an S3
// bucket. A click delivered to both takes effect once; the production
// release one of them runs is killed with it (SIGKILL, mid-release); the
// other finds it interrupted, resumes it when asked in Slack, and hands out
// the pre-release backup the dead one took into the bucket, byte for byte.
func TestReplicasSurviveTheLossOfOne(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	env := releaseEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("cd", 32)
	env["RELBOT_PUBLIC_URL"] = "http://relbot.test"
	env["RELBOT_LEASE_TTL"] = testLeaseTTL.String()
	env["RELBOT_RECOVER_EVERY"] = "500ms"
	shareAsReplicas(t, env, 12)
	slack := newTestStandIn(t)
	slackEnv(env, slack)
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "alice"), "crm-r2", "awaiting approval")

	type replica struct {
		cmd    *exec.Cmd
		stderr *lockedBuffer
		addr   string
	}
	start := func(extra ...string) *replica {
		cmd := binaryCommand(bin, env, "serve")
		cmd.Env = append(cmd.Env, extra...)
		r := &replica{cmd: cmd, stderr: &lockedBuffer{}}
		cmd.Stderr = r.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		deadline := time.Now().Add(30 * time.Second)
		for r.addr == "" {
			s := r.stderr.String()
			if i := strings.Index(s, listeningOn+"="); i >= 0 {
				r.addr = strings.Fields(s[i+len(listeningOn+"="):])[0]
			} else if time.Now().After(deadline) {
				t.Fatalf("a replica is not listening after 30 s:\n%s", s)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return r
	}
	a := start("RELBOT_FAULT_PAUSE=validation checks") // a runs what it starts up to the checks, and hangs there
	b := start()

	click := func(to *replica, user, ts string) {
		t.Helper()
		raw := string(mustRead(t, filepath.Join("..", "..", "fixtures", "slack", "block_actions_approve.json")))
		raw = strings.NewReplacer("crm-r5", "crm-r2", "U09MALLORY", user, "1700000012.345678", ts,
			"https://hooks.slack.com/actions/T0001/1234567890/AbCdEfGhIjKlMnOp", slack.GetAPIURL()+"response/"+user).Replace(raw)
		if code := postSlack(t, to.addr, "/slack/interactions", []byte("payload="+url.QueryEscape(raw)), serveSecret); code != 200 {
			t.Fatalf("click on %s: %d", to.addr, code)
		}
	}
	approvals := func() int {
		var v struct {
			Approvals []struct{ By string } `json:"approvals"`
		}
		if err := json.Unmarshal([]byte(must(t, run(t, env, "release", "show", "crm-r2", "--json")).out), &v); err != nil {
			t.Fatal(err)
		}
		return len(v.Approvals)
	}
	// Slack retries a delivery to whichever replica its load balancer
	// picks. (Dedupe keys outlive a run in Redis: this run's are its own.)
	run0 := time.Now().Unix()
	ts := func(i int) string { return fmt.Sprintf("%d.%06d", run0, i) }
	click(a, "U01AAA", ts(1))
	click(b, "U01AAA", ts(1))
	eventually(t, "the first approval", 30*time.Second, func() bool { return approvals() == 1 })
	time.Sleep(500 * time.Millisecond)
	if n := approvals(); n != 1 {
		t.Fatalf("one click delivered to both replicas gave %d approvals", n)
	}
	if n := len(slack.find("response", "may not approve it too")) + len(slack.find("response", "already approved")); n != 0 {
		t.Fatalf("the repeated delivery was answered as a second approval (%d answers)", n)
	}

	// The second approval, on a: a runs the release and is killed in it.
	click(a, "U02BBB", ts(2))
	eventually(t, "a paused in the release", 2*time.Minute, func() bool { return strings.Contains(a.stderr.String(), "FAULT PAUSE") })
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	eventually(t, "b to find the release interrupted", time.Minute, func() bool {
		return strings.Contains(slack.lastMessage("C0CRMRELEASE", "crm-r2"), "Interrupted")
	})

	// Resumed through b, in Slack.
	form, _ := url.ParseQuery(string(mustRead(t, filepath.Join("..", "..", "fixtures", "slack", "slash_command.form"))))
	form.Set("user_id", "U01AAA")
	form.Set("text", "resume crm-r2")
	form.Set("response_url", slack.GetAPIURL()+"response/resume")
	form.Set("trigger_id", "trigger-resume-"+ts(3))
	if code := postSlack(t, b.addr, "/slack/commands", []byte(form.Encode()), serveSecret); code != 200 {
		t.Fatalf("resume: %d", code)
	}
	eventually(t, "the resumed release to succeed", 2*time.Minute, func() bool {
		return strings.Contains(slack.lastMessage("C0CRMRELEASE", "crm-r2"), "*Succeeded*")
	})

	// The pre-release backup a took, from the bucket, through b.
	backup := downloadBackup(t, env, b.addr, "crm-r2")
	must(t, run(t, env, "backup", "verify", backup, "--as", "U01AAA"), "verified")
}
