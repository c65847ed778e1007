package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// Every step's emoji in the checklist comes from its state: each state
// has its own, and only done is ticked.
func TestStepIconsComeFromTheOutcome(t *testing.T) {
	seen := map[string]release.StepState{}
	for _, s := range []release.StepState{release.StepPending, release.StepRunning, release.StepDone, release.StepFailed, release.StepSkipped} {
		icon := stepIcon[s]
		if icon == "" {
			t.Errorf("step state %q has no icon", s)
		}
		if other, dup := seen[icon]; dup {
			t.Errorf("states %q and %q share %s", other, s, icon)
		}
		seen[icon] = s
		if (icon == ":white_check_mark:") != (s == release.StepDone) {
			t.Errorf("state %q shows %s: only done is ticked", s, icon)
		}
	}
	failed := releaseIn("failed")
	for _, line := range strings.Split(stepsText(failed), "\n") {
		if strings.Contains(line, release.StepChecks) && (!strings.HasPrefix(line, ":x: ") || strings.Contains(line, ":white_check_mark:")) {
			t.Errorf("the failed checks step reads %q", line)
		}
	}
}

// A release that ended before some steps ran lists them as not run, not
// as pending; one that may still run keeps them pending.
func TestEndedReleaseStepsNotRun(t *testing.T) {
	r := releaseIn("running")
	r.State = release.StateFailed
	text := stepsText(r)
	if strings.Contains(text, stepIcon[release.StepPending]) || !strings.Contains(text, "\n:heavy_minus_sign: "+release.StepScaleUp+" — not run") {
		t.Errorf("an ended release's steps:\n%s", text)
	}
	r = releaseIn("awaiting")
	if text := stepsText(r); strings.Contains(text, "not run") || !strings.Contains(text, stepIcon[release.StepPending]+" "+release.StepPreflight) {
		t.Errorf("an awaiting release's steps:\n%s", text)
	}
}

// After the last approval of a release without --at, the message and the
// approver's note say it is running; scheduled is kept for a time ahead.
func TestApprovedReleaseSaysRunningNotScheduled(t *testing.T) {
	r := releaseIn("awaiting")
	r.State = release.StateScheduled
	r.Approvals = append(r.Approvals, release.Approval{By: "U02BBB", At: *at(1, 0)})
	now := blocksText(t, RenderRelease(r, policy))
	if !strings.Contains(now, "*Running*") || strings.Contains(now, "*Scheduled*") || !strings.Contains(now, "it is running") {
		t.Errorf("approved release without a start time:\n%s", now)
	}
	if got := stateNote(commands.Reply{Data: commands.ReleaseView{State: release.StateScheduled}}); got != " It is running." {
		t.Errorf("approver's note = %q", got)
	}
	// After the first of two approvals the approver hears how many more.
	for left, want := range map[int]string{1: " It still needs 1 more approval.", 2: " It still needs 2 more approvals."} {
		given := []commands.ApprovalView{{By: "U01AAA"}}
		if got := stateNote(commands.Reply{Data: commands.ReleaseView{State: release.StateAwaitingApproval, Approvals: given, ApprovalsLeft: left}}); got != want {
			t.Errorf("approver's note with %d left = %q, want %q", left, got, want)
		}
	}
	if got := stateNote(commands.Reply{Data: commands.ReleaseView{State: release.StateAwaitingApproval, ApprovalsLeft: 2}}); got != " It is now awaiting approval." {
		t.Errorf("requester's note = %q", got)
	}
	later := time.Now().Add(time.Hour)
	r.At = &later
	ahead := blocksText(t, RenderRelease(r, policy))
	if !strings.Contains(ahead, "*Scheduled*") || !strings.Contains(ahead, "Starts at") {
		t.Errorf("approved release with --at ahead:\n%s", ahead)
	}
	if got := stateNote(commands.Reply{Data: commands.ReleaseView{State: release.StateScheduled, At: &later}}); got != " It is now scheduled." {
		t.Errorf("approver's note with --at ahead = %q", got)
	}
}

// The Slack approvals section uses the one sentence the terminal uses.
func TestApprovalsSentence(t *testing.T) {
	p := release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}, AllowSelf: true}
	r := awaitingRelease()
	got := approvalsText(r, p)
	if want := "2 approvals needed (<@U01AAA>, <@U02BBB> and <@U03CCC> may approve)"; !strings.Contains(got, want) {
		t.Errorf("approvals = %q, want %q in it", got, want)
	}
}
