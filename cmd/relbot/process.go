package main

import (
	"context"
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
// rekey-secrets); ok is false when args are a chat command for
// the terminal transport instead.
func runProcess(ctx context.Context, args []string, io Stdio, getenv func(string) string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
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
	case "artifacts":
		switch {
		case len(args) == 1 || (len(args) == 2 && wantsHelp(args[1:])):
			return printHelp(ctx, io, "artifacts"), true
		case args[1] == "migrate" && wantsHelp(args[2:]):
			return printHelp(ctx, io, "artifacts migrate"), true
		case args[1] == "migrate":
			return runArtifactsMigrate(ctx, args[2:], io, getenv), true
		}
		return usageError(io, "artifacts migrate", fmt.Sprintf("unknown artifacts command %q: the one there is is artifacts migrate", args[1])), true
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

// readBuildInfo is what "relbot version" reads (debug.ReadBuildInfo);
// tests replace it.
var readBuildInfo = debug.ReadBuildInfo

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
