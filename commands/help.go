package commands

import (
	"fmt"
	"strings"
)

// HelpEntry is one command as help describes it (also what --json prints).
type HelpEntry struct {
	Name    string `json:"name"`
	Usage   string `json:"usage"`
	Summary string `json:"summary"`
	Help    string `json:"help,omitempty"`
}

func entry(s *spec, long bool) HelpEntry {
	e := HelpEntry{Name: s.name, Usage: s.usage(), Summary: s.summary}
	if long {
		e.Help = s.help
	}
	return e
}

// helpReply answers "help", "help GROUP" and "help COMMAND".
func helpReply(topic string) (Reply, error) {
	topic = strings.ToLower(strings.Join(strings.Fields(topic), " "))
	switch {
	case topic == "":
		rows := make([][]string, 0, len(grammar))
		entries := make([]HelpEntry, 0, len(grammar))
		for _, s := range grammar {
			rows = append(rows, []string{s.usage(), s.summary})
			entries = append(entries, entry(s, false))
		}
		return newReply("relbot commands", nil, &Table{Columns: []string{"Command", "What it does"}, Rows: rows}, entries,
			"", `"help COMMAND" explains one, e.g. "help backup create".`), nil
	case byName[topic] != nil:
		s := byName[topic]
		return newReply("usage: "+s.usage(), nil, nil, entry(s, true), "", s.help), nil
	case groups[topic] != nil:
		var lines []string
		var entries []HelpEntry
		for _, s := range groups[topic] {
			lines = append(lines, "usage: "+s.usage(), "  "+s.help, "")
			entries = append(entries, entry(s, true))
		}
		return newReply(topic+" commands", nil, nil, entries, lines...), nil
	}
	msg := fmt.Sprintf("there is no command %s", quoteShort(topic))
	if guess := closest(strings.Fields(topic), allTopics()); guess != "" {
		msg += fmt.Sprintf("; did you mean %q?", guess)
	}
	return Reply{}, usageErr("help", "%s", msg)
}
