package pgsnap

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
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// Restoring an archive whose schema is pg_dump's: pre-data, then
// sequence values and large objects, then rows by relbot's COPY, then
// post-data.

// section reads one of pg_dump's sections from the archive.
func section(ar *archive.Reader, name string) (io.Reader, error) {
	m, ok := ar.Member(name)
	if !ok {
		return nil, release.Errorf(release.CodeDamaged, "backup archive lacks pg_dump's %s", strings.TrimSuffix(strings.TrimPrefix(name, "schema/"), ".sql"))
	}
	return ar.Open(m), nil
}

func readSection(ar *archive.Reader, name string) ([]statement, error) {
	r, err := section(ar, name)
	if err != nil {
		return nil, err
	}
	stmts, err := readScript(r)
	if err != nil {
		var d *archive.DamagedError
		if errors.As(err, &d) {
			return nil, archiveError(err)
		}
		return nil, release.Errorf(release.CodeDamaged, "backup archive's %s: %v", name, err)
	}
	return withSettings(stmts), nil
}

// runData runs the data section (sequence values, large objects) as a
// stream: large objects may be big. pg_dump wraps large objects in
// BEGIN/COMMIT of its own, which would end relbot's transaction: they are
// left out, the caller's transaction holds them.
func runData(ctx context.Context, q pgschema.Querier, r *runner, ar *archive.Reader, meta *Meta) error {
	src, err := section(ar, meta.PgDump.Data)
	if err != nil {
		return err
	}
	sr := newScriptReader(src)
	for {
		st, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var d *archive.DamagedError
			if errors.As(err, &d) {
				return archiveError(err)
			}
			return release.Errorf(release.CodeDamaged, "backup archive's data section: %v", err)
		}
		if st.SQL == "BEGIN" || st.SQL == "COMMIT" {
			continue
		}
		if err := r.exec(ctx, q, st); err != nil {
			return err
		}
	}
}

// restoreDumpInPlace drops everything the database holds and rebuilds it
// from the archive, all in one transaction.
func restoreDumpInPlace(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, kept *keptRows) ([]string, error) {
	pre, err := readSection(ar, meta.PgDump.PreData)
	if err != nil {
		return nil, err
	}
	post, err := readSection(ar, meta.PgDump.PostData)
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return nil, err
	}
	if err := kept.keepRows(ctx, tx); err != nil {
		return nil, err
	}
	if err := clearDatabase(ctx, tx); err != nil {
		return nil, fmt.Errorf("clear the target: %w", err)
	}
	r, err := newRunner(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := r.runAll(ctx, tx, pre); err != nil {
		return nil, err
	}
	if err := runData(ctx, tx, r, ar, meta); err != nil {
		return nil, err
	}
	warnings, err := loadInPlace(ctx, tx, ar, meta, kept)
	if err != nil {
		return nil, err
	}
	if err := r.runAll(ctx, tx, post); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return append(warnings, r.warnings()...), nil
}

