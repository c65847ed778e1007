package nocobase

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// The tables a layout is recognised by: NocoBase keeps its own version in
// applicationVersion(value) and its plugins in applicationPlugins(name,
// version), whatever else the app holds. Both must be there, side by side.
const (
	VersionTable = "applicationVersion"
	PluginsTable = "applicationPlugins"
)

// tableRef is what detection needs of one table.
type tableRef struct {
	schema, name string
	cols         map[string]bool
}

func refsOf(s *pgschema.Schema) []tableRef {
	out := make([]tableRef, 0, len(s.Tables))
	for i := range s.Tables {
		t := &s.Tables[i]
		r := tableRef{schema: t.Schema, name: t.Name, cols: map[string]bool{}}
		for _, c := range t.Columns {
			r.cols[c.Name] = true
		}
		out = append(out, r)
	}
	return out
}

func schemaOf(name string) string {
	if name == "public" {
		return ""
	}
	return name
}

// candidates lists every layout under which the database holds NocoBase's
// versions tables, in a stable order.
func candidates(tables []tableRef) []release.Layout {
	byName := map[string]tableRef{}
	for _, t := range tables {
		byName[t.schema+"\x00"+t.name] = t
	}
	var out []release.Layout
	for _, t := range tables {
		for _, under := range []bool{false, true} {
			l := release.Layout{Schema: schemaOf(t.schema), Underscored: under}
			suffix := l.Table(VersionTable)
			if !strings.HasSuffix(t.name, suffix) || !t.cols[l.Column("value")] {
				continue
			}
			l.TablePrefix = strings.TrimSuffix(t.name, suffix)
			p, ok := byName[t.schema+"\x00"+l.Table(PluginsTable)]
			if !ok || !p.cols[l.Column("name")] {
				continue
			}
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// resolve decides env's layout from what its database shows and what
// apps.yaml states. A stated layout that contradicts the database, and a
// database that holds several installations without a stated layout to
// choose, are refused.
func resolve(env *release.Environment, found []release.Layout) (*release.LayoutReport, error) {
	stated := env.Layout
	rep := &release.LayoutReport{Env: env.Name}
	switch {
	case len(found) == 1 && stated == nil:
		rep.Layout, rep.Found, rep.How = found[0], true, "detected"
	case len(found) == 1:
		if diff := stated.Differences(found[0], "apps.yaml", "the database"); len(diff) > 0 {
			return nil, release.Errorf(release.CodeConflict, "apps.yaml states the NocoBase layout of %s as %s, but its database has NocoBase's tables as %s (%s): correct nocobase: in apps.yaml, or the environment's database",
				env.Name, *stated, found[0], strings.Join(diff, "; "))
		}
		rep.Layout, rep.Found, rep.How = found[0], true, "stated in apps.yaml and detected"
	case len(found) > 1:
		names := make([]string, len(found))
		for i, l := range found {
			names[i] = l.String()
			if stated != nil && len(stated.Differences(l, "", "")) == 0 {
				rep.Layout, rep.Found, rep.How = l, true, "stated in apps.yaml (the database holds other NocoBase tables too)"
			}
		}
		if !rep.Found {
			what := "state which one is the app's"
			if stated != nil {
				what = fmt.Sprintf("apps.yaml states %s, which is none of them", *stated)
			}
			return nil, release.Errorf(release.CodeInvalid, "cannot tell the NocoBase layout of %s: its database holds NocoBase's tables in %d layouts (%s); %s in apps.yaml: nocobase: {schema: ..., table_prefix: ..., underscored: ...}",
				env.Name, len(found), strings.Join(names, "; "), what)
		}
	case stated != nil:
		rep.Layout, rep.How = *stated, "stated in apps.yaml; no NocoBase tables in the database yet"
	default:
		rep.How = "default: no NocoBase tables in the database"
	}
	return rep, nil
}

// LayoutOf resolves env's layout from an inspected schema of its database.
func LayoutOf(s *pgschema.Schema, env *release.Environment) (*release.LayoutReport, error) {
	return resolve(env, candidates(refsOf(s)))
}

// ReadLayout resolves env's layout reading only the catalogue entries of
// the tables it is recognised by: cheap enough for status and variables.
func ReadLayout(ctx context.Context, q pgschema.Querier, env *release.Environment) (*release.LayoutReport, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
		  AND (c.relname LIKE '%applicationVersion' OR c.relname LIKE '%application_version'
		    OR c.relname LIKE '%applicationPlugins' OR c.relname LIKE '%application_plugins')
		GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("look for NocoBase's tables in %s: %w", env.Name, err)
	}
	var tables []tableRef
	var t tableRef
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&t.schema, &t.name, &cols}, func() error {
		r := tableRef{schema: t.schema, name: t.name, cols: map[string]bool{}}
		for _, c := range cols {
			r.cols[c] = true
		}
		tables = append(tables, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look for NocoBase's tables in %s: %w", env.Name, err)
	}
	return resolve(env, candidates(tables))
}

// Layouts implements release.LayoutReader by connecting to each
// environment's database.
type Layouts struct{}

var _ release.LayoutReader = Layouts{}

// Layout connects to env's database and resolves its layout.
func (Layouts) Layout(ctx context.Context, env *release.Environment) (*release.LayoutReport, error) {
	conn, err := connectEnv(ctx, env)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return ReadLayout(ctx, conn, env)
}

func connectEnv(ctx context.Context, env *release.Environment) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(env.Database)
	if err != nil {
		// The cause may quote the DSN and its password: logs only.
		return nil, &release.Error{Code: release.CodeInvalid, Message: fmt.Sprintf("the database URL of %s is not a valid PostgreSQL DSN", env.Name), Err: err}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, release.Errorf(release.CodeUnavailable, "cannot connect to database %s of %s: %w", cfg.Database, env.Name, err)
	}
	return conn, nil
}

// AppVersions reads NocoBase's core version and plugin versions from the
// versions tables under layout l, when the database has them.
func AppVersions(ctx context.Context, q pgschema.Querier, s *pgschema.Schema, l release.Layout) (string, map[string]string, error) {
	var core string
	value := l.Column("value")
	if t := s.Table(l.Key(VersionTable)); t != nil && t.Column(value) != nil {
		err := q.QueryRow(ctx, `SELECT coalesce(`+pgschema.QuoteIdent(value)+`::text, '') FROM `+t.QualifiedName()+` LIMIT 1`).Scan(&core)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", nil, fmt.Errorf("read %s: %w", t.Key(), err)
		}
	}
	var plugins map[string]string
	name, version := l.Column("name"), l.Column("version")
	if t := s.Table(l.Key(PluginsTable)); t != nil && t.Column(name) != nil && t.Column(version) != nil {
		rows, err := q.Query(ctx, `SELECT `+pgschema.QuoteIdent(name)+`::text, coalesce(`+pgschema.QuoteIdent(version)+`::text, '') FROM `+t.QualifiedName()+` ORDER BY 1`)
		if err != nil {
			return "", nil, fmt.Errorf("read %s: %w", t.Key(), err)
		}
		plugins = map[string]string{}
		var n, v string
		if _, err := pgx.ForEachRow(rows, []any{&n, &v}, func() error {
			plugins[n] = v
			return nil
		}); err != nil {
			return "", nil, fmt.Errorf("read %s: %w", t.Key(), err)
		}
	}
	return core, plugins, nil
}

