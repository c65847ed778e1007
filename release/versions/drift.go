package versions

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// envState is what drift reads of one environment.
type envState struct {
	name    string
	schema  *pgschema.Schema
	core    string
	plugins map[string]string
	scope   map[string]bool // tables in migration scope (rule not skip)
	layout  *release.LayoutReport
}

func readState(ctx context.Context, app *release.App, env *release.Environment) (*envState, error) {
	conn, err := appdb.Connect(ctx, env.Database, "", env.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	st := &envState{name: env.Name}
	if st.schema, err = inspect(ctx, tx); err != nil {
		return nil, fmt.Errorf("inspect %s: %w", env.Name, err)
	}
	layout, err := nocobase.LayoutOf(st.schema, env)
	if err != nil {
		return nil, err
	}
	st.layout = layout
	if st.core, st.plugins, err = nocobase.AppVersions(ctx, tx, st.schema, layout.Layout); err != nil {
		return nil, err
	}
	st.scope, err = scope(app, layout.Layout, st.schema)
	return st, err
}

// scope lists the tables whose rule is not skip. apps.yaml overrides may
// name tables an environment does not have yet (that is drift, not an
// error here): only those that exist are applied.
func scope(app *release.App, l release.Layout, s *pgschema.Schema) (map[string]bool, error) {
	a := *app
	a.Rules = map[string]release.Rule{}
	for name, r := range app.Rules {
		if _, ok := appdb.ResolveName(l, s, name); ok {
			a.Rules[name] = r
		}
	}
	rules, err := appdb.Rules(&a, l, s)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range rules {
		if r.Rule != release.RuleSkip {
			out[r.Table] = true
		}
	}
	return out, nil
}

// Drift compares two environments: the structure of every table in
// migration scope (columns, constraints, indexes and triggers by name)
// and the core and plugin versions.
func (e *Engine) Drift(ctx context.Context, app *release.App, a, b *release.Environment) (*release.Drift, error) {
	sa, err := readState(ctx, app, a)
	if err != nil {
		return nil, err
	}
	sb, err := readState(ctx, app, b)
	if err != nil {
		return nil, err
	}
	d := &release.Drift{App: app.Name, From: a.Name, To: b.Name, Schema: []release.SchemaDrift{}}
	names := map[string]bool{}
	for n := range sa.scope {
		names[n] = true
	}
	for n := range sb.scope {
		names[n] = true
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		ta, tb := sa.schema.Table(name), sb.schema.Table(name)
		var diffs []string
		switch {
		case tb == nil:
			diffs = []string{fmt.Sprintf("table only in %s (missing in %s)", a.Name, b.Name)}
		case ta == nil:
			diffs = []string{fmt.Sprintf("table only in %s (missing in %s)", b.Name, a.Name)}
		default:
			diffs = tableDrift(ta, tb, a.Name, b.Name)
		}
		if len(diffs) > 0 {
			d.Schema = append(d.Schema, release.SchemaDrift{Table: name, Differences: diffs})
		}
	}
	d.Versions = versionDrift(sa, sb)
	// Layouts that differ make every table differ by name; say why first.
	if diff := sa.layout.Layout.Differences(sb.layout.Layout, a.Name, b.Name); len(diff) > 0 && sa.layout.Found && sb.layout.Found {
		d.Versions = append([]string{"NocoBase layout differs (migrations between them are refused): " + strings.Join(diff, "; ")}, d.Versions...)
	}
	return d, nil
}

func tableDrift(ta, tb *pgschema.Table, an, bn string) []string {
	var out []string
	for _, ca := range ta.Columns {
		cb := tb.Column(ca.Name)
		if cb == nil {
			out = append(out, fmt.Sprintf("column %s (%s) only in %s", ca.Name, ca.Type, an))
			continue
		}
		if ca.Type != cb.Type {
			out = append(out, fmt.Sprintf("column %s: type %s in %s, %s in %s", ca.Name, ca.Type, an, cb.Type, bn))
		}
		if ca.NotNull != cb.NotNull {
			out = append(out, fmt.Sprintf("column %s: %s in %s, %s in %s", ca.Name, nullability(ca.NotNull), an, nullability(cb.NotNull), bn))
		}
		if ca.Default != cb.Default {
			out = append(out, fmt.Sprintf("column %s: default %s in %s, %s in %s", ca.Name, orNone(ca.Default), an, orNone(cb.Default), bn))
		}
		if ca.Generated != cb.Generated || ca.Identity != cb.Identity {
			out = append(out, fmt.Sprintf("column %s: generated or identity differs between %s and %s", ca.Name, an, bn))
		}
	}
	for _, cb := range tb.Columns {
		if ta.Column(cb.Name) == nil {
			out = append(out, fmt.Sprintf("column %s (%s) only in %s", cb.Name, cb.Type, bn))
		}
	}
	named := func(kind string, wa, wb map[string]string) {
		for _, n := range slices.Sorted(maps.Keys(wa)) {
			db, ok := wb[n]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s %s only in %s", kind, n, an))
			case db != wa[n]:
				out = append(out, fmt.Sprintf("%s %s differs: %s in %s, %s in %s", kind, n, wa[n], an, db, bn))
			}
		}
		for _, n := range slices.Sorted(maps.Keys(wb)) {
			if _, ok := wa[n]; !ok {
				out = append(out, fmt.Sprintf("%s %s only in %s", kind, n, bn))
			}
		}
	}
	constraints := func(t *pgschema.Table) map[string]string {
		m := map[string]string{}
		for _, c := range t.Constraints {
			m[c.Name] = c.Def
		}
		return m
	}
	indexes := func(t *pgschema.Table) map[string]string {
		m := map[string]string{}
		for _, ix := range t.Indexes {
			m[ix.Name] = ix.Def
		}
		return m
	}
	triggers := func(t *pgschema.Table) map[string]string {
		m := map[string]string{}
		for _, tg := range t.Triggers {
			m[tg.Name] = tg.Def
		}
		return m
	}
	named("constraint", constraints(ta), constraints(tb))
	named("index", indexes(ta), indexes(tb))
	named("trigger", triggers(ta), triggers(tb))
	return out
}

func nullability(notNull bool) string {
	if notNull {
		return "NOT NULL"
	}
	return "nullable"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// versionDrift lists core and plugin version differences; plugins that
// differ the same way are told in one line (a core upgrade moves most of
// them together).
func versionDrift(a, b *envState) []string {
	out := []string{}
	if a.core != b.core {
		out = append(out, fmt.Sprintf("core: %s in %s, %s in %s", orNone(a.core), a.name, orNone(b.core), b.name))
	}
	names := map[string]bool{}
	for n := range a.plugins {
		names[n] = true
	}
	for n := range b.plugins {
		names[n] = true
	}
	byChange := map[string][]string{}
	for n := range names {
		va, oka := a.plugins[n]
		vb, okb := b.plugins[n]
		switch {
		case !okb:
			byChange[fmt.Sprintf("only in %s", a.name)] = append(byChange[fmt.Sprintf("only in %s", a.name)], n+" "+va)
		case !oka:
			byChange[fmt.Sprintf("only in %s", b.name)] = append(byChange[fmt.Sprintf("only in %s", b.name)], n+" "+vb)
		case va != vb:
			change := fmt.Sprintf("%s in %s, %s in %s", orNone(va), a.name, orNone(vb), b.name)
			byChange[change] = append(byChange[change], n)
		}
	}
	return append(out, appdb.PluginChanges(byChange)...)
}
