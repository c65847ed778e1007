package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"unicode"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
)

// runTerminal is the terminal transport: the words after "relbot" are one
// command, --as names the user (default: the OS user) and --json prints the
// reply as JSON.
func runTerminal(ctx context.Context, args []string, io Stdio, getenv func(string) string) int {
	io.Out, io.Err = termSafe(io.Out), termSafe(io.Err)
	words, as, asJSON, err := terminalFlags(args)
	asGiven := as != ""
	if err != nil {
		fmt.Fprintln(io.Err, "relbot: "+err.Error())
		return exitUsage
	}
	// The shell has split the words already: they go to the grammar as they
	// are, never re-joined and split again (which lost quotes).
	cmd, err := commands.ParseWords(words)
	if err != nil {
		return report(io, commands.Reply{}, err, asJSON)
	}
	osName := osUser(getenv)
	if as == "" {
		as = osName
	}
	req := commands.Request{User: as, Text: strings.Join(words, " "), JSON: asJSON, Secret: secretReader(io),
		OpenFile: openUserFile}
	d := &commands.Dispatcher{BuildInfo: readBuildInfo}
	if !commands.NeedsNoService(cmd) {
		settings, file, err := loadConfig(getenv, config.EnvDatabaseURL)
		if err != nil {
			fmt.Fprintln(io.Err, configMessage(err))
			return exitFailed
		}
		apps := file.Apps
		// The terminal trusts its operator (they can read relbot's keys);
		// where terminal_users maps them, they act as that Slack user, and
		// --as someone else needs the act_as role (release checks it).
		if mapped := file.TerminalUsers[osName]; mapped != "" {
			if !asGiven {
				req.User = mapped
			}
			ctx = release.FromTerminal(ctx, osName, mapped)
		}
		progress := io.Out
		if asJSON {
			progress = io.Err // keep stdout parseable
		}
		sys, err := build(ctx, settings, apps, newLogger(io.Err, getenv, slog.LevelWarn), faultOptions(getenv, progress))
		if err != nil {
			return report(io, commands.Reply{}, err, asJSON)
		}
		defer sys.close()
		d = sys.dispatcher
	}
	reply, err := d.Run(ctx, req, cmd)
	if h, ok := cmd.(commands.Help); ok && h.Topic == "" && err == nil {
		// The list is the grammar's, shared with Slack, which has no such
		// flags; only the terminal mentions them (its JSON stays the list).
		reply.Text += "\n" + terminalFlagsLine
	}
	return report(io, reply, err, asJSON)
}

// terminalFlagsLine ends the terminal's command list.
const terminalFlagsLine = "From a terminal, the commands above also take --as USER (who acts; by default you) and --json (print the reply as JSON)."

// report prints a reply and/or an error and returns the exit code.
func report(io Stdio, reply commands.Reply, err error, asJSON bool) int {
	err = terminalFlagHint(err)
	if asJSON {
		data := reply.Data
		if err != nil && data == nil {
			data = commands.ErrorReply(err).Data
		}
		if data != nil {
			enc := json.NewEncoder(io.Out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(data)
		}
	} else if reply.Text != "" {
		fmt.Fprintln(io.Out, reply.Text)
	}
	if err != nil {
		msg := commands.ErrorReply(err).Text
		lines := strings.Split(strings.TrimSpace(msg), "\n")
		fmt.Fprintln(io.Err, "relbot: "+lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintln(io.Err, "  "+l)
		}
	}
	return commands.ExitCode(err)
}

// terminalFlags takes --as USER, --as=USER and --json out of the words
// before the first "--" (after it every word is the command's, "--"
// included, as the grammar ends its flags there too); --help or -h alone
// is help.
func terminalFlags(args []string) (words []string, as string, asJSON bool, err error) {
	setAs := func(v string) error {
		if as != "" {
			return fmt.Errorf("--as is given twice")
		}
		if err := checkUserName(v); err != nil {
			return err
		}
		as = v
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(words, args[i:]...), as, asJSON, nil
		case a == "--json":
			asJSON = true
		case a == "--as":
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return nil, "", false, fmt.Errorf("--as needs a user name")
			}
			if err := setAs(args[i+1]); err != nil {
				return nil, "", false, err
			}
			i++
		case strings.HasPrefix(a, "--as="):
			if err := setAs(strings.TrimPrefix(a, "--as=")); err != nil {
				return nil, "", false, err
			}
		default:
			words = append(words, a)
		}
	}
	if len(words) == 1 && (words[0] == "--help" || words[0] == "-h") {
		words = []string{"help"}
	}
	return words, as, asJSON, nil
}

// checkUserName refuses a --as value that could not name anyone: empty,
// spaces or control characters in it, or too long. Approvals and records
// compare names exactly, so look-alikes must not get in.
func checkUserName(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("--as needs a user name")
	case len(v) > 64:
		return fmt.Errorf("--as takes a user name of at most 64 bytes")
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("--as %q: a user name has no spaces or control characters", v)
	}
	return nil
}

func osUser(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if v := getenv("USER"); v != "" {
		return v
	}
	return "unknown"
}

// openUserFile opens a file the terminal's user names, as backup import reads it.
func openUserFile(path string) (io.ReadCloser, error) { return os.Open(path) }
