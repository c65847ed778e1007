package versions

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// restoreJob is one table of a version put back into a database.
type restoreJob struct {
	vt   *release.VersionTable
	t    *pgschema.Table // the live table
	cols []string        // the columns both have, in the version's order
}

// plan matches the version's tables with the live schema: a table that
// no longer exists is skipped, one whose columns changed is restored on
// the columns both have; both are told in notes.
func plan(v *release.Version, live *pgschema.Schema) ([]restoreJob, []string) {
	var jobs []restoreJob
	var notes []string
	for i := range v.Tables {
		vt := &v.Tables[i]
		t := live.Table(vt.Table)
		if t == nil {
			notes = append(notes, fmt.Sprintf("table %s no longer exists: skipped", vt.Table))
			continue
		}
		liveCols := t.CopyColumns()
		var cols, gone, added []string
		for _, c := range vt.Columns {
			if slices.Contains(liveCols, c) {
				cols = append(cols, c)
			} else {
				gone = append(gone, c)
			}
		}
		for _, c := range liveCols {
			if !slices.Contains(vt.Columns, c) {
				added = append(added, c)
			}
		}
		if len(gone) > 0 {
			notes = append(notes, fmt.Sprintf("table %s: columns no longer in the database, not restored: %s", vt.Table, strings.Join(gone, ", ")))
		}
		if len(added) > 0 {
			notes = append(notes, fmt.Sprintf("table %s: columns the version does not have take their defaults: %s", vt.Table, strings.Join(added, ", ")))
		}
		if len(cols) == 0 {
			notes = append(notes, fmt.Sprintf("table %s: no column in common with the version: skipped", vt.Table))
			continue
		}
		jobs = append(jobs, restoreJob{vt: vt, t: t, cols: cols})
	}
	return jobs, notes
}

