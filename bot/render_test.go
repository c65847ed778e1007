package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var policy = release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}}

func at(min, sec int) *time.Time {
	t := time.Date(2026, 3, 2, 10, min, sec, 0, time.UTC)
	return &t
}

// releaseIn returns crm-r5 as it stands at each point the golden files show.
func releaseIn(state string) *release.Release {
	r := awaitingRelease()
	r.Changes = &release.Changes{Against: "production", Items: []release.Change{
		{Kind: release.ChangePage, Action: "added", Name: "“Contracts”", Detail: "in “CRM”"},
		{Kind: release.ChangePage, Action: "renamed", Name: "“Tickets” → “Support tickets”", Detail: "in “CRM”"},
		{Kind: release.ChangeCollection, Action: "added", Name: "“Contracts” (contracts)", Detail: "6 fields"},
		{Kind: release.ChangeField, Action: "added", Name: "“Customers” (customers) › segment", Detail: "select"},
		{Kind: release.ChangeWorkflow, Action: "new version", Name: "“Notify on urgent ticket”", Detail: "nodes added: “Mark pending”"},
		{Kind: release.ChangeRole, Action: "menu access", Name: "“Sales” (sales)", Detail: "now sees “Contracts”"},
		{Kind: release.ChangeRole, Action: "permissions", Name: "“Member” (member)", Detail: "granted tickets: destroy; withdrawn <orders> & co: update"},
		{Kind: release.ChangePlugin, Action: "added", Name: "workflow-json-query 2.2.15", Detail: "enabled"},
		{Kind: release.ChangePlugin, Action: "upgraded", Name: "acl, action-bulk-edit, action-bulk-update and 37 more", Detail: "2.2.14 → 2.2.15"},
		{Kind: release.ChangeVariable, Action: "newly referenced", Name: "CONTRACTS_SIGN_URL"},
	}}
	switch state {
	case "awaiting":
		r.Approvals = []release.Approval{{By: "U01AAA", At: *at(0, 0)}}
		return r
	}
	r.Approvals = []release.Approval{{By: "U01AAA", At: *at(0, 0)}, {By: "U02BBB", At: *at(1, 0)}}
	done := func(i int, from, to *time.Time, log string) {
		r.Steps[i].State, r.Steps[i].Started, r.Steps[i].Ended, r.Steps[i].Log = release.StepDone, from, to, log
	}
	done(0, at(2, 0), at(2, 1), "chain, variables, freeze and locks checked")
	done(1, at(2, 1), at(2, 2), "maintenance on")
	r.Steps[2].State, r.Steps[2].Started, r.Steps[2].Ended = release.StepSkipped, at(2, 2), at(2, 2)
	done(3, at(2, 2), at(3, 40), "crm-b12: 212 tables, 48113 rows, 310 files; every checksum verified")
	r.Backup = "crm-b12"
	switch state {
	case "running":
		r.State = release.StateRunning
		r.Steps[4].State, r.Steps[4].Started = release.StepRunning, at(3, 40)
	case "succeeded":
		r.State = release.StateSucceeded
		done(4, at(3, 40), at(3, 52), "37 statements and loads in one transaction, 11.9s")
		done(5, at(3, 52), at(3, 53), "pass  pages exist (12ms) \npass  health (80ms) 200")
		r.Checks = []release.CheckResult{{Name: "pages exist", OK: true, Duration: 12 * time.Millisecond}, {Name: "health", OK: true, Duration: 80 * time.Millisecond, Detail: "200"}}
		done(6, at(3, 53), at(3, 55), "deployment.apps/crm scaled")
		done(7, at(3, 55), at(3, 56), "maintenance off")
	case "failed":
		r.State = release.StateFailed
		done(4, at(3, 40), at(3, 52), "37 statements and loads in one transaction, 11.9s")
		r.Steps[5].State, r.Steps[5].Started, r.Steps[5].Ended = release.StepFailed, at(3, 52), at(3, 53)
		r.Steps[5].Log = "pass  pages exist (12ms) \nFAIL  health (80ms) status 502, want 200\n1 of 2 checks failed: health"
		r.Checks = []release.CheckResult{{Name: "pages exist", OK: true, Duration: 12 * time.Millisecond}, {Name: "health", OK: false, Duration: 80 * time.Millisecond, Detail: "status 502, want 200"}}
		r.Steps[6].State, r.Steps[7].State = release.StepSkipped, release.StepSkipped
		r.Reason = "validation checks failed: 1 of 2 checks failed: health; the migration was applied and maintenance stays on: roll back with `rollback crm-r5`, or fix and turn maintenance off"
	}
	return r
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <@U…> readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test ./bot -update rewrites it after review):\n%s", path, got)
	}
}

