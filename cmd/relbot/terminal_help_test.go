package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/relbot/relbot/commands"
)

// TestTerminalHelpForEveryCommandAndGroup: "relbot X --help", "relbot X
// -h", "relbot --help X" and "relbot help X" print X's help and exit 0 for
// every command and group of the grammar (README: relbot COMMAND --help).
func TestTerminalHelpForEveryCommandAndGroup(t *testing.T) {
	t.Parallel()
	topics := commands.Names()
	for _, name := range commands.Names() {
		if g, _, ok := strings.Cut(name, " "); ok && !slices.Contains(topics, g) {
			topics = append(topics, g)
		}
	}
	for _, topic := range topics {
		words := strings.Fields(topic)
		for _, form := range [][]string{
			append(slices.Clone(words), "--help"),
			append(slices.Clone(words), "-h"),
			append([]string{"--help"}, words...),
			append([]string{"help"}, words...),
		} {
			r := run(t, nil, form...)
			if r.code != 0 || r.err != "" || !strings.Contains(r.out, "usage: ") {
				t.Errorf("relbot %s: %+v", strings.Join(form, " "), r)
			}
		}
	}
}

// TestTerminalHelpNamesItsFlags: the terminal's command list mentions
// --as and --json (Slack's does not: commands tests that); --json output
// stays the list's JSON, and one command's help does not repeat the line.
func TestTerminalHelpNamesItsFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.out, "--as USER") || !strings.Contains(r.out, "--json") {
			t.Errorf("relbot %v lacks the terminal's flags: %+v", args, r)
		}
	}
	r := run(t, nil, "help", "--json")
	var entries []commands.HelpEntry
	if err := json.Unmarshal([]byte(r.out), &entries); r.code != 0 || err != nil || len(entries) != len(commands.Names()) {
		t.Errorf("help --json: %v, %+v", err, r)
	}
	if r := run(t, nil, "help", "status"); r.code != 0 || strings.Contains(r.out, "--as") {
		t.Errorf("help status: %+v", r)
	}
}

// TestTerminalFlagsEndAtDashDash: after "--" the words are the command's,
// "--" included for the grammar, so --json and --as there are text.
func TestTerminalFlagsEndAtDashDash(t *testing.T) {
	t.Parallel()
	words, as, asJSON, err := terminalFlags([]string{"lock", "crm", "staging", "--as", "alice", "--", "--json", "--as", "bob"})
	want := []string{"lock", "crm", "staging", "--", "--json", "--as", "bob"}
	if err != nil || as != "alice" || asJSON || !slices.Equal(words, want) {
		t.Errorf("terminalFlags = %q, %q, %v, %v; want %q, alice, false", words, as, asJSON, err, want)
	}
}

// TestTerminalDashDashIsNotText: docs/commands.md's "-- ends the flags":
// the "--" itself is not stored in a description or a lock reason.
func TestTerminalDashDashIsNotText(t *testing.T) {
	env := versionEnv(t)
	must(t, run(t, env, "version", "create", "crm", "--as", "alice", "--", "--note", "hello"))
	var versions []struct {
		Description string `json:"description"`
	}
	r := must(t, run(t, env, "version", "list", "crm", "--json"))
	if err := json.Unmarshal([]byte(r.out), &versions); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	if len(versions) != 1 || versions[0].Description != "--note hello" {
		t.Fatalf("stored descriptions %q, want %q", versions, "--note hello")
	}
	must(t, run(t, env, "lock", "crm", "staging", "--as", "alice", "--", "--json", "is", "a", "word", "here"))
	r = must(t, run(t, env, "status", "crm"))
	if !strings.Contains(r.out, ": --json is a word here") || strings.Contains(r.out, "-- --json") {
		t.Fatalf("status after the lock:\n%s", r.out)
	}
}
