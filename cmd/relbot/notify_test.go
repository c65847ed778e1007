package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Live progress marks a finished step by its outcome: a failed step is
// never ticked ("✔ validation checks: failed" was the bug).
func TestProgressMarksStepsByOutcome(t *testing.T) {
	var out bytes.Buffer
	n := &termNotifier{w: &out, now: func() time.Time { return time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) }}
	r := &release.Release{ID: "crm-r4", Steps: []release.Step{
		{Name: release.StepApply, State: release.StepDone},
		{Name: release.StepChecks, State: release.StepFailed},
		{Name: "restart app", State: release.StepSkipped},
	}}
	for _, s := range r.Steps {
		n.ReleaseChanged(context.Background(), r, release.Event{Kind: release.EventStepFinished, Step: s.Name})
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"crm-r4 ✔ " + release.StepApply + ": done", "crm-r4 ✘ " + release.StepChecks + ": failed", "crm-r4 – restart app: skipped"}
	if len(lines) != len(want) {
		t.Fatalf("progress:\n%s", out.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end %q", i, lines[i], w)
		}
	}
}
