package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// MigrationView is what --json prints for a migration.
type MigrationView struct {
	ID        string                   `json:"id"`
	App       string                   `json:"app"`
	SourceEnv string                   `json:"source_env"`
	Version   string                   `json:"version,omitempty"`
	Note      string                   `json:"note,omitempty"`
	CreatedBy string                   `json:"created_by"`
	CreatedAt time.Time                `json:"created_at"`
	Size      int64                    `json:"size_bytes"`
	SHA256    string                   `json:"sha256"`
	Summary   release.MigrationSummary `json:"summary"`
	Applies   []MigrationRunView       `json:"applies,omitempty"`
	// Changes (migration show) is the change summary against the next
	// environment that lacks it, as that environment is now.
	Changes *release.Changes `json:"changes,omitempty"`
}

// MigrationRunView is one apply of a migration.
type MigrationRunView struct {
	Env       string    `json:"env"`
	By        string    `json:"by"`
	StartedAt time.Time `json:"started_at"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	// AlreadyApplied is set on a no-op: the target had the file already,
	// so this run changed nothing (the target's marker has one row).
	AlreadyApplied *release.AppliedBy `json:"already_applied,omitempty"`
}

func migrationView(m *release.Migration, runs []*release.MigrationRun) MigrationView {
	v := MigrationView{ID: m.ID, App: m.App, SourceEnv: m.SourceEnv, Version: m.Version, Note: m.Note, CreatedBy: m.CreatedBy,
		CreatedAt: m.CreatedAt, Size: m.Size, SHA256: m.SHA256, Summary: m.Summary}
	for _, r := range runs {
		rv := MigrationRunView{Env: r.Env, By: r.By, StartedAt: r.StartedAt, OK: r.OK, Error: r.Error}
		if r.Result != nil {
			rv.AlreadyApplied = r.Result.AlreadyApplied
		}
		v.Applies = append(v.Applies, rv)
	}
	return v
}

// rulesTable lists every table's effective rule, carried rows first.
func rulesTable(s release.MigrationSummary) *Table {
	t := &Table{Columns: []string{"Table", "Rule", "Rows", "Why"}}
	for _, carried := range []bool{true, false} {
		for _, ts := range s.Tables {
			if ts.Carried != carried {
				continue
			}
			rows := count(ts.Rows)
			if !ts.Carried {
				rows = "-"
			}
			t.Rows = append(t.Rows, []string{ts.Table, string(ts.Rule), rows, ts.Reason})
		}
	}
	return t
}

func migrationFields(m *release.Migration) []Field {
	carried, rows := 0, int64(0)
	for _, t := range m.Summary.Tables {
		if t.Carried {
			carried++
			rows += t.Rows
		}
	}
	vars := release.List(m.Summary.Variables) // "none" when it references none
	fields := []Field{
		{"Migration", m.ID},
		{"From", m.App + " " + m.SourceEnv},
		{"Made by", m.CreatedBy},
		{"Tables", fmt.Sprintf("%d, rows of %d carried (%s)", len(m.Summary.Tables), carried, release.Count(rows, "row"))},
		{"Variables", vars},
		{"Size", release.Bytes(m.Size)},
		{"SHA-256", m.SHA256},
	}
	if m.Summary.CoreVersion != "" {
		fields = append(fields, Field{"Core version", m.Summary.CoreVersion})
	}
	if m.Summary.Layout != nil {
		fields = append(fields, Field{"NocoBase layout", m.Summary.Layout.String()})
	}
	if m.Note != "" {
		fields = append(fields, Field{"Note", m.Note})
	}
	return fields
}

func (d *Dispatcher) migrationCreate(ctx context.Context, req Request, c MigrationCreate) (Reply, error) {
	m, err := d.Migrations.CreateMigration(ctx, req.User, c.App, c.Version, c.Note)
	if err != nil {
		return Reply{}, err
	}
	extra := append(warningLines(m.Summary.Warnings), "", fmt.Sprintf("See what it would do: migration plan %s %s", m.ID, nextEnv(d, m)))
	r := newReply(fmt.Sprintf("Migration %s created from %s %s", m.ID, m.App, m.SourceEnv), migrationFields(m), rulesTable(m.Summary), migrationView(m, nil), extra...)
	r.Public = true
	return r, nil
}

// nextEnv names the environment after the source, for the hint.
func nextEnv(d *Dispatcher, m *release.Migration) string {
	if a, err := d.Core.App(m.App); err == nil && len(a.Environments) > 1 {
		return a.Environments[1].Name
	}
	return "ENV"
}

func (d *Dispatcher) migrationList(ctx context.Context, _ Request, c MigrationList) (Reply, error) {
	ms, err := d.Migrations.ListMigrations(ctx, c.App)
	if err != nil {
		return Reply{}, err
	}
	views := make([]MigrationView, 0, len(ms))
	table := &Table{Columns: []string{"ID", "Created", "By", "From", "Carried rows", "Variables", "Note"}}
	for _, m := range ms {
		views = append(views, migrationView(m, nil))
		var rows int64
		for _, t := range m.Summary.Tables {
			if t.Carried {
				rows += t.Rows
			}
		}
		table.Rows = append(table.Rows, []string{m.ID, d.when(m.CreatedAt), m.CreatedBy, m.SourceEnv, count(rows), fmt.Sprint(len(m.Summary.Variables)), m.Note})
	}
	if len(views) == 0 {
		return newReply(fmt.Sprintf("No migrations of %s yet.", c.App), nil, nil, views, fmt.Sprintf("Make one with: migration create %s --note \"what changed\"", c.App)), nil
	}
	return newReply(fmt.Sprintf("%s of %s, newest first", release.Count(len(views), "migration"), c.App), nil, table, views), nil
}

func (d *Dispatcher) migrationShow(ctx context.Context, _ Request, c MigrationShow) (Reply, error) {
	m, runs, err := d.Migrations.ShowMigration(ctx, c.Migration)
	if err != nil {
		return Reply{}, err
	}
	fields := migrationFields(m)
	fields = append(fields, Field{"Created", d.when(m.CreatedAt)})
	extra := warningLines(m.Summary.Warnings)
	if len(runs) > 0 {
		extra = append(extra, "", "Applied:")
		for _, r := range runs {
			state := "  ok"
			switch {
			case !r.OK:
				state = "  FAILED: " + r.Error
			case r.Result != nil && r.Result.AlreadyApplied != nil:
				// A re-apply that found the file applied changed nothing.
				state = ": no-op, already applied on " + d.when(r.Result.AlreadyApplied.At)
			}
			extra = append(extra, fmt.Sprintf("  %s  %s by %s%s", d.when(r.StartedAt), r.Env, r.By, state))
		}
	}
	view := migrationView(m, runs)
	if c := d.Migrations.NextChanges(ctx, m, runs); c != nil {
		view.Changes = c
		extra = append(extra, "", fmt.Sprintf("Changes in %s, as it is now: %s", c.Against, c.Headline()))
		for _, l := range c.Lines(0) {
			extra = append(extra, "  - "+l)
		}
	}
	return newReply(fmt.Sprintf("Migration %s", m.ID), fields, rulesTable(m.Summary), view, extra...), nil
}

func (d *Dispatcher) migrationPlan(ctx context.Context, _ Request, c MigrationPlan) (Reply, error) {
	m, plan, err := d.Migrations.PlanMigration(ctx, c.Migration, c.Env)
	if err != nil {
		return Reply{}, err
	}
	fields := []Field{{"Migration", m.ID + " (" + m.App + " " + m.SourceEnv + " -> " + c.Env + ")"}, {"SHA-256", m.SHA256}}
	if done := plan.AlreadyApplied; done != nil {
		fields = append(fields, Field{"Applied", fmt.Sprintf("%s by %s", d.when(done.At), done.By)})
		return newReply(fmt.Sprintf("%s was applied to %s %s already, on %s by %s", m.ID, m.App, c.Env, d.when(done.At), done.By), fields, nil, plan,
			"No changes: applying it again would change nothing, and deploy refuses it. Make a new migration for further changes."), nil
	}
	var lines []string
	section := func(title string, items []string, none string) {
		lines = append(lines, title)
		if len(items) == 0 {
			lines = append(lines, "  "+none)
		}
		for _, it := range items {
			lines = append(lines, "  - "+it)
		}
		lines = append(lines, "")
	}
	if c := plan.Changes; c != nil {
		section(fmt.Sprintf("Changes in %s: %s", c.Against, c.Headline()), c.Lines(0), "none")
	}
	section("DESTRUCTIVE changes:", plan.Destructive, "none")
	section("Variables missing in "+c.Env+":", plan.MissingVariables, "none")
	section("Version changes:", plan.VersionChanges, "none")
	var plugins []string
	for _, p := range plan.NewPlugins {
		plugins = append(plugins, p.String())
	}
	if len(plugins) > 0 {
		plugins = append(plugins, fmt.Sprintf("deploy %s %s needs --allow-new-plugins (or the confirmation in Slack) to go on with them", m.ID, c.Env))
	}
	section("Plugins "+c.Env+" does not have:", plugins, "none")
	if len(plan.Warnings) > 0 {
		section("Warnings:", plan.Warnings, "")
	}
	rows := &Table{Columns: []string{"Table", "Rule", "Insert", "Update", "Delete", "Note"}}
	unchanged := 0
	for _, t := range plan.Tables {
		if t.Insert == 0 && t.Update == 0 && t.Delete == 0 && t.Note == "" {
			unchanged++
			continue
		}
		rows.Rows = append(rows.Rows, []string{t.Table, string(t.Rule), count(t.Insert), count(t.Update), count(t.Delete), t.Note})
	}
	var b strings.Builder
	writeTable(&b, rows)
	lines = append(lines, "Rows:", strings.TrimRight(b.String(), "\n"))
	if unchanged > 0 {
		lines = append(lines, fmt.Sprintf("(%s more whose rows stay as they are)", release.Count(unchanged, "table")))
	}
	lines = append(lines, "", fmt.Sprintf("Statements, in order (%d):", len(plan.Statements)))
	for _, s := range plan.Statements {
		lines = append(lines, "  "+strings.ReplaceAll(s, "\n", "\n  ")+";")
	}
	return newReply(fmt.Sprintf("Plan of %s for %s %s", m.ID, m.App, c.Env), fields, nil, plan, lines...), nil
}
