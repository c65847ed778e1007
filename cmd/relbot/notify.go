package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// termNotifier prints a release's progress as it runs in the foreground:
// one line per event, as the channel would see it.
type termNotifier struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (n *termNotifier) ReleaseChanged(_ context.Context, r *release.Release, e release.Event) {
	var line string
	switch e.Kind {
	case release.EventStepStarted:
		line = fmt.Sprintf("%s %s %s", r.ID, commands.StepMark(release.StepRunning), e.Step)
	case release.EventStepFinished:
		state, mark := "?", "?"
		for _, s := range r.Steps {
			if s.Name == e.Step {
				state, mark = string(s.State), commands.StepMark(s.State)
				if s.Started != nil && s.Ended != nil {
					state += fmt.Sprintf(" in %s", s.Ended.Sub(*s.Started).Round(time.Millisecond))
				}
			}
		}
		// The mark is the step's outcome: a failed step is never ticked.
		line = fmt.Sprintf("%s %s %s: %s", r.ID, mark, e.Step, state)
		if detail := firstDetail(e.Detail); detail != "" {
			line += " — " + detail
		}
	case release.EventCheck:
		line = fmt.Sprintf("%s   check %s", r.ID, e.Detail)
	case release.EventApproved:
		line = fmt.Sprintf("%s approved by %s (%s)", r.ID, e.Actor, e.Detail)
	default:
		line = fmt.Sprintf("%s %s", r.ID, e.Kind)
		if e.Detail != "" {
			line += ": " + e.Detail
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "[%s] %s\n", n.now().UTC().Format("15:04:05"), line)
}

func firstDetail(s string) string {
	return release.Cut(s, 120)
}