// Restore makes env's versioned tables exactly v's in one transaction:
// foreign keys touching them are dropped and added back (which validates
// every row), user triggers are off while rows load, and sequences are
// moved past the restored rows so new rows do not collide. Any failure
// rolls everything back.
func (e *Engine) Restore(ctx context.Context, app *release.App, env *release.Environment, v *release.Version, blobs release.VersionBlobs) (*release.VersionRestoreReport, error) {
	start := time.Now()
	conn, err := appdb.Connect(ctx, env.Database, "", env.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return nil, err
	}
	live, err := inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	jobs, notes := plan(v, live)
	if now, err := versioned(app, env, live); err == nil {
		for _, vt := range now {
			if v.Table(vt.Table) == nil {
				notes = append(notes, fmt.Sprintf("table %s is versioned now but not in %s: left as it is", vt.Table, v.ID))
			}
		}
	}
	rep := &release.VersionRestoreReport{Notes: notes}
	if len(jobs) == 0 {
		return nil, release.Errorf(release.CodeConflict, "nothing of %s can be restored: %s", v.ID, strings.Join(notes, "; "))
	}
	restored := map[string]bool{}
	names := make([]string, len(jobs))
	for i, j := range jobs {
		restored[j.t.QualifiedName()] = true
		names[i] = j.t.QualifiedName()
	}
	run := func(sql string) error {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return restoreError(v.ID, sql, err)
		}
		return nil
	}
	if err := run("LOCK TABLE " + strings.Join(names, ", ") + " IN ACCESS EXCLUSIVE MODE"); err != nil {
		return nil, err
	}
	var readd []string
	for i := range live.Tables {
		t := &live.Tables[i]
		for _, c := range t.Constraints {
			if c.Type == "f" && (restored[t.QualifiedName()] || restored[c.References]) {
				if err := run("ALTER TABLE ONLY " + t.QualifiedName() + " DROP CONSTRAINT " + pgschema.QuoteIdent(c.Name)); err != nil {
					return nil, err
				}
				readd = append(readd, c.AddStatement(t.QualifiedName()))
			}
		}
	}
	var reenable []string
	for _, j := range jobs {
		for _, tg := range j.t.Triggers {
			if tg.Enabled == "D" {
				continue
			}
			if err := run("ALTER TABLE " + j.t.QualifiedName() + " DISABLE TRIGGER " + pgschema.QuoteIdent(tg.Name)); err != nil {
				return nil, err
			}
			reenable = append(reenable, enableTrigger(j.t.QualifiedName(), tg))
		}
	}
	if err := run("TRUNCATE ONLY " + strings.Join(names, ", ONLY ")); err != nil { // children keep their own rows
		return nil, err
	}
	for i, j := range jobs {
		n, err := loadInto(ctx, tx, blobs, j, i)
		if err != nil {
			return nil, err
		}
		rep.Tables++
		rep.Rows += n
	}
	for _, s := range append(readd, reenable...) {
		if err := run(s); err != nil {
			return nil, err
		}
	}
	for _, sq := range live.Sequences {
		if !restored[sq.OwnerTable] || sq.OwnerColumn == "" {
			continue
		}
		// Only ever forward: rows made after the version may have used
		// higher numbers, and reusing them would confuse references.
		seq := pgschema.Ident(sq.Schema, sq.Name)
		q := fmt.Sprintf(`SELECT pg_catalog.setval(%s, m) FROM (SELECT max(%s) AS m FROM %s) x
			WHERE m > (SELECT last_value - CASE WHEN is_called THEN 0 ELSE 1 END FROM %s)`,
			pgschema.QuoteLiteral(seq), pgschema.QuoteIdent(sq.OwnerColumn), sq.OwnerTable, seq)
		if err := run(q); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, restoreError(v.ID, "COMMIT", err)
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func enableTrigger(table string, tg pgschema.Trigger) string {
	switch tg.Enabled {
	case "R":
		return "ALTER TABLE " + table + " ENABLE REPLICA TRIGGER " + pgschema.QuoteIdent(tg.Name)
	case "A":
		return "ALTER TABLE " + table + " ENABLE ALWAYS TRIGGER " + pgschema.QuoteIdent(tg.Name)
	}
	return "ALTER TABLE " + table + " ENABLE TRIGGER " + pgschema.QuoteIdent(tg.Name)
}

// loadInto streams a version's rows into an (empty) live table: straight
// through COPY when the columns match, else through a temporary table and
// an INSERT of the columns both have, cast to the live types.
func loadInto(ctx context.Context, tx pgx.Tx, blobs release.VersionBlobs, j restoreJob, n int) (int64, error) {
	var loaded int64
	if sameStrings(j.cols, j.vt.Columns) {
		br, err := openBlob(ctx, blobs, j.vt)
		if err != nil {
			return 0, err
		}
		defer br.Close()
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, br, "COPY "+j.t.QualifiedName()+" ("+pgschema.ColumnList(j.cols)+") FROM STDIN")
		if err != nil {
			return 0, blobError(j.vt, br, err)
		}
		loaded = tag.RowsAffected()
	} else {
		vtTable, err := tableOf(j.vt)
		if err != nil {
			return 0, err
		}
		tmp := tempName("restore", n)
		if err := loadTemp(ctx, tx, blobs, j.vt, vtTable, tmp); err != nil {
			return 0, err
		}
		sel := make([]string, len(j.cols))
		for i, c := range j.cols {
			sel[i] = pgschema.QuoteIdent(c)
			if lc, vc := j.t.Column(c), vtTable.Column(c); lc != nil && vc != nil && lc.Type != vc.Type {
				sel[i] = "CAST(" + pgschema.QuoteIdent(c) + "::text AS " + lc.Type + ")"
			}
		}
		overriding := ""
		for _, c := range j.t.Columns {
			if c.Identity == "a" {
				overriding = " OVERRIDING SYSTEM VALUE"
			}
		}
		q := "INSERT INTO " + j.t.QualifiedName() + " (" + pgschema.ColumnList(j.cols) + ")" + overriding + " SELECT " + strings.Join(sel, ", ") + " FROM " + tmp
		tag, err := tx.Exec(ctx, q)
		if err != nil {
			return 0, restoreError("", "load "+j.vt.Table, err)
		}
		loaded = tag.RowsAffected()
	}
	if loaded != j.vt.Rows {
		return 0, release.Errorf(release.CodeDamaged, "%s: %d rows loaded, the version says %d; nothing was changed", j.vt.Table, loaded, j.vt.Rows)
	}
	return loaded, nil
}