// restoreDumpParallel fills an empty database: pre-data and the data
// section in one transaction, then rows and each table's indexes and keys
// by the workers as restoreTasks schedules them, then partitions' indexes
// attached, foreign keys on the workers, and the rest (triggers, rules,
// policies, privileges, ...) in one transaction. On failure it empties
// the database again.
func (e *Engine) restoreDumpParallel(ctx context.Context, conn *pgx.Conn, dsn, db string, ar *archive.Reader, meta *Meta, kept *keptRows) (warnings []string, err error) {
	pre, err := readSection(ar, meta.PgDump.PreData)
	if err != nil {
		return nil, err
	}
	post, err := readSection(ar, meta.PgDump.PostData)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cerr := pgx.BeginFunc(cctx, conn, func(tx pgx.Tx) error { return clearDatabase(cctx, tx) }); cerr != nil {
			e.log().Error("could not empty the database after a failed restore", "err", cerr)
		}
	}()
	r, err := newRunner(ctx, conn)
	if err != nil {
		return nil, err
	}
	var skip map[string]bool
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := r.runAll(ctx, tx, pre); err != nil {
			return err
		}
		if err := runData(ctx, tx, r, ar, meta); err != nil {
			return err
		}
		skip, err = kept.resolve(ctx, tx, meta)
		return err
	})
	if err != nil {
		return nil, err
	}
	keys, attach, fks, rest := postDataPhases(post, meta)
	version := serverVersion(ctx, conn)
	tasks := restoreTasks(meta.Tables, skip, keys,
		func(ti TableInfo, part int) func(context.Context, *pgx.Conn) error {
			return func(ctx context.Context, c *pgx.Conn) error { return loadFreshPart(ctx, c, ar, meta, ti, part) }
		},
		func(g []statement) func(context.Context, *pgx.Conn) error {
			return parallelBuild(version, jobs(r, [][]statement{g})[0])
		})
	// Partitions' indexes are attached after every build, and a key
	// referencing a partitioned table needs them: then the keys wait for
	// their own phase.
	if len(attach) == 0 {
		tasks = foreignKeyTasks(tasks, fks, func(g []statement) func(context.Context, *pgx.Conn) error { return jobs(r, [][]statement{g})[0] })
		fks = nil
	}
	var serial []func(context.Context, *pgx.Conn) error
	if len(attach) > 0 {
		serial = append(serial, func(ctx context.Context, c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return r.runAll(ctx, tx, attach) })
		})
	}
	if e.trace != nil {
		for _, t := range tasks {
			run := t.run
			t.run = func(ctx context.Context, c *pgx.Conn) error {
				e.trace("start " + t.name)
				err := run(ctx, c)
				if err == nil {
					e.trace("end " + t.name)
				}
				return err
			}
		}
	}
	conns, err := e.openWorkers(ctx, dsn, db)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	start := time.Now()
	if err := schedule(ctx, conns, tasks); err != nil {
		return nil, err
	}
	e.log().Debug("rows, indexes and keys restored", "tasks", len(tasks), "duration", time.Since(start))
	for _, phase := range [][]func(context.Context, *pgx.Conn) error{serial, jobs(r, fks)} {
		if err := schedule(ctx, conns, inOrder(phase)); err != nil {
			return nil, err
		}
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return r.runAll(ctx, tx, rest) }); err != nil {
		return nil, err
	}
	return append(notLoaded(meta, skip), r.warnings()...), nil
}

// restoreTasks is the schedule of a fresh restore's rows and keys: a load
// of every part of every table (but those kept, skip), and a build of each
// table's indexes and keys (a group of keys) that waits for its table's
// parts, so that it starts as soon as the table's rows are in, while the
// other workers go on loading. A split table's later parts wait for its
// first, which empties the table in its own transaction to COPY FREEZE
// (and would otherwise empty what they loaded). The groups of tables
// without rows of their own (partitioned tables, materialized views) wait
// for every load. Workers take builds before loads, the larger table's
// first.
func restoreTasks(tables []TableInfo, skip map[string]bool, keys [][]statement,
	load func(ti TableInfo, part int) func(context.Context, *pgx.Conn) error,
	build func([]statement) func(context.Context, *pgx.Conn) error) []*task {
	infos := append([]TableInfo(nil), tables...)
	sortByBytes(infos)
	builds := map[string]int{} // a table's index and key statements
	for _, g := range keys {
		builds[tableOf(g[0].SQL)] += len(g)
	}
	var tasks, loads []*task
	parts := map[string][]*task{}
	size := map[string]int64{}
	for _, ti := range infos {
		size[ti.Key] = restoreWeight(ti, builds[ti.Key])
		if skip[ti.Key] {
			parts[ti.Key] = nil
			continue
		}
		for i := range ti.partCount() {
			// By the table's weight, not the part's: the first part
			// of the heaviest table starts first, since the others wait
			// for it, and then they go before smaller tables.
			t := &task{name: "load " + partLabel(ti, i), bytes: size[ti.Key], table: ti.Key, run: load(ti, i)}
			if i > 0 {
				t.after(parts[ti.Key][0])
			}
			parts[ti.Key] = append(parts[ti.Key], t)
			loads = append(loads, t)
		}
	}
	tasks = append(tasks, loads...)
	for _, g := range keys {
		t := tableOf(g[0].SQL)
		b := &task{name: "indexes and keys of " + t, bytes: size[t], build: true, table: t, run: build(g)}
		if ps, ok := parts[t]; ok && t != "" {
			b.after(ps...)
		} else {
			b.name = "indexes and keys: " + appdb.FirstLine(g[0].SQL)
			b.table = ""
			b.after(loads...)
		}
		tasks = append(tasks, b)
	}
	return tasks
}

