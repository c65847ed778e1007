package pgsnap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// Check verifies every byte of the archive against its checksums, fully
// decoding every member. It touches no database.
func (e *Engine) Check(ctx context.Context, a release.ArchiveReader, app string) (*release.ArchiveHeader, error) {
	ar, meta, err := e.openArchive(a, app)
	if err != nil {
		return nil, err
	}
	if err := ar.Check(ctx); err != nil {
		return nil, archiveError(err)
	}
	h := ar.Header()
	return &release.ArchiveHeader{ID: h.ID, App: h.App, Env: h.Env, Kind: release.BackupKind(meta.Kind), CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt}, nil
}

// Restore replaces target's database and storage with the archive's. Every
// checksum is verified before anything is touched. An empty target database
// is filled in parallel (and emptied again if that fails); a database with
// objects is replaced in one transaction, so a failure leaves it as it was.
// Storage is staged beside the target directory and swapped in only after
// the database committed.
func (e *Engine) Restore(ctx context.Context, a release.ArchiveReader, app string, target *release.Environment) (*release.RestoreReport, error) {
	start := time.Now()
	ar, meta, err := e.openArchive(a, app)
	if err != nil {
		return nil, err
	}
	// Every stored byte is checked before anything is touched; content
	// checksums are checked again as members are decoded during the load.
	if err := ar.CheckStored(ctx); err != nil {
		return nil, archiveError(err)
	}
	conn, err := connect(ctx, target.Database, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := checkTarget(ctx, conn, meta, target.Name); err != nil {
		return nil, err
	}
	report := &release.RestoreReport{Tables: len(meta.Tables)}
	for _, t := range meta.Tables {
		report.Rows += t.Rows
	}

	var staged string
	if meta.HasStorage && target.Storage != "" {
		if staged, err = stageFiles(ctx, ar, meta, target.Storage); err != nil {
			return nil, err
		}
		defer os.RemoveAll(staged) // gone by rename on success
		report.Files = countFiles(meta)
	} else if meta.HasStorage && countFiles(meta) > 0 {
		report.Warnings = append(report.Warnings, fmt.Sprintf("%s has no storage directory: the archive's %d files were not restored", target.Name, countFiles(meta)))
	}

	fresh, err := isEmpty(ctx, conn)
	if err != nil {
		return nil, err
	}
	var privWarnings []string
	if fresh {
		report.Mode = "into an empty database, in parallel"
		privWarnings, err = e.restoreParallel(ctx, conn, target.Database, "", ar, meta)
	} else {
		report.Mode = "in place, in one transaction"
		privWarnings, err = restoreInPlace(ctx, conn, ar, meta)
	}
	if err != nil {
		return nil, err
	}
	if staged != "" {
		if err := swapStorage(target.Storage, staged, target.StorageExclude); err != nil {
			return nil, fmt.Errorf("the database was restored but its storage could not be swapped in: %w", err)
		}
	}
	report.Warnings = append(report.Warnings, meta.Warnings...)
	report.Warnings = append(report.Warnings, privWarnings...)
	report.Duration = time.Since(start)
	return report, nil
}

func countFiles(m *Meta) int {
	n := 0
	for _, f := range m.Files {
		if !f.Dir {
			n++
		}
	}
	return n
}

// checkTarget refuses a server older than the archive's and a database
// other sessions are using.
func checkTarget(ctx context.Context, conn *pgx.Conn, meta *Meta, env string) error {
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return err
	}
	if majorOf(meta.ServerVersionNum) > majorOf(num) {
		return release.Errorf(release.CodeIncompatible, "backup is from PostgreSQL %d, but %s runs PostgreSQL %d: restore it into a server of version %d or newer",
			majorOf(meta.ServerVersionNum), env, majorOf(num), majorOf(meta.ServerVersionNum))
	}
	var n int
	var who string
	err := conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT coalesce(nullif(application_name, ''), usename::text, 'unknown'), ', '), '')
		FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()`).Scan(&n, &who)
	if err != nil {
		return err
	}
	if n > 0 {
		return release.Errorf(release.CodeConflict, "the database of %s is in use by %d other session(s) (%s): stop the app or turn maintenance on, then restore again", env, n, who)
	}
	return nil
}

// isEmpty reports whether the database has no user objects at all.
func isEmpty(ctx context.Context, q pgschema.Querier) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
			AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
		+ (SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'))`).Scan(&n)
	return n == 0, err
}

