package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// Kinds of scheduled run.
const (
	KindBackup = "backup"
	KindVerify = "verify"
)

// BackupNotice is what the channel is told after a scheduled run: a
// summary when it went well, an alert saying what failed and what to do
// when it did not. Transports render it (Text is a plain rendering); it
// holds no secret (errors are the user-facing messages of release.Error).
type BackupNotice struct {
	App string
	Env string
	// Kind is KindBackup or KindVerify.
	Kind string
	OK   bool
	// Tick is the scheduled instant the run was for; Late is set when it
	// ran after a restart because the tick was missed (the environment had
	// scheduled backups before it). First is set instead when a backup run
	// after its tick's grace is the environment's first scheduled one:
	// that tick came before relbot ran the schedule, so none was missed.
	Tick  time.Time
	Late  bool
	First bool
	// Backup is the backup taken, or the one verified (nil when there was
	// none or the backup failed).
	Backup *release.Backup
	// Report is the verify's outcome (verify runs only).
	Report *release.VerifyReport
	// Kept is how many backups the environment has after retention, and
	// Keep its policy (0: all are kept). Backup runs only.
	Kept, Keep int
	// Duration is how long the run took, failed or not.
	Duration time.Duration
	// Err says what failed; WhatToDo says what to do about it.
	Err      string
	WhatToDo string
}

// place names the environment a notice is about.
func place(n BackupNotice) string { return n.App + " " + n.Env }

// Title is the notice's one-line headline.
func (n BackupNotice) Title() string {
	where := place(n)
	switch {
	case n.Kind == KindBackup && n.OK:
		return fmt.Sprintf("Scheduled backup %s of %s done", n.Backup.ID, where)
	case n.Kind == KindBackup:
		return "Scheduled backup of " + where + " FAILED"
	case n.OK:
		return fmt.Sprintf("Backup %s of %s verified", n.Backup.ID, where)
	case n.Backup != nil:
		return fmt.Sprintf("Scheduled verify of backup %s of %s FAILED", n.Backup.ID, where)
	default:
		return "Scheduled verify of " + where + " FAILED"
	}
}

// Text renders the notice as plain text: the title, then one line per fact.
func (n BackupNotice) Text() string {
	var b strings.Builder
	b.WriteString(n.Title())
	line := func(format string, args ...any) {
		b.WriteString("\n")
		fmt.Fprintf(&b, format, args...)
	}
	switch {
	case n.Late:
		line("taken late: the run of %s was missed while the bot was down", n.Tick.UTC().Format("2006-01-02 15:04 UTC"))
	case n.First:
		line("taken at start: the first scheduled backup of %s (the schedule's last run, %s, came before relbot ran it)", place(n), n.Tick.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if n.Kind == KindBackup && n.Backup != nil {
		m := n.Backup.Manifest
		line("size %s, %s, %s, %s (%s), in %s", release.Bytes(n.Backup.Size), release.Count(m.Tables, "table"), release.Count(m.Rows, "row"),
			release.Count(m.Files, "file"), release.Bytes(m.FileBytes), round(m.Duration))
		line("sha256 %s", n.Backup.SHA256)
		if n.Keep > 0 {
			line("%s kept (keep %d)", release.Count(n.Kept, "backup"), n.Keep)
		}
		for _, w := range m.Warnings {
			line("warning: %s", w)
		}
	}
	if n.Kind == KindVerify && n.Report != nil {
		r := n.Report
		if r.OK() {
			line("restored into a scratch database: %s, %s, %s match the manifest, in %s", release.Count(r.Tables, "table"), release.Count(r.Rows, "row"),
				release.Count(r.Files, "file"), round(r.Duration))
		} else {
			line("%s found in %s:", release.Count(len(r.Problems), "problem"), round(r.Duration))
			for i, p := range r.Problems {
				if i == 10 {
					line("  … and %d more", len(r.Problems)-i)
					break
				}
				line("  - %s", p)
			}
		}
	}
	if n.Err != "" {
		line("what failed: %s", n.Err)
	}
	if n.WhatToDo != "" {
		line("what to do: %s", n.WhatToDo)
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// LogNotify returns a Notify that writes notices to log: the default when
// no transport is wired (a failure logs at error level).
func LogNotify(log *slog.Logger) func(ctx context.Context, app, channel string, n BackupNotice) {
	return func(ctx context.Context, app, channel string, n BackupNotice) {
		level := slog.LevelInfo
		if !n.OK {
			level = slog.LevelError
		}
		log.Log(ctx, level, "scheduled "+n.Kind, "app", app, "env", n.Env, "channel", channel, "ok", n.OK, "notice", n.Text())
	}
}
