package commands

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// Version asks for relbot's own version: "version" with no subcommand, or
// "--version". "version create" and the others are configuration versions.
type Version struct{}

func (Version) Name() string { return "version" }

// BuildView is what "version" prints with --json: the module version and
// the VCS stamp Go recorded when relbot was built.
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

// NewBuildView reads what Go recorded of the build (debug.ReadBuildInfo's
// results; ok false or bi nil when there is none).
func NewBuildView(bi *debug.BuildInfo, ok bool) BuildView {
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

// Title is the first line: "relbot v1.2.0 (github.com/relbot/relbot)".
func (v BuildView) Title() string { return fmt.Sprintf("relbot %s (%s)", v.Version, v.Module) }

// Text is the build as people read it: the title, then one fact a line.
func (v BuildView) Text() string {
	var b strings.Builder
	b.WriteString(v.Title() + "\n")
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

// version answers "version" alike in Slack and a terminal; it needs none
// of the services.
func (d *Dispatcher) version(_ context.Context, _ Request, _ Version) (Reply, error) {
	read := d.BuildInfo
	if read == nil {
		read = debug.ReadBuildInfo
	}
	v := NewBuildView(read())
	return Reply{Text: v.Text(), Title: v.Title(), Data: v}, nil
}