// restoreInPlace drops what the database holds and rebuilds it from the
// archive, all in one transaction.
func restoreInPlace(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta) ([]string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return nil, err
	}
	current, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := execAll(ctx, tx, DropStatements(current, meta.Schema)); err != nil {
		return nil, fmt.Errorf("clear the target: %w", err)
	}
	if err := execAll(ctx, tx, meta.Schema.PreData()); err != nil {
		return nil, err
	}
	for _, ti := range meta.Tables {
		// Made in this transaction: FREEZE writes the rows already frozen.
		if err := loadTable(ctx, tx.Conn(), ar, meta, ti, true); err != nil {
			return nil, err
		}
	}
	for i := range meta.Schema.Tables {
		if err := execAll(ctx, tx, meta.Schema.Tables[i].KeyStatements()); err != nil {
			return nil, err
		}
	}
	for i := range meta.Schema.Tables {
		if err := execAll(ctx, tx, meta.Schema.Tables[i].ForeignKeyStatements()); err != nil {
			return nil, err
		}
	}
	if err := execAll(ctx, tx, meta.Schema.PostData()); err != nil {
		return nil, err
	}
	warnings, err := restorePrivileges(ctx, tx, meta.Schema)
	if err != nil {
		return nil, err
	}
	return warnings, tx.Commit(ctx)
}

// restoreParallel fills an empty database: DDL on conn, then rows, keys
// and foreign keys by several workers, then the rest on conn. On failure it
// drops what it made, leaving the database empty as it found it.
func (e *Engine) restoreParallel(ctx context.Context, conn *pgx.Conn, dsn, db string, ar *archive.Reader, meta *Meta) (warnings []string, err error) {
	before, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if after, ierr := pgschema.Inspect(cctx, conn); ierr == nil {
			if cerr := execAll(cctx, conn, DropStatements(after, before)); cerr != nil {
				e.log().Error("could not empty the database after a failed restore", "err", cerr)
			}
		}
	}()
	if err := inTx(ctx, conn, meta.Schema.PreData()); err != nil {
		return nil, err
	}
	tables := map[string]*pgschema.Table{}
	for i := range meta.Schema.Tables {
		tables[meta.Schema.Tables[i].Key()] = &meta.Schema.Tables[i]
	}
	// Largest first; then keys per table; then foreign keys.
	infos := append([]TableInfo(nil), meta.Tables...)
	sortByBytes(infos)
	// A table's keys and indexes are built by the worker that loaded it,
	// right after its rows: the other worker keeps loading meanwhile (as
	// pg_restore -j overlaps them). Foreign keys wait for every key.
	tablesJobs := make([]func(context.Context, *pgx.Conn) error, 0, len(infos))
	var fks []func(context.Context, *pgx.Conn) error
	for _, ti := range infos {
		t := tables[ti.Key]
		keys := t.KeyStatements()
		tablesJobs = append(tablesJobs, func(ctx context.Context, c *pgx.Conn) error {
			if err := loadFresh(ctx, c, ar, meta, ti); err != nil {
				return err
			}
			return execAll(ctx, c, keys)
		})
		for _, s := range t.ForeignKeyStatements() {
			fks = append(fks, func(ctx context.Context, c *pgx.Conn) error { return execAll(ctx, c, []string{s}) })
		}
	}
	if err := e.runParallel(ctx, dsn, db, tablesJobs, fks); err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := execAll(ctx, tx, meta.Schema.PostData()); err != nil {
			return err
		}
		warnings, err = restorePrivileges(ctx, tx, meta.Schema)
		return err
	})
	return warnings, err
}