// foreignKeyTasks adds a task per foreign key to a fresh restore's
// schedule, so that keys are checked while other tables load rather than
// in a phase of their own where, locking their tables against each other,
// they ran one at a time. A key waits for its table's and the referenced
// table's rows and indexes (the referenced side's unique index makes the
// check a join on it); keys sharing a table never run at once (task
// locks), since each locks both of its tables against the other (SHARE
// ROW EXCLUSIVE) and a worker must not sit waiting for a lock. A key whose
// tables are not both in the schedule waits for everything before it.
func foreignKeyTasks(tasks []*task, fks [][]statement, run func([]statement) func(context.Context, *pgx.Conn) error) []*task {
	ofTable := map[string][]*task{} // a table's builds, else its loads
	hasBuild := map[string]bool{}
	for _, t := range tasks {
		if t.build && t.table != "" {
			hasBuild[t.table] = true
		}
	}
	for _, t := range tasks {
		if t.table != "" && t.build == hasBuild[t.table] {
			ofTable[t.table] = append(ofTable[t.table], t)
		}
	}
	before := append([]*task(nil), tasks...)
	// A referenced table goes as early as the tables whose keys wait for
	// it: a small table referenced by big ones (customers by orders)
	// would otherwise load last, and their checks end the restore with
	// one worker.
	weight := map[string]int64{}
	for _, t := range tasks {
		weight[t.table] = max(weight[t.table], t.bytes)
	}
	bump := map[string]int64{}
	for _, g := range fks {
		child, parent := tableOf(g[0].SQL), referencedTable(g[0].SQL)
		if child != parent && parent != "" {
			bump[parent] += weight[child]
		}
	}
	for _, t := range tasks {
		if t.table != "" {
			t.bytes += bump[t.table]
		}
	}
	for _, g := range fks {
		child, parent := tableOf(g[0].SQL), referencedTable(g[0].SQL)
		fk := &task{name: "foreign key: " + appdb.FirstLine(g[len(g)-1].SQL), build: true, run: run(g)}
		cs, cok := ofTable[child]
		ps, pok := ofTable[parent]
		if child == "" || parent == "" || !cok || !pok {
			fk.after(before...)
		} else {
			fk.after(cs...)
			if parent != child {
				fk.after(ps...)
			}
			for _, t := range cs {
				fk.bytes = max(fk.bytes, t.bytes)
			}
		}
		for _, t := range []string{child, parent} {
			if t != "" && !slices.Contains(fk.locks, t) { // a tree's key on itself: once
				fk.locks = append(fk.locks, t)
			}
		}
		tasks = append(tasks, fk)
	}
	return tasks
}

// indexRowBytes is what building one index entry costs, counted in bytes
// of rows loaded (measured: a narrow table of 650k rows and 3 indexes, such
// as uiSchemaTreePath, loads in a fifth of the time its indexes take).
const indexRowBytes = 64

// restoreWeight is how much work a table's restore is, its loads and its
// index builds: a table whose indexes take long goes early, so that the
// schedule does not end with one worker building them while the other has
// nothing to do.
func restoreWeight(ti TableInfo, builds int) int64 {
	return ti.Bytes + ti.Rows*int64(builds)*indexRowBytes
}

// jobs runs each group of statements on a worker, with the settings of
// the script in effect where the group starts; a deadlock between two
// workers (two foreign keys locking the same tables in turn) is retried.
func jobs(r *runner, groups [][]statement) []func(context.Context, *pgx.Conn) error {
	out := make([]func(context.Context, *pgx.Conn) error, len(groups))
	for i, g := range groups {
		out[i] = func(ctx context.Context, c *pgx.Conn) error {
			for attempt := 0; ; attempt++ {
				err := runGroup(ctx, c, r, g)
				var pe *pgconn.PgError
				if attempt < 3 && errors.As(err, &pe) && pe.Code == "40P01" {
					continue
				}
				return err
			}
		}
	}
	return out
}

func runGroup(ctx context.Context, c *pgx.Conn, r *runner, g []statement) error {
	for _, st := range g {
		if len(st.Settings) > 0 {
			if _, err := c.Exec(ctx, strings.Join(st.Settings, "; ")); err != nil {
				return err
			}
		}
		if err := r.exec(ctx, c, st); err != nil {
			return err
		}
	}
	return nil
}

