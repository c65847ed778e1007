package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// A release snapshot is what an apply changed, kept by the apply in its
// own transaction: the definitions before (the target's schema model, as
// JSON, in snapshotTable) and the rows of every table whose rows it
// replaced, merged into, rewrote or dropped (in a schema of relbot's,
// relbot_snap_<name>). Revert puts exactly those tables back.
const snapshotTable = `"relbot"."release_snapshots"`

var snapshotDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS "relbot"`,
	`CREATE TABLE IF NOT EXISTS ` + snapshotTable + ` (
    name text PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    migration text NOT NULL,
    hash text NOT NULL,
    app text NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    taken_by text NOT NULL,
    reverted_at timestamptz,
    reverted_by text,
    definitions jsonb NOT NULL,
    tables jsonb NOT NULL,
    created_views jsonb NOT NULL
)`,
}

// Snapshot table states.
const (
	snapCreated    = "created"    // the apply made it: a revert drops it
	snapRows       = "rows"       // its rows are kept in the snapshot
	snapDefinition = "definition" // only its definition changed: its rows stay
)

// snapTable is one table a release snapshot answers for.
type snapTable struct {
	Table string `json:"table"` // qualified, quoted
	Key   string `json:"key"`
	State string `json:"state"`
	// Copy holds its rows as they were (qualified), for state rows.
	Copy string `json:"copy,omitempty"`
	Rows int64  `json:"rows,omitempty"`
	// Aside is Copy's name when it is the table itself, moved aside by the
	// apply (then Rows is -1: not counted).
	Aside string `json:"aside,omitempty"`
	// Lost says why the rows of a table whose rows the target keeps were
	// kept (a column the apply dropped): its revert puts them all back.
	Lost string `json:"lost,omitempty"`
}

// snapshotSchema is the schema that holds snapshot name's rows.
func snapshotSchema(name string) string {
	return ownSchema(appdb.SnapshotSchemaPrefix, name)
}

// ownSchema is prefix followed by name folded to what needs no quoting,
// within PostgreSQL's 63 bytes.
func ownSchema(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

func checkName(what, name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 100 || strings.ContainsAny(name, "\x00\n") {
		return release.Errorf(release.CodeInvalid, "%s name %q: give 1 to 100 characters on one line", what, name)
	}
	return nil
}

// snapshotTaking is a snapshot being taken by an apply.
type snapshotTaking struct {
	name, schema string
	file         *File
	before       *pgschema.Schema
	prog         *program
	tables       []snapTable
	by           string
}

// takeSnapshot, in the apply's transaction and before its program runs,
// copies the rows of every table the program changes the rows of into the
// snapshot's schema.
func takeSnapshot(ctx context.Context, tx pgx.Tx, name, by string, f *File, tgt *pgschema.Schema, prog *program, logStep stepLogger) (*snapshotTaking, error) {
	if err := checkName("release snapshot", name); err != nil {
		return nil, err
	}
	t0 := time.Now()
	for _, s := range snapshotDDL {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, applyError(s, err)
		}
	}
	schema := snapshotSchema(name)
	var other string
	var reverted *time.Time
	err := tx.QueryRow(ctx, `SELECT name, reverted_at FROM `+snapshotTable+` WHERE name = $1 OR schema_name = $2`, name, schema).Scan(&other, &reverted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, err
	case reverted == nil:
		return nil, release.Errorf(release.CodeConflict, "the target keeps release snapshot %s already, not reverted: drop it first or name this one otherwise; nothing was changed", other)
	default:
		// Reverted: what it kept is of no more use.
		if err := dropSnapshotIn(ctx, tx, other); err != nil {
			return nil, err
		}
	}
	for _, s := range []string{"DROP SCHEMA IF EXISTS " + pgschema.QuoteIdent(schema) + " CASCADE", "CREATE SCHEMA " + pgschema.QuoteIdent(schema)} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, applyError(s, err)
		}
	}
	st := &snapshotTaking{name: name, schema: schema, file: f, before: withoutMarker(tgt), prog: prog, by: by}
	for i := range st.before.Tables {
		t := &st.before.Tables[i]
		if !prog.rowsChanged[t.QualifiedName()] {
			continue
		}
		if moved, ok := prog.moved[t.QualifiedName()]; ok {
			// The program moves it here: it is its own snapshot.
			st.tables = append(st.tables, snapTable{Table: t.QualifiedName(), Key: t.Key(), State: snapRows, Copy: pgschema.Ident(schema, moved), Aside: moved, Rows: -1})
			continue
		}
		cp := pgschema.Ident(schema, fmt.Sprintf("t%d", len(st.tables)+1))
		// ONLY: a parent's children are tables of their own.
		tag, err := tx.Exec(ctx, "CREATE TABLE "+cp+" AS SELECT * FROM ONLY "+t.QualifiedName())
		if err != nil {
			return nil, applyError("keep the rows of "+t.Key(), err)
		}
		st.tables = append(st.tables, snapTable{Table: t.QualifiedName(), Key: t.Key(), State: snapRows, Copy: cp, Rows: tag.RowsAffected(), Lost: prog.rowsWhy[t.QualifiedName()]})
	}
	logStep.add(fmt.Sprintf("release snapshot %s: the rows of %s kept (%d moved aside by the apply)", name, release.Count(len(st.tables), "table"), len(prog.moved)), 0, t0)
	return st, nil
}

// record, after the program ran, lists the tables it made or whose
// definitions it changed, and records the snapshot.
func (st *snapshotTaking) record(ctx context.Context, tx pgx.Tx, logStep stepLogger) error {
	t0 := time.Now()
	full, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return err
	}
	after := withoutMarker(full)
	kept := map[string]bool{}
	for _, t := range st.tables {
		kept[t.Table] = true
	}
	afterT := map[string]*pgschema.Table{}
	for i := range after.Tables {
		afterT[after.Tables[i].QualifiedName()] = &after.Tables[i]
	}
	beforeT := map[string]bool{}
	for i := range st.before.Tables {
		t := &st.before.Tables[i]
		q := t.QualifiedName()
		beforeT[q] = true
		if kept[q] {
			continue
		}
		a := afterT[q]
		if a == nil {
			return release.Errorf(release.CodeInternal, "the apply dropped table %s without keeping its rows in the release snapshot; nothing was changed", t.Key())
		}
		if definition(t) != definition(a) {
			st.tables = append(st.tables, snapTable{Table: q, Key: t.Key(), State: snapDefinition})
		}
	}
	for i := range after.Tables {
		t := &after.Tables[i]
		if !beforeT[t.QualifiedName()] {
			st.tables = append(st.tables, snapTable{Table: t.QualifiedName(), Key: t.Key(), State: snapCreated})
		}
	}
	hadView := map[string]bool{}
	for _, v := range st.before.Views {
		hadView[pgschema.Ident(v.Schema, v.Name)] = true
	}
	createdViews := []string{}
	for _, v := range after.Views {
		if k := pgschema.Ident(v.Schema, v.Name); !hadView[k] {
			createdViews = append(createdViews, k)
		}
	}
	defs, err := json.Marshal(st.before)
	if err != nil {
		return err
	}
	tables, _ := json.Marshal(st.tables)
	views, _ := json.Marshal(createdViews)
	if _, err := tx.Exec(ctx, `INSERT INTO `+snapshotTable+` (name, schema_name, migration, hash, app, taken_by, definitions, tables, created_views)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		st.name, st.schema, st.file.Meta.ID, st.file.SHA256, st.file.Meta.App, st.by, defs, tables, views); err != nil {
		return applyError("record the release snapshot", err)
	}
	logStep.add(fmt.Sprintf("release snapshot %s: %s recorded", st.name, release.Count(len(st.tables), "changed table")), 0, t0)
	return nil
}

