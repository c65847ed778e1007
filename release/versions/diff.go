package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// side is one table on one side of a diff: a version's blob loaded into a
// temporary table, or the live table itself.
type side struct {
	vt    *release.VersionTable // nil for a live table
	table *pgschema.Table
	rel   string // the relation to read: temporary or live
	cols  []string
	rows  int64
	blob  string // content hash; for a live table computed on demand
}

// Diff compares version from with version to, or with env's live database
// when to is nil. The work is done by PostgreSQL on a connection to env:
// a version's rows are loaded into temporary tables (dropped with the
// transaction, which is never committed) and joined by primary key, so
// memory holds only the counts and the first entries of each table.
func (e *Engine) Diff(ctx context.Context, app *release.App, env *release.Environment, from, to *release.Version, blobs release.VersionBlobs) (*release.VersionDiff, error) {
	conn, err := appdb.Connect(ctx, env.Database, "", env.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	out := &release.VersionDiff{App: app.Name, From: from.ID, Tables: []release.TableDiff{}}
	sides := func(v *release.Version) (map[string]*side, error) {
		m := map[string]*side{}
		for i := range v.Tables {
			vt := &v.Tables[i]
			t, err := tableOf(vt)
			if err != nil {
				return nil, err
			}
			m[vt.Table] = &side{vt: vt, table: t, cols: vt.Columns, rows: vt.Rows, blob: vt.Blob}
		}
		return m, nil
	}
	fromSides, err := sides(from)
	if err != nil {
		return nil, err
	}
	var toSides map[string]*side
	if to != nil {
		out.To = to.ID
		if toSides, err = sides(to); err != nil {
			return nil, err
		}
	} else {
		out.To = env.Name + " (live)"
		live, err := inspect(ctx, tx)
		if err != nil {
			return nil, err
		}
		tables, err := versioned(app, env, live)
		if err != nil {
			return nil, err
		}
		toSides = map[string]*side{}
		for _, vt := range tables {
			t := live.Table(vt.Table)
			toSides[vt.Table] = &side{table: t, rel: t.From(), cols: t.CopyColumns(), rows: -1}
		}
	}
	names := map[string]bool{}
	for n := range fromSides {
		names[n] = true
	}
	for n := range toSides {
		names[n] = true
	}
	ordered := make([]string, 0, len(names))
	for n := range names {
		ordered = append(ordered, n)
	}
	sort.Strings(ordered)
	for i, name := range ordered {
		f, t := fromSides[name], toSides[name]
		switch {
		case t == nil:
			out.Tables = append(out.Tables, release.TableDiff{Table: name, Removed: f.rows, Note: "not in " + out.To})
			continue
		case f == nil:
			if err := t.count(ctx, tx); err != nil {
				return nil, err
			}
			out.Tables = append(out.Tables, release.TableDiff{Table: name, Added: t.rows, Note: "not in " + out.From})
			continue
		}
		if err := t.hash(ctx, tx); err != nil {
			return nil, err
		}
		if f.blob == t.blob && sameStrings(f.cols, t.cols) {
			out.Unchanged++
			continue
		}
		if err := f.load(ctx, tx, blobs, "from", i); err != nil {
			return nil, err
		}
		if err := t.load(ctx, tx, blobs, "to", i); err != nil {
			return nil, err
		}
		td, err := compareTables(ctx, tx, name, f, t, out.From, out.To)
		if err != nil {
			return nil, err
		}
		if td.Added == 0 && td.Removed == 0 && td.Changed == 0 && td.Note == "" {
			out.Unchanged++
			continue
		}
		out.Tables = append(out.Tables, td)
	}
	if err := summarize(ctx, tx, env, out, fromSides, toSides, blobs); err != nil {
		return nil, err
	}
	return out, nil
}

// summarize tells a NocoBase app's difference in its own terms: both
// sides' rows of the tables the change summary reads, streamed from the
// versions' blobs or the live tables, compared by release/nocobase.
func summarize(ctx context.Context, tx pgx.Tx, env *release.Environment, out *release.VersionDiff, from, to map[string]*side, blobs release.VersionBlobs) error {
	live, err := inspect(ctx, tx)
	if err != nil {
		return err
	}
	layout, err := nocobase.LayoutOf(live, env)
	if err != nil || !layout.Found {
		return nil // not a NocoBase app (or not one relbot can place): the tables tell it
	}
	before, after := nocobase.NewConfig(layout.Layout), nocobase.NewConfig(layout.Layout)
	for _, key := range nocobase.SummaryTables(layout.Layout) {
		for _, sc := range []struct {
			side *side
			cfg  *nocobase.Config
		}{{from[key], before}, {to[key], after}} {
			if sc.side == nil {
				continue
			}
			if err := readSide(ctx, tx, sc.side, sc.cfg.Writer(key, sc.side.cols), blobs); err != nil {
				return err
			}
		}
	}
	items := nocobase.Summarize(before, after)
	release.SortChanges(items)
	out.Changes = &release.Changes{Against: out.From, Items: items}
	if items == nil {
		out.Changes.Items = []release.Change{}
	}
	return nil
}

// readSide streams one side's rows, in its columns, into w.
func readSide(ctx context.Context, tx pgx.Tx, s *side, w io.WriteCloser, blobs release.VersionBlobs) error {
	if s.vt != nil {
		br, err := openBlob(ctx, blobs, s.vt)
		if err != nil {
			return err
		}
		defer br.Close()
		if _, err := io.Copy(w, br); err != nil {
			return blobError(s.vt, br, err)
		}
		return w.Close()
	}
	if _, err := tx.Conn().PgConn().CopyTo(ctx, w, "COPY (SELECT "+pgschema.ColumnList(s.cols)+" FROM "+s.rel+") TO STDOUT"); err != nil {
		return fmt.Errorf("read %s: %w", s.table.Key(), err)
	}
	return w.Close()
}

// hash computes a live table's content hash the way a version names its
// blob, so an unchanged table is recognised without loading anything.
func (s *side) hash(ctx context.Context, tx pgx.Tx) error {
	if s.vt != nil {
		return nil
	}
	h := sha256.New()
	if _, err := tx.Conn().PgConn().CopyTo(ctx, h, canonicalCopy(s.table)); err != nil {
		return fmt.Errorf("read %s: %w", s.table.Key(), err)
	}
	s.blob = hex.EncodeToString(h.Sum(nil))
	return nil
}

func (s *side) count(ctx context.Context, tx pgx.Tx) error {
	if s.vt != nil {
		return nil
	}
	return tx.QueryRow(ctx, "SELECT count(*) FROM "+s.rel).Scan(&s.rows)
}

func (s *side) load(ctx context.Context, tx pgx.Tx, blobs release.VersionBlobs, prefix string, n int) error {
	if s.vt == nil {
		return nil
	}
	s.rel = tempName(prefix, n)
	return loadTemp(ctx, tx, blobs, s.vt, s.table, s.rel)
}

// compareTables counts rows added, removed and changed between f and t
// and lists the first entries. Values compare as text, the way the
// database prints them, so types without equality (json) compare too.
func compareTables(ctx context.Context, tx pgx.Tx, name string, f, t *side, fromName, toName string) (release.TableDiff, error) {
	td := release.TableDiff{Table: name, Entries: []release.DiffEntry{}}
	var common, onlyFrom, onlyTo []string
	for _, c := range f.cols {
		if slices.Contains(t.cols, c) {
			common = append(common, c)
		} else {
			onlyFrom = append(onlyFrom, c)
		}
	}
	for _, c := range t.cols {
		if !slices.Contains(f.cols, c) {
			onlyTo = append(onlyTo, c)
		}
	}
	var notes []string
	if len(onlyFrom) > 0 {
		notes = append(notes, fmt.Sprintf("columns only in %s: %s", fromName, strings.Join(onlyFrom, ", ")))
	}
	if len(onlyTo) > 0 {
		notes = append(notes, fmt.Sprintf("columns only in %s: %s", toName, strings.Join(onlyTo, ", ")))
	}
	pk := keyColumns(f.table.PrimaryKey, common)
	if pk == nil {
		pk = keyColumns(t.table.PrimaryKey, common)
	}
	if pk == nil {
		notes = append(notes, "no primary key: rows compared as a whole")
	}
	td.Note = strings.Join(notes, "; ")
	if len(common) == 0 {
		return td, nil
	}
	text := func(alias string, cols []string) []string {
		out := make([]string, len(cols))
		for i, c := range cols {
			out[i] = alias + "." + pgschema.QuoteIdent(c) + "::text"
		}
		return out
	}
	if pk == nil {
		return compareMultisets(ctx, tx, td, f.rel, t.rel, common)
	}
	on := make([]string, len(pk))
	keyParts := func(alias string) string {
		parts := make([]string, len(pk))
		for i, c := range pk {
			parts[i] = pgschema.QuoteLiteral(c+"=") + " || coalesce(" + alias + "." + pgschema.QuoteIdent(c) + "::text, 'NULL')"
		}
		return "concat_ws(', ', " + strings.Join(parts, ", ") + ")"
	}
	orderBy := func(alias string) string {
		cols := make([]string, len(pk))
		for i, c := range pk {
			cols[i] = alias + "." + pgschema.QuoteIdent(c)
		}
		return strings.Join(cols, ", ")
	}
	for i, c := range pk {
		on[i] = "f." + pgschema.QuoteIdent(c) + "::text = t." + pgschema.QuoteIdent(c) + "::text"
	}
	join := strings.Join(on, " AND ")
	differs := "ROW(" + strings.Join(text("f", common), ", ") + ") IS DISTINCT FROM ROW(" + strings.Join(text("t", common), ", ") + ")"
	q := fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[2]s t WHERE NOT EXISTS (SELECT 1 FROM %[1]s f WHERE %[3]s)),
		(SELECT count(*) FROM %[1]s f WHERE NOT EXISTS (SELECT 1 FROM %[2]s t WHERE %[3]s)),
		(SELECT count(*) FROM %[1]s f JOIN %[2]s t ON %[3]s WHERE %[4]s)`, f.rel, t.rel, join, differs)
	if err := tx.QueryRow(ctx, q).Scan(&td.Added, &td.Removed, &td.Changed); err != nil {
		return td, fmt.Errorf("diff %s: %w", name, err)
	}
	changedCols := make([]string, len(common))
	for i, c := range common {
		changedCols[i] = fmt.Sprintf("CASE WHEN f.%[1]s::text IS DISTINCT FROM t.%[1]s::text THEN %[2]s END", pgschema.QuoteIdent(c), pgschema.QuoteLiteral(c))
	}
	limit := release.DiffEntriesPerTable
	q = fmt.Sprintf(`(SELECT 1, %[5]s, array_remove(ARRAY[%[6]s]::text[], NULL) FROM %[1]s f JOIN %[2]s t ON %[3]s WHERE %[4]s ORDER BY %[9]s LIMIT %[8]d)
		UNION ALL (SELECT 2, %[7]s, NULL::text[] FROM %[2]s t WHERE NOT EXISTS (SELECT 1 FROM %[1]s f WHERE %[3]s) ORDER BY %[10]s LIMIT %[8]d)
		UNION ALL (SELECT 3, %[5]s, NULL::text[] FROM %[1]s f WHERE NOT EXISTS (SELECT 1 FROM %[2]s t WHERE %[3]s) ORDER BY %[9]s LIMIT %[8]d)`,
		f.rel, t.rel, join, differs, keyParts("f"), strings.Join(changedCols, ", "), keyParts("t"), limit, orderBy("f"), orderBy("t"))
	return readEntries(ctx, tx, td, q)
}

// compareMultisets compares tables without a primary key: a row is added
// or removed as a whole, duplicates counted.
func compareMultisets(ctx context.Context, tx pgx.Tx, td release.TableDiff, fRel, tRel string, cols []string) (release.TableDiff, error) {
	list := make([]string, len(cols))
	for i, c := range cols {
		list[i] = pgschema.QuoteIdent(c) + "::text"
	}
	sel := func(rel string) string { return "SELECT " + strings.Join(list, ", ") + " FROM " + rel }
	added := "(" + sel(tRel) + " EXCEPT ALL " + sel(fRel) + ")"
	removed := "(" + sel(fRel) + " EXCEPT ALL " + sel(tRel) + ")"
	if err := tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+added+" a), (SELECT count(*) FROM "+removed+" r)").Scan(&td.Added, &td.Removed); err != nil {
		return td, fmt.Errorf("diff %s: %w", td.Table, err)
	}
	limit := release.DiffEntriesPerTable
	q := fmt.Sprintf(`(SELECT 2, left(x::text, 120), NULL::text[] FROM %[1]s x ORDER BY 2 LIMIT %[3]d)
		UNION ALL (SELECT 3, left(x::text, 120), NULL::text[] FROM %[2]s x ORDER BY 2 LIMIT %[3]d)`, added, removed, limit)
	return readEntries(ctx, tx, td, q)
}

// readEntries keeps the first entries: changed rows, then added, then
// removed, each in key order.
func readEntries(ctx context.Context, tx pgx.Tx, td release.TableDiff, q string) (release.TableDiff, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return td, fmt.Errorf("diff %s: %w", td.Table, err)
	}
	kinds := map[int]string{1: release.DiffChanged, 2: release.DiffAdded, 3: release.DiffRemoved}
	byKind := map[int][]release.DiffEntry{}
	var kind int
	var key string
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &cols}, func() error {
		byKind[kind] = append(byKind[kind], release.DiffEntry{Key: key, Kind: kinds[kind], Columns: cols})
		return nil
	})
	if err != nil {
		return td, fmt.Errorf("diff %s: %w", td.Table, err)
	}
	for k := 1; k <= 3; k++ {
		for _, e := range byKind[k] {
			if len(td.Entries) < release.DiffEntriesPerTable {
				td.Entries = append(td.Entries, e)
			}
		}
	}
	return td, nil
}

// keyColumns returns pk when every column of it is common to both sides.
func keyColumns(pk, common []string) []string {
	if len(pk) == 0 {
		return nil
	}
	for _, c := range pk {
		if !slices.Contains(common, c) {
			return nil
		}
	}
	return pk
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
