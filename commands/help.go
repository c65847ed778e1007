package commands

import (
	"fmt"
	"slices"
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
		var progs []string
		for _, p := range processTopics() {
			if !strings.Contains(p, " ") {
				progs = append(progs, p)
			}
		}
		return newReply("relbot commands", nil, &Table{Columns: []string{"Command", "What it does"}, Rows: rows}, entries,
			"", `"help COMMAND" explains one, e.g. "help backup create".`,
			"From a terminal, relbot also runs "+strings.Join(progs[:len(progs)-1], ", ")+" and "+progs[len(progs)-1]+` ("help serve" explains one).`), nil
	case byName[topic] != nil && groups[topic] == nil:
		s := byName[topic]
		return newReply("usage: "+s.usage(), nil, nil, entry(s, true), "", s.help), nil
	}
	if r, ok := processHelp(topic); ok {
		return r, nil
	}
	switch {
	case groups[topic] != nil:
		var lines []string
		var entries []HelpEntry
		// A group that is a command too ("version") shows that first.
		for _, s := range append(byNameList(topic), groups[topic]...) {
			lines = append(lines, "usage: "+s.usage(), "  "+s.help, "")
			entries = append(entries, entry(s, true))
		}
		return newReply(topic+" commands", nil, nil, entries, lines...), nil
	}
	msg := notACommand("there is no command "+quoteShort(topic), strings.Fields(topic), append(allTopics(), processTopics()...))
	return Reply{}, usageErr("help", "%s", msg)
}

// byNameList is the command named name, if any, as a list.
func byNameList(name string) []*spec {
	if s := byName[name]; s != nil {
		return []*spec{s}
	}
	return nil
}

// ProcessCommand is a command of the relbot program itself rather than of
// the chat grammar: it runs only from a terminal ("relbot serve"), so Slack
// never dispatches it, but help explains it in both places.
type ProcessCommand struct {
	Name    string   // "serve", "bench slack"
	Usage   string   // "bench slack [--rate N] [--seconds N]"
	Summary string   // one line for the command list
	Help    string   // a short paragraph for "help NAME"
	Flags   []string // every flag it takes, without "--"
}

// processCommands are the program's own commands; cmd/relbot dispatches
// them and its tests hold their flags to what its flag sets accept.
var processCommands = []ProcessCommand{
	{
		Name: "serve", Usage: "serve",
		Summary: "run the Slack bot: commands, buttons, the release runner, nightly backups",
		Help: "Runs relbot as a server until SIGTERM or Ctrl-C: Slack's slash command and buttons on RELBOT_HTTP_ADDR (default :8080) at /slack/commands, /slack/interactions and /slack/events, " +
			"or over Socket Mode when SLACK_APP_TOKEN is set; the runner of approved and scheduled releases; the backup schedules; /healthz and /readyz. " +
			"It needs RELBOT_DATABASE_URL, SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (not in Socket Mode) and takes no arguments. On SIGTERM it waits up to 25 s for the work in flight.",
	},
	{
		Name: "demo", Usage: "demo [--keep=false]", Flags: []string{"keep"},
		Summary: "play a release of the sample app end to end, printed as a conversation",
		Help: "Creates the sample NocoBase app crm on the local PostgreSQL (RELBOT_DEMO_PG, an admin URL; default postgres@127.0.0.1:5432) with files under RELBOT_DEMO_DIR (default $TMPDIR/relbot-demo), " +
			"then backs production up, makes a migration, deploys it to staging and, through a stand-in for Slack, to production with approvals, and rolls a bad change back. " +
			"It exits 0 only if every step did what it should. The databases and files stay, with a relbot.env to work on them from a terminal, unless --keep=false.",
	},
	{
		Name: "bench backup", Usage: "bench backup [--size SIZE] [--workers N] [--reuse] [--s3 BUCKET]", Flags: []string{"size", "workers", "reuse", "s3"},
		Summary: "time relbot's backup and restore against pg_dump, pg_restore, pgcopydb and a plain COPY",
		Help: "Generates a NocoBase-like database of --size (default 1GB, e.g. 200MB or 4GB) on the local PostgreSQL, then times relbot backup, pg_dump -Fc, pg_dump -Fd -j N, relbot restore (its ANALYZE included), pg_restore -j N, " +
			"pgcopydb clone --table-jobs N --index-jobs N (when pgcopydb is on PATH) and a plain COPY of every table, " +
			"each in its own process, and prints wall time, size, peak RSS and the ratios. --workers (default 2) is the parallelism; --reuse keeps the generated database from an earlier run; " +
			"--s3 s3://bucket?endpoint=… also times the backup into that bucket and the restore from it, beside the directory's.",
	},
	{
		Name: "bench migrate", Usage: "bench migrate [--size SIZE] [--workers N] [--reuse]", Flags: []string{"size", "workers", "reuse"},
		Summary: "time a migration apply of the configuration tables against a plain COPY",
		Help:    "Generates (or with --reuse keeps) the same database as bench backup, makes a migration file of its configuration tables and times applying it to a production-sized copy, beside a plain COPY of the same rows into empty tables.",
	},
	{
		Name: "bench window", Usage: "bench window [--sizes SIZES] [--reuse]", Flags: []string{"sizes", "reuse"},
		Summary: "time a release's maintenance window the classic way and the window way, per database size",
		Help: "Generates (or with --reuse keeps) NocoBase-like production databases of each of --sizes (default 1GB,4GB) and, in one run, deploys the same configuration migration to a copy of each " +
			"through the release service twice: the classic way (pre-release backup inside the window, the rows loaded in the apply) and the window way (backup and preparation before maintenance on, the prepared tables swapped in). " +
			"Prints for each size how long users were held out (maintenance on to off), the whole release, and the ratios.",
	},
	{
		Name: "bench slack", Usage: "bench slack [--rate N] [--seconds N]", Flags: []string{"rate", "seconds"},
		Summary: "drive relbot serve with signed Slack requests and print ack latency",
		Help:    "Starts relbot serve on the sample app with a stand-in Slack and sends signed slash commands and button clicks from another process at --rate requests per second (1-2000, default 200) for --seconds (1-300, default 30), then prints ack latency p50, p99 and max.",
	},
	{
		Name: "artifacts migrate", Usage: "artifacts migrate --to STORE", Flags: []string{"to"},
		Summary: "copy every backup, migration file and version blob to another artifact store, each checked",
		Help: "Copies every artifact of RELBOT_ARTIFACT_DIR (a directory or an s3:// bucket) into STORE (another of either), streaming, and reads each copy back to check its SHA-256 against the original. " +
			"An artifact STORE has already with the same bytes is left; one with other bytes stops the copy, named. It can be run again. Then point RELBOT_ARTIFACT_DIR at STORE; the original is not changed.",
	},
	{
		Name: "rekey-secrets", Usage: "rekey-secrets",
		Summary: "re-encrypt every stored secret with RELBOT_SECRET_KEY after a key rotation",
		Help: "Decrypts every secret in relbot's database (with RELBOT_SECRET_KEY, or RELBOT_SECRET_KEY_PREVIOUS for those sealed before the rotation), then re-encrypts those under the old key with the new one. " +
			"It can be re-run; once it reports success RELBOT_SECRET_KEY_PREVIOUS can be removed. It needs RELBOT_DATABASE_URL and takes no arguments.",
	},
}