// restorePrivileges gives objects back to their owners and grants what
// was granted, as far as the roles exist here and the restoring role may.
func restorePrivileges(ctx context.Context, q pgschema.Querier, s *pgschema.Schema) ([]string, error) {
	if len(s.Privileges) == 0 {
		return nil, nil
	}
	access, err := pgschema.ReadRoleAccess(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	stmts, warnings := pgschema.PrivilegeStatements(s.Privileges, access)
	if err := execAll(ctx, q, stmts); err != nil {
		return nil, fmt.Errorf("restore owners and grants: %w", err)
	}
	return warnings, nil
}

func sortByBytes(infos []TableInfo) {
	for i := 1; i < len(infos); i++ {
		for j := i; j > 0 && infos[j].Bytes > infos[j-1].Bytes; j-- {
			infos[j], infos[j-1] = infos[j-1], infos[j]
		}
	}
}

// runParallel runs each phase's jobs on the engine's workers, one phase
// after the other, each worker on its own connection.
func (e *Engine) runParallel(ctx context.Context, dsn, db string, phases ...[]func(context.Context, *pgx.Conn) error) error {
	n := e.workers()
	conns := make([]*pgx.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	for i := range conns {
		c, err := connect(ctx, dsn, db)
		if err != nil {
			return err
		}
		// Losing the last commits in a crash is harmless here: a failed
		// restore is done again, and the final phase commits durably.
		if _, err := c.Exec(ctx, "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'"); err != nil {
			return err
		}
		conns[i] = c
	}
	for _, jobs := range phases {
		g, gctx := errgroup.WithContext(ctx)
		queue := feed(gctx, g, jobs)
		for _, c := range conns {
			g.Go(func() error {
				for j := range queue {
					if err := j(gctx, c); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// loadFresh loads a table the restore has just made, in a transaction that
// truncates it first so that COPY may FREEZE: the rows are written frozen
// and all-visible, and the index builds and first reads that follow do not
// rewrite every page to set hint bits (as pg_restore's TRUNCATE does for
// WAL, this is for the pages).
func loadFresh(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo) error {
	t := meta.Schema.Table(ti.Key)
	if t == nil {
		return release.Errorf(release.CodeDamaged, "backup archive lists rows of %s but not its definition", ti.Key)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE ONLY "+t.QualifiedName()); err != nil {
			return fmt.Errorf("load %s: %w", ti.Key, err)
		}
		return loadTable(ctx, tx.Conn(), ar, meta, ti, true)
	})
}

// loadTable streams one table's rows from the archive into COPY FROM;
// freeze when the table was made or emptied in the current transaction.
func loadTable(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo, freeze bool) error {
	t := meta.Schema.Table(ti.Key)
	if t == nil {
		return release.Errorf(release.CodeDamaged, "backup archive lists rows of %s but not its definition", ti.Key)
	}
	m, ok := ar.Member(ti.Member)
	if !ok {
		return release.Errorf(release.CodeDamaged, "backup archive has no rows for table %s", ti.Key)
	}
	sql := CopyInSQL(t)
	if freeze {
		sql += " (FREEZE)"
	}
	tag, err := conn.PgConn().CopyFrom(ctx, ar.Open(m), sql)
	if err != nil {
		var d *archive.DamagedError
		if errors.As(err, &d) {
			return archiveError(err)
		}
		return fmt.Errorf("load %s: %w", ti.Key, err)
	}
	if tag.RowsAffected() != ti.Rows {
		return release.Errorf(release.CodeDamaged, "table %s: %d rows loaded, the manifest says %d", ti.Key, tag.RowsAffected(), ti.Rows)
	}
	return nil
}

func execAll(ctx context.Context, q pgschema.Querier, stmts []string) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

func inTx(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return execAll(ctx, tx, stmts) })
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 200 {
		s = s[:200] + " ..."
	}
	return s
}

// DropStatements removes every user object of current that keep does not
// also have at the database level (schemas and extensions keep lists what
// to leave). Objects are dropped CASCADE and IF EXISTS, since dropping one
// may already have removed another.
func DropStatements(current, keep *pgschema.Schema) []string {
	var out []string
	for i := len(current.Views) - 1; i >= 0; i-- {
		v := current.Views[i]
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		out = append(out, "DROP "+kind+" IF EXISTS "+pgschema.Ident(v.Schema, v.Name)+" CASCADE")
	}
	for _, t := range current.Tables {
		out = append(out, "DROP TABLE IF EXISTS "+t.QualifiedName()+" CASCADE")
	}
	for _, s := range current.Sequences {
		if s.OwnerTable == "" {
			out = append(out, "DROP SEQUENCE IF EXISTS "+pgschema.Ident(s.Schema, s.Name)+" CASCADE")
		}
	}
	for _, f := range current.Functions {
		out = append(out, "DROP "+f.Kind+" IF EXISTS "+f.Signature+" CASCADE")
	}
	for _, c := range current.Composites {
		out = append(out, "DROP TYPE IF EXISTS "+pgschema.Ident(c.Schema, c.Name)+" CASCADE")
	}
	for _, d := range current.Domains {
		out = append(out, "DROP DOMAIN IF EXISTS "+pgschema.Ident(d.Schema, d.Name)+" CASCADE")
	}
	for _, en := range current.Enums {
		out = append(out, "DROP TYPE IF EXISTS "+pgschema.Ident(en.Schema, en.Name)+" CASCADE")
	}
	keepExt := map[string]bool{}
	for _, x := range keep.Extensions {
		keepExt[x.Name] = true
	}
	for _, x := range current.Extensions {
		if !keepExt[x.Name] {
			out = append(out, "DROP EXTENSION IF EXISTS "+pgschema.QuoteIdent(x.Name)+" CASCADE")
		}
	}
	keepSchema := map[string]bool{"public": true}
	for _, s := range keep.Schemas {
		keepSchema[s.Name] = true
	}
	for _, x := range keep.Extensions {
		keepSchema[x.Schema] = true
	}
	for _, s := range current.Schemas {
		if !keepSchema[s.Name] {
			out = append(out, "DROP SCHEMA IF EXISTS "+pgschema.QuoteIdent(s.Name)+" CASCADE")
		}
	}
	return out
}

// stageFiles writes the archive's storage files into a new directory beside
// root, checking each file's checksum, and returns its path.
func stageFiles(ctx context.Context, ar *archive.Reader, meta *Meta, root string) (string, error) {
	parent := filepath.Dir(filepath.Clean(root))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("storage: %w", err)
	}
	staged, err := os.MkdirTemp(parent, "."+filepath.Base(root)+".relbot-restore-")
	if err != nil {
		return "", fmt.Errorf("storage: %w", err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(staged)
		return "", err
	}
	for _, f := range meta.Files {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		dst, err := safeJoin(staged, f.Path)
		if err != nil {
			return fail(err)
		}
		if f.Dir {
			if err := os.MkdirAll(dst, fs.FileMode(f.Mode)|0o700); err != nil {
				return fail(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fail(err)
		}
		if err := writeFile(ar, f, dst); err != nil {
			return fail(err)
		}
	}
	// Directory times last: writing files into them changed them.
	for _, f := range meta.Files {
		dst, _ := safeJoin(staged, f.Path)
		_ = os.Chtimes(dst, f.ModTime, f.ModTime)
	}
	return staged, nil
}

func writeFile(ar *archive.Reader, f FileInfo, dst string) error {
	m, ok := ar.Member(f.Member)
	if !ok {
		return release.Errorf(release.CodeDamaged, "backup archive lacks storage file %s", f.Path)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(f.Mode)|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, ar.Open(m)); err != nil {
		out.Close()
		return archiveError(err)
	}
	return out.Close()
}

// safeJoin joins a relative archive path to dir, refusing paths that would
// leave it.
func safeJoin(dir, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", release.Errorf(release.CodeDamaged, "backup archive holds an unsafe storage path %q", rel)
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}

// swapStorage puts staged in root's place. Excluded entries of the old
// directory (logs, the app's socket) are carried over, not lost.
func swapStorage(root, staged string, exclude []string) error {
	root = filepath.Clean(root)
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(staged, root)
	}
	old := root + ".relbot-old-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(root, old); err != nil {
		return err
	}
	entries, _ := os.ReadDir(old)
	for _, en := range entries {
		if !Excluded(en.Name(), exclude) {
			continue
		}
		dst := filepath.Join(staged, en.Name())
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			_ = os.Rename(filepath.Join(old, en.Name()), dst)
		}
	}
	if err := os.Rename(staged, root); err != nil {
		_ = os.Rename(old, root)
		return err
	}
	return os.RemoveAll(old)
}
