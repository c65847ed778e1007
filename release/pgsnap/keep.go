package pgsnap

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// Secrets stay in their environment: a restore told to keep tables
// (release.RestoreOptions.KeepTables) leaves the target's own rows of them
// in place and never loads the backup's.

type tableRef struct{ Schema, Name string }

func (t tableRef) ident() string { return pgschema.Ident(t.Schema, t.Name) }
func (t tableRef) key() string   { return pgschema.Key(t.Schema, t.Name) }

// appTable is the table NocoBase calls name under layout l: the one way
// relbot names NocoBase's tables (release.Layout, resolved by
// release/nocobase as `var list` resolves it).
func appTable(l release.Layout, name string) tableRef {
	return tableRef{Schema: l.SchemaName(), Name: l.Table(name)}
}

// exists reports whether the table is in the database.
func (t tableRef) exists(ctx context.Context, q pgschema.Querier) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.ident()).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for table %s: %w", t.key(), err)
	}
	return ok, nil
}

// keptRows holds the target's own rows of the kept tables while the
// target is rebuilt, in temporary tables of the restore's transaction (as
// jsonb, so that they survive the target's types being dropped and are put
// back by column name whatever the backup's column order).
type keptRows struct {
	names  []string             // NocoBase names, e.g. environmentVariables
	env    *release.Environment // the target, whose layout names its tables
	tables []keptTable
	skip   map[string]bool     // the restored tables whose backup rows are not loaded
	dest   map[string]tableRef // by NocoBase name: the restored table
}

type keptTable struct {
	name string
	from tableRef
	temp string
	rows int64
}

func newKept(opts release.RestoreOptions, target *release.Environment) *keptRows {
	return &keptRows{names: opts.KeepTables, env: target}
}

// layoutError is why the tables to keep cannot be named: the restore is
// refused rather than risk loading another environment's secrets.
func (k *keptRows) layoutError(err error, of string) error {
	if release.ErrorCode(err) == release.CodeInternal {
		return fmt.Errorf("name the tables to keep (%s) in %s: %w", strings.Join(k.names, ", "), of, err)
	}
	return release.Errorf(release.ErrorCode(err), "cannot tell which tables of %s hold %s, so nothing was restored: %s", of, strings.Join(k.names, ", "), release.ErrorMessage(err))
}

// keepRows copies the target's rows of the kept tables, named under the
// target's layout (stated in apps.yaml or detected), into temporary
// tables; tx must be the transaction that rebuilds the target.
func (k *keptRows) keepRows(ctx context.Context, tx pgx.Tx) error {
	if len(k.names) == 0 {
		return nil
	}
	rep, err := nocobase.ReadLayout(ctx, tx, k.env)
	if err != nil {
		return k.layoutError(err, k.env.Name)
	}
	if len(rep.SubAppSchemas) > 0 {
		// Their variables would be replaced by the backup's.
		return release.Errorf(release.CodeIncompatible, "cannot keep the secrets of %s's sub-apps, so nothing was restored: %s", k.env.Name, release.SubAppWarning(rep.SubAppSchemas))
	}
	for _, name := range k.names {
		ref := appTable(rep.Layout, name)
		ok, err := ref.exists(ctx, tx)
		if err != nil {
			return err
		}
		if !ok {
			continue // nothing of the target's to keep
		}
		temp := fmt.Sprintf("relbot_keep_%d", len(k.tables))
		tag, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE "+temp+" ON COMMIT DROP AS SELECT pg_catalog.to_jsonb(t) AS r FROM "+ref.ident()+" t")
		if err != nil {
			return fmt.Errorf("keep the target's rows of %s: %w", ref.key(), err)
		}
		k.tables = append(k.tables, keptTable{name: name, from: ref, temp: temp, rows: tag.RowsAffected()})
	}
	return nil
}

// resolve names the kept tables in the restored schema, whose rows in the
// backup are not loaded: under the layout the backup recorded, else the
// one the restored database shows (archives of an older relbot).
func (k *keptRows) resolve(ctx context.Context, q pgschema.Querier, meta *Meta) (map[string]bool, error) {
	k.skip, k.dest = map[string]bool{}, map[string]tableRef{}
	if len(k.names) == 0 {
		return k.skip, nil
	}
	var l release.Layout
	if meta.Layout != nil {
		l = *meta.Layout
	} else {
		rep, err := nocobase.ReadLayout(ctx, q, k.env)
		if err != nil {
			return nil, k.layoutError(err, "the backup")
		}
		l = rep.Layout
	}
	for _, name := range k.names {
		ref := appTable(l, name)
		ok, err := ref.exists(ctx, q)
		if err != nil {
			return nil, err
		}
		if ok {
			k.skip[ref.key()] = true
			k.dest[name] = ref
		}
	}
	return k.skip, nil
}

// put writes the kept rows into the restored tables, column by column
// name, and names what it did.
func (k *keptRows) put(ctx context.Context, tx pgx.Tx, meta *Meta) ([]string, error) {
	warnings := notLoaded(meta, k.skip)
	for _, kt := range k.tables {
		dest, ok := k.dest[kt.name]
		if !ok {
			if kt.rows > 0 {
				warnings = append(warnings, fmt.Sprintf("the target's %d rows of %s were not kept: the backup has no such table", kt.rows, kt.from.key()))
			}
			continue
		}
		var cols []string
		var identity bool
		err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}'), coalesce(bool_or(a.attidentity <> ''), false)
			FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
				AND EXISTS (SELECT 1 FROM `+kt.temp+` k WHERE k.r ? a.attname::text)`, dest.ident()).Scan(&cols, &identity)
		if err != nil {
			return nil, fmt.Errorf("put back the rows of %s: %w", dest.key(), err)
		}
		if kt.rows > 0 && len(cols) == 0 {
			return nil, release.Errorf(release.CodeIncompatible, "cannot keep the target's rows of %s: the backup's table of that name has none of its columns", kt.from.key())
		}
		if kt.rows == 0 {
			continue
		}
		list := pgschema.ColumnList(cols)
		sel := make([]string, len(cols))
		for i, c := range cols {
			sel[i] = "p." + pgschema.QuoteIdent(c)
		}
		override := ""
		if identity {
			override = " OVERRIDING SYSTEM VALUE"
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+dest.ident()+" ("+list+")"+override+" SELECT "+strings.Join(sel, ", ")+
			" FROM "+kt.temp+" k, pg_catalog.jsonb_populate_record(NULL::"+dest.ident()+", k.r) p"); err != nil {
			return nil, fmt.Errorf("put back the target's rows of %s: %w", dest.key(), err)
		}
		warnings = append(warnings, fmt.Sprintf("%s keeps its own %d rows (secrets stay in their environment)", dest.key(), kt.rows))
	}
	return warnings, nil
}

// notLoaded names the backup's rows a restore left out.
func notLoaded(meta *Meta, skip map[string]bool) []string {
	var out []string
	for _, ti := range meta.Tables {
		if skip[ti.Key] && ti.Rows > 0 {
			out = append(out, fmt.Sprintf("the backup's %d rows of %s were not restored: they hold another environment's secrets", ti.Rows, ti.Key))
		}
	}
	return out
}
