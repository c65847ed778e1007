package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// VersionView is what --json prints for a version.
type VersionView struct {
	ID          string    `json:"id"`
	App         string    `json:"app"`
	Env         string    `json:"env"`
	Description string    `json:"description"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	Auto        bool      `json:"auto,omitempty"`
	Tables      int       `json:"tables"`
	Rows        int64     `json:"rows"`
	CoreVersion string    `json:"core_version,omitempty"`
}

func versionView(v *release.Version) VersionView {
	return VersionView{ID: v.ID, App: v.App, Env: v.Env, Description: v.Description, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
		Auto: v.Auto, Tables: len(v.Tables), Rows: v.Rows(), CoreVersion: v.CoreVersion}
}

func (d *Dispatcher) versionFields(v *release.Version) []Field {
	fields := []Field{
		{"Version", v.ID},
		{"From", v.App + " " + v.Env},
		{"Description", v.Description},
		{"Made by", v.CreatedBy + ", " + d.when(v.CreatedAt)},
		{"Tables", fmt.Sprintf("%d (%s rows)", len(v.Tables), count(v.Rows()))},
	}
	if v.CoreVersion != "" {
		fields = append(fields, Field{"Core version", v.CoreVersion})
	}
	return fields
}

func (d *Dispatcher) versionCreate(ctx context.Context, req Request, c VersionCreate) (Reply, error) {
	v, err := d.Versions.CreateVersion(ctx, req.User, c.App, c.Description)
	if err != nil {
		return Reply{}, err
	}
	r := newReply(fmt.Sprintf("Version %s saved from %s %s", v.ID, v.App, v.Env), d.versionFields(v), nil, versionView(v),
		"", fmt.Sprintf("Compare it with development later: version diff %s %s", v.App, v.ID))
	r.Public = true
	return r, nil
}

func (d *Dispatcher) versionList(ctx context.Context, _ Request, c VersionList) (Reply, error) {
	vs, err := d.Versions.ListVersions(ctx, c.App)
	if err != nil {
		return Reply{}, err
	}
	views := make([]VersionView, 0, len(vs))
	table := &Table{Columns: []string{"ID", "Created", "By", "Tables", "Rows", "Description"}}
	for _, v := range vs {
		views = append(views, versionView(v))
		desc := oneLineShort(v.Description, 60)
		if v.Auto {
			desc += " (automatic)"
		}
		table.Rows = append(table.Rows, []string{v.ID, d.when(v.CreatedAt), v.CreatedBy, fmt.Sprint(len(v.Tables)), count(v.Rows()), desc})
	}
	if len(views) == 0 {
		return newReply(fmt.Sprintf("No versions of %s yet.", c.App), nil, nil, views, fmt.Sprintf("Save one with: version create %s \"what the configuration holds\"", c.App)), nil
	}
	return newReply(fmt.Sprintf("%s of %s, newest first", release.Count(len(views), "version"), c.App), nil, table, views), nil
}

func (d *Dispatcher) versionDiff(ctx context.Context, _ Request, c VersionDiff) (Reply, error) {
	diff, err := d.Versions.DiffVersion(ctx, c.App, c.From, c.To)
	if err != nil {
		return Reply{}, err
	}
	var added, removed, changed int64
	for _, t := range diff.Tables {
		added += t.Added
		removed += t.Removed
		changed += t.Changed
	}
	title := fmt.Sprintf("%s -> %s: no differences in %s", diff.From, diff.To, release.Count(diff.Unchanged, "table"))
	if len(diff.Tables) > 0 {
		title = fmt.Sprintf("%s -> %s: %s (rows: %s added, %s removed, %s changed); %d unchanged",
			diff.From, diff.To, release.Count(len(diff.Tables), "table differs|tables differ"), count(added), count(removed), count(changed), diff.Unchanged)
	}
	var summary []string
	if c := diff.Changes; c != nil && len(c.Items) > 0 {
		summary = append(summary, "", fmt.Sprintf("Changes from %s to %s: %s", diff.From, diff.To, c.Headline()))
		for _, l := range c.Lines(0) {
			summary = append(summary, "  - "+l)
		}
	}
	if len(diff.Tables) == 0 {
		return newReply(title, nil, nil, diff, summary...), nil
	}
	table := &Table{Columns: []string{"Table", "Added", "Removed", "Changed", "Note"}}
	lines := summary
	for _, t := range diff.Tables {
		table.Rows = append(table.Rows, []string{t.Table, count(t.Added), count(t.Removed), count(t.Changed), t.Note})
		if len(t.Entries) == 0 {
			continue
		}
		lines = append(lines, "", t.Table+":")
		for _, e := range t.Entries {
			line := fmt.Sprintf("  %-7s %s", e.Kind, e.Key)
			if len(e.Columns) > 0 {
				line += ": " + strings.Join(e.Columns, ", ")
			}
			lines = append(lines, line)
		}
		if more := t.Added + t.Removed + t.Changed - int64(len(t.Entries)); more > 0 {
			lines = append(lines, fmt.Sprintf("  ... and %s more", count(more)))
		}
	}
	return newReply(title, nil, table, diff, lines...), nil
}

// VersionRestoreView is what --json prints for a restore.
type VersionRestoreView struct {
	Restored VersionView              `json:"restored"`
	Before   VersionView              `json:"before"`
	Report   VersionRestoreReportView `json:"report"`
}

// VersionRestoreReportView says what a version restore did.
type VersionRestoreReportView struct {
	Tables     int      `json:"tables"`
	Rows       int64    `json:"rows"`
	Notes      []string `json:"notes,omitempty"`
	DurationMS int64    `json:"duration_ms"`
}

func (d *Dispatcher) versionRestore(ctx context.Context, req Request, c VersionRestore) (Reply, error) {
	v, before, rep, err := d.Versions.RestoreVersion(ctx, req.User, c.App, c.Version)
	if err != nil {
		return Reply{}, err
	}
	fields := []Field{
		{"Restored", v.ID + " (" + oneLineShort(v.Description, 60) + ")"},
		{"Into", v.App + " " + v.Env},
		{"Tables", fmt.Sprintf("%d (%s rows)", rep.Tables, count(rep.Rows))},
		{"Took", humanDuration(rep.Duration)},
		{"Undo", fmt.Sprintf("version restore %s %s (the state before, saved as %s)", v.App, before.ID, before.ID)},
	}
	var extra []string
	if len(rep.Notes) > 0 {
		extra = append(extra, "", "Notes:")
		for _, n := range rep.Notes {
			extra = append(extra, "  - "+n)
		}
	}
	r := newReply(fmt.Sprintf("Version %s restored into %s %s", v.ID, v.App, v.Env), fields, nil,
		VersionRestoreView{Restored: versionView(v), Before: versionView(before), Report: VersionRestoreReportView{Tables: rep.Tables, Rows: rep.Rows, Notes: rep.Notes, DurationMS: rep.Duration.Milliseconds()}}, extra...)
	r.Public = true
	return r, nil
}

// oneLineShort keeps the first line of s, cut to n characters.
func oneLineShort(s string, n int) string { return release.Cut(s, n) }
