package pgsnap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// Check verifies every byte of the archive against its checksums, fully
// decoding every member. It touches no database.
func (e *Engine) Check(ctx context.Context, a release.ArchiveReader, app string) (*release.ArchiveHeader, *release.BackupSummary, error) {
	ar, meta, err := e.openArchive(a, app)
	if err != nil {
		return nil, nil, err
	}
	if err := ar.Check(ctx); err != nil {
		return nil, nil, archiveError(err)
	}
	h := ar.Header()
	return &release.ArchiveHeader{ID: h.ID, App: h.App, Env: h.Env, Kind: release.BackupKind(meta.Kind), CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt},
		summarize(meta, h.Encryption != nil), nil
}

// Restore replaces target's database and storage with the archive's. Every
// checksum is verified before anything is touched. An empty target database
// is filled in parallel (and emptied again if that fails); a database with
// objects is replaced in one transaction, so a failure leaves it as it was.
// Storage is staged beside the target directory and swapped in only after
// the database committed. opts keeps the target's own rows of some tables
// and its own files of some paths (its secrets).
func (e *Engine) Restore(ctx context.Context, a release.ArchiveReader, app string, target *release.Environment, opts release.RestoreOptions) (*release.RestoreReport, error) {
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
	conn, err := appdb.Connect(ctx, target.Database, "", "")
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
		if staged, err = stageFiles(ctx, ar, meta, target.Storage, opts.KeepFiles); err != nil {
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
	kept := newKept(opts, target)
	var privWarnings []string
	switch {
	case fresh && meta.PgDump != nil:
		report.Mode = "into an empty database, in parallel"
		privWarnings, err = e.restoreDumpParallel(ctx, conn, target.Database, "", ar, meta, kept)
	case meta.PgDump != nil:
		report.Mode = "in place, in one transaction"
		privWarnings, err = restoreDumpInPlace(ctx, conn, ar, meta, kept)
	case fresh:
		report.Mode = "into an empty database, in parallel"
		privWarnings, err = e.restoreParallel(ctx, conn, target.Database, "", ar, meta, kept)
	default:
		report.Mode = "in place, in one transaction"
		privWarnings, err = restoreInPlace(ctx, conn, ar, meta, kept)
	}
	if err != nil {
		return nil, err
	}
	if staged != "" {
		if err := swapStorage(target.Storage, staged, target.StorageExclude, opts.KeepFiles); err != nil {
			return nil, fmt.Errorf("the database was restored but its storage could not be swapped in: %w", err)
		}
	}
	// Before the restore is reported done: a recovered production without
	// statistics plans every query as on empty tables. The rows and files
	// are in by now, so a failed ANALYZE is a warning, not a failed restore.
	if !opts.NoAnalyze {
		if report.Analyzed, report.AnalyzeTime, err = e.analyze(ctx, conn, target.Database, ""); err != nil {
			e.log().Warn("ANALYZE after the restore failed", "err", err)
			report.Warnings = append(report.Warnings, fmt.Sprintf("the restored database was not analyzed (%v): run ANALYZE in it before heavy use", err))
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
	if err := checkEncoding(ctx, conn, meta, "the database of "+env); err != nil {
		return err
	}
	var n int
	var who string
	err := conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT coalesce(nullif(application_name, ''), usename::text, 'unknown'), ', '), '')
		FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()`).Scan(&n, &who)
	if err != nil {
		return err
	}
	if n > 0 {
		return release.Errorf(release.CodeConflict, "the database of %s is in use by %s (%s): stop the app or turn maintenance on, then restore again", env, release.Count(n, "other session"), who)
	}
	return nil
}

// isEmpty reports whether the database holds nothing a restore would
// collide with: no schema but public, nothing in public, no extension but
// plpgsql, and none of the objects that live outside schemas.
func isEmpty(ctx context.Context, q pgschema.Querier) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('public', 'pg_catalog', 'information_schema')
			AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%')
		+ (SELECT count(*) FROM pg_catalog.pg_depend d WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
			AND d.refobjid = 'public'::pg_catalog.regnamespace AND d.deptype = 'n')
		+ (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql')
		+ (SELECT count(*) FROM pg_catalog.pg_publication) + (SELECT count(*) FROM pg_catalog.pg_foreign_data_wrapper)
		+ (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata) + (SELECT count(*) FROM pg_catalog.pg_event_trigger)
		+ (SELECT count(*) FROM pg_catalog.pg_cast WHERE oid >= 16384) + (SELECT count(*) FROM pg_catalog.pg_am WHERE oid >= 16384)
		+ (SELECT count(*) FROM pg_catalog.pg_language WHERE oid >= 16384 AND lanname <> 'plpgsql')
		+ (SELECT count(*) FROM pg_catalog.pg_transform)`).Scan(&n)
	return n == 0, err
}

