package pgsnap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// Verify checks every checksum of the archive, restores it into a scratch
// database on env's server, compares the result with the manifest (schema,
// and every table's row count and checksum) and drops the scratch database.
func (e *Engine) Verify(ctx context.Context, a release.ArchiveReader, app string, env *release.Environment) (*release.VerifyReport, error) {
	start := time.Now()
	ar, meta, err := e.openArchive(a, app)
	if err != nil {
		return nil, err
	}
	if err := ar.Check(ctx); err != nil {
		return nil, archiveError(err)
	}
	report := &release.VerifyReport{Tables: len(meta.Tables), Files: countFiles(meta)}
	for _, t := range meta.Tables {
		report.Rows += t.Rows
	}
	scratch, drop, err := appdb.CreateScratch(ctx, env.Database, "relbot_verify")
	if err != nil {
		return nil, err
	}
	defer drop()
	conn, err := appdb.Connect(ctx, env.Database, scratch, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if majorOf(meta.ServerVersionNum) > majorOf(serverVersion(ctx, conn)) {
		return nil, release.Errorf(release.CodeIncompatible, "backup is from PostgreSQL %d, newer than %s's server", majorOf(meta.ServerVersionNum), env.Name)
	}
	if err := checkEncoding(ctx, conn, meta, "the scratch database on "+env.Name+"'s server"); err != nil {
		return nil, err
	}
	if meta.PgDump != nil {
		version, err := e.checkPgDump(ctx, serverVersion(ctx, conn))
		if err != nil {
			return nil, err
		}
		if _, err := e.restoreDumpParallel(ctx, conn, env.Database, scratch, ar, meta, &keptRows{}); err != nil {
			return nil, fmt.Errorf("restore into a scratch database: %w", err)
		}
		if report.Problems, err = e.compareDump(ctx, env.Database, scratch, ar, meta); err != nil {
			return nil, err
		}
		if len(report.Problems) > 0 && version != meta.PgDump.Version {
			report.Problems = append(report.Problems, fmt.Sprintf("the archive's schema was written by pg_dump %s, the restore's by pg_dump %s: some differences may be pg_dump's own", meta.PgDump.Version, version))
		}
	} else {
		if _, err := e.restoreParallel(ctx, conn, env.Database, scratch, ar, meta, &keptRows{}); err != nil {
			return nil, fmt.Errorf("restore into a scratch database: %w", err)
		}
		if report.Problems, err = e.Compare(ctx, conn, env.Database, scratch, meta); err != nil {
			return nil, err
		}
	}
	report.Duration = time.Since(start)
	return report, nil
}

func serverVersion(ctx context.Context, conn *pgx.Conn) int {
	var n int
	_ = conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&n)
	return n
}

// Compare lists how the database conn is connected to differs from the
// manifest of an archive of the old format: its schema model, and each
// table's row count and checksum.
func (e *Engine) Compare(ctx context.Context, conn *pgx.Conn, dsn, db string, meta *Meta) ([]string, error) {
	got, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		return nil, err
	}
	rows, err := e.compareRows(ctx, dsn, db, meta, func(ti TableInfo) *pgschema.Table { return got.Table(ti.Key) })
	return append(SchemaDifferences(meta.Schema, got), rows...), err
}

// compareDump lists how database db differs from the archive: pg_dump's
// sections of it against those the archive holds, byte for byte, and
// each table's row count and checksum against the manifest.
func (e *Engine) compareDump(ctx context.Context, dsn, db string, ar *archive.Reader, meta *Meta) ([]string, error) {
	var problems []string
	tables := make([]*pgschema.Table, 0, len(meta.Tables))
	for _, ti := range meta.Tables {
		tables = append(tables, manifestTable(ti))
	}
	for _, sec := range []struct{ name, member string }{{"pre-data", meta.PgDump.PreData}, {"data", meta.PgDump.Data}, {"post-data", meta.PgDump.PostData}} {
		stored, err := section(ar, sec.member)
		if err != nil {
			return nil, err
		}
		args := e.dumpArgs("", sec.name)
		if sec.name == "data" {
			args = append(args, excludeData(tables, meta.PgDump.NoData)...)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(e.runPgDump(ctx, dsn, db, pw, args...)) }()
		diff, err := firstDifference(stored, pr)
		pr.Close()
		if err != nil {
			return nil, fmt.Errorf("compare pg_dump's %s: %w", sec.name, err)
		}
		if diff != "" {
			problems = append(problems, fmt.Sprintf("pg_dump's %s of the restore differs from the archive's: %s", sec.name, diff))
		}
	}
	rows, err := e.compareRows(ctx, dsn, db, meta, manifestTable)
	return append(problems, rows...), err
}

