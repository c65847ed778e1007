package pgsnap

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// Create writes a consistent archive of env's database and storage to w.
func (e *Engine) Create(ctx context.Context, env *release.Environment, h release.ArchiveHeader, w io.Writer) (*release.BackupSummary, error) {
	start := time.Now()
	log := e.log().With("app", h.App, "env", h.Env, "backup", h.ID)

	main, err := appdb.Connect(ctx, env.Database, "", "")
	if err != nil {
		return nil, err
	}
	defer main.Close(context.Background())
	snap, err := openSnapshot(ctx, main)
	if err != nil {
		return nil, err
	}
	defer snap.tx.Rollback(context.Background())

	serverNum := serverVersion(ctx, main)
	dumpVersion, err := e.checkPgDump(ctx, serverNum)
	if err != nil {
		return nil, err
	}
	var serverText string
	if err := snap.tx.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&serverText); err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	tables, err := listTables(ctx, snap.tx)
	if err != nil {
		return nil, fmt.Errorf("backup %s: list tables: %w", h.ID, err)
	}
	if err := lockTables(ctx, snap.tx, tables); err != nil {
		return nil, err
	}
	extConfig, err := extensionConfigTables(ctx, snap.tx)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	var noData []string
	for _, t := range extConfig {
		noData = append(noData, t.QualifiedName())
	}
	meta := &Meta{
		App: h.App, Env: h.Env, Kind: string(h.Kind), CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt,
		ServerVersion: serverText, ServerVersionNum: serverNum,
		Workers: e.workers(), HasStorage: env.Storage != "",
		PgDump: &PgDumpInfo{Version: dumpVersion, PreData: preDataMember, Data: dataMember, PostData: postDataMember, NoData: noData},
	}
	app, err := nocobase.ReadApp(ctx, snap.tx, tablesSchema(tables), env)
	if err != nil {
		return nil, fmt.Errorf("backup %s: read app versions: %w", h.ID, err)
	}
	meta.CoreVersion, meta.Plugins, meta.Layout = app.Core, app.Plugins, app.Layout
	meta.Warnings = app.Warnings

	aw, err := archive.NewWriter(w, archive.Header{
		ID: h.ID, App: h.App, Env: h.Env, Kind: string(h.Kind), CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt,
		ServerVersion: serverText, ServerVersionNum: serverNum,
	}, e.Passphrase)
	if err != nil {
		return nil, err
	}

	// Largest first, so the last table to finish is a small one.
	sort.SliceStable(tables, func(i, j int) bool { return tables[i].Bytes > tables[j].Bytes })
	binary, encoding, err := binaryTables(ctx, snap.tx, tables)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	meta.Encoding = encoding
	jobs, err := e.planCopies(ctx, snap.tx, serverNum, tables, binary, log)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	results := make(chan copyResult, len(jobs))

	g, gctx := errgroup.WithContext(ctx)
	queue := feed(gctx, g, jobs)
	for range e.workers() {
		g.Go(func() error { return e.copyWorker(gctx, env.Database, snap.id, aw, queue, results) })
	}
	// pg_dump writes the schema, sequence values and large objects under
	// the same snapshot while the workers copy rows.
	g.Go(func() error {
		for _, sec := range []struct{ name, member string }{{"pre-data", preDataMember}, {"data", dataMember}, {"post-data", postDataMember}} {
			args := e.dumpArgs(snap.id, sec.name)
			if sec.name == "data" {
				args = append(args, excludeData(tables, meta.PgDump.NoData)...)
			}
			mw, err := aw.Create(sec.member)
			if err != nil {
				return err
			}
			if err := e.runPgDump(gctx, env.Database, "", mw, args...); err != nil {
				return err
			}
			if _, err := mw.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	var files []FileInfo
	var fileWarnings []string
	if env.Storage != "" {
		g.Go(func() (err error) {
			files, fileWarnings, err = backupFiles(gctx, env.Storage, env.StorageExclude, aw)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	close(results)
	meta.Tables = tableInfos(tables, results, binary)
	sort.Slice(meta.Tables, func(i, j int) bool { return meta.Tables[i].Key < meta.Tables[j].Key })
	meta.Files = files
	// Ending the snapshot's transaction only now keeps the locks until every
	// table was read.
	if err := snap.tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("backup %s: end snapshot: %w", h.ID, err)
	}
	for _, t := range extConfig {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("rows of %s, a configuration table of an extension, are not backed up: the extension makes its own again", t.Key()))
	}
	meta.Warnings = append(meta.Warnings, fileWarnings...)
	meta.Duration = Duration(time.Since(start))
	if err := aw.Finish(meta); err != nil {
		return nil, fmt.Errorf("backup %s: %w", h.ID, err)
	}
	sum := summarize(meta, e.Passphrase != "")
	log.Info("backup written", "tables", sum.Tables, "rows", sum.Rows, "files", sum.Files, "duration", sum.Duration)
	return sum, nil
}

func summarize(m *Meta, encrypted bool) *release.BackupSummary {
	s := &release.BackupSummary{
		ServerVersion: m.ServerVersion, CoreVersion: m.CoreVersion, Plugins: m.Plugins,
		Tables: len(m.Tables), Duration: time.Duration(m.Duration), Encrypted: encrypted, Warnings: m.Warnings,
	}
	for _, t := range m.Tables {
		s.Rows += t.Rows
		s.DataBytes += t.Bytes
	}
	for _, f := range m.Files {
		if !f.Dir {
			s.Files++
			s.FileBytes += f.Size
		}
	}
	return s
}

type snapshot struct {
	tx pgx.Tx
	id string
}

// openSnapshot starts the transaction whose snapshot every worker shares.
func openSnapshot(ctx context.Context, conn *pgx.Conn) (*snapshot, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	var id string
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&id); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	return &snapshot{tx: tx, id: id}, nil
}

// lockTables takes ACCESS SHARE locks, as pg_dump does, so that no table is
// dropped or rewritten while workers read it. Writers are not blocked.
func lockTables(ctx context.Context, tx pgx.Tx, tables []*pgschema.Table) error {
	if len(tables) == 0 {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.QualifiedName()
	}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS SHARE MODE"); err != nil {
		return release.Errorf(release.CodeConflict, "could not lock the tables for a consistent backup within 30s (a schema change is running?): %w", err)
	}
	return nil
}

// listTables lists the tables whose rows relbot copies itself: every
// ordinary table, partitions and inheritance children included (COPY reads
// a table's own rows, not its children's), with the columns COPY writes.
// Partitioned tables hold no rows; views, foreign tables and extensions'
// tables are pg_dump's. Bytes is the table's size with its TOAST: a table
// of large values is mostly TOAST.
func listTables(ctx context.Context, q pgschema.Querier) ([]*pgschema.Table, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, pg_catalog.pg_table_size(c.oid),
			coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '{}')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	var out []*pgschema.Table
	var schema, name string
	var size int64
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&schema, &name, &size, &cols}, func() error {
		t := &pgschema.Table{Schema: schema, Name: name, Bytes: size}
		for _, c := range cols {
			t.Columns = append(t.Columns, pgschema.Column{Name: c})
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// extensionConfigTables are the tables extensions mark as configuration
// (pg_extension_config_dump): pg_dump would put the rows it keeps of them
// in its data section as COPY, which relbot does not load from there.
func extensionConfigTables(ctx context.Context, q pgschema.Querier) ([]*pgschema.Table, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_extension e
		CROSS JOIN LATERAL unnest(e.extconfig) AS cfg(oid) JOIN pg_catalog.pg_class c ON c.oid = cfg.oid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list extensions' configuration tables: %w", err)
	}
	var out []*pgschema.Table
	var schema, name string
	_, err = pgx.ForEachRow(rows, []any{&schema, &name}, func() error {
		out = append(out, &pgschema.Table{Schema: schema, Name: name})
		return nil
	})
	return out, err
}

// tablesSchema is a model holding just these tables' names and columns.
func tablesSchema(tables []*pgschema.Table) *pgschema.Schema {
	s := &pgschema.Schema{}
	for _, t := range tables {
		s.Tables = append(s.Tables, *t)
	}
	return s
}

// feed hands items one at a time to the workers of g, in order, and
// closes the channel after the last or when g's context ends.
func feed[T any](ctx context.Context, g *errgroup.Group, items []T) <-chan T {
	queue := make(chan T)
	g.Go(func() error {
		defer close(queue)
		for _, it := range items {
			select {
			case queue <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	return queue
}

// copyWorker joins the exported snapshot and copies tables, or ranges of
// split tables, from queue.
func (e *Engine) copyWorker(ctx context.Context, dsn, snapshotID string, aw *archive.Writer, queue <-chan copyJob, results chan<- copyResult) error {
	conn, err := appdb.Connect(ctx, dsn, "", "")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+pgschema.QuoteLiteral(snapshotID)); err != nil {
		return fmt.Errorf("join snapshot: %w", err)
	}
	// A range of a split table without a TID range scan is a scan of the
	// whole table: a server set against TID scans must not make each range
	// read it all.
	if _, err := tx.Exec(ctx, "SET LOCAL enable_tidscan = on"); err != nil {
		return err
	}
	for j := range queue {
		r, err := copyRows(ctx, conn, j, aw)
		if err != nil {
			return err
		}
		results <- r
	}
	return nil
}

// copyRows streams one job's rows (a table, or one range of a split
// table) into its own member.
func copyRows(ctx context.Context, conn *pgx.Conn, j copyJob, aw *archive.Writer) (copyResult, error) {
	name, sql, what := tablePrefix+j.t.Key(), appdb.CopyOutSQL(j.t), j.t.Key()
	if j.parts > 1 {
		name, sql = partMember(j.t.Key(), j.part, j.parts), copyRangeSQL(j.t, j.from, j.to)
		what = fmt.Sprintf("%s part %d of %d", j.t.Key(), j.part+1, j.parts)
	}
	sql += copyOptions(j.binary, false)
	mw, err := aw.Create(name)
	if err != nil {
		return copyResult{}, err
	}
	sum := rowChecksum(j.binary)
	if _, err := conn.PgConn().CopyTo(ctx, io.MultiWriter(mw, sum), sql); err != nil {
		return copyResult{}, fmt.Errorf("copy %s: %w", what, err)
	}
	// Only the sum is kept until the backup ends, not the buffer sum grew
	// for rows cut between writes (a large bytea's size).
	r := copyResult{job: j}
	r.sum.Add(sum)
	if r.member, err = mw.Close(); err != nil {
		return copyResult{}, err
	}
	return r, nil
}

// backupFiles copies every regular file and directory of the storage
// directory. Sockets, devices and excluded paths are left out.
func backupFiles(ctx context.Context, root string, exclude []string, aw *archive.Writer) ([]FileInfo, []string, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, nil, release.Errorf(release.CodeInvalid, "storage directory %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, nil, release.Errorf(release.CodeInvalid, "storage %s is not a directory", root)
	}
	var files []FileInfo
	var warnings []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if Excluded(rel, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			files = append(files, FileInfo{Path: rel, Dir: true, Mode: uint32(info.Mode().Perm()), ModTime: info.ModTime().UTC()})
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			warnings = append(warnings, fmt.Sprintf("storage symlink %s is not backed up", rel))
			return nil
		case !info.Mode().IsRegular():
			return nil // a socket such as gateway.sock, a pipe or a device: not content
		}
		fi, err := backupFile(p, rel, info, aw)
		if err != nil {
			return err
		}
		if fi.Size != info.Size() {
			warnings = append(warnings, fmt.Sprintf("storage file %s changed while it was backed up", rel))
		}
		files = append(files, fi)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %w", err)
	}
	return files, warnings, nil
}

func backupFile(p, rel string, info fs.FileInfo, aw *archive.Writer) (FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	mw, err := aw.Create(filePrefix + rel)
	if err != nil {
		return FileInfo{}, err
	}
	if _, err := io.Copy(mw, f); err != nil {
		return FileInfo{}, fmt.Errorf("read %s: %w", rel, err)
	}
	m, err := mw.Close()
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Path: rel, Mode: uint32(info.Mode().Perm()), ModTime: info.ModTime().UTC(), Size: m.Bytes, SHA256: m.SHA256, Member: m.Name}, nil
}

// defaultSplitBytes is the size above which a table is split when
// Engine.SplitBytes is 0: big enough that small tables stay one member,
// small enough that the largest tables of a database of a few GB spread
// over the workers.
const defaultSplitBytes = 64 << 20

// maxParts bounds how many ranges (and members) one table is split into.
const maxParts = 64

// tidRangeVersion is the first server that scans a ctid range without
// reading the whole table (TID Range Scan, PostgreSQL 14).
const tidRangeVersion = 140000

func (e *Engine) splitBytes() int64 {
	switch {
	case e.SplitBytes > 0:
		return e.SplitBytes
	case e.SplitBytes < 0:
		return 0
	}
	return defaultSplitBytes
}

// copyJob is one worker's COPY: a whole table (parts 1), or pages
// [from, to) of a split one (to 0: up to the end).
type copyJob struct {
	t           *pgschema.Table
	table       int // index in the backup's list of tables
	part, parts int
	from, to    int64
	bytes       int64 // an estimate, to order the jobs
	binary      bool  // in COPY's binary format
}

type copyResult struct {
	job    copyJob
	member archive.Member
	sum    appdb.RowChecksum
}

// planCopies makes the workers' jobs: one per table, except that a table
// above the split size is split into ranges of ctid pages, so that its
// rows are read by several workers at once. The jobs are ordered largest
// first; a split table's ranges, each a fraction of it, then spread over
// the workers among the other tables. tables is ordered largest first.
func (e *Engine) planCopies(ctx context.Context, tx pgx.Tx, serverNum int, tables []*pgschema.Table, binary map[string]bool, log *slog.Logger) ([]copyJob, error) {
	split := e.splitBytes()
	var big int
	for _, t := range tables {
		if split > 0 && t.Bytes > split {
			big++
		}
	}
	if big > 0 && serverNum < tidRangeVersion {
		// Each range would be a scan of the whole table.
		log.Info("big tables are not split: scanning a ctid range needs PostgreSQL 14 or newer", "server_version_num", serverNum, "tables", big)
		split = 0
	}
	jobs := make([]copyJob, 0, len(tables))
	for i, t := range tables {
		parts, pages := 1, int64(0)
		if split > 0 && t.Bytes > split {
			// The main fork's pages now: the rows the snapshot sees are on
			// them (the lock keeps the table from being rewritten); pages
			// added since are past the last range's open end.
			err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_relation_size($1::text::pg_catalog.regclass) / current_setting('block_size')::bigint", t.QualifiedName()).Scan(&pages)
			if err != nil {
				return nil, fmt.Errorf("size of %s: %w", t.Key(), err)
			}
			parts = int(min(int64(maxParts), pages, max(int64(e.workers()), (t.Bytes+split-1)/split)))
		}
		if parts < 2 {
			jobs = append(jobs, copyJob{t: t, table: i, parts: 1, bytes: t.Bytes, binary: binary[t.Key()]})
			continue
		}
		log.Info("table split into ranges", "table", t.Key(), "bytes", t.Bytes, "pages", pages, "parts", parts)
		for p := range parts {
			j := copyJob{t: t, table: i, part: p, parts: parts, from: pages * int64(p) / int64(parts), bytes: t.Bytes / int64(parts), binary: binary[t.Key()]}
			if p < parts-1 {
				j.to = pages * int64(p+1) / int64(parts)
			}
			jobs = append(jobs, j)
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].bytes > jobs[b].bytes })
	return jobs, nil
}

// copyRangeSQL reads pages [from, to) of t (to 0: to the end), its own
// rows only (ONLY: not an inheritance child's), as COPY t TO writes them.
func copyRangeSQL(t *pgschema.Table, from, to int64) string {
	where := fmt.Sprintf("ctid >= '(%d,0)'::pg_catalog.tid", from)
	if to > 0 {
		where += fmt.Sprintf(" AND ctid < '(%d,0)'::pg_catalog.tid", to)
	}
	return "COPY (SELECT " + pgschema.ColumnList(t.CopyColumns()) + " FROM ONLY " + t.QualifiedName() + " WHERE " + where + ") TO STDOUT"
}

// partMember names the member of part (from 0) of a table split in
// parts: under its own prefix, as a table's member may be named anything
// "table/" is followed by; the number after the last slash is the part.
func partMember(key string, part, parts int) string {
	return fmt.Sprintf("%s%s/%d-of-%d", tablePartPrefix, key, part+1, parts)
}

// tableInfos makes the manifest's tables from the workers' results: a
// split table's parts in order, with its totals (rows, bytes, and the
// parts' checksums added: the checksum of the table read whole).
func tableInfos(tables []*pgschema.Table, results <-chan copyResult, binary map[string]bool) []TableInfo {
	byTable := make([][]copyResult, len(tables))
	for r := range results {
		byTable[r.job.table] = append(byTable[r.job.table], r)
	}
	out := make([]TableInfo, 0, len(tables))
	for i, t := range tables {
		rs := byTable[i]
		sort.Slice(rs, func(a, b int) bool { return rs[a].job.part < rs[b].job.part })
		ti := TableInfo{Key: t.Key(), Schema: t.Schema, Name: t.Name, Columns: t.CopyColumns()}
		if binary[t.Key()] {
			ti.Format = formatBinary
		}
		var total appdb.RowChecksum
		for _, r := range rs {
			total.Add(&r.sum)
			ti.Bytes += r.member.Bytes
			if r.job.parts > 1 {
				ti.Parts = append(ti.Parts, TablePart{Member: r.member.Name, Rows: r.sum.Rows, Bytes: r.member.Bytes, Checksum: r.sum.Sum(), FromPage: r.job.from, ToPage: r.job.to})
			} else {
				ti.Member = r.member.Name
			}
		}
		ti.Rows, ti.Checksum = total.Rows, total.Sum()
		out = append(out, ti)
	}
	return out
}