// The exact Block Kit of a release's message at each stage, and of the
// thread replies of a failure.
func TestReleaseMessageGolden(t *testing.T) {
	for _, state := range []string{"awaiting", "running", "succeeded", "failed"} {
		t.Run(state, func(t *testing.T) {
			r := releaseIn(state)
			m := RenderRelease(r, policy)
			checkLimits(t, m)
			golden(t, "release_"+state, m)
		})
	}
	failed := releaseIn("failed")
	golden(t, "thread_failed", []Message{RenderChecks(failed), RenderFailure(failed, release.StepChecks)})
	recovered := recoveredRelease()
	golden(t, "thread_switch_offer", []Message{RenderChecks(recovered), RenderSwitchOffer(recovered)})
	sw := &release.Release{ID: "crm-r7", App: "crm", Env: "production", Kind: release.KindSwitch, Backup: "crm-b12", SwitchTo: "crm-r6",
		RequestedBy: "U04ALICE", RequestedAt: *at(0, 0), State: release.StateAwaitingApproval, Channel: "C0123456789",
		Steps: []release.Step{{Name: release.StepPreflight, State: release.StepPending}, {Name: release.StepSwitch, State: release.StepPending}}}
	m := RenderRelease(sw, policy)
	checkLimits(t, m)
	golden(t, "release_switch_awaiting", m)
}

func TestReleaseMessageShowsWhatMatters(t *testing.T) {
	awaiting := blocksText(t, RenderRelease(releaseIn("awaiting"), policy))
	for _, want := range []string{"crm-r5 · deploy crm-m7 to crm production", "*Approvals:* 1 of 2 — <@U01AAA>", "1 more approval needed (<@U02BBB> and <@U03CCC> may approve; the requester may not)",
		ActionApprove, ActionReject, "<@U04ALICE>"} {
		if !strings.Contains(awaiting, want) {
			t.Errorf("awaiting message lacks %q", want)
		}
	}
	running := blocksText(t, RenderRelease(releaseIn("running"), policy))
	if strings.Contains(running, ActionApprove) || !strings.Contains(running, ":arrows_counterclockwise: apply migration — running since") ||
		!strings.Contains(running, ":white_check_mark: pre-release backup — 1m 38s") {
		t.Errorf("running message:\n%s", running)
	}
	failed := blocksText(t, RenderFailure(releaseIn("failed"), release.StepChecks))
	if !strings.Contains(failed, ActionRollback) || !strings.Contains(failed, "status 502") {
		t.Errorf("failure thread:\n%s", failed)
	}
}

// A failed deploy that kept a release snapshot offers both rollbacks,
// each button saying what it does; one that kept none only the full one,
// and that button asks for the full one by itself.
func TestRollbackButtonsSayWhichIsWhich(t *testing.T) {
	buttons := func(m Message) map[string]string { // action ID -> label
		t.Helper()
		out := map[string]string{}
		for _, b := range m.Blocks {
			if ab, ok := b.(*slack.ActionBlock); ok {
				for _, e := range ab.Elements.ElementSet {
					if btn, ok := e.(*slack.ButtonBlockElement); ok {
						out[btn.ActionID] = btn.Text.Text + " | " + btn.Confirm.Text.Text
					}
				}
			}
		}
		return out
	}
	r := releaseIn("failed")
	r.Snapshot = r.ID
	m := RenderFailure(r, release.StepChecks)
	got := buttons(m)
	if len(got) != 2 || !strings.HasPrefix(got[ActionRollback], "Targeted rollback | Put back what crm-r5 changed in crm production; rows written since to other tables are kept") ||
		!strings.HasPrefix(got[ActionRollbackFull], "Full rollback (restore crm-b12) | Restore backup crm-b12, taken before crm-r5, into crm production: what users wrote since is lost") {
		t.Errorf("with a snapshot: %v", got)
	}
	text := blocksText(t, m)
	for _, want := range []string{"`rollback crm-r5` in a terminal", "`rollback crm-r5 --full` in a terminal"} {
		if !strings.Contains(text, want) {
			t.Errorf("failure thread lacks %q:\n%s", want, text)
		}
	}
	r.Snapshot = ""
	got = buttons(RenderFailure(r, release.StepChecks))
	if len(got) != 1 || !strings.HasPrefix(got[ActionRollback], "Full rollback (restore crm-b12)") {
		t.Errorf("without a snapshot: %v", got)
	}
	// The rollback's own message says which one it is.
	rb := &release.Release{ID: "crm-r6", App: "crm", Env: "production", Kind: release.KindRollback, RollbackOf: "crm-r5", Snapshot: "crm-r5",
		State: release.StateScheduled, RequestedBy: "U04ALICE", RequestedAt: *at(4, 0)}
	if msg := blocksText(t, RenderRelease(rb, policy)); !strings.Contains(msg, "targeted: puts back what crm-r5 changed, keeps rows written since") || !strings.Contains(msg, "targeted rollback of crm-r5") {
		t.Errorf("targeted rollback's message:\n%s", msg)
	}
	rb.Snapshot, rb.Backup = "", "crm-b12"
	if msg := blocksText(t, RenderRelease(rb, policy)); !strings.Contains(msg, "full: restores backup crm-b12 taken before crm-r5") || !strings.Contains(msg, "full rollback of crm-r5") {
		t.Errorf("full rollback's message:\n%s", msg)
	}
}