// manifestTable is a manifest table as the model COPY statements are made from.
func manifestTable(ti TableInfo) *pgschema.Table {
	t := &pgschema.Table{Schema: ti.Schema, Name: ti.Name}
	for _, c := range ti.Columns {
		t.Columns = append(t.Columns, pgschema.Column{Name: c})
	}
	return t
}

// firstDifference compares two texts line by line as they stream and
// names the first line that differs ("" when equal). pg_dump's comments
// naming the server's and its own version are not schema: a server
// updated to its next minor version since the backup changes them alone.
func firstDifference(want, got io.Reader) (string, error) {
	w, g := bufio.NewReaderSize(want, 64*1024), bufio.NewReaderSize(got, 64*1024)
	line := 0 // in the archive's text
	next := func(r *bufio.Reader, count bool) (string, error) {
		for {
			l, err := r.ReadString('\n')
			if count {
				line++
			}
			if err != nil || !strings.HasPrefix(l, "-- Dumped from database version ") && !strings.HasPrefix(l, "-- Dumped by pg_dump version ") {
				return l, err
			}
		}
	}
	for {
		wl, werr := next(w, true)
		gl, gerr := next(g, false)
		if werr != nil && !errors.Is(werr, io.EOF) {
			return "", werr
		}
		if gerr != nil && !errors.Is(gerr, io.EOF) {
			return "", gerr
		}
		if wl != gl {
			return fmt.Sprintf("line %d is %.200q in the archive, %.200q in the restore", line, strings.TrimSuffix(wl, "\n"), strings.TrimSuffix(gl, "\n")), nil
		}
		if werr != nil && gerr != nil {
			return "", nil
		}
	}
}

// compareRows checks every manifest table's rows in database db; table
// finds the table to read (nil when the schema lacks it).
func (e *Engine) compareRows(ctx context.Context, dsn, db string, meta *Meta, table func(TableInfo) *pgschema.Table) ([]string, error) {
	var problems []string
	sums := make([]TableInfo, len(meta.Tables))
	jobs := make([]func(context.Context, *pgx.Conn) error, len(meta.Tables))
	for i, want := range meta.Tables {
		jobs[i] = func(ctx context.Context, c *pgx.Conn) error {
			t := table(want)
			if t == nil {
				return nil // reported as a schema difference
			}
			ti, err := tableChecksum(ctx, c, t, want.Format == formatBinary)
			sums[i] = ti
			return err
		}
	}
	if err := e.runParallel(ctx, dsn, db, jobs); err != nil {
		return nil, err
	}
	for i, want := range meta.Tables {
		have := sums[i]
		switch {
		case have.Key == "":
		case have.Rows != want.Rows:
			problems = append(problems, fmt.Sprintf("table %s: %d rows, the manifest says %d", want.Key, have.Rows, want.Rows))
		case have.Checksum != want.Checksum:
			problems = append(problems, fmt.Sprintf("table %s: rows differ from the manifest's checksum", want.Key))
		}
	}
	return problems, nil
}

// TableChecksum reads a table the way a backup does and returns its row
// count and RowChecksum.
func TableChecksum(ctx context.Context, conn *pgx.Conn, t *pgschema.Table) (TableInfo, error) {
	return tableChecksum(ctx, conn, t, false)
}

