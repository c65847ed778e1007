package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

const markerTable = `"relbot"."applied_migrations"`

// markerDDL makes the table that records, in the target itself and in the
// same transaction as the changes, which files were applied.
var markerDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS "relbot"`,
	`CREATE TABLE IF NOT EXISTS ` + markerTable + ` (
    hash text PRIMARY KEY,
    migration text NOT NULL,
    app text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL
)`,
}

// Apply applies a migration file to target in one transaction: DDL, rows,
// sequences and the marker row commit together or not at all. Applying a
// file the marker already records changes nothing and says so.
func (e *Engine) Apply(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment, opts release.ApplyOptions) (*release.ApplyResult, error) {
	start := time.Now()
	f, tx, end, err := e.openOn(ctx, a, app, target, opts.KnownVariables)
	if err != nil {
		return nil, err
	}
	defer end()
	res := &release.ApplyResult{}
	if done, err := f.applied(ctx, tx, true); err != nil || done != nil {
		res.AlreadyApplied = done
		return res, err
	}
	// Reading the whole file to check its signature scales with the rows
	// it carries, not with the target: said apart from the rest.
	res.Steps = append(res.Steps, release.ExecutedStep{What: "check the migration file (its signature) and lock the target's applies", Duration: time.Since(start)})
	tgt, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	if _, err := f.checkLayout(tgt, target); err != nil {
		return nil, err
	}
	// Keys of re-created tables are built in this transaction: give the
	// index builds room so they sort in memory.
	if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return nil, err
	}
	logStep := logTo(res)
	logStep.sql = opts.SQL
	if opts.SQL != nil {
		fmt.Fprintf(opts.SQL, "-- relbot: apply of %s (sha256 %s) to %s, by %s, one transaction\n\n", f.Meta.ID, f.SHA256, target.Name, opts.By)
	}
	var swap map[string]shadow
	var prepWarnings []string
	if opts.Prepared != "" {
		t0 := time.Now()
		swap, prepWarnings, err = usePreparation(ctx, tx, opts.Prepared, f, tgt)
		if err != nil {
			return nil, err
		}
		logStep.add(fmt.Sprintf("preparation %s: %s ready to swap in", opts.Prepared, release.Count(len(swap), "table")), 0, t0)
	}
	aside := ""
	if opts.Snapshot != "" {
		if err := checkName("release snapshot", opts.Snapshot); err != nil {
			return nil, err
		}
		aside = snapshotSchema(opts.Snapshot)
	}
	prog := compileWindow(f.Meta, tgt, opts.AllowDestructive, aside, swap)
	if len(prog.refusals) > 0 {
		return nil, release.Errorf(release.CodeConflict, "migration %s cannot be applied to %s: %s; nothing was changed", f.Meta.ID, target.Name, strings.Join(prog.refusals, "; "))
	}
	prepWarnings = append(prepWarnings, unused(opts.Prepared, swap, prog)...)
	var snap *snapshotTaking
	if opts.Snapshot != "" {
		if snap, err = takeSnapshot(ctx, tx, opts.Snapshot, opts.By, f, tgt, prog, logStep); err != nil {
			return nil, err
		}
	}
	if err := runProgram(ctx, tx, prog, f.load, logStep); err != nil {
		return nil, err
	}
	warnings, err := restorePrivileges(ctx, tx, tgt, target.Name, logStep)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(append(append(prepWarnings, prog.warnings...), uncarried(f.Meta.SourceEnv, f.Meta.Schema, target.Name, tgt)...), warnings...)
	if snap != nil {
		if err := snap.record(ctx, tx, logStep); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	for _, s := range markerDDL {
		logStep.statement(s)
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, applyError(s, err)
		}
	}
	// Run with parameters; written with the values they took.
	const recordApplied = `INSERT INTO ` + markerTable + ` (hash, migration, app, applied_by) VALUES `
	logStep.statement(recordApplied + "(" + strings.Join([]string{pgschema.QuoteLiteral(f.SHA256), pgschema.QuoteLiteral(f.Meta.ID),
		pgschema.QuoteLiteral(f.Meta.App), pgschema.QuoteLiteral(opts.By)}, ", ") + ")")
	if _, err := tx.Exec(ctx, recordApplied+`($1, $2, $3, $4)`, f.SHA256, f.Meta.ID, f.Meta.App, opts.By); err != nil {
		return nil, applyError("record the migration", err)
	}
	logStep.add("record "+f.Meta.ID+" as applied", 1, t0)
	if opts.BeforeCommit != nil {
		opts.BeforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, applyError("COMMIT", err)
	}
	res.Duration = time.Since(start)
	if opts.SQL != nil {
		fmt.Fprintf(opts.SQL, "COMMIT;\n-- committed after %s\n", res.Duration.Round(time.Millisecond))
	}
	return res, nil
}

// runProgram runs prog's steps in tx; load brings one table's rows.
func runProgram(ctx context.Context, tx pgx.Tx, prog *program, load func(context.Context, pgx.Tx, *load) (int64, error), logStep stepLogger) error {
	for _, st := range prog.steps {
		t0 := time.Now()
		if st.kind == stepLoad {
			n, err := load(ctx, tx, st.load)
			if err != nil {
				return err
			}
			logStep.add(st.load.describe(), n, t0)
			continue
		}
		logStep.statement(st.sql)
		tag, err := tx.Exec(ctx, st.sql)
		if err != nil {
			return applyError(st.sql, err)
		}
		logStep.add(appdb.FirstLine(st.sql), tag.RowsAffected(), t0)
	}
	return nil
}

// restorePrivileges gives what the program made again the owners and
// grants before had (keepPrivileges).
func restorePrivileges(ctx context.Context, tx pgx.Tx, before *pgschema.Schema, env string, logStep stepLogger) ([]string, error) {
	t0 := time.Now()
	stmts, warnings, err := keepPrivileges(ctx, tx, before)
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		logStep.statement(s)
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, applyError(s, err)
		}
	}
	if len(stmts) > 0 {
		logStep.add(fmt.Sprintf("owners and grants as %s had them (%d statements)", env, len(stmts)), 0, t0)
	}
	return warnings, nil
}

// stepLogger keeps an execution log: its steps and, when sql is set,
// every statement the apply ran, in full, each followed by what it did
// and took, the other steps as comments.
type stepLogger struct {
	res *release.ApplyResult
	sql io.Writer
	// ran is the first line of the statement just written, whose step
	// then needs no words of its own.
	ran *string
}

func logTo(res *release.ApplyResult) stepLogger { return stepLogger{res: res, ran: new(string)} }

// add adds one step.
func (l stepLogger) add(what string, rows int64, t0 time.Time) {
	d := time.Since(t0)
	l.res.Steps = append(l.res.Steps, release.ExecutedStep{What: what, Rows: rows, Duration: d})
	if l.sql == nil {
		return
	}
	took := release.Count(int(rows), "row") + ", " + d.Round(time.Microsecond).String()
	if *l.ran != "" && *l.ran == what {
		fmt.Fprintf(l.sql, "-- %s\n\n", took)
	} else {
		fmt.Fprintf(l.sql, "-- %s (%s)\n\n", strings.TrimPrefix(appdb.FirstLine(what), "-- "), took)
	}
	*l.ran = ""
}

// statement records a statement about to run.
func (l stepLogger) statement(sql string) {
	if l.sql != nil {
		fmt.Fprintf(l.sql, "%s;\n", strings.TrimRight(sql, "; \n\t"))
		*l.ran = appdb.FirstLine(sql)
	}
}

// Applied reads target's marker for this file.
func (e *Engine) Applied(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment) (*release.AppliedBy, error) {
	f, err := e.Open(a)
	if err != nil {
		return nil, err
	}
	tx, end, err := begin(ctx, target)
	if err != nil {
		return nil, err
	}
	defer end()
	return f.applied(ctx, tx, false)
}

// openOn opens the file, checks that it may go to target (known: the
// target's variable names, nil to leave them out) and begins a transaction
// there; end rolls it back.
func (e *Engine) openOn(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment, known map[string]bool) (*File, pgx.Tx, func(), error) {
	f, err := e.Open(a)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := f.check(app, target, known); err != nil {
		return nil, nil, nil, err
	}
	tx, end, err := begin(ctx, target)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, tx, end, nil
}

// begin opens a transaction on target; end rolls it back (a no-op after a
// commit) and closes the connection.
func begin(ctx context.Context, target *release.Environment) (pgx.Tx, func(), error) {
	conn, err := appdb.Connect(ctx, target.Database, "", target.Name)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(context.Background())
		return nil, nil, err
	}
	return tx, func() {
		_ = tx.Rollback(context.Background())
		conn.Close(context.Background())
	}, nil
}

// check refuses a file of another app, a target older than the source,
// and missing variables (when the caller knows the target's).
func (f *File) check(app *release.App, target *release.Environment, known map[string]bool) error {
	if f.Meta.App != app.Name {
		return release.Errorf(release.CodeInvalid, "migration %s is of app %s, not %s", f.Meta.ID, f.Meta.App, app.Name)
	}
	if target.Name == f.Meta.SourceEnv {
		return release.Errorf(release.CodeInvalid, "migration %s was made from %s; it cannot be applied to it", f.Meta.ID, target.Name)
	}
	if known != nil {
		if missing := f.missing(known); len(missing) > 0 {
			return release.Errorf(release.CodeConflict, "%s lacks variables that migration %s references: %s; set them with var set or secret set", target.Name, f.Meta.ID, strings.Join(missing, ", "))
		}
	}
	return nil
}

func (f *File) missing(known map[string]bool) []string {
	var out []string
	for _, v := range f.Meta.Variables {
		if _, ok := known[v]; !ok {
			out = append(out, v)
		}
	}
	return out
}

// applied reads the marker; lock serialises applies on one target.
func (f *File) applied(ctx context.Context, tx pgx.Tx, lock bool) (*release.AppliedBy, error) {
	if lock {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('relbot migration apply'))"); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '60s'"); err != nil {
			return nil, err
		}
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regclass('`+markerTable+`') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return nil, err
	}
	var done release.AppliedBy
	err := tx.QueryRow(ctx, `SELECT migration, applied_at, applied_by FROM `+markerTable+` WHERE hash = $1`, f.SHA256).
		Scan(&done.Migration, &done.At, &done.By)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	done.At = done.At.UTC()
	return &done, nil
}

// load brings one table's rows from the file.
func (f *File) load(ctx context.Context, tx pgx.Tx, l *load) (int64, error) {
	rows, err := f.Rows(l.data)
	if err != nil {
		return 0, err
	}
	name := l.table.QualifiedName()
	cols := pgschema.ColumnList(l.data.Columns)
	enable, err := triggersOff(ctx, tx, l)
	if err != nil {
		return 0, err
	}
	if l.fresh {
		// The table was made or emptied in this transaction: FREEZE writes
		// its rows already frozen, sparing the target a rewrite by the next
		// vacuum.
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, rows, "COPY "+name+" ("+cols+") FROM STDIN (FREEZE)")
		if err != nil {
			return 0, applyError("load "+l.table.Key(), err)
		}
		if tag.RowsAffected() != l.data.Rows {
			return 0, release.Errorf(release.CodeDamaged, "%s: %d rows loaded, the file says %d", l.table.Key(), tag.RowsAffected(), l.data.Rows)
		}
		return tag.RowsAffected(), enable()
	}
	tmp := pgschema.QuoteIdent("relbot_load_" + strings.ReplaceAll(l.table.Key(), ".", "_"))
	stmts := []string{
		"CREATE TEMP TABLE " + tmp + " ON COMMIT DROP AS SELECT " + cols + " FROM " + name + " WITH NO DATA",
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return 0, applyError(s, err)
		}
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, rows, "COPY "+tmp+" ("+cols+") FROM STDIN"); err != nil {
		return 0, applyError("load "+l.table.Key(), err)
	}
	insert := "INSERT INTO " + name + " (" + cols + ")" + overriding(l.table) + " SELECT " + cols + " FROM " + tmp + onConflict(l)
	tag, err := tx.Exec(ctx, insert)
	if err != nil {
		return 0, applyError(insert, err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+tmp); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), enable()
}

// overriding lets an insert write an identity column declared ALWAYS.
func overriding(t *pgschema.Table) string {
	for _, c := range t.Columns {
		if c.Identity == "a" {
			return " OVERRIDING SYSTEM VALUE"
		}
	}
	return ""
}

// onConflict merges rows by the table's primary key as l's rule says.
func onConflict(l *load) string {
	conflict := " ON CONFLICT (" + pgschema.ColumnList(l.table.PrimaryKey) + ") DO NOTHING"
	if l.rule == release.RuleUpsert {
		var set []string
		for _, c := range l.data.Columns {
			if !slices.Contains(l.table.PrimaryKey, c) {
				set = append(set, pgschema.QuoteIdent(c)+" = EXCLUDED."+pgschema.QuoteIdent(c))
			}
		}
		if len(set) > 0 {
			conflict = " ON CONFLICT (" + pgschema.ColumnList(l.table.PrimaryKey) + ") DO UPDATE SET " + strings.Join(set, ", ")
		}
	}
	return conflict
}

// triggersOff disables the triggers l names for the load; enable puts
// each back as it was.
func triggersOff(ctx context.Context, tx pgx.Tx, l *load) (enable func() error, err error) {
	name := l.table.QualifiedName()
	for _, tg := range l.trigOff {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+name+" DISABLE TRIGGER "+pgschema.QuoteIdent(tg.Name)); err != nil {
			return nil, applyError("disable triggers of "+l.table.Key(), err)
		}
	}
	return func() error {
		for _, tg := range l.trigOff {
			mode := map[string]string{"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}[tg.Enabled]
			if mode == "" {
				mode = "ENABLE"
			}
			// As it was: a replica or always trigger stays one.
			if _, err := tx.Exec(ctx, "ALTER TABLE "+name+" "+mode+" TRIGGER "+pgschema.QuoteIdent(tg.Name)); err != nil {
				return applyError("enable triggers of "+l.table.Key(), err)
			}
		}
		return nil
	}, nil
}

// uncarried names what either side has that the schema model does not
// know (partitioned tables, rules, policies...): a migration neither
// carries nor changes it.
func uncarried(srcEnv string, src *pgschema.Schema, tgtEnv string, tgt *pgschema.Schema) []string {
	var out []string
	for _, w := range src.Warnings {
		out = append(out, srcEnv+" has what a migration does not carry: "+w)
	}
	for _, w := range tgt.Warnings {
		out = append(out, tgtEnv+" has what a migration does not change: "+w)
	}
	return out
}

// applyError says which statement failed and why; the transaction rolls
// back, so the target is as it was.
func applyError(stmt string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" && pe.ConstraintName != "" {
		// A foreign key added back does not hold: rows the target keeps
		// point at rows the migration's data does not have.
		table := pgschema.Key(pe.SchemaName, pe.TableName)
		return &release.Error{Code: release.CodeConflict, Err: err, Message: fmt.Sprintf(
			"apply refused: foreign key %s of table %s does not hold after the migration: %s; fix the rows (or the rules) and deploy again; nothing was changed",
			pe.ConstraintName, table, strings.TrimSuffix(pe.Detail, "."))}
	}
	return &release.Error{Code: release.CodeConflict,
		Message: fmt.Sprintf("apply failed at %q: %v; nothing was changed", appdb.FirstLine(stmt), pgErrorText(err)), Err: err}
}

func pgErrorText(err error) string {
	var d *release.Error
	if errors.As(err, &d) {
		return d.Message
	}
	return err.Error()
}

// Plan says what applying the file to target would do, without changing
// it: the DDL in order, rows per table, destructive changes, variables the
// target lacks (known: names the target has) and version differences.
// Row counts come from loading the file's rows into temporary tables in a
// transaction that is rolled back; the target's tables are only read.
func (e *Engine) Plan(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment, known map[string]bool) (*release.MigrationPlan, error) {
	f, tx, end, err := e.openOn(ctx, a, app, target, nil)
	if err != nil {
		return nil, err
	}
	defer end()
	plan := &release.MigrationPlan{Migration: f.Meta.ID, Env: target.Name, Destructive: []string{}, MissingVariables: []string{}, VersionChanges: []string{},
		NewPlugins: []release.NewPlugin{}}
	if plan.AlreadyApplied, err = f.applied(ctx, tx, false); err != nil || plan.AlreadyApplied != nil {
		// Applying it again changes nothing: there are no changes to list.
		return plan, err
	}
	tgt, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	layout, err := f.checkLayout(tgt, target)
	if err != nil {
		return nil, err
	}
	if plan.NewPlugins, err = f.newPlugins(ctx, tx, tgt); err != nil {
		return nil, err
	}
	if plan.NewPlugins == nil {
		plan.NewPlugins = []release.NewPlugin{}
	}
	prog := compile(f.Meta, tgt, false)
	plan.Destructive = append(plan.Destructive, prog.destructive...)
	plan.Statements = prog.statements()
	plan.Warnings = append(plan.Warnings, f.layoutWarnings(layout, target)...)
	for _, r := range prog.refusals {
		plan.Warnings = append(plan.Warnings, "cannot apply: "+r)
	}
	plan.Warnings = append(plan.Warnings, prog.warnings...)
	plan.Warnings = append(plan.Warnings, uncarried(f.Meta.SourceEnv, f.Meta.Schema, target.Name, tgt)...)
	if known != nil {
		plan.MissingVariables = append(plan.MissingVariables, f.missing(known)...)
	}
	core, plugins, err := nocobase.AppVersions(ctx, tx, tgt, layout.Layout)
	if err != nil {
		return nil, err
	}
	plan.VersionChanges = versionChanges(f.Meta.CoreVersion, core, f.Meta.Plugins, plugins)
	for i := range prog.loads {
		tp, err := f.countRows(ctx, tx, &prog.loads[i], i)
		if err != nil {
			return nil, err
		}
		plan.Tables = append(plan.Tables, tp)
	}
	orphans, err := f.orphans(ctx, tx, tgt)
	if err != nil {
		return nil, err
	}
	plan.Warnings = append(plan.Warnings, orphans...)
	if plan.Changes, err = f.changes(ctx, tx, tgt, target.Name, known); err != nil {
		return nil, err
	}
	return plan, nil
}

var referencesRE = regexp.MustCompile(`REFERENCES [^(]+\(([^)]*)\)`)

// orphans finds the foreign keys that will not hold after the apply: rows
// the target keeps pointing at rows of an overwritten table that the file
// does not bring, or the file's rows pointing at rows the target does not
// have. The apply would fail on them; the plan says so first.
func (f *File) orphans(ctx context.Context, tx pgx.Tx, tgt *pgschema.Schema) ([]string, error) {
	fileRows := map[string]TableData{}
	for _, td := range f.Meta.Tables {
		if appdb.RuleOf(f.Meta.Rules, td.Key) == release.RuleOverwrite {
			fileRows[td.Key] = td
		}
	}
	// After the apply a table holds the file's rows (overwrite) or the
	// target's (schema-only, skip, not in the file); merges are not checked.
	side := func(key string) (fromFile, known bool) {
		if _, ok := fileRows[key]; ok {
			return true, true
		}
		switch appdb.RuleOf(f.Meta.Rules, key) {
		case release.RuleUpsert, release.RuleInsertIgnore:
			return false, false
		}
		return false, tgt.Table(key) != nil
	}
	loaded := map[string]string{}
	temp := func(key string) (string, error) {
		if name, ok := loaded[key]; ok {
			return name, nil
		}
		td := fileRows[key]
		name := pgschema.QuoteIdent(fmt.Sprintf("relbot_fk_%d", len(loaded)))
		defs := make([]string, len(td.Columns))
		for i, c := range td.Columns {
			defs[i] = pgschema.QuoteIdent(c) + " text"
		}
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+name+" ("+strings.Join(defs, ", ")+")"); err != nil {
			return "", err
		}
		rows, err := f.Rows(td)
		if err != nil {
			return "", err
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, rows, "COPY "+name+" FROM STDIN"); err != nil {
			return "", fmt.Errorf("plan %s: %w", key, err)
		}
		loaded[key] = name
		return name, nil
	}
	// The foreign keys there will be: the source's of tables in scope, the
	// target's own of the others.
	type fk struct {
		table string
		con   pgschema.Constraint
	}
	var fks []fk
	for i := range f.Meta.Schema.Tables {
		t := &f.Meta.Schema.Tables[i]
		if appdb.RuleOf(f.Meta.Rules, t.Key()) == release.RuleSkip {
			continue
		}
		for _, c := range t.Constraints {
			if c.Type == "f" && !c.Inherited {
				fks = append(fks, fk{t.Key(), c})
			}
		}
	}
	for i := range tgt.Tables {
		t := &tgt.Tables[i]
		if f.Meta.Schema.Table(t.Key()) != nil && appdb.RuleOf(f.Meta.Rules, t.Key()) != release.RuleSkip {
			continue
		}
		for _, c := range t.Constraints {
			if c.Type == "f" && !c.Inherited {
				fks = append(fks, fk{t.Key(), c})
			}
		}
	}
	keyOf := func(qualified string) string {
		return readable([]string{qualified})[0]
	}
	var out []string
	for _, k := range fks {
		ref := keyOf(k.con.References)
		tFile, tKnown := side(k.table)
		rFile, rKnown := side(ref)
		m := referencesRE.FindStringSubmatch(k.con.Def)
		if !tKnown || !rKnown || tFile == rFile || m == nil {
			continue // both from the source, where the key holds, or both the target's own
		}
		refCols := strings.Split(m[1], ", ")
		if len(refCols) != len(k.con.Columns) {
			continue
		}
		var from, to string
		var err error
		if tFile {
			from, err = temp(k.table)
			to = "ONLY " + k.con.References
		} else {
			from = tgt.Table(k.table).From()
			to, err = temp(ref)
		}
		if err != nil {
			return nil, err
		}
		var notNull, match []string
		for i, c := range k.con.Columns {
			notNull = append(notNull, "r."+pgschema.QuoteIdent(c)+" IS NOT NULL")
			match = append(match, "s."+refCols[i]+"::text = r."+pgschema.QuoteIdent(c)+"::text")
		}
		var n int64
		q := fmt.Sprintf("SELECT count(*) FROM %s r WHERE %s AND NOT EXISTS (SELECT 1 FROM %s s WHERE %s)",
			from, strings.Join(notNull, " AND "), to, strings.Join(match, " AND "))
		if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
			return nil, fmt.Errorf("plan foreign key %s of %s: %w", k.con.Name, k.table, err)
		}
		if n > 0 {
			whose := "the target's"
			if tFile {
				whose = "the file's"
			}
			out = append(out, fmt.Sprintf("foreign key %s of table %s will not hold: %d of %s rows of %s point at rows %s will not have; the apply will fail and change nothing",
				k.con.Name, k.table, n, whose, k.table, ref))
		}
	}
	return out, nil
}

// countRows compares the file's rows of one table with the target's, by
// primary key, comparing values as text.
func (f *File) countRows(ctx context.Context, tx pgx.Tx, l *load, n int) (release.TablePlan, error) {
	tp := release.TablePlan{Table: l.table.Key(), Rule: l.rule}
	t := l.target
	if t == nil {
		tp.Insert, tp.Note = l.data.Rows, "new table"
		return tp, nil
	}
	var targetRows int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.From()).Scan(&targetRows); err != nil {
		return tp, err
	}
	pk := l.table.PrimaryKey
	for _, c := range pk {
		if t.Column(c) == nil {
			pk = nil
		}
	}
	if len(pk) == 0 {
		tp.Insert, tp.Delete, tp.Note = l.data.Rows, targetRows, "no primary key: every row is replaced"
		return tp, nil
	}
	tmp := pgschema.QuoteIdent(fmt.Sprintf("relbot_plan_%d", n))
	// The file's rows load into a temporary table typed like the target's
	// columns where the types agree, so values compare as values (COPY
	// writes a boolean as t, its text cast says true); other columns, and
	// json (which has no equality), compare as text.
	typed := map[string]bool{}
	defs := make([]string, len(l.data.Columns))
	for i, c := range l.data.Columns {
		typ := "text"
		if sc, tc := l.table.Column(c), t.Column(c); sc != nil && tc != nil && sc.Type == tc.Type && tc.Type != "json" {
			typ, typed[c] = tc.Type, true
		}
		defs[i] = pgschema.QuoteIdent(c) + " " + typ
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+tmp+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return tp, err
	}
	rows, err := f.Rows(l.data)
	if err != nil {
		return tp, err
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, rows, "COPY "+tmp+" FROM STDIN"); err != nil {
		return tp, fmt.Errorf("plan %s: %w", l.table.Key(), err)
	}
	side := func(alias, c string) string {
		ref := alias + "." + pgschema.QuoteIdent(c)
		if alias == "t" && !typed[c] {
			return ref + "::text"
		}
		return ref
	}
	var join []string
	for _, c := range pk {
		join = append(join, side("t", c)+" = "+side("s", c))
	}
	on := strings.Join(join, " AND ")
	var tcols, scols []string
	for _, c := range l.data.Columns {
		if t.Column(c) != nil {
			tcols = append(tcols, side("t", c))
			scols = append(scols, side("s", c))
		}
	}
	q := fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s s WHERE NOT EXISTS (SELECT 1 FROM %[2]s t WHERE %[3]s)),
		(SELECT count(*) FROM %[1]s s JOIN %[2]s t ON %[3]s WHERE ROW(%[4]s) IS DISTINCT FROM ROW(%[5]s)),
		(SELECT count(*) FROM %[2]s t WHERE NOT EXISTS (SELECT 1 FROM %[1]s s WHERE %[3]s))`,
		tmp, t.From(), on, strings.Join(tcols, ", "), strings.Join(scols, ", "))
	var ins, upd, del int64
	if err := tx.QueryRow(ctx, q).Scan(&ins, &upd, &del); err != nil {
		return tp, fmt.Errorf("plan %s: %w", l.table.Key(), err)
	}
	tp.Insert = ins
	switch l.rule {
	case release.RuleOverwrite:
		tp.Update, tp.Delete = upd, del
	case release.RuleUpsert:
		tp.Update = upd
		if del > 0 {
			tp.Note = fmt.Sprintf("%d rows only %s has are kept", del, "the target")
		}
	case release.RuleInsertIgnore:
		if upd > 0 {
			tp.Note = fmt.Sprintf("%d rows differ and are kept as they are", upd)
		}
	}
	return tp, nil
}

