package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Every step state has a mark of its own, and only done is ticked.
func TestStepMarkComesFromTheOutcome(t *testing.T) {
	seen := map[string]release.StepState{}
	for _, s := range []release.StepState{release.StepPending, release.StepRunning, release.StepDone, release.StepFailed, release.StepSkipped} {
		m := StepMark(s)
		if m == "?" || m == "" {
			t.Errorf("step state %q has no mark", s)
		}
		if other, dup := seen[m]; dup {
			t.Errorf("states %q and %q share the mark %q", other, s, m)
		}
		seen[m] = s
		if (m == "✔") != (s == release.StepDone) {
			t.Errorf("StepMark(%q) = %q: only done is ticked", s, m)
		}
	}
	if m := StepMark("interrupted"); m == "✔" {
		t.Errorf("an unknown state is ticked")
	}
}

// A failed step reads as failed in the terminal's release view.
func TestReleaseViewMarksAFailedStepAsFailed(t *testing.T) {
	d := &Dispatcher{Services: all(newFake())}
	r := &release.Release{ID: "crm-r4", App: "crm", Env: "staging", Kind: release.KindDeploy, Migration: "crm-m2", RequestedBy: "alice",
		RequestedAt: t0, State: release.StateFailed, Reason: "1 of 3 checks failed: home page",
		Steps: []release.Step{{Name: release.StepApply, State: release.StepDone}, {Name: release.StepChecks, State: release.StepFailed, Log: "home page: status 502"},
			{Name: "restart app", State: release.StepSkipped}}}
	text := d.releaseReply(r, "Release crm-r4 failed").Text
	var checks string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, release.StepChecks) {
			checks = l
		}
	}
	if !strings.Contains(checks, "✘ failed") || strings.Contains(checks, "✔") {
		t.Errorf("the failed checks step reads %q:\n%s", checks, text)
	}
	if !strings.Contains(text, "✔ done") || !strings.Contains(text, "– skipped") {
		t.Errorf("done and skipped steps lack their marks:\n%s", text)
	}
}

func TestApprovalsNeededNamesWhoMayApprove(t *testing.T) {
	for _, c := range []struct {
		given, left int
		who         []string
		from        string
		barred      bool
		want        string
	}{
		{0, 2, []string{"alice", "bob", "carol"}, "", false, "2 approvals needed (alice, bob and carol may approve)"},
		{1, 1, []string{"carol"}, "", true, "1 more approval needed (carol may approve; the requester may not)"},
		{0, 1, []string{"anyone"}, "", false, "1 approval needed (anyone may approve)"},
		{1, 1, nil, "roles.approve of crm production", false, "1 more approval needed (nobody else may approve as roles.approve of crm production)"},
	} {
		if got := ApprovalsNeeded(c.given, c.left, c.who, c.from, c.barred); got != c.want {
			t.Errorf("ApprovalsNeeded(%d, %d, %q) = %q, want %q", c.given, c.left, c.who, got, c.want)
		}
	}
}

// The terminal's release view says who may approve in one sentence, and a
// release that runs now reads as running, not scheduled.
func TestReleaseViewApprovalsAndRunningWords(t *testing.T) {
	f := newFake()
	prod, _ := f.apps[0].Env("production")
	prod.Approvals = release.ApprovalPolicy{Required: 2, Approvers: []string{"alice", "bob", "carol", "dan"}}
	d := &Dispatcher{Services: all(f), Now: func() time.Time { return t0 }}
	awaiting := &release.Release{ID: "crm-r5", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m2", RequestedBy: "dan",
		RequestedAt: t0, State: release.StateAwaitingApproval}
	text := d.releaseReply(awaiting, "Release crm-r5").Text
	if want := "2 approvals needed (alice, bob and carol may approve as the approvers of crm production; the requester may not)"; !strings.Contains(text, want) {
		t.Errorf("awaiting release lacks %q:\n%s", want, text)
	}
	awaiting.Approvals = []release.Approval{{By: "alice", At: t0}}
	text = d.releaseReply(awaiting, "Release crm-r5").Text
	if want := "Approved by: alice"; !strings.Contains(text, want) || !strings.Contains(text, "1 more approval needed (bob and carol may approve") {
		t.Errorf("half-approved release:\n%s", text)
	}

	now := &release.Release{ID: "crm-r5", App: "crm", Env: "production", Kind: release.KindDeploy, RequestedBy: "dan", RequestedAt: t0, State: release.StateScheduled}
	if text := d.releaseReply(now, "x").Text; !strings.Contains(text, "State:     running") {
		t.Errorf("an approved release without --at reads:\n%s", text)
	}
	later := t0.Add(time.Hour)
	now.At = &later
	if text := d.releaseReply(now, "x").Text; !strings.Contains(text, "State:     scheduled") {
		t.Errorf("a release with --at ahead reads:\n%s", text)
	}
}