var (
	alterTable  = regexp.MustCompile(`^ALTER TABLE (?:ONLY )?(` + qualified + `)\s`)
	createIndex = regexp.MustCompile(`^CREATE (?:UNIQUE )?INDEX ` + ident + ` ON (?:ONLY )?(` + qualified + `) USING `)
	references  = regexp.MustCompile(`\sREFERENCES (` + qualified + `)\(`)
)

var identRE = regexp.MustCompile(ident)

const ident = `(?:"(?:[^"]|"")*"|[^\s".(]+)`
const qualified = ident + `(?:\.` + ident + `)?`

// tableOf is the manifest key of the table a post-data statement works on.
func tableOf(sql string) string {
	m := alterTable.FindStringSubmatch(sql)
	if m == nil {
		m = createIndex.FindStringSubmatch(sql)
	}
	if m == nil {
		return ""
	}
	return keyOf(m[1])
}

// referencedTable is the manifest key of the table a foreign key of
// pg_dump's references ("" when it cannot be told).
func referencedTable(sql string) string {
	m := references.FindStringSubmatch(sql)
	if m == nil {
		return ""
	}
	return keyOf(m[1])
}

// keyOf is the manifest key of a quoted, possibly qualified, table name.
func keyOf(name string) string {
	parts := identRE.FindAllString(name, -1)
	if len(parts) == 1 {
		return unquoteIdent(parts[0])
	}
	return pgschema.Key(unquoteIdent(parts[0]), unquoteIdent(parts[1]))
}

