package commands

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestHelpExplainsProcessCommands(t *testing.T) {
	list, err := helpReply("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.Text, `From a terminal, relbot also runs serve, demo, bench, artifacts and rekey-secrets ("help serve" explains one).`) {
		t.Errorf("help list does not name the process commands:\n%s", list.Text)
	}
	for _, p := range processCommands {
		r, err := helpReply(p.Name)
		if err != nil {
			t.Errorf("help %s: %v", p.Name, err)
			continue
		}
		if !strings.Contains(r.Text, "usage: relbot "+p.Usage) || !strings.Contains(r.Text, p.Help) {
			t.Errorf("help %s:\n%s", p.Name, r.Text)
		}
		for _, f := range p.Flags {
			if !strings.Contains(p.Usage, "--"+f) {
				t.Errorf("%s: usage %q lacks --%s", p.Name, p.Usage, f)
			}
		}
		// "X --help" in chat is the grammar's business; a process command
		// is not a chat command, so Parse still refuses it by name.
	}
	bench, err := helpReply("bench")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"usage: relbot bench backup [--size SIZE]", "usage: relbot bench migrate", "usage: relbot bench slack [--rate N] [--seconds N]"} {
		if !strings.Contains(bench.Text, u) {
			t.Errorf("help bench lacks %q:\n%s", u, bench.Text)
		}
	}
	// version is both relbot's own, a chat command, and the configuration
	// versions' group: help shows the command first, then the group.
	version, err := helpReply("version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version.Text, "version commands\nusage: version\n  With no subcommand (or as --version)") {
		t.Errorf("help version:\n%s", version.Text)
	}
	for _, u := range []string{"usage: version create APP DESCRIPTION...", "usage: version restore APP VERSION"} {
		if !strings.Contains(version.Text, u) {
			t.Errorf("help version lacks %q:\n%s", u, version.Text)
		}
	}
	if _, err := helpReply("serv"); err == nil || !strings.Contains(err.Error(), `did you mean "serve"?`) {
		t.Errorf("help serv: %v", err)
	}
}

func TestUnknownFlagSuggestsTheNearest(t *testing.T) {
	for in, want := range map[string]string{
		"migration create crm --not x":                    "unknown flag --not; did you mean --note?",
		"migration create crm --vresion crm-v1":           "unknown flag --vresion; did you mean --version?",
		"deploy crm-m7 production --allow-new-plugin":     "unknown flag --allow-new-plugin; did you mean --allow-new-plugins?",
		"backup restore crm-b1 --int recovery":            "unknown flag --int; did you mean --into?",
		"status crm --hel":                                "unknown flag --hel; did you mean --help?",
		"migration create crm --force":                    "unknown flag --force; migration create takes --version or --note",
		"status crm --jsn":                                "status takes no flags, but got --jsn", // --json is the terminal's; Slack has none
		"rollback crm-r5 --at 22:00":                      "unknown flag --at; rollback takes --full, --into or --no-analyze",
		"deploy crm-m7 production --frobnicate-something": "unknown flag --frobnicate-something; deploy takes --at or --allow-new-plugins",
	} {
		_, err := Parse(in)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Message != want {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
			continue
		}
		if name, _, _ := strings.Cut(strings.Fields(strings.SplitAfter(in, " --")[1])[0], "="); ue.Flag != name {
			t.Errorf("Parse(%q): Flag = %q, want %q", in, ue.Flag, name)
		}
	}
}

func TestSuggestFlag(t *testing.T) {
	for _, c := range []struct {
		name  string
		known []string
		want  string
	}{
		{"jsn", []string{"json", "as"}, "json"},
		{"--jsn", []string{"json"}, "json"},
		{"kep", []string{"keep"}, "keep"},
		{"sise", []string{"size", "workers", "reuse"}, "size"},
		{"at", []string{"as"}, ""}, // two letters: one change is half the name
		{"xyz", []string{"json", "as"}, ""},
		{"rate", []string{"size", "workers", "reuse"}, ""},
	} {
		if got := SuggestFlag(c.name, c.known); got != c.want {
			t.Errorf("SuggestFlag(%q, %v) = %q, want %q", c.name, c.known, got, c.want)
		}
	}
	if got := UnknownFlag("serve", "jsn", nil); got != "serve takes no flags, but got --jsn" {
		t.Errorf("UnknownFlag without flags = %q", got)
	}
}

// TestEveryCommandAndGroupTakesHelp: "X --help", "X -h", "--help X" and
// "help X" are help for X, for every command and group of the grammar, in
// Slack's text and in the terminal's words; the help itself is no error.
func TestEveryCommandAndGroupTakesHelp(t *testing.T) {
	topics := Names()
	for g := range groups {
		topics = append(topics, g)
	}
	for _, topic := range topics {
		for _, form := range []string{topic + " --help", topic + " -h", "--help " + topic, "-h " + topic, "help " + topic} {
			for via, parse := range map[string]func(string) (Command, error){
				"Parse":      Parse,
				"ParseWords": func(s string) (Command, error) { return ParseWords(strings.Fields(s)) },
			} {
				c, err := parse(form)
				if err != nil || c != (Help{Topic: topic}) {
					t.Errorf("%s(%q) = %#v, %v; want help for %s", via, form, c, err, topic)
					continue
				}
				r, err := (&Dispatcher{}).Run(context.Background(), Request{}, c)
				if ExitCode(err) != 0 || !strings.Contains(r.Text, "usage: ") {
					t.Errorf("%s: %v\n%s", form, err, r.Text)
				}
			}
		}
	}
}

// TestUnknownCommandMessages: a sentence ends before the pointer to help,
// with or without a suggestion, and help of an unknown topic says the
// same as an unknown command does, suggesting within a group first.
func TestUnknownCommandMessages(t *testing.T) {
	for in, want := range map[string]string{
		"maintenance":       `unknown command "maintenance". Type "help" for the list of commands.`,
		"statu crm":         `unknown command "statu"; did you mean "status"? Type "help" for the list of commands.`,
		"help nosuch":       `there is no command "nosuch". Type "help" for the list of commands.`,
		"help statu":        `there is no command "statu"; did you mean "status"? Type "help" for the list of commands.`,
		"help backup creat": `there is no command "backup creat"; did you mean "backup create"? Type "help" for the list of commands.`,
		"help bench slak":   `there is no command "bench slak"; did you mean "bench slack"? Type "help" for the list of commands.`,
		"help backup zzzz":  `there is no command "backup zzzz"; did you mean "backup"? Type "help" for the list of commands.`,
	} {
		_, err := Parse(in)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Message != want {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestSlackHelpHasNoTerminalFlags: --as and --json are the terminal's
// (cmd/relbot adds them to its list); Slack's list must not offer them.
func TestSlackHelpHasNoTerminalFlags(t *testing.T) {
	list, err := helpReply("")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--as", "--json"} {
		if strings.Contains(list.Text, f) {
			t.Errorf("Slack's help list mentions %s:\n%s", f, list.Text)
		}
	}
}
