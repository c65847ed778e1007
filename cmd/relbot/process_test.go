package main

import (
	"encoding/json"
	"flag"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/relbot/relbot/commands"
)

// withBuildInfo makes relbot see bi as its build for the test.
func withBuildInfo(t *testing.T, bi *debug.BuildInfo) {
	t.Helper()
	saved := readBuildInfo
	readBuildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	t.Cleanup(func() { readBuildInfo = saved })
}

func TestVersionPrintsTheVCSStamp(t *testing.T) {
	withBuildInfo(t, &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/relbot/relbot", Version: "v0.0.0-20261201222000-4273015cad04+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "4273015cad0417dd7d74d45be3ec8cc8fdaa6f12"},
			{Key: "vcs.time", Value: "2026-12-01T22:20:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	want := "relbot v0.0.0-20261201222000-4273015cad04+dirty (github.com/relbot/relbot)\n" +
		"  revision: 4273015cad0417dd7d74d45be3ec8cc8fdaa6f12\n" +
		"  time:     2026-12-01T22:20:00Z\n" +
		"  modified: yes (the work tree had uncommitted changes)\n" +
		"  go:       go1.26.8\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := run(t, nil, args...)
		if r.code != 0 || r.out != want || r.err != "" {
			t.Errorf("relbot %s: code %d\n%s\nstderr: %s\nwant:\n%s", args[0], r.code, r.out, r.err, want)
		}
	}
	r := run(t, nil, "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.out), &v); r.code != 0 || err != nil {
		t.Fatalf("version --json: %+v (%v)", r, err)
	}
	if v["revision"] != "4273015cad0417dd7d74d45be3ec8cc8fdaa6f12" || v["time"] != "2026-12-01T22:20:00Z" || v["modified"] != true || v["stamped"] != true || v["go"] != "go1.26.8" {
		t.Errorf("version --json: %s", r.out)
	}
}

