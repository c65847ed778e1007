package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	goio "io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/relbot/relbot/commands"
)

// runProcess runs the program's own commands (serve, demo, bench,
// rekey-secrets, version); ok is false when args are a chat command for
// the terminal transport instead.
func runProcess(ctx context.Context, args []string, io Stdio, getenv func(string) string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "--version":
		return runVersion(args[1:], io), true
	case "version":
		// "version create crm ..." is the chat grammar's; "version" alone
		// (or with flags only) is relbot's own.
		if slices.ContainsFunc(args[1:], func(a string) bool { return !strings.HasPrefix(a, "-") }) {
			return 0, false
		}
		if wantsHelp(args[1:]) {
			return printHelp(ctx, io, "version"), true
		}
		return runVersion(args[1:], io), true
	case "serve", "rekey-secrets":
		if wantsHelp(args[1:]) {
			return printHelp(ctx, io, args[0]), true
		}
		if len(args) > 1 && strings.HasPrefix(args[1], "-") {
			return usageError(io, args[0], commands.UnknownFlag(args[0], flagName(args[1]), nil)), true
		}
		if args[0] == "serve" {
			return runServe(ctx, args[1:], io, getenv), true
		}
		return runRekey(ctx, args[1:], io, getenv), true
	case "demo":
		if wantsHelp(args[1:]) {
			return printHelp(ctx, io, "demo"), true
		}
		return runDemo(ctx, args[1:], io, getenv), true
	case "bench":
		switch {
		case len(args) == 1 || (len(args) == 2 && wantsHelp(args[1:])):
			return printHelp(ctx, io, "bench"), true
		case wantsHelp(args[2:]) && slices.Contains([]string{"backup", "migrate", "window", "slack"}, args[1]):
			return printHelp(ctx, io, "bench "+args[1]), true
		}
		return runBench(ctx, args[1:], io, getenv), true
	case benchWorker:
		return runBenchWorker(ctx, args[1:], io), true
	}
	return 0, false
}

// wantsHelp reports whether the flags ask for help (before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--help", "-h", "-help":
			return true
		}
	}
	return false
}

// printHelp prints help for a topic, as "relbot help TOPIC" does.
func printHelp(ctx context.Context, io Stdio, topic string) int {
	reply, err := (&commands.Dispatcher{}).Run(ctx, commands.Request{}, commands.Help{Topic: topic})
	return report(io, reply, err, false)
}

func usageError(io Stdio, command, msg string) int {
	fmt.Fprintf(io.Err, "relbot: %s\n", msg)
	if p := processUsage(command); p != "" {
		fmt.Fprintf(io.Err, "  usage: relbot %s\n", p)
	}
	return exitUsage
}

func processUsage(name string) string {
	for _, p := range commands.ProcessCommands() {
		if p.Name == name {
			return p.Usage
		}
	}
	return ""
}

func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// parseFlags parses a process command's flags, refusing an unknown one with
// a suggestion ("unknown flag --kep; did you mean --keep?") and any word
// that is not a flag, and printing the command's own usage on a bad value.
func parseFlags(name string, fs *flag.FlagSet, args []string, io Stdio) bool {
	var known []string // in help's order
	for _, p := range commands.ProcessCommands() {
		if p.Name == name {
			known = p.Flags
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			break // the flag package stops here too; the words are refused below
		}
		_, _, hasValue := strings.Cut(a, "=")
		f := fs.Lookup(flagName(a))
		if f == nil {
			usageError(io, name, commands.UnknownFlag(name, flagName(a), known))
			return false
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (!ok || !b.IsBoolFlag()) && !hasValue {
			i++ // its value
		}
	}
	fs.SetOutput(goio.Discard) // its own usage text names no relbot command
	if err := fs.Parse(args); err != nil {
		usageError(io, name, err.Error())
		return false
	}
	if fs.NArg() > 0 {
		msg := fmt.Sprintf("%s takes no arguments, but got %q", name, fs.Arg(0))
		if a := fs.Arg(0); a == "true" || a == "false" {
			msg += " (a flag that is on or off takes its value after =, as --keep=false)"
		}
		usageError(io, name, msg)
		return false
	}
	return true
}

// BuildView is what "relbot version --json" prints.
type BuildView struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified *bool  `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Stamped is false when the build carries no VCS stamp (go run,
	// go build -buildvcs=false, or a tree without git).
	Stamped bool `json:"stamped"`
}

// buildView reads what Go recorded of the build.
func buildView(bi *debug.BuildInfo, ok bool) BuildView {
	v := BuildView{Module: "github.com/relbot/relbot", Version: "unknown"}
	if !ok || bi == nil {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision, v.Stamped = s.Value, true
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			m := s.Value == "true"
			v.Modified = &m
		}
	}
	return v
}

func (v BuildView) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "relbot %s (%s)\n", v.Version, v.Module)
	if !v.Stamped {
		b.WriteString("  revision: not recorded: built without a VCS stamp (go run, -buildvcs=false, or in a linked git worktree)\n")
	} else {
		fmt.Fprintf(&b, "  revision: %s\n", v.Revision)
		if v.Time != "" {
			fmt.Fprintf(&b, "  time:     %s\n", v.Time)
		}
		if v.Modified != nil {
			state := "no (built from a clean work tree)"
			if *v.Modified {
				state = "yes (the work tree had uncommitted changes)"
			}
			fmt.Fprintf(&b, "  modified: %s\n", state)
		}
	}
	if v.Go != "" {
		fmt.Fprintf(&b, "  go:       %s\n", v.Go)
	}
	return strings.TrimRight(b.String(), "\n")
}

// readBuildInfo is debug.ReadBuildInfo; tests replace it.
var readBuildInfo = debug.ReadBuildInfo

func versionFlags() (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	return fs, fs.Bool("json", false, "print as JSON")
}

// runVersion is "relbot version" and "relbot --version".
func runVersion(args []string, io Stdio) int {
	fs, asJSON := versionFlags()
	if !parseFlags("version", fs, args, io) {
		return exitUsage
	}
	v := buildView(readBuildInfo())
	if *asJSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return exitOK
	}
	fmt.Fprintln(io.Out, v.text())
	return exitOK
}

// terminalFlagNames are the flags the terminal itself takes out of the words
// before the grammar sees them.
var terminalFlagNames = []string{"json", "as"}

// terminalFlagHint turns the grammar's refusal of a flag that is a typo of
// one of the terminal's own ("--jsn") into a suggestion of it; the grammar
// cannot make it, as Slack has no --json.
func terminalFlagHint(err error) error {
	var ue *commands.UsageError
	if !errors.As(err, &ue) || ue.Flag == "" || strings.Contains(ue.Message, "did you mean") {
		return err
	}
	guess := commands.SuggestFlag(ue.Flag, terminalFlagNames)
	if guess == "" {
		return err
	}
	hinted := *ue
	hinted.Message = commands.UnknownFlag(ue.Command, ue.Flag, []string{guess})
	return &hinted
}
