package commands

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/relbot/relbot/release"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	varNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// An ID is APP-<kind><number>; the app part may itself hold '-', the
	// anchored suffix keeps the split unambiguous.
	idRE = regexp.MustCompile(`^([a-z][a-z0-9_-]*)-([vmbr])([0-9]+)$`)
)

// idKinds describes each ID kind letter for messages.
var idKinds = map[argKind]struct {
	letter  string
	noun    string
	example string
}{
	kindVersion:   {"v", "version", "3"},
	kindMigration: {"m", "migration", "7"},
	kindBackup:    {"b", "backup", "12"},
	kindRelease:   {"r", "release", "5"},
}

func kindOfLetter(l string) argKind {
	for k, d := range idKinds {
		if d.letter == l {
			return k
		}
	}
	return -1
}

// Parse turns one command line, as typed in Slack, into a typed Command: it
// splits the text into words (lex.go) and reads them as ParseWords does. Any
// error is a *UsageError. An empty line is a request for help.
func Parse(text string) (Command, error) {
	toks, err := split(text)
	if err != nil {
		return nil, err
	}
	return parseTokens(toks)
}

// ParseWords reads words a shell already split (the terminal's os.Args) with
// the same grammar as Parse. Each word is taken as it is: no quotes are
// removed and no word is split or joined again, so a note keeps its quotes,
// apostrophes, backslashes and spaces. Like an unquoted word of Parse, a
// word starting with "--" is a flag; --note=--x gives such a value.
func ParseWords(words []string) (Command, error) {
	toks := make([]token, len(words))
	for i, w := range words {
		toks[i] = token{text: w}
	}
	return parseTokens(toks)
}

func parseTokens(toks []token) (Command, error) {
	if len(toks) == 0 {
		return Help{}, nil
	}
	// "--help status" is "help status"; "backup --help" is "help backup"
	// (a command's own "--help" is parseArgs' business).
	if isHelpFlag(toks[0]) {
		return parseArgs(byName["help"], toks[1:])
	}
	// "--version" is "version": relbot's own, as programs answer it.
	if !toks[0].quoted && toks[0].text == "--version" {
		return parseArgs(byName["version"], toks[1:])
	}
	if g := strings.ToLower(toks[0].text); groups[g] != nil && len(toks) > 1 && isHelpFlag(toks[1]) {
		return Help{Topic: g}, nil
	}
	s, n, err := lookup(toks)
	if err != nil {
		return nil, err
	}
	return parseArgs(s, toks[n:])
}

// lookup finds the spec named by the first one or two words (case-blind:
// phones capitalise the first word) and returns how many words it used.
func lookup(toks []token) (*spec, int, error) {
	first := strings.ToLower(toks[0].text)
	// A word that is both a command and a group ("version") is the command
	// when no subcommand follows: alone, or before flags only.
	if s := byName[first]; s != nil && (groups[first] == nil || len(toks) == 1 || !toks[1].quoted && strings.HasPrefix(toks[1].text, "-")) {
		return s, 1, nil
	}
	if subs := groups[first]; subs != nil {
		var names []string
		for _, s := range subs {
			names = append(names, strings.TrimPrefix(s.name, first+" "))
		}
		if len(toks) < 2 { // (a group that is also a command took this above)
			return nil, 0, &UsageError{Command: first,
				Message: fmt.Sprintf("%s needs a subcommand: %s", first, orList(names)),
				Usage:   groupUsage(first)}
		}
		if s := byName[first+" "+strings.ToLower(toks[1].text)]; s != nil {
			return s, 2, nil
		}
		msg := fmt.Sprintf("%s has no subcommand %s; it has %s", first, quoteShort(toks[1].text), orList(names))
		if byName[first] != nil {
			msg += fmt.Sprintf(` ("%s" alone is a command too)`, first)
		}
		var subNames []string
		for _, s := range subs {
			subNames = append(subNames, s.name)
		}
		if guess := closest([]string{first, toks[1].text}, subNames); guess != "" {
			msg = fmt.Sprintf("%s has no subcommand %s; did you mean %q?", first, quoteShort(toks[1].text), guess)
		}
		return nil, 0, &UsageError{Command: first, Message: msg, Usage: groupUsage(first)}
	}
	var typed []string
	for _, t := range toks[:min(2, len(toks))] {
		typed = append(typed, t.text)
	}
	return nil, 0, &UsageError{Message: notACommand("unknown command "+quoteShort(toks[0].text), typed, allTopics())}
}

