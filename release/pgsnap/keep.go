package pgsnap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// Secrets stay in their environment: a restore told to keep tables
// (release.RestoreOptions.KeepTables) leaves the target's own rows of them
// in place and never loads the backup's.

type tableRef struct{ Schema, Name string }

func (t tableRef) ident() string { return pgschema.Ident(t.Schema, t.Name) }
func (t tableRef) key() string   { return pgschema.Key(t.Schema, t.Name) }

// findAppTable finds the tables that hold NocoBase's table name (such as
// environmentVariables) in the database, whatever its layout: the name
// itself or in snake_case (DB_UNDERSCORED), with or without a table prefix
// (DB_TABLE_PREFIX, e.g. nb_environment_variables), in any schema
// (DB_SCHEMA). It is the one place that knows those variants.
func findAppTable(ctx context.Context, q pgschema.Querier, name string) ([]tableRef, error) {
	snake := snakeCase(name)
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
			AND (c.relname IN ($1, $2) OR right(c.relname, length($1) + 1) = '_' || $1 OR right(c.relname, length($2) + 1) = '_' || $2)
		ORDER BY 1, 2`, name, snake)
	if err != nil {
		return nil, fmt.Errorf("look for table %s: %w", name, err)
	}
	var out []tableRef
	var t tableRef
	_, err = pgx.ForEachRow(rows, []any{&t.Schema, &t.Name}, func() error {
		out = append(out, t)
		return nil
	})
	return out, err
}

// snakeCase is NocoBase's (lodash's) snake_case of a camelCase name.
func snakeCase(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// keptRows holds the target's own rows of the kept tables while the
// target is rebuilt, in temporary tables of the restore's transaction (as
// jsonb, so that they survive the target's types being dropped and are put
// back by column name whatever the backup's column order).
type keptRows struct {
	names  []string // NocoBase names, e.g. environmentVariables
	tables []keptTable
	skip   map[string]bool // the restored tables whose backup rows are not loaded
	dest   []tableRef
}

type keptTable struct {
	from tableRef
	temp string
	rows int64
}

// keepRows copies the target's rows of the tables named into temporary
// tables; tx must be the transaction that rebuilds the target.
func keepRows(ctx context.Context, tx pgx.Tx, names []string) (*keptRows, error) {
	k := &keptRows{names: names}
	for _, name := range names {
		refs, err := findAppTable(ctx, tx, name)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			temp := fmt.Sprintf("relbot_keep_%d", len(k.tables))
			tag, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE "+temp+" ON COMMIT DROP AS SELECT pg_catalog.to_jsonb(t) AS r FROM "+ref.ident()+" t")
			if err != nil {
				return nil, fmt.Errorf("keep the target's rows of %s: %w", ref.key(), err)
			}
			k.tables = append(k.tables, keptTable{from: ref, temp: temp, rows: tag.RowsAffected()})
		}
	}
	return k, nil
}

// resolve finds the kept tables in the restored schema: their rows in the
// backup are not loaded.
func (k *keptRows) resolve(ctx context.Context, q pgschema.Querier) (map[string]bool, error) {
	k.skip = map[string]bool{}
	for _, name := range k.names {
		refs, err := findAppTable(ctx, q, name)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			k.skip[ref.key()] = true
			k.dest = append(k.dest, ref)
		}
	}
	return k.skip, nil
}

// put writes the kept rows into the restored tables, column by column
// name, and names what it did.
func (k *keptRows) put(ctx context.Context, tx pgx.Tx, meta *Meta) ([]string, error) {
	warnings := notLoaded(meta, k.skip)
	for _, kt := range k.tables {
		dest, ok := k.match(kt.from)
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

// match is the restored table a kept one goes back into: the same name,
// else the only one found.
func (k *keptRows) match(from tableRef) (tableRef, bool) {
	if i := slices.Index(k.dest, from); i >= 0 {
		return k.dest[i], true
	}
	if len(k.dest) == 1 {
		return k.dest[0], true
	}
	return tableRef{}, false
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