// definition is a table's definition as comparable text.
func definition(t *pgschema.Table) string {
	b, _ := json.Marshal(t)
	return string(b)
}

// lockApplies serialises applies and reverts on one target.
func lockApplies(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('relbot migration apply'))"); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '60s'")
	return err
}

func hasTable(ctx context.Context, tx pgx.Tx, qualified string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, qualified).Scan(&ok)
	return ok, err
}

// snapshotRow is a release snapshot as recorded.
type snapshotRow struct {
	name, schema, migration, hash, app string
	takenAt                            time.Time
	revertedAt                         *time.Time
	before                             pgschema.Schema
	tables                             []snapTable
	createdViews                       []string
}

func readSnapshot(ctx context.Context, tx pgx.Tx, name string, lock bool) (*snapshotRow, error) {
	if ok, err := hasTable(ctx, tx, snapshotTable); err != nil || !ok {
		return nil, err
	}
	q := `SELECT name, schema_name, migration, hash, app, taken_at, reverted_at, definitions, tables, created_views FROM ` + snapshotTable + ` WHERE name = $1`
	if lock {
		q += " FOR UPDATE"
	}
	var r snapshotRow
	var defs, tables, views []byte
	err := tx.QueryRow(ctx, q, name).Scan(&r.name, &r.schema, &r.migration, &r.hash, &r.app, &r.takenAt, &r.revertedAt, &defs, &tables, &views)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal(defs, &r.before), json.Unmarshal(tables, &r.tables), json.Unmarshal(views, &r.createdViews)); err != nil {
		return nil, release.Errorf(release.CodeDamaged, "release snapshot %s cannot be read: %v", name, err)
	}
	r.takenAt = r.takenAt.UTC()
	return &r, nil
}

