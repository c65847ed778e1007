package migrate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// Check reads what a deploy must know of the target before it is
// requested: whether the file was applied there (the marker), the plugins
// the file registers or enables that the target does not have, and the
// change summary approvers see.
func (e *Engine) Check(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment) (*release.TargetCheck, error) {
	f, tx, end, err := e.openOn(ctx, a, app, target, nil)
	if err != nil {
		return nil, err
	}
	defer end()
	c := &release.TargetCheck{}
	if c.AlreadyApplied, err = f.applied(ctx, tx, false); err != nil || c.AlreadyApplied != nil {
		return c, err
	}
	tgt, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	if c.NewPlugins, err = f.newPlugins(ctx, tx, tgt); err != nil {
		return nil, err
	}
	if c.Changes, err = f.changes(ctx, tx, tgt, target.Name, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// plugin is one row of NocoBase's plugin registry (applicationPlugins).
type plugin struct {
	name, packageName, version string
	enabled, installed         bool
}

// isPluginTable reports whether a table is NocoBase's plugin registry in
// any layout: applicationPlugins, or with DB_TABLE_PREFIX and
// DB_UNDERSCORED nb_application_plugins.
func isPluginTable(name string) bool {
	return strings.HasSuffix(fold(name), "applicationplugins")
}

// fold compares names across NocoBase's camelCase and snake_case layouts.
func fold(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

// pluginColumns maps the registry's fields to the table's column names
// (packageName or package_name); name is required.
func pluginColumns(cols []string) (map[string]string, bool) {
	out := map[string]string{}
	for _, c := range cols {
		switch k := fold(c); k {
		case "name", "packagename", "version", "enabled", "installed":
			out[k] = c
		}
	}
	return out, out["name"] != ""
}

// newPlugins compares the file's plugin registry with the target's. A
// plugin is new to the target when the target has no row for it (by name
// or package name), or the file has it enabled where the target has not
// installed or not enabled it. A file without a registry brings none.
func (f *File) newPlugins(ctx context.Context, tx pgx.Tx, tgt *pgschema.Schema) ([]release.NewPlugin, error) {
	var td *TableData
	for i := range f.Meta.Tables {
		if t := f.Meta.Schema.Table(f.Meta.Tables[i].Key); t != nil && isPluginTable(t.Name) {
			td = &f.Meta.Tables[i]
			break
		}
	}
	if td == nil {
		return nil, nil
	}
	theirs, err := f.filePlugins(*td)
	if err != nil {
		return nil, err
	}
	ours, err := targetPlugins(ctx, tx, tgt, td.Key)
	if err != nil {
		return nil, err
	}
	byName, byPackage := map[string]plugin{}, map[string]plugin{}
	for _, p := range ours {
		byName[p.name] = p
		if p.packageName != "" {
			byPackage[p.packageName] = p
		}
	}
	var out []release.NewPlugin
	for _, p := range theirs {
		have, ok := byName[p.name]
		if !ok && p.packageName != "" {
			have, ok = byPackage[p.packageName]
		}
		state := ""
		switch {
		case !ok:
			state = "not registered"
		case p.enabled && !have.installed:
			state = "registered but not installed"
		case p.enabled && !have.enabled:
			state = "installed but disabled"
		default:
			continue
		}
		out = append(out, release.NewPlugin{Name: p.name, PackageName: p.packageName, Version: p.version, InTarget: state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// filePlugins reads the registry rows the file carries (COPY text).
func (f *File) filePlugins(td TableData) ([]plugin, error) {
	cols, ok := pluginColumns(td.Columns)
	if !ok {
		return nil, nil
	}
	idx := map[string]int{}
	for i, c := range td.Columns {
		idx[c] = i
	}
	r, err := f.Rows(td)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(r)
	var out []plugin
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			fields := strings.Split(line, "\t")
			get := func(k string) (string, bool) {
				c, ok := cols[k]
				if !ok || idx[c] >= len(fields) {
					return "", false
				}
				return copyField(fields[idx[c]])
			}
			var p plugin
			p.name, _ = get("name")
			p.packageName, _ = get("packagename")
			p.version, _ = get("version")
			en, hasEn := get("enabled")
			in, hasIn := get("installed")
			// Without the columns, or NULL, a row counts as enabled and
			// installed: the reading that names more plugins as new.
			p.enabled = !hasEn || en == "t"
			p.installed = !hasIn || in == "t"
			out = append(out, p)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the plugins of %s: %w", td.Key, err)
		}
	}
}

// targetPlugins reads the target's registry: the table of the same key as
// the file's, else any registry table; none means no plugins.
func targetPlugins(ctx context.Context, tx pgx.Tx, tgt *pgschema.Schema, key string) ([]plugin, error) {
	t := tgt.Table(key)
	if t == nil {
		for i := range tgt.Tables {
			if isPluginTable(tgt.Tables[i].Name) && !appdb.IsOwnSchema(tgt.Tables[i].Schema) {
				t = &tgt.Tables[i]
				break
			}
		}
	}
	if t == nil {
		return nil, nil
	}
	names := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	cols, ok := pluginColumns(names)
	if !ok {
		return nil, nil
	}
	text := func(k string) string {
		if c, ok := cols[k]; ok {
			return "coalesce(" + pgschema.QuoteIdent(c) + "::text, '')"
		}
		return "''"
	}
	// A registry without the flag columns has no such state: its rows
	// count as enabled and installed. A NULL flag counts as not set, so a
	// plugin the target may lack is named rather than passed over.
	flag := func(k string) string {
		if c, ok := cols[k]; ok {
			return "coalesce(" + pgschema.QuoteIdent(c) + "::text, 'false') IN ('true', 't')"
		}
		return "true"
	}
	rows, err := tx.Query(ctx, "SELECT "+text("name")+", "+text("packagename")+", "+flag("enabled")+", "+flag("installed")+" FROM "+t.QualifiedName())
	if err != nil {
		return nil, fmt.Errorf("read the plugins of the target: %w", err)
	}
	var out []plugin
	var p plugin
	_, err = pgx.ForEachRow(rows, []any{&p.name, &p.packageName, &p.enabled, &p.installed}, func() error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the plugins of the target: %w", err)
	}
	return out, nil
}

// copyField decodes one field of COPY's text format; false for NULL.
func copyField(s string) (string, bool) {
	if s == `\N` {
		return "", false
	}
	return string(appdb.CopyUnescape([]byte(s))), true
}