func TestVersionWithoutAStamp(t *testing.T) {
	// What go run and go build -buildvcs=false record: no vcs settings.
	withBuildInfo(t, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/relbot/relbot", Version: "(devel)"}})
	r := run(t, nil, "version")
	want := "relbot (devel) (github.com/relbot/relbot)\n" +
		"  revision: not recorded: built without a VCS stamp (go run, -buildvcs=false, or in a linked git worktree)\n" +
		"  go:       go1.26.8\n"
	if r.code != 0 || r.out != want {
		t.Errorf("version: %+v\nwant:\n%s", r, want)
	}
	r = run(t, nil, "--version", "--json")
	if r.code != 0 || !strings.Contains(r.out, `"stamped": false`) || strings.Contains(r.out, "revision") {
		t.Errorf("--version --json: %+v", r)
	}
	withBuildInfo(t, nil) // a binary without build information at all
	if r := run(t, nil, "version"); r.code != 0 || !strings.HasPrefix(r.out, "relbot unknown (github.com/relbot/relbot)\n  revision: not recorded") {
		t.Errorf("version without build info: %+v", r)
	}
}

func TestVersionLeavesTheGrammarsVersionCommands(t *testing.T) {
	// "version list crm" is a chat command: it needs the settings, so it
	// stops there, and prints no build stamp.
	r := run(t, map[string]string{}, "version", "list", "crm")
	if r.code != 1 || !strings.Contains(r.err, "RELBOT_DATABASE_URL") || strings.Contains(r.out, "revision") {
		t.Errorf("version list crm: %+v", r)
	}
	r = run(t, nil, "version", "--jsn")
	if r.code != 2 || r.err != "relbot: unknown flag --jsn; did you mean --json?\n  usage: version\n" || r.out != "" {
		t.Errorf("version --jsn: %+v", r)
	}
	// A subcommand version has not is refused, saying "version" alone is
	// a command too; help shows both.
	r = run(t, nil, "version", "lst", "crm")
	if r.code != 2 || !strings.Contains(r.err, `version has no subcommand "lst"; did you mean "version list"?`) || !strings.Contains(r.err, "usage: version\n") {
		t.Errorf("version lst: %+v", r)
	}
	for _, args := range [][]string{{"help", "version"}, {"version", "--help"}, {"version", "-h"}} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.out, "usage: version\n") || !strings.Contains(r.out, "usage: version create APP DESCRIPTION...") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

func TestEveryProcessCommandHasHelp(t *testing.T) {
	for _, p := range commands.ProcessCommands() {
		args := strings.Fields(p.Name)
		for _, form := range [][]string{
			append([]string{"help"}, args...),
			append(slices.Clone(args), "--help"),
			append(slices.Clone(args), "-h"),
		} {
			r := run(t, nil, form...)
			if r.code != 0 || r.err != "" || !strings.HasPrefix(r.out, "usage: relbot "+p.Usage+"\n") && !strings.Contains(r.out, "\nusage: relbot "+p.Usage+"\n") {
				t.Errorf("relbot %s: %+v", strings.Join(form, " "), r)
			}
		}
	}
	// bench slack names itself, not bench backup or the flag package's
	// "Usage of ...".
	r := run(t, nil, "bench", "slack", "--help")
	if want := "usage: relbot bench slack [--rate N] [--seconds N]\n"; r.code != 0 || !strings.HasPrefix(r.out, want) || strings.Contains(r.out, "backup") {
		t.Errorf("bench slack --help: %+v", r)
	}
	for _, args := range [][]string{{"bench"}, {"bench", "--help"}, {"help", "bench"}} {
		r := run(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.out, "usage: relbot bench backup") || !strings.Contains(r.out, "usage: relbot bench slack") {
			t.Errorf("relbot %v: %+v", args, r)
		}
	}
	r = run(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.out, "From a terminal, relbot also runs serve, demo, bench, artifacts and rekey-secrets") {
		t.Errorf("help: %+v", r)
	}
}

func TestMisspeltFlagSuggestsTheRightOne(t *testing.T) {
	for args, want := range map[string]string{
		"demo --kep":                   "relbot: unknown flag --kep; did you mean --keep?\n  usage: relbot demo [--keep=false]\n",
		"bench slack --rat 3":          "relbot: unknown flag --rat; did you mean --rate?\n  usage: relbot bench slack [--rate N] [--seconds N]\n",
		"bench backup --sise 1GB":      "relbot: unknown flag --sise; did you mean --size?\n  usage: relbot bench backup [--size SIZE] [--workers N] [--reuse] [--s3 BUCKET]\n",
		"bench backup --rate 3":        "relbot: unknown flag --rate; bench backup takes --size, --workers, --reuse or --s3\n  usage: relbot bench backup [--size SIZE] [--workers N] [--reuse] [--s3 BUCKET]\n",
		"serve --jsn":                  "relbot: serve takes no flags, but got --jsn\n  usage: relbot serve\n",
		"rekey-secrets --force":        "relbot: rekey-secrets takes no flags, but got --force\n  usage: relbot rekey-secrets\n",
		"demo extra":                   "relbot: demo takes no arguments, but got \"extra\"\n  usage: relbot demo [--keep=false]\n",
		"status crm --jsn":             "relbot: unknown flag --jsn; did you mean --json?\n  usage: status APP\n",
		"migration create crm --not":   "relbot: unknown flag --not; did you mean --note?\n  usage: migration create APP [--version VERSION] [--note TEXT]\n",
		"status crm --xyz":             "relbot: status takes no flags, but got --xyz\n  usage: status APP\n",
		"bench slack --rate abc":       "relbot: invalid value \"abc\" for flag -rate: parse error\n  usage: relbot bench slack [--rate N] [--seconds N]\n",
		"bench backup --size":          "relbot: flag needs an argument: -size\n  usage: relbot bench backup [--size SIZE] [--workers N] [--reuse] [--s3 BUCKET]\n",
		"bench window --size 1GB":      "relbot: unknown flag --size; did you mean --sizes?\n  usage: relbot bench window [--sizes SIZES] [--reuse]\n",
		"bench window --sizes 1GB,1GB": "relbot: --sizes: 1GB is given twice\n",
		"bench window --sizes 1GB,x":   "relbot: --sizes: \"x\" is not a size like 1GB or 200MB\n",
		"demo --keep false":            "relbot: demo takes no arguments, but got \"false\" (a flag that is on or off takes its value after =, as --keep=false)\n  usage: relbot demo [--keep=false]\n",
	} {
		r := run(t, nil, strings.Fields(args)...)
		if r.code != 2 || r.err != want || r.out != "" {
			t.Errorf("relbot %s: code %d, stderr:\n%s\nwant:\n%s", args, r.code, r.err, want)
		}
	}
}

// TestProcessFlagsAreTheDocumentedOnes holds the flag sets to the flags
// help and docs/commands.md list.
func TestProcessFlagsAreTheDocumentedOnes(t *testing.T) {
	sets := map[string]*flag.FlagSet{}
	sets["demo"], _ = demoFlags()
	sets["artifacts migrate"], _ = artifactsMigrateFlags()
	for _, sub := range []string{"backup", "migrate", "window", "slack"} {
		sets["bench "+sub], _ = benchFlags(sub)
	}
	for _, p := range commands.ProcessCommands() {
		var got []string
		if fs := sets[p.Name]; fs != nil {
			fs.VisitAll(func(f *flag.Flag) { got = append(got, f.Name) })
		}
		want := slices.Sorted(slices.Values(p.Flags))
		if !slices.Equal(got, want) { // VisitAll is in lexical order
			t.Errorf("%s takes flags %v, help lists %v", p.Name, got, want)
		}
	}
}