// ProcessCommands returns the program's own commands, in help's order.
func ProcessCommands() []ProcessCommand { return slices.Clone(processCommands) }

func processCommand(name string) *ProcessCommand {
	for i := range processCommands {
		if processCommands[i].Name == name {
			return &processCommands[i]
		}
	}
	return nil
}

// processGroup lists the process commands under a first word ("bench").
func processGroup(group string) []ProcessCommand {
	var out []ProcessCommand
	for _, p := range processCommands {
		if g, _, ok := strings.Cut(p.Name, " "); ok && g == group {
			out = append(out, p)
		}
	}
	return out
}

func processEntry(p ProcessCommand) HelpEntry {
	return HelpEntry{Name: p.Name, Usage: p.Usage, Summary: p.Summary, Help: p.Help}
}

// processHelp answers help for a process command or group, or returns
// false when topic names none. A process group that is a chat group too
// shows both.
func processHelp(topic string) (Reply, bool) {
	var ps []ProcessCommand
	if p := processCommand(topic); p != nil {
		ps = append(ps, *p)
	} else {
		ps = processGroup(topic)
	}
	if len(ps) == 0 {
		return Reply{}, false
	}
	if len(ps) == 1 && groups[topic] == nil {
		p := ps[0]
		return newReply("usage: relbot "+p.Usage, nil, nil, processEntry(p), "", p.Help, "(from a terminal only)"), true
	}
	var lines []string
	var entries []HelpEntry
	for _, p := range ps {
		lines = append(lines, "usage: relbot "+p.Usage, "  "+p.Help+" (from a terminal only)", "")
		entries = append(entries, processEntry(p))
	}
	for _, s := range groups[topic] {
		lines = append(lines, "usage: "+s.usage(), "  "+s.help, "")
		entries = append(entries, entry(s, true))
	}
	return newReply(topic+" commands", nil, nil, entries, lines...), true
}

// processTopics is every process command and group name, for suggestions.
func processTopics() []string {
	var out []string
	for _, p := range processCommands {
		g, _, _ := strings.Cut(p.Name, " ")
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
		if !slices.Contains(out, p.Name) {
			out = append(out, p.Name)
		}
	}
	return out
}

// SuggestFlag returns the flag of known (names without "--") that name is
// most likely a typo of, or "" when none is close. Two-letter flags are
// never guessed: one changed letter is half of them ("--at" is not "--as").
func SuggestFlag(name string, known []string) string {
	var long []string
	for _, k := range known {
		if len(k) > 2 {
			long = append(long, k)
		}
	}
	return closest([]string{strings.TrimLeft(name, "-")}, long)
}

// UnknownFlag is the message for a flag command does not take: the nearest
// of known as a suggestion, else what it does take.
func UnknownFlag(command, name string, known []string) string {
	name = short(strings.TrimLeft(name, "-"))
	if guess := SuggestFlag(name, known); guess != "" {
		return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, guess)
	}
	if len(known) == 0 {
		return fmt.Sprintf("%s takes no flags, but got --%s", command, name)
	}
	fs := make([]string, len(known))
	for i, k := range known {
		fs[i] = "--" + k
	}
	return fmt.Sprintf("unknown flag --%s; %s takes %s", name, command, orList(fs))
}