func sortByBytes(infos []TableInfo) {
	for i := 1; i < len(infos); i++ {
		for j := i; j > 0 && infos[j].Bytes > infos[j-1].Bytes; j-- {
			infos[j], infos[j-1] = infos[j-1], infos[j]
		}
	}
}

// runParallel runs each phase's jobs on the engine's workers, one phase
// after the other, each worker on its own connection, in the phase's order.
func (e *Engine) runParallel(ctx context.Context, dsn, db string, phases ...[]func(context.Context, *pgx.Conn) error) error {
	conns, err := e.openWorkers(ctx, dsn, db)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	for _, jobs := range phases {
		if err := schedule(ctx, conns, inOrder(jobs)); err != nil {
			return err
		}
	}
	return nil
}

// inOrder is jobs as tasks that are taken in the list's order.
func inOrder(jobs []func(context.Context, *pgx.Conn) error) []*task {
	tasks := make([]*task, len(jobs))
	for i, j := range jobs {
		tasks[i] = &task{name: fmt.Sprintf("job %d", i+1), run: j}
	}
	return tasks
}

// loadFresh loads a table the restore has just made, in a transaction that
// truncates it first so that COPY may FREEZE: the rows are written frozen
// and all-visible, and the index builds and first reads that follow do not
// rewrite every page to set hint bits (as pg_restore's TRUNCATE does for
// WAL, this is for the pages).
func loadFresh(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo) error {
	return truncateAndLoad(ctx, conn, meta, ti, func(c *pgx.Conn) error { return loadTable(ctx, c, ar, meta, ti, true) })
}

// loadFreshPart loads one part of a table the restore has just made: the
// first as loadFresh does (emptied in its transaction, COPY FREEZE), the
// others, which wait for it, by a plain COPY in their own transaction.
func loadFreshPart(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo, part int) error {
	if part > 0 {
		return loadPart(ctx, conn, ar, meta, ti, part, false)
	}
	return truncateAndLoad(ctx, conn, meta, ti, func(c *pgx.Conn) error { return loadPart(ctx, c, ar, meta, ti, 0, true) })
}

// truncateAndLoad empties ti's table and runs load in the same transaction.
func truncateAndLoad(ctx context.Context, conn *pgx.Conn, meta *Meta, ti TableInfo, load func(*pgx.Conn) error) error {
	name, _, err := tableSQL(meta, ti)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE ONLY "+name); err != nil {
			return fmt.Errorf("load %s: %w", ti.Key, err)
		}
		return load(tx.Conn())
	})
}