// postDataPhases splits post-data into what may run at once: every
// table's indexes and keys (a group per table, largest table first), the
// partition index attachments (after every index), foreign keys (after
// every key), and the rest in pg_dump's order.
func postDataPhases(post []statement, meta *Meta) (keys [][]statement, attach []statement, fks [][]statement, rest []statement) {
	size := map[string]int64{}
	for _, t := range meta.Tables {
		size[t.Key] = t.Bytes
	}
	byTable := map[string]int{}
	for _, st := range post {
		switch st.Type {
		case "INDEX", "CONSTRAINT":
			t := tableOf(st.SQL)
			i, ok := byTable[t]
			if !ok || t == "" {
				i = len(keys)
				byTable[t] = i
				keys = append(keys, nil)
			}
			keys[i] = append(keys[i], st)
		case "INDEX ATTACH":
			attach = append(attach, st)
		case "FK CONSTRAINT":
			fks = append(fks, []statement{st})
		default:
			// In order, settings included: the rest runs on the
			// connection that ran pre-data, whose settings it keeps.
			rest = append(rest, st)
		}
	}
	slices.SortStableFunc(keys, func(a, b []statement) int {
		sa, sb := size[tableOf(a[0].SQL)], size[tableOf(b[0].SQL)]
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	// The serial phases run with the settings in effect where they start.
	if len(attach) > 0 {
		attach = append(settingsOf(attach[0]), attach...)
	}
	return keys, attach, fks, rest
}

func settingsOf(st statement) []statement {
	out := make([]statement, len(st.Settings))
	for i, s := range st.Settings {
		out[i] = statement{SQL: s}
	}
	return out
}

var settingStmt = regexp.MustCompile(`^(?:SET (?:SESSION )?([a-z_]+)|RESET ([a-z_]+)|SELECT pg_catalog\.set_config\('([a-z_]+)')`)

// withSettings gives each statement the session settings (SET ...) in
// effect where the script reaches it, for when it runs on another
// connection than the script's.
func withSettings(stmts []statement) []statement {
	var names []string
	values := map[string]string{}
	var current []string
	for i := range stmts {
		if m := settingStmt.FindStringSubmatch(stmts[i].SQL); m != nil {
			name := m[1] + m[2] + m[3]
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
			values[name] = stmts[i].SQL
			current = nil
			for _, n := range names {
				current = append(current, values[n])
			}
			continue
		}
		stmts[i].Settings = current
	}
	return stmts
}

// clearDatabase drops every user object, so that pg_dump's pre-data can
// make them again: every schema (public is made again as a new database
// has it) and what lives outside schemas.
func clearDatabase(ctx context.Context, tx pgx.Tx) error {
	var stmts []string
	collect := func(sql string) error {
		rows, err := tx.Query(ctx, sql)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		stmts = append(stmts, list...)
		return err
	}
	for _, q := range []string{
		`SELECT 'DROP PUBLICATION ' || pg_catalog.quote_ident(pubname) FROM pg_catalog.pg_publication`,
		`SELECT 'DROP EVENT TRIGGER ' || pg_catalog.quote_ident(evtname) FROM pg_catalog.pg_event_trigger`,
		`SELECT 'DROP SCHEMA ' || pg_catalog.quote_ident(nspname) || ' CASCADE' FROM pg_catalog.pg_namespace
			WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'`,
		`SELECT 'CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; COMMENT ON SCHEMA public IS ''standard public schema'''`,
		`SELECT 'DROP EXTENSION IF EXISTS ' || pg_catalog.quote_ident(extname) || ' CASCADE' FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'`,
		`SELECT 'DROP FOREIGN DATA WRAPPER IF EXISTS ' || pg_catalog.quote_ident(fdwname) || ' CASCADE' FROM pg_catalog.pg_foreign_data_wrapper`,
		`SELECT 'DROP CAST IF EXISTS (' || pg_catalog.format_type(castsource, NULL) || ' AS ' || pg_catalog.format_type(casttarget, NULL) || ') CASCADE'
			FROM pg_catalog.pg_cast WHERE oid >= 16384`,
		`SELECT 'DROP ACCESS METHOD IF EXISTS ' || pg_catalog.quote_ident(amname) || ' CASCADE' FROM pg_catalog.pg_am WHERE oid >= 16384`,
		`SELECT 'DROP LANGUAGE IF EXISTS ' || pg_catalog.quote_ident(lanname) || ' CASCADE' FROM pg_catalog.pg_language WHERE oid >= 16384 AND lanname <> 'plpgsql'`,
		`SELECT 'SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata'`,
		// Default privileges of no schema: back to the built-in ones (the
		// server then forgets the entry), or they would apply to what
		// pre-data makes.
		`SELECT 'ALTER DEFAULT PRIVILEGES FOR ROLE ' || pg_catalog.quote_ident(r.rolname) || ' REVOKE ALL ON ' || k.kind || ' FROM '
				|| string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(g.rolname) END, ', ')
				|| '; ALTER DEFAULT PRIVILEGES FOR ROLE ' || pg_catalog.quote_ident(r.rolname) || ' GRANT ALL ON ' || k.kind || ' TO ' || pg_catalog.quote_ident(r.rolname)
				|| CASE WHEN k.public <> '' THEN '; ALTER DEFAULT PRIVILEGES FOR ROLE ' || pg_catalog.quote_ident(r.rolname) || ' GRANT ' || k.public || ' ON ' || k.kind || ' TO PUBLIC' ELSE '' END
			FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_roles r ON r.oid = d.defaclrole
			CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
			JOIN (VALUES ('r', 'TABLES', ''), ('S', 'SEQUENCES', ''), ('f', 'FUNCTIONS', 'EXECUTE'), ('T', 'TYPES', 'USAGE'), ('n', 'SCHEMAS', '')) k(t, kind, public)
				ON k.t = d.defaclobjtype::text
			WHERE d.defaclnamespace = 0
			GROUP BY d.oid, r.rolname, k.kind, k.public`,
	} {
		if err := collect(q); err != nil {
			return err
		}
	}
	// Later statements are made from the catalogue as it was: what an
	// earlier DROP ... CASCADE took along is gone by then, hence IF EXISTS.
	return execAll(ctx, tx, stmts)
}

// loadInPlace loads every table's rows of the archive inside tx, where the
// restore in place made the tables again, except the tables kept from the
// target, whose own rows it puts back.
func loadInPlace(ctx context.Context, tx pgx.Tx, ar *archive.Reader, meta *Meta, kept *keptRows) ([]string, error) {
	skip, err := kept.resolve(ctx, tx, meta)
	if err != nil {
		return nil, err
	}
	for _, ti := range meta.Tables {
		if skip[ti.Key] {
			continue
		}
		// Made in this transaction: FREEZE writes the rows already frozen.
		if err := loadTable(ctx, tx.Conn(), ar, meta, ti, true); err != nil {
			return nil, err
		}
	}
	return kept.put(ctx, tx, meta)
}