func versionChanges(srcCore, tgtCore string, src, tgt map[string]string) []string {
	out := []string{}
	if srcCore != tgtCore {
		out = append(out, fmt.Sprintf("core: %s -> %s", orNone(tgtCore), orNone(srcCore)))
	}
	names := map[string]bool{}
	for n := range src {
		names[n] = true
	}
	for n := range tgt {
		names[n] = true
	}
	// Plugins moving between the same two versions are told in one line:
	// a core upgrade moves most of them together.
	byChange := map[string][]string{}
	for n := range names {
		if src[n] != tgt[n] {
			change := orNone(tgt[n]) + " -> " + orNone(src[n])
			byChange[change] = append(byChange[change], n)
		}
	}
	return append(out, appdb.PluginChanges(byChange)...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// keepPrivileges gives what the apply made again (overwritten tables,
// views) the owner and grants it had in the target, and what it made anew
// the owner of the target's tables when one role owns most of them (the
// app's role, typically): the app keeps reading its tables whatever role
// relbot connects as.
func keepPrivileges(ctx context.Context, tx pgx.Tx, before *pgschema.Schema) (stmts, warnings []string, err error) {
	after, err := pgschema.ReadPrivileges(ctx, tx)
	if err != nil {
		return nil, nil, fmt.Errorf("read owners and grants: %w", err)
	}
	// What relbot keeps in its own schemas (snapshots) keeps relbot's owner.
	after = slices.DeleteFunc(after, func(p pgschema.Privileges) bool { return appdb.IsOwnSchema(p.Schema) })
	key := func(p pgschema.Privileges) string { return p.Kind + " " + pgschema.Key(p.Schema, p.Name) }
	old := map[string]pgschema.Privileges{}
	for _, p := range before.Privileges {
		old[key(p)] = p
	}
	appOwner := mainOwner(before.Privileges)
	var want []pgschema.Privileges
	for _, p := range after {
		o, existed := old[key(p)]
		switch {
		case existed && !samePrivileges(o, p):
			want = append(want, o)
		case !existed && appOwner != "" && p.Owner != appOwner:
			want = append(want, pgschema.Privileges{Kind: p.Kind, Schema: p.Schema, Name: p.Name, Owner: appOwner, Linked: p.Linked})
		}
	}
	if len(want) == 0 {
		return nil, nil, nil
	}
	access, err := pgschema.ReadRoleAccess(ctx, tx)
	if err != nil {
		return nil, nil, fmt.Errorf("read roles: %w", err)
	}
	stmts, warnings = pgschema.PrivilegeStatements(want, access)
	return stmts, warnings, nil
}

// mainOwner is the role that owns more of the tables than any other, or ""
// when there are none or two roles tie.
func mainOwner(privs []pgschema.Privileges) string {
	count := map[string]int{}
	for _, p := range privs {
		if p.Kind == "TABLE" {
			count[p.Owner]++
		}
	}
	best, n, tie := "", 0, false
	for owner, c := range count {
		switch {
		case c > n:
			best, n, tie = owner, c, false
		case c == n:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

func samePrivileges(a, b pgschema.Privileges) bool {
	return a.Owner == b.Owner && slices.Equal(a.Grants, b.Grants)
}