// tableSQL is a manifest table's quoted name and its COPY FROM statement.
func tableSQL(meta *Meta, ti TableInfo) (string, string, error) {
	if meta.Schema != nil { // an archive of the old format
		t := meta.Schema.Table(ti.Key)
		if t == nil {
			return "", "", release.Errorf(release.CodeDamaged, "backup archive lists rows of %s but not its definition", ti.Key)
		}
		return t.QualifiedName(), appdb.CopyInSQL(t), nil
	}
	if ti.Name == "" {
		return "", "", release.Errorf(release.CodeDamaged, "backup archive lists rows of %s without its name", ti.Key)
	}
	t := &pgschema.Table{Schema: ti.Schema, Name: ti.Name}
	for _, c := range ti.Columns {
		t.Columns = append(t.Columns, pgschema.Column{Name: c})
	}
	return t.QualifiedName(), appdb.CopyInSQL(t), nil
}

// loadTable streams all of one table's rows (every part, one after the
// other) from the archive into COPY FROM; freeze when the table was made
// or emptied in the current transaction.
func loadTable(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo, freeze bool) error {
	for i := range ti.partCount() {
		if err := loadPart(ctx, conn, ar, meta, ti, i, freeze); err != nil {
			return err
		}
	}
	return nil
}

// loadPart streams entry part of the members holding ti's rows into COPY
// FROM and checks that part's row count; freeze only when the table was
// made or emptied in the current transaction (COPY refuses it otherwise).
func loadPart(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, ti TableInfo, part int, freeze bool) error {
	_, sql, err := tableSQL(meta, ti)
	if err != nil {
		return err
	}
	if part < 0 || part >= ti.partCount() {
		return fmt.Errorf("load %s: no part %d of %d", ti.Key, part+1, ti.partCount())
	}
	p := ti.part(part)
	m, ok := ar.Member(p.Member)
	if !ok {
		return release.Errorf(release.CodeDamaged, "backup archive has no rows for %s", partLabel(ti, part))
	}
	sql += copyOptions(ti.Format == formatBinary, freeze)
	tag, err := conn.PgConn().CopyFrom(ctx, ar.Open(m), sql)
	if err != nil {
		var d *archive.DamagedError
		if errors.As(err, &d) {
			return archiveError(err)
		}
		return fmt.Errorf("load %s: %w", partLabel(ti, part), err)
	}
	if tag.RowsAffected() != p.Rows {
		return release.Errorf(release.CodeDamaged, "%s: %d rows loaded, the manifest says %d", partLabel(ti, part), tag.RowsAffected(), p.Rows)
	}
	return nil
}

// partLabel names a table, or one part of a split table, for users:
// "table X" or "table X part 3 of 4 (member table/X.3)".
func partLabel(ti TableInfo, part int) string {
	if len(ti.Parts) == 0 {
		return "table " + ti.Key
	}
	return fmt.Sprintf("table %s part %d of %d (member %s)", ti.Key, part+1, len(ti.Parts), ti.Parts[part].Member)
}

func execAll(ctx context.Context, q pgschema.Querier, stmts []string) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", appdb.FirstLine(s), err)
		}
	}
	return nil
}

func inTx(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return execAll(ctx, tx, stmts) })
}

// stageFiles writes the archive's storage files into a new directory beside
// root, checking each file's checksum, and returns its path.
func stageFiles(ctx context.Context, ar *archive.Reader, meta *Meta, root string, keep []string) (string, error) {
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
		if !f.Dir && Excluded(f.Path, keep) {
			continue // the target keeps its own: swapStorage carries it over
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
func swapStorage(root, staged string, exclude, keep []string) error {
	root = filepath.Clean(root)
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(staged, root)
	}
	old := root + ".relbot-old-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(root, old); err != nil {
		return err
	}
	if err := carryKept(old, staged, keep); err != nil {
		_ = os.Rename(old, root)
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

// carryKept moves the old directory's files that keep matches into the new
// one: the target's own, byte for byte.
func carryKept(old, staged string, keep []string) error {
	if len(keep) == 0 {
		return nil
	}
	return filepath.WalkDir(old, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(old, p)
		if err != nil || !Excluded(filepath.ToSlash(rel), keep) {
			return err
		}
		dst := filepath.Join(staged, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.Rename(p, dst)
	})
}