// restoreError says which statement failed and why; the transaction
// rolls back, so the database is as it was.
func restoreError(id, stmt string, err error) error {
	if release.ErrorCode(err) != release.CodeInternal {
		return err
	}
	what := "restore"
	if id != "" {
		what = "restore of " + id
	}
	msg := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg = pgErr.Message
		if pgErr.Detail != "" {
			msg += " (" + pgErr.Detail + ")"
		}
	}
	stmt = release.Cut(stmt, 120)
	return &release.Error{Code: release.CodeConflict, Message: fmt.Sprintf("%s failed at %q: %s; nothing was changed", what, stmt, msg), Err: err}
}

// Materialize makes a scratch database on env's server holding env's live
// schema and v's rows in its versioned tables (other tables empty), so the
// migration engine can read a saved version as if it were env.
func (e *Engine) Materialize(ctx context.Context, app *release.App, env *release.Environment, v *release.Version, blobs release.VersionBlobs) (*release.Environment, func(), error) {
	src, err := appdb.Connect(ctx, env.Database, "", env.Name)
	if err != nil {
		return nil, nil, err
	}
	live, err := inspect(ctx, src)
	src.Close(context.Background())
	if err != nil {
		return nil, nil, err
	}
	name, drop, err := appdb.CreateScratch(ctx, env.Database, "relbot_version")
	if err != nil {
		return nil, nil, err
	}
	conn, err := appdb.Connect(ctx, env.Database, name, env.Name)
	if err != nil {
		drop()
		return nil, nil, err
	}
	defer conn.Close(context.Background())
	if err := fill(ctx, conn, live, v, blobs); err != nil {
		drop()
		return nil, nil, err
	}
	return &release.Environment{Name: env.Name, Database: withDatabase(env.Database, name), Storage: env.Storage, Layout: env.Layout}, drop, nil
}

// fill builds the schema the way a restore does (tables, rows, keys,
// foreign keys, then the rest) in one transaction.
func fill(ctx context.Context, conn *pgx.Conn, live *pgschema.Schema, v *release.Version, blobs release.VersionBlobs) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	exec := func(stmts []string) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return restoreError(v.ID, s, err)
			}
		}
		return nil
	}
	if err := exec(live.PreData()); err != nil {
		return err
	}
	jobs, _ := plan(v, live)
	for i, j := range jobs {
		if _, err := loadInto(ctx, tx, blobs, j, i); err != nil {
			return err
		}
	}
	for i := range live.Tables {
		if err := exec(live.Tables[i].KeyStatements()); err != nil {
			return err
		}
	}
	for i := range live.Tables {
		t := &live.Tables[i]
		for _, st := range t.ForeignKeyStatements() {
			if _, err := tx.Exec(ctx, st); err != nil {
				return release.Errorf(release.CodeConflict, "version %s cannot stand alone: a foreign key of table %s needs rows that versions do not hold (list the table it points to under version_tables in apps.yaml): %s", v.ID, t.Key(), pgMessage(err))
			}
		}
	}
	if err := exec(live.PostData()); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return err.Error()
}

// withDatabase returns dsn pointing at database db on the same server.
func withDatabase(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + db
			u.RawPath = ""
			return u.String()
		}
	}
	// Keyword/value form: a later setting wins.
	return dsn + " dbname='" + strings.ReplaceAll(strings.ReplaceAll(db, `\`, `\\`), `'`, `\'`) + "'"
}