func blocksText(t *testing.T, m Message) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	// Unescape the JSON strings for readable matching.
	var v any
	_ = json.Unmarshal(b, &v)
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		case string:
			s += x + "\n"
		}
	}
	walk(v)
	return s
}

// checkLimits holds Block Kit's limits: at most 50 blocks, at most 3000
// characters in a section's text, 10 fields of at most 2000.
func checkLimits(t *testing.T, m Message) {
	t.Helper()
	if len(m.Blocks) > maxBlocks {
		t.Fatalf("%d blocks", len(m.Blocks))
	}
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil && utf8.RuneCountInString(b.Text.Text) > maxText {
				t.Fatalf("section text of %d characters", utf8.RuneCountInString(b.Text.Text))
			}
			if len(b.Fields) > maxFields {
				t.Fatalf("%d fields", len(b.Fields))
			}
			for _, f := range b.Fields {
				if utf8.RuneCountInString(f.Text) > maxFieldText {
					t.Fatalf("field of %d characters", utf8.RuneCountInString(f.Text))
				}
			}
		case *slack.HeaderBlock:
			if utf8.RuneCountInString(b.Text.Text) > maxHeaderText {
				t.Fatalf("header of %d characters", utf8.RuneCountInString(b.Text.Text))
			}
		}
	}
	if utf8.RuneCountInString(m.Text) > maxFallback {
		t.Fatalf("text of %d characters", utf8.RuneCountInString(m.Text))
	}
}

// Long content is summarised within the limits.
func TestBlockKitLimits(t *testing.T) {
	r := releaseIn("failed")
	huge := strings.Repeat("ERROR: relation \"contracts\" does not exist & <more>\n", 5000)
	r.Reason = huge
	r.Steps[5].Log = huge
	r.Migration = strings.Repeat("m", 400)
	for _, m := range []Message{RenderRelease(r, policy), RenderFailure(r, release.StepChecks), RenderLog(r, "apply migration", huge), RenderChecks(r), RenderDM(r, release.Event{Kind: release.EventFailed})} {
		checkLimits(t, m)
	}
	rows := make([][]string, 3000)
	for i := range rows {
		rows[i] = []string{"crm-b" + strings.Repeat("9", 5), "production", "scheduled", "2026-03-02 10:00 UTC"}
	}
	rep := commands.Reply{Title: "3000 backups of crm production", Text: "3000 backups of crm production\n" + table(rows)}
	m := RenderReply(rep)
	checkLimits(t, m)
	if !strings.Contains(blocksText(t, m), "more lines not shown") {
		t.Fatal("a long reply is cut without saying so")
	}
	checkLimits(t, RenderResult(rep, release.Errorf(release.CodeConflict, "%s", huge)))
}

// A restore into recovery tells its approvers that secrets travel; one
// into another environment does not claim so.
func TestRestoreIntoRecoverySaysSecretsTravel(t *testing.T) {
	r := awaitingRelease()
	r.Kind, r.Migration, r.FileHash, r.Backup, r.Env = release.KindRestore, "", "", "crm-b12", release.RecoveryEnv
	if got := blocksText(t, RenderRelease(r, policy)); !strings.Contains(got, "*Secrets*") || !strings.Contains(got, "secrets travel: recovery receives") {
		t.Errorf("restore into recovery:\n%s", got)
	}
	r.Env = "staging"
	if got := blocksText(t, RenderRelease(r, policy)); strings.Contains(got, "secrets travel") {
		t.Errorf("restore into staging claims secrets travel:\n%s", got)
	}
}
