package main

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
)

// The README's first command works on this machine with no settings.
//
// It is the package's longest test, so its file sorts first: parallel
// tests start in the order they are declared, and the longest one started
// last would be the package's tail.
func TestDemo(t *testing.T) {
	t.Parallel()
	prefix := testenv.UniqueName("demo")
	env := map[string]string{"RELBOT_DEMO_PREFIX": prefix, "RELBOT_DEMO_DIR": t.TempDir(), "RELBOT_DEMO_PG": testenv.AdminDSN()}
	t.Cleanup(func() {
		_ = fixtures.Drop(context.Background(), testenv.AdminDSN(), prefix)
		testenv.DropDatabase(t, prefix+"_bot")
	})
	r := run(t, env, "demo")
	if r.code != 0 {
		t.Fatalf("demo failed:\n%s\n%s", r.out, r.err)
	}
	for _, want := range []string{"backup create crm production", "verified", "restore crm-b1 into crm recovery", "pass  pages exist", "switch crm-r1", "recovery is identical to production",
		"migration create crm", "may not approve it too", "acknowledged at once", "production release crm-r3 succeeded", "Validation of crm production", "FAIL  pages exist", "staging is back exactly as before", "relbot status crm"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The demo's installation is fresh: its first scheduled backup was
	// missed by no bot, so the nightly report does not call it late.
	for _, wrong := range []string{"taken late", "missed while the bot was down"} {
		if strings.Contains(r.out, wrong) {
			t.Errorf("demo output says %q of a fresh install", wrong)
		}
	}
	if strings.Contains(r.out, "Scheduled backup crm-b") && !strings.Contains(r.out, "taken at start: the first scheduled backup of crm") {
		t.Errorf("the nightly report does not say it is the first scheduled backup")
	}
	// Slack's messages print as Slack shows them, not as raw mrkdwn.
	for _, raw := range []string{"&gt;", "&lt;", "&amp;", "<!date^", "<@", "<!subteam^", ":white_check_mark:", "```"} {
		if strings.Contains(r.out, raw) {
			t.Errorf("demo output shows raw mrkdwn %q", raw)
		}
	}
}
