package nocobase

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// The schema holds no rows, so COLLECTION_MANAGER_SCHEMA is not read: the
// layout has the stated one, else none (LayoutOfDB reads it).
func LayoutOf(s *pgschema.Schema, env *release.Environment) (*release.LayoutReport, error) {
	found := candidates(refsOf(s))
	if env.Layout != nil {
		for i := range found {
			found[i].CollectionSchema = statedCollections(env.Layout, found[i])
		}
	}
	return resolve(env, found)
}

// LayoutOfDB is LayoutOf with the schema of the user collections' tables
// read from the database s was inspected from.
func LayoutOfDB(ctx context.Context, q pgschema.Querier, s *pgschema.Schema, env *release.Environment) (*release.LayoutReport, error) {
	return readDB(ctx, q, env, candidates(refsOf(s)))
}

// readDB resolves env's layout among the found ones with what only the
// database's rows show: the sub-apps kept in schemas of their own, and
// where the user collections' tables live.
func readDB(ctx context.Context, q pgschema.Querier, env *release.Environment, found []release.Layout) (*release.LayoutReport, error) {
	found, subs, err := subApps(ctx, q, found)
	if err != nil {
		return nil, err
	}
	if err := readCollections(ctx, q, env, found); err != nil {
		return nil, err
	}
	rep, err := resolve(env, found)
	if err != nil {
		return nil, err
	}
	rep.SubAppSchemas = subs
	return rep, nil
}

// AppsTable lists the sub-apps of NocoBase's multi-app manager by name.
const AppsTable = "applications"

// subApps sets apart, among the found layouts, those of sub-apps kept in
// schemas of their own (USE_DB_SCHEMA_IN_SUBAPP: each sub-app's tables in
// the schema of its name): a layout in a schema named by another found
// layout's applications table. It returns the others and those schemas.
func subApps(ctx context.Context, q pgschema.Querier, found []release.Layout) ([]release.Layout, []string, error) {
	if len(found) < 2 {
		return found, nil, nil
	}
	sub := map[string]bool{}
	for _, l := range found {
		table := pgschema.Ident(l.SchemaName(), l.Table(AppsTable))
		var names []string
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'name' AND NOT attisdropped)`, table).Scan(&exists); err != nil {
			return nil, nil, fmt.Errorf("look for %s: %w", l.Key(AppsTable), err)
		}
		if !exists {
			continue
		}
		if err := q.QueryRow(ctx, `SELECT coalesce(array_agg(name::text), '{}') FROM `+table).Scan(&names); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", l.Key(AppsTable), err)
		}
		for _, o := range found {
			if o.SchemaName() != l.SchemaName() && slices.Contains(names, o.SchemaName()) {
				sub[o.SchemaName()] = true
			}
		}
	}
	var rest []release.Layout
	var schemas []string
	for _, l := range found {
		if sub[l.SchemaName()] {
			if !slices.Contains(schemas, l.SchemaName()) {
				schemas = append(schemas, l.SchemaName())
			}
			continue
		}
		rest = append(rest, l)
	}
	sort.Strings(schemas)
	return rest, schemas, nil
}

// CollectionsTable lists the user's collections: name, and options whose
// tableName, when set, names the table instead.
const CollectionsTable = "collections"

// statedCollections is the collection schema stated for env in the form a
// detected layout l holds it ("" when it is l's own schema).
func statedCollections(stated *release.Layout, l release.Layout) string {
	if name := stated.CollectionSchemaName(); name != l.SchemaName() {
		return name
	}
	return ""
}

// readCollections fills in each found layout where its user collections'
// tables live (COLLECTION_MANAGER_SCHEMA): the schema, other than the
// system tables', holding the tables of the collections its collections
// table lists. Collections without a table (SQL collections, views of
// other sources) tell nothing; several such schemas are refused unless
// apps.yaml states which one is the setting.
func readCollections(ctx context.Context, q pgschema.Querier, env *release.Environment, found []release.Layout) error {
	for i := range found {
		others, err := collectionSchemas(ctx, q, found[i])
		if err != nil {
			return err
		}
		switch {
		case len(others) == 0:
		case len(others) == 1:
			found[i].CollectionSchema = others[0]
		case env.Layout != nil && slices.Contains(others, env.Layout.CollectionSchemaName()):
			found[i].CollectionSchema = env.Layout.CollectionSchemaName()
		default:
			return release.Errorf(release.CodeInvalid, "cannot tell COLLECTION_MANAGER_SCHEMA of %s: the tables of the collections listed in %s are in several schemas besides %s (%s); state the one NocoBase was started with in apps.yaml: nocobase: {collection_schema: ...}",
				env.Name, found[i].Key(CollectionsTable), found[i].SchemaName(), strings.Join(others, ", "))
		}
	}
	return nil
}

// collectionSchemas lists the schemas other than l's own that hold the
// table of a collection listed in l's collections table while l's schema
// does not.
func collectionSchemas(ctx context.Context, q pgschema.Querier, l release.Layout) ([]string, error) {
	var exists bool
	table := pgschema.Ident(l.SchemaName(), l.Table(CollectionsTable))
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND
		(SELECT count(*) = 2 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1) AND attname IN ('name', 'options') AND NOT attisdropped)`, table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for %s: %w", l.Key(CollectionsTable), err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT coalesce(nullif(options::jsonb->>'tableName', ''), name)::text FROM `+table+` WHERE name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.Key(CollectionsTable), err)
	}
	var names []string
	var n string
	if _, err := pgx.ForEachRow(rows, []any{&n}, func() error {
		names = append(names, l.Table(n))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read %s: %w", l.Key(CollectionsTable), err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	rows, err = q.Query(ctx, `SELECT DISTINCT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND n.nspname <> $2
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class o JOIN pg_catalog.pg_namespace n2 ON n2.nspname = $2 WHERE o.relname = c.relname AND o.relnamespace = n2.oid)
		ORDER BY 1`, names, l.SchemaName())
	if err != nil {
		return nil, fmt.Errorf("look for the tables of the collections in %s: %w", l.Key(CollectionsTable), err)
	}
	var out []string
	if _, err := pgx.ForEachRow(rows, []any{&n}, func() error {
		out = append(out, n)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look for the tables of the collections in %s: %w", l.Key(CollectionsTable), err)
	}
	return out, nil
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
	return readDB(ctx, q, env, candidates(tables))
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
	found, subs, err := subApps(ctx, q, candidates(refsOf(s)))
	if err != nil {
		return nil, err
	}
	if len(subs) > 0 {
		info.Warnings = append(info.Warnings, release.SubAppWarning(subs))
	}
	if err := readCollections(ctx, q, env, found); err != nil {
		info.Warnings = append(info.Warnings, release.ErrorMessage(err)+"; core and plugin versions are not recorded")
		return info, nil
	}
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