// notACommand ends lead ("unknown command \"x\"") with the nearest of
// candidates to the words typed, if one is near, and where to look.
func notACommand(lead string, typed, candidates []string) string {
	if guess := suggestCommand(typed, candidates); guess != "" {
		lead += fmt.Sprintf("; did you mean %q?", guess)
	} else {
		lead += "."
	}
	return lead + ` Type "help" for the list of commands.`
}

// suggestCommand is the candidate nearest to the words typed, or "". When
// the first word names a group, its subcommands are tried first: the group
// alone is nearer "backup creat" than "backup create" is.
func suggestCommand(typed, candidates []string) string {
	if len(typed) > 1 {
		var subs []string
		for _, c := range candidates {
			if strings.HasPrefix(c, strings.ToLower(typed[0])+" ") {
				subs = append(subs, c)
			}
		}
		if guess := closest(typed, subs); guess != "" {
			return guess
		}
	}
	return closest(typed, candidates)
}

// parseArgs reads positional words and flags after the command words.
func parseArgs(s *spec, toks []token) (Command, error) {
	if s.precheck != nil {
		if err := s.precheck(toks); err != nil {
			return nil, err
		}
	}
	// "--help" first or last asks for this command's help; elsewhere, or
	// after "--", it may be part of a reason, so it is left alone.
	if n := len(toks); n > 0 && (isHelpFlag(toks[0]) || (isHelpFlag(toks[n-1]) && !slices.ContainsFunc(toks[:n-1], isEndOfFlags))) {
		return Help{Topic: s.name}, nil
	}
	var (
		pos      []string
		extra    *token // the first word beyond the last argument
		flags    = map[string]string{}
		endFlags bool
	)
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if len(pos) < len(s.args) && s.args[len(pos)].rest {
			// A rest argument takes every remaining word as written, but
			// for a first "--" before them, which only ends the flags.
			if !endFlags && isEndOfFlags(t) {
				i++
			}
			if i == len(toks) {
				break // "lock crm production --": the reason is missing
			}
			words := make([]string, 0, len(toks)-i)
			for _, r := range toks[i:] {
				words = append(words, r.text)
			}
			pos = append(pos, strings.Join(words, " "))
			break
		}
		if !endFlags && isEndOfFlags(t) {
			endFlags = true
			continue
		}
		if !t.quoted && !endFlags && strings.HasPrefix(t.text, "--") {
			name, value, hasValue := strings.Cut(t.text[2:], "=")
			f := s.flag(name)
			if f == nil {
				// Only the name is shown: "--value=..." may carry a secret.
				return nil, unknownFlag(s, name)
			}
			if _, dup := flags[name]; dup {
				return nil, usageErr(s.name, "--%s is given twice", name)
			}
			if f.kind == kindSwitch {
				if hasValue {
					return nil, usageErr(s.name, "--%s takes no value", name)
				}
				flags[name] = ""
				continue
			}
			if !hasValue {
				if i+1 >= len(toks) || (!toks[i+1].quoted && strings.HasPrefix(toks[i+1].text, "--")) {
					return nil, usageErr(s.name, "--%s needs a value (%s)", name, f.meta)
				}
				i++
				value = toks[i].text
			}
			// "--at 2026-12-01 22:00" unquoted: the time is the next word.
			if f.kind == kindAt && dateRE.MatchString(value) && i+1 < len(toks) && clockRE.MatchString(toks[i+1].text) {
				i++
				value += " " + toks[i].text
			}
			if err := validate(s, f.kind, "--"+name+" "+f.meta, value); err != nil {
				return nil, err
			}
			flags[name] = value
			continue
		}
		if len(pos) >= len(s.args) {
			if extra == nil {
				extra = &toks[i]
			}
			continue
		}
		pos = append(pos, t.text)
	}
	for i, a := range s.args {
		if i >= len(pos) {
			if !a.optional {
				return nil, usageErr(s.name, "missing %s: %s", a.meta, describe(a.kind))
			}
			pos = append(pos, "")
			continue
		}
		if pos[i] == "" && a.optional && a.rest {
			continue
		}
		if err := validate(s, a.kind, a.meta, pos[i]); err != nil {
			return nil, err
		}
	}
	// Checked after the arguments so that a malformed one, the likelier
	// cause, is what gets reported.
	if extra != nil {
		if len(s.args) == 0 {
			return nil, usageErr(s.name, "%s takes no arguments, but got %s", s.name, quoteShort(extra.text))
		}
		return nil, usageErr(s.name, "unexpected extra argument %s", quoteShort(extra.text))
	}
	c := s.build(pos, flags)
	if s.check != nil {
		if err := s.check(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func isHelpFlag(t token) bool { return !t.quoted && (t.text == "--help" || t.text == "-h") }

// isEndOfFlags is an unquoted "--"; a quoted one is a word.
func isEndOfFlags(t token) bool { return !t.quoted && t.text == "--" }

// validate checks one word against the shape its kind requires. meta names
// the slot in messages ("ENV", "--into ENV").
func validate(s *spec, kind argKind, meta, v string) error {
	switch kind {
	case kindApp, kindEnv:
		if !nameRE.MatchString(v) {
			return usageErr(s.name, "%s is not a valid %s for %s: %s", quoteShort(v), slotNoun(kind), meta, nameRule)
		}
	case kindVersion, kindMigration, kindBackup, kindRelease:
		return validateID(s, kind, v)
	case kindVarName:
		if strings.Contains(v, "=") {
			// Never echoed: in "secret unset" this could be a pasted secret.
			return usageErr(s.name, "%s is a variable name only; no =VALUE here", meta)
		}
		if !varNameRE.MatchString(v) {
			return usageErr(s.name, "%s is not a valid variable name: %s", quoteShort(v), varNameRule)
		}
	case kindAssign:
		name, _, ok := strings.Cut(v, "=")
		if !ok {
			return usageErr(s.name, "%s takes NAME=VALUE, with no spaces around '=' (quote a value with spaces)", s.name)
		}
		if !varNameRE.MatchString(name) {
			return usageErr(s.name, "%s is not a valid variable name: %s", quoteShort(name), varNameRule)
		}
	case kindText, kindFile:
		if strings.TrimSpace(v) == "" {
			return usageErr(s.name, "%s must not be empty", meta)
		}
	case kindTopic:
		_, err := helpReply(v) // an unknown topic gets the same suggestion
		return err
	case kindAt:
		if !validAt(v) {
			return usageErr(s.name, "%s is not a time: use 22:00, \"2026-12-01 22:00\" or RFC 3339 (2026-12-01T22:00:00+01:00)", quoteShort(v))
		}
	}
	return nil
}

const (
	nameRule    = "lowercase letters, digits, '-' and '_', starting with a letter"
	varNameRule = "letters, digits and '_', starting with a letter"
)

func validateID(s *spec, want argKind, v string) error {
	w := idKinds[want]
	m := idRE.FindStringSubmatch(v)
	if m == nil {
		return usageErr(s.name, "%s is not a %s ID; %s takes a %s ID like crm-%s%s",
			quoteShort(v), w.noun, s.name, w.noun, w.letter, w.example)
	}
	if got := kindOfLetter(m[2]); got != want {
		return usageErr(s.name, "%s is a %s ID; %s takes a %s ID like %s-%s%s",
			v, idKinds[got].noun, s.name, w.noun, m[1], w.letter, w.example)
	}
	return nil
}

// sameApp refuses IDs that belong to another app than APP.
func sameApp(cmd, app string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if m := idRE.FindStringSubmatch(id); m != nil && m[1] != app {
			return usageErr(cmd, "%s belongs to app %s, not %s", id, m[1], app)
		}
	}
	return nil
}

// refuseSecretValue stops any attempt to pass a secret's value in the
// words: anything after NAME, or any '='. The words are never echoed.
func refuseSecretValue(toks []token) error {
	extra := len(toks) > 3
	for _, t := range toks {
		if strings.Contains(t.text, "=") {
			extra = true
		}
	}
	if !extra {
		return nil
	}
	return usageErr("secret set",
		"secret values are never accepted on the command line (nothing was stored); give only APP ENV NAME, then enter the value in the Slack form that opens, or on stdin in a terminal")
}

func usageErr(cmd, format string, args ...any) *UsageError {
	return &UsageError{Command: cmd, Message: fmt.Sprintf(format, args...), Usage: Usage(cmd)}
}

// unknownFlag refuses a flag s does not take, suggesting the nearest one
// (--help too) when the name looks like a typo of it.
func unknownFlag(s *spec, name string) error {
	known := make([]string, len(s.flags))
	for i, f := range s.flags {
		known[i] = f.name
	}
	msg := UnknownFlag(s.name, name, known)
	if SuggestFlag(name, known) == "" && SuggestFlag(name, []string{"help"}) != "" {
		msg = fmt.Sprintf("unknown flag --%s; did you mean --help?", short(name))
	}
	e := usageErr(s.name, "%s", msg)
	e.Flag = name
	return e
}

func describe(k argKind) string {
	switch k {
	case kindApp:
		return "an app name such as crm"
	case kindEnv:
		return "an environment name such as production"
	case kindVarName:
		return "a variable name such as API_URL"
	case kindAssign:
		return "NAME=VALUE, such as API_URL=https://example.com"
	case kindText:
		return "one or more words"
	case kindFile:
		return "a file's path, such as /var/backups/crm-b7.relbot"
	}
	if d, ok := idKinds[k]; ok {
		return fmt.Sprintf("a %s ID such as crm-%s%s", d.noun, d.letter, d.example)
	}
	return "a value"
}

func slotNoun(k argKind) string {
	if k == kindApp {
		return "app name"
	}
	return "environment name"
}

func groupUsage(group string) string {
	var lines []string
	if s := byName[group]; s != nil {
		lines = append(lines, s.usage())
	}
	for _, s := range groups[group] {
		lines = append(lines, s.usage())
	}
	return strings.Join(lines, "\n")
}

// closest returns the candidate nearest to the words typed, or "" when
// nothing is near enough to be a typo. Each candidate is compared with as
// many leading words as it has.
func closest(typed []string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		n := strings.Count(c, " ") + 1
		if n > len(typed) {
			n = len(typed)
		}
		d := levenshtein(c, short(strings.ToLower(strings.Join(typed[:n], " "))))
		limit := 1 // short names: "list" is not a typo of "lock"
		switch {
		case len(c) > 8:
			limit = 3
		case len(c) > 4:
			limit = 2
		}
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// allTopics is every command name and group name, for suggestions.
func allTopics() []string {
	names := Names()
	for _, s := range grammar { // groups in grammar order, once each
		if g, _, ok := strings.Cut(s.name, " "); ok && !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	return names
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// short caps what a message repeats of the user's input.
func short(s string) string {
	return release.Cut(s, 41)
}

func quoteShort(s string) string { return fmt.Sprintf("%q", short(s)) }

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// Redact returns text fit for a log line: a secret command keeps only its
// leading words that are plainly names, so a value typed by mistake is not
// logged. Other commands are returned unchanged.
func Redact(text string) string {
	words := strings.Fields(text)
	if len(words) == 0 || strings.ToLower(strings.Trim(words[0], "\"'“”‘’")) != "secret" {
		return text
	}
	kept := []string{"secret"}
	for i, w := range words[1:] {
		if i >= 4 || (!nameRE.MatchString(w) && !varNameRE.MatchString(w)) {
			return strings.Join(kept, " ") + " [redacted]"
		}
		kept = append(kept, w)
	}
	return strings.Join(kept, " ")
}
