package commands

import (
	"strings"
	"time"
	"unicode"

	"github.com/relbot/relbot/release"
)

// Sentences both transports say the same way; the caller renders the
// names (Slack mentions, or plain names in a terminal).

// ApprovalsNeeded says what a release still needs: "2 approvals needed
// (alice, bob and carol may approve)", "1 more approval needed (carol may
// approve; the requester may not)". given is how many it has, left how
// many more it needs, who those who may still give one (empty: nobody
// left who may), from what states them ("roles.approve of crm
// production"; optional), and requesterBarred whether the requester is
// may not approve (the environment forbids self-approval).
func ApprovalsNeeded(given, left int, who []string, from string, requesterBarred bool) string {
	s := release.Count(left, "approval") + " needed"
	if given > 0 {
		s = release.Count(left, "more approval|more approvals") + " needed"
	}
	var note string
	switch {
	case len(who) == 0:
		note = "nobody else may approve"
	case len(who) == 1 && who[0] == "anyone":
		note = "anyone may approve"
	default:
		note = release.List(who) + " may approve"
	}
	if from != "" {
		note += " as " + from
	}
	if requesterBarred {
		note += "; the requester may not"
	}
	return s + " (" + note + ")"
}

// RunsNow reports whether a release in state scheduled is on its way now
// (approved with no start time, or its time has come) rather than waiting
// for a time still ahead: transports then say it is running, not
// scheduled.
func RunsNow(state release.State, at *time.Time, now time.Time) bool {
	return state == release.StateScheduled && (at == nil || !at.After(now))
}

// StateWords is a release's state as a person reads it: "running" for a
// scheduled release that starts now, else the state itself.
func StateWords(state release.State, at *time.Time, now time.Time) string {
	if RunsNow(state, at, now) {
		return string(release.StateRunning)
	}
	return string(state)
}

// stepMarks are the terminal's marks of a step's outcome; Slack has its
// own emoji for the same states (bot). A state not listed gets "?", never
// a success mark.
var stepMarks = map[release.StepState]string{
	release.StepDone:    "✔",
	release.StepFailed:  "✘",
	release.StepSkipped: "–",
	release.StepRunning: "▶",
	release.StepPending: "·",
	StepNotRun:          "–",
}

// StepNotRun is how a pending step of a release that ended (rejected,
// cancelled, expired, failed before it) is shown: it will never run, so it
// is not pending. The stored state stays pending; --json says "not_run".
const StepNotRun release.StepState = "not run"

// JSONWord is an enum value (a state, a kind) as --json prints it: snake_case
// ("awaiting approval" is awaiting_approval, "pre-release" pre_release), so
// every value a program compares is one token. Text keeps the words.
func JSONWord[S ~string](s S) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return '_'
		}
		return unicode.ToLower(r)
	}, string(s))
}

// ShownStepState is a step's state as people read it in a release that
// is in state rs.
func ShownStepState(rs release.State, s release.StepState) release.StepState {
	if s == release.StepPending && !rs.Open() {
		return StepNotRun
	}
	return s
}

// StepMark is the mark a terminal shows beside a step: it comes from the
// step's outcome ("✔" only for done, "✘" for failed).
func StepMark(s release.StepState) string {
	if m, ok := stepMarks[s]; ok {
		return m
	}
	return "?"
}