// Revert puts back, in one transaction, what the apply that kept snapshot
// changed: a program compiled from the definitions before against the
// target as it is, limited to the tables the apply changed, with the rows
// from the snapshot.
func (e *Engine) Revert(ctx context.Context, app *release.App, target *release.Environment, snapshot string, opts release.RevertOptions) (*release.ApplyResult, error) {
	start := time.Now()
	if err := checkName("release snapshot", snapshot); err != nil {
		return nil, err
	}
	tx, end, err := begin(ctx, target)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := lockApplies(ctx, tx); err != nil {
		return nil, err
	}
	snap, err := readSnapshot(ctx, tx, snapshot, true)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, release.Errorf(release.CodeNotFound, "%s keeps no release snapshot %s; nothing was changed", target.Name, snapshot)
	}
	if snap.app != app.Name {
		return nil, release.Errorf(release.CodeInvalid, "release snapshot %s is of app %s, not %s; nothing was changed", snapshot, snap.app, app.Name)
	}
	if snap.revertedAt != nil {
		return nil, release.Errorf(release.CodeConflict, "release snapshot %s (migration %s) was reverted already, on %s; nothing was changed",
			snapshot, snap.migration, snap.revertedAt.UTC().Format(time.RFC3339))
	}
	hasMarker, err := hasTable(ctx, tx, markerTable)
	if err != nil {
		return nil, err
	}
	if hasMarker {
		var later string
		var at time.Time
		err := tx.QueryRow(ctx, `SELECT migration, applied_at FROM `+markerTable+` WHERE applied_at > $1 AND hash <> $2 ORDER BY applied_at DESC LIMIT 1`, snap.takenAt, snap.hash).Scan(&later, &at)
		switch {
		case err == nil:
			return nil, release.Errorf(release.CodeConflict, "release snapshot %s (migration %s) cannot be reverted: migration %s was applied to %s after it, on %s; revert that one first or restore the full backup; nothing was changed",
				snapshot, snap.migration, later, target.Name, at.UTC().Format(time.RFC3339))
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
	}
	res := &release.ApplyResult{}
	logStep := logTo(res)
	full, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	meta, only, back, err := snap.revertMeta(ctx, tx)
	if err != nil {
		return nil, err
	}
	dropViews := map[string]bool{}
	for _, v := range snap.createdViews {
		dropViews[v] = true
	}
	if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return nil, err
	}
	prog := compileRevert(meta, full, only, dropViews, back)
	if len(prog.refusals) > 0 {
		return nil, release.Errorf(release.CodeConflict, "release snapshot %s cannot be reverted on %s: %s; nothing was changed", snapshot, target.Name, strings.Join(prog.refusals, "; "))
	}
	if err := runProgram(ctx, tx, prog, loadFromSnapshot, logStep); err != nil {
		return nil, revertError(snapshot, err)
	}
	// Owners and grants: the snapshot's for the tables it answers for,
	// the target's own for everything else.
	privs := *full
	privs.Privileges = mergePrivileges(full.Privileges, snap.before.Privileges, snap.before.Sequences, only)
	warnings, err := restorePrivileges(ctx, tx, &privs, target.Name, logStep)
	if err != nil {
		return nil, revertError(snapshot, err)
	}
	res.Warnings = append(append([]string{}, prog.warnings...), warnings...)
	for _, t := range snap.tables {
		if t.Lost != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("table %s: %s by %s, so the revert put back all its rows as they were; rows written to it since are not kept", t.Key, t.Lost, snap.migration))
		}
	}
	t0 := time.Now()
	if hasMarker {
		if _, err := tx.Exec(ctx, `DELETE FROM `+markerTable+` WHERE hash = $1`, snap.hash); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE `+snapshotTable+` SET reverted_at = now(), reverted_by = $2 WHERE name = $1`, snapshot, opts.By); err != nil {
		return nil, err
	}
	logStep.add("record "+snap.migration+" as reverted", 1, t0)
	if opts.BeforeCommit != nil {
		opts.BeforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, revertError(snapshot, applyError("COMMIT", err))
	}
	res.Duration = time.Since(start)
	return res, nil
}

// revertError words an apply error as the revert's.
func revertError(snapshot string, err error) error {
	var re *release.Error
	if errors.As(err, &re) {
		msg := strings.Replace(re.Message, "apply refused: ", "revert of "+snapshot+" refused: ", 1)
		msg = strings.Replace(msg, "apply failed at", "revert of "+snapshot+" failed at", 1)
		msg = strings.Replace(msg, "fix the rows (or the rules) and deploy again", "rows written since the release point at what the revert takes away: fix them, or restore the full backup", 1)
		return &release.Error{Code: re.Code, Message: msg, Err: re.Err}
	}
	return err
}

// revertMeta is the "file" a revert applies: the definitions before of
// the tables the snapshot answers for, their rows from the snapshot
// (overwrite) or left as they are (schema-only); only are the tables the
// revert may change.
//
// back are the tables the apply moved aside whole, which the revert moves
// back (a rename, not a load); not a parent, whose children moved aside
// with it would stay its children.
func (r *snapshotRow) revertMeta(ctx context.Context, tx pgx.Tx) (*Meta, map[string]bool, map[string]shadow, error) {
	only := map[string]bool{}
	back := map[string]shadow{}
	parents := map[string]bool{}
	for i := range r.before.Tables {
		for _, p := range r.before.Tables[i].Inherits {
			parents[p] = true
		}
	}
	state := map[string]snapTable{}
	for _, t := range r.tables {
		only[t.Table] = true
		state[t.Table] = t
		if t.State == snapRows {
			if ok, err := hasTable(ctx, tx, t.Copy); err != nil {
				return nil, nil, nil, err
			} else if !ok {
				return nil, nil, nil, release.Errorf(release.CodeDamaged, "release snapshot %s lacks the rows of %s (%s is gone); nothing was changed: restore the full backup instead", r.name, t.Key, t.Copy)
			}
		}
	}
	schema := r.before
	schema.Tables = nil
	meta := &Meta{ID: r.migration, App: r.app, SourceEnv: "release snapshot " + r.name, Schema: &schema}
	for i := range r.before.Tables {
		t := r.before.Tables[i]
		st, ok := state[t.QualifiedName()]
		if !ok {
			continue
		}
		schema.Tables = append(schema.Tables, t)
		switch st.State {
		case snapRows:
			meta.Rules = append(meta.Rules, appdb.TableRule{Table: t.Key(), Rule: release.RuleOverwrite})
			meta.Tables = append(meta.Tables, TableData{Key: t.Key(), Member: st.Copy, Columns: t.CopyColumns(), Rows: st.Rows})
			if st.Aside != "" && !parents[t.QualifiedName()] {
				back[t.Key()] = shadow{Schema: r.schema, Name: st.Aside, Restore: true}
			}
		default:
			meta.Rules = append(meta.Rules, appdb.TableRule{Table: t.Key(), Rule: release.RuleSchemaOnly})
		}
	}
	return meta, only, back, nil
}

// loadFromSnapshot puts a table's rows back from the snapshot's copy of
// them (its member).
func loadFromSnapshot(ctx context.Context, tx pgx.Tx, l *load) (int64, error) {
	enable, err := triggersOff(ctx, tx, l)
	if err != nil {
		return 0, err
	}
	cols := pgschema.ColumnList(l.data.Columns)
	// ONLY: a table moved aside keeps its children moved with it.
	insert := "INSERT INTO " + l.table.QualifiedName() + " (" + cols + ")" + overriding(l.table) + " SELECT " + cols + " FROM ONLY " + l.data.Member
	if !l.fresh {
		insert += onConflict(l)
	}
	tag, err := tx.Exec(ctx, insert)
	if err != nil {
		return 0, applyError(insert, err)
	}
	if l.data.Rows >= 0 && tag.RowsAffected() != l.data.Rows {
		return 0, release.Errorf(release.CodeDamaged, "%s: %d rows put back, the release snapshot kept %d; nothing was changed", l.table.Key(), tag.RowsAffected(), l.data.Rows)
	}
	return tag.RowsAffected(), enable()
}

// mergePrivileges are current's, with before's for the tables in only
// and the sequences they own.
func mergePrivileges(current, before []pgschema.Privileges, seqs []pgschema.Sequence, only map[string]bool) []pgschema.Privileges {
	mine := map[string]bool{}
	for _, s := range seqs {
		if only[s.OwnerTable] {
			mine["SEQUENCE "+pgschema.Ident(s.Schema, s.Name)] = true
		}
	}
	for q := range only {
		mine["TABLE "+q] = true
	}
	key := func(p pgschema.Privileges) string { return p.Kind + " " + pgschema.Ident(p.Schema, p.Name) }
	var out []pgschema.Privileges
	for _, p := range current {
		if !mine[key(p)] {
			out = append(out, p)
		}
	}
	for _, p := range before {
		if mine[key(p)] {
			out = append(out, p)
		}
	}
	return out
}

// Reverted reads whether a revert of snapshot committed in target.
func (e *Engine) Reverted(ctx context.Context, app *release.App, target *release.Environment, snapshot string) (bool, error) {
	tx, end, err := begin(ctx, target)
	if err != nil {
		return false, err
	}
	defer end()
	snap, err := readSnapshot(ctx, tx, snapshot, false)
	if err != nil || snap == nil {
		return false, err
	}
	return snap.revertedAt != nil, nil
}

// Snapshots lists the release snapshots target keeps, newest first.
func (e *Engine) Snapshots(ctx context.Context, app *release.App, target *release.Environment) ([]release.SnapshotInfo, error) {
	tx, end, err := begin(ctx, target)
	if err != nil {
		return nil, err
	}
	defer end()
	if ok, err := hasTable(ctx, tx, snapshotTable); err != nil || !ok {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT s.name, s.migration, s.taken_at, s.reverted_at IS NOT NULL, jsonb_array_length(s.tables),
		(SELECT coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = s.schema_name AND c.relkind = 'r')
		FROM `+snapshotTable+` s WHERE s.app = $1 ORDER BY s.taken_at DESC, s.name`, app.Name)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (release.SnapshotInfo, error) {
		var s release.SnapshotInfo
		err := r.Scan(&s.Name, &s.Migration, &s.TakenAt, &s.Reverted, &s.Tables, &s.Bytes)
		s.TakenAt = s.TakenAt.UTC()
		return s, err
	})
	return out, err
}

// DropSnapshot removes a release snapshot: its rows and its record.
func (e *Engine) DropSnapshot(ctx context.Context, app *release.App, target *release.Environment, snapshot string) error {
	tx, end, err := begin(ctx, target)
	if err != nil {
		return err
	}
	defer end()
	if err := lockApplies(ctx, tx); err != nil {
		return err
	}
	if ok, err := hasTable(ctx, tx, snapshotTable); err != nil || !ok {
		return err
	}
	if err := dropSnapshotIn(ctx, tx, snapshot); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func dropSnapshotIn(ctx context.Context, tx pgx.Tx, name string) error {
	var schema string
	err := tx.QueryRow(ctx, `DELETE FROM `+snapshotTable+` WHERE name = $1 RETURNING schema_name`, name).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgschema.QuoteIdent(schema)+" CASCADE")
	return err
}