// AppInfo is what a backup records of the app in a database.
type AppInfo struct {
	// Layout is nil when the database holds no NocoBase tables or its
	// layout cannot be decided.
	Layout   *release.Layout
	Core     string
	Plugins  map[string]string
	Warnings []string
}

// ReadApp reads the layout and versions for a backup's manifest. A layout
// problem (apps.yaml contradicts the database, several installations) is
// a warning, not a failure: a backup must still be taken. Versions are then
// read under the layout the database shows when it shows only one.
func ReadApp(ctx context.Context, q pgschema.Querier, s *pgschema.Schema, env *release.Environment) (*AppInfo, error) {
	info := &AppInfo{}
	found := candidates(refsOf(s))
	rep, err := resolve(env, found)
	switch {
	case err != nil && len(found) == 1:
		info.Warnings = append(info.Warnings, release.ErrorMessage(err)+"; the manifest records the layout the database has")
		rep = &release.LayoutReport{Layout: found[0], Found: true}
	case err != nil:
		info.Warnings = append(info.Warnings, release.ErrorMessage(err)+"; core and plugin versions are not recorded")
		return info, nil
	}
	if rep.Found {
		l := rep.Layout
		info.Layout = &l
	}
	if info.Core, info.Plugins, err = AppVersions(ctx, q, s, rep.Layout); err != nil {
		return nil, err
	}
	return info, nil
}