// tableChecksum reads t in COPY text or binary, as the archive stores it.
func tableChecksum(ctx context.Context, conn *pgx.Conn, t *pgschema.Table, binary bool) (TableInfo, error) {
	rows := rowChecksum(binary)
	if _, err := conn.PgConn().CopyTo(ctx, rows, appdb.CopyOutSQL(t)+copyOptions(binary, false)); err != nil {
		return TableInfo{}, fmt.Errorf("read %s: %w", t.Key(), err)
	}
	ti := TableInfo{Key: t.Key(), Rows: rows.Rows, Checksum: rows.Sum()}
	if binary {
		ti.Format = formatBinary
	}
	return ti, nil
}

// SchemaDifferences compares two schemas object by object, ignoring
// warnings and sizes, and names what differs.
func SchemaDifferences(want, got *pgschema.Schema) []string {
	var out []string
	diff := func(kind string, w, g map[string]string) {
		for k, wv := range w {
			gv, ok := g[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s %s is missing", kind, k))
			case gv != wv:
				out = append(out, fmt.Sprintf("%s %s differs", kind, k))
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s %s is unexpected", kind, k))
			}
		}
	}
	diff("table", keyed(want.Tables, func(t pgschema.Table) string { return t.Key() }), keyed(got.Tables, func(t pgschema.Table) string { return t.Key() }))
	diff("view", keyed(withoutViewDeps(want.Views), func(v pgschema.View) string { return pgschema.Key(v.Schema, v.Name) }), keyed(withoutViewDeps(got.Views), func(v pgschema.View) string { return pgschema.Key(v.Schema, v.Name) }))
	diff("sequence", keyed(want.Sequences, func(s pgschema.Sequence) string { return pgschema.Key(s.Schema, s.Name) }), keyed(got.Sequences, func(s pgschema.Sequence) string { return pgschema.Key(s.Schema, s.Name) }))
	diff("function", keyed(withoutFuncDeps(want.Functions), func(f pgschema.Function) string { return f.Signature }), keyed(withoutFuncDeps(got.Functions), func(f pgschema.Function) string { return f.Signature }))
	diff("enum", keyed(want.Enums, func(x pgschema.Enum) string { return pgschema.Key(x.Schema, x.Name) }), keyed(got.Enums, func(x pgschema.Enum) string { return pgschema.Key(x.Schema, x.Name) }))
	diff("domain", keyed(want.Domains, func(x pgschema.Domain) string { return pgschema.Key(x.Schema, x.Name) }), keyed(got.Domains, func(x pgschema.Domain) string { return pgschema.Key(x.Schema, x.Name) }))
	diff("type", keyed(want.Composites, func(x pgschema.Composite) string { return pgschema.Key(x.Schema, x.Name) }), keyed(got.Composites, func(x pgschema.Composite) string { return pgschema.Key(x.Schema, x.Name) }))
	diff("extension", keyed(want.Extensions, func(x pgschema.Extension) string { return x.Name }), keyed(got.Extensions, func(x pgschema.Extension) string { return x.Name }))
	diff("schema", keyed(want.Schemas, func(x pgschema.Namespace) string { return x.Name }), keyed(got.Schemas, func(x pgschema.Namespace) string { return x.Name }))
	sortStrings(out)
	return out
}

// withoutViewDeps and withoutFuncDeps drop the dependency lists, which are
// derived from the definitions compared beside them and which archives
// written before the model recorded them do not have.
func withoutViewDeps(views []pgschema.View) []pgschema.View {
	out := slices.Clone(views)
	for i := range out {
		out[i].DependsOn = nil
	}
	return out
}

func withoutFuncDeps(funcs []pgschema.Function) []pgschema.Function {
	out := slices.Clone(funcs)
	for i := range out {
		out[i].DependsOn = nil
	}
	return out
}

func keyed[T any](items []T, key func(T) string) map[string]string {
	m := make(map[string]string, len(items))
	for _, it := range items {
		b, _ := json.Marshal(it)
		m[key(it)] = string(b)
	}
	return m
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
