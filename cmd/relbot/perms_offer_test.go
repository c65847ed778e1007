package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
)

// A deploy refused for missing variables offers the form only to a user
// who may set the environment's variables and secrets; anyone else is told
// what is missing and who may supply it, in the terminal and in Slack, and
// no form opens.
func TestMissingVariablesFormOnlyForWhoMaySetThem(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	env["RELBOT_SECRET_KEY"] = strings.Repeat("cd", 32)
	withRoles(t, env, "", `roles: {variables: [U04ALICE], secrets: [U04ALICE]}`)
	m := createMigration(t, env)
	const who = "U09MALLORY may not set variables of crm staging: that needs the variables role (roles.variables of crm staging: U04ALICE)"

	r := run(t, env, "deploy", m, "staging", "--as", "U09MALLORY")
	refusedOnce(t, "terminal deploy", r, "staging lacks variables "+m+" references: CONTRACTS_SIGN_URL; "+who)
	if strings.Contains(r.err, "NAME=VALUE") {
		t.Fatalf("the refusal tells someone who may not to set the variables:\n%s", r.err)
	}
	// Variables but not secrets: the form asks for both, so no form.
	restate := func(from, to string) {
		t.Helper()
		doc := string(mustRead(t, env["RELBOT_APPS_FILE"]))
		if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(doc, from, to, 1)), 0o600); err != nil || !strings.Contains(doc, from) {
			t.Fatalf("apps.yaml has no %q (%v)", from, err)
		}
	}
	restate("variables: [U04ALICE]", "variables: [U09MALLORY]")
	refusedOnce(t, "terminal deploy, variables only", run(t, env, "deploy", m, "staging", "--as", "U09MALLORY"),
		"U09MALLORY may not set secrets of crm staging: that needs the secrets role (roles.secrets of crm staging: U04ALICE)")

	slack := newTestStandIn(t)
	slackEnv(env, slack)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, _ := startServe(t, ctx, env)
	slash := func(n int, user string) {
		form := url.Values{"team_id": {"T0001"}, "channel_id": {"C0CRMRELEASE"}, "user_id": {user}, "command": {"/relbot"},
			"text": {"deploy " + m + " staging"}, "response_url": {fmt.Sprintf("%sresponse/%d", slack.GetAPIURL(), n)}, "trigger_id": {fmt.Sprintf("trigger-%d", n)}}
		if code := postSlack(t, addr, "/slack/commands", []byte(form.Encode()), serveSecret); code != 200 {
			t.Fatalf("signed command: %d", code)
		}
	}
	slash(1, "U0OTHER")
	eventually(t, "the refusal in Slack", 30*time.Second, func() bool {
		return len(slack.find("response", "U0OTHER may not set variables of crm staging: that needs the variables role (roles.variables of crm staging: U09MALLORY)")) > 0
	})
	if v := slack.find("views.open", ""); len(v) != 0 {
		t.Fatalf("a form was opened for a user who may not fill it in:\n%s", v[0].Body)
	}
	// The one who holds both roles is offered the form.
	restate("variables: [U09MALLORY]", "variables: [U04ALICE]")
	cancel()
	<-done
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	addr, done, _ = startServe(t, ctx, env)
	slash(2, "U04ALICE")
	eventually(t, "the variables form for the role holder", 30*time.Second, func() bool {
		return len(slack.find("views.open", "relbot_variables")) > 0
	})
	if v := slack.find("views.open", "trigger-1"); len(v) != 0 {
		t.Fatal("the refused user's trigger opened a form")
	}
	cancel()
	<-done
}

// When production states roles.approve instead of approvals.approvers, the
// approval request names those holders — users, user groups by handle or
// ID — in the channel's message and in release show, without the requester
// and those who approved already.
func TestApprovalRequestNamesApproveRoleHolders(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	slack := newTestStandIn(t)
	slackEnv(env, slack)
	doc := string(mustRead(t, env["RELBOT_APPS_FILE"]))
	const stated = "approvals: {required: 2, approvers: [U01AAA, U02BBB, U03CCC], allow_self: false, expire: 24h}"
	roles := "approvals: {required: 2, allow_self: false, expire: 24h}\n        roles: {approve: [U01AAA, U05DAN, \"@release-managers\", S0OPS1234]}"
	if !strings.Contains(doc, stated) {
		t.Fatal("sample apps.yaml changed: no production approvers to restate")
	}
	if err := os.WriteFile(env["RELBOT_APPS_FILE"], []byte(strings.Replace(doc, stated, roles, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := createMigration(t, env)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	must(t, run(t, env, "deploy", m, "production", "--allow-new-plugins", "--as", "U01AAA"), "crm-r2", "awaiting approval")
	must(t, run(t, env, "release", "show", "crm-r2"), "Approvals", "2 approvals needed (U05DAN, @release-managers and S0OPS1234 may approve as roles.approve of crm production")
	// The message is Block Kit JSON, which escapes < and >.
	lastMessage := func() string {
		return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(slack.lastMessage("C0CRMRELEASE", "crm-r2"))
	}
	msg := lastMessage()
	if !strings.Contains(msg, "2 approvals needed (<@U05DAN>, @release-managers and <!subteam^S0OPS1234> may approve") {
		t.Fatalf("the approval request does not name the approve role's holders:\n%s", msg)
	}
	must(t, run(t, env, "approve", "crm-r2", "--as", "U05DAN"), "U05DAN approved crm-r2")
	r := must(t, run(t, env, "release", "show", "crm-r2"), "(@release-managers and S0OPS1234 may approve as roles.approve")
	if strings.Contains(r.out, "U05DAN, @release") {
		t.Fatalf("who approved already is still asked to:\n%s", r.out)
	}
	eventually(t, "the updated request", 10*time.Second, func() bool {
		return strings.Contains(lastMessage(), "1 more approval needed (@release-managers and <!subteam^S0OPS1234> may approve")
	})
}

// Resuming an interrupted restore checks what requesting it checked: the
// restore role of the environment the backup came from, not only the
// target's. A development user may not carry production's data over by
// resuming a restore an approver started.
func TestResumeOfARestoreNeedsTheSourcesRole(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	r := must(t, run(t, env, "backup", "create", "crm", "production", "--as", "U01AAA"))
	b := regexp.MustCompile(`crm-b[0-9]+`).FindString(r.out)
	if b == "" {
		t.Fatalf("no backup id in:\n%s", r.out)
	}
	r = must(t, run(t, env, "backup", "restore", b, "--into", "development", "--as", "U01AAA"), "succeeded")
	id := regexp.MustCompile(`crm-r[0-9]+`).FindString(r.out)
	// As if its runner had died: the store's own transition is from running.
	conn := testenv.Connect(t, env["RELBOT_DATABASE_URL"])
	if _, err := conn.Exec(context.Background(), `UPDATE relbot_releases SET state = 'interrupted' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	before := worldState(t, env)
	refusedOnce(t, "resume by a development user", run(t, env, "resume", id, "--as", "U09MALLORY"),
		"U09MALLORY may not restore the data of crm production (the backup was taken there): that needs the restore role (by default the approvers of crm production: U01AAA, U02BBB, U03CCC)")
	if after := worldState(t, env); after != before {
		t.Fatalf("a refused resume changed something:\n%s", firstDifference(before, after))
	}
	if r := run(t, env, "resume", id, "--as", "U02BBB"); strings.Contains(r.err, "may not") {
		t.Fatalf("an approver of production was refused: %+v", r)
	}
}
