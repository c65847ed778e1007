package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
	"github.com/relbot/relbot/release/pgsnap"
	"github.com/relbot/relbot/storage/objects"
)

// benchWorker is the hidden subcommand bench runs in a child process, so
// that each measured tool has its own peak RSS.
const benchWorker = "__bench"

// runBench compares relbot's backup and restore with pg_dump, pg_restore,
// pgcopydb clone (when installed) and a plain COPY of every table, side by
// side on one generated database.
func runBench(ctx context.Context, args []string, io Stdio, getenv func(string) string) int {
	if len(args) == 0 || (args[0] != "backup" && args[0] != "migrate" && args[0] != "slack" && args[0] != "window") {
		fmt.Fprintln(io.Err, "relbot: bench needs one of backup, migrate, window or slack")
		fmt.Fprintln(io.Err, "  usage: relbot bench backup|migrate [--size SIZE] [--workers N] [--reuse] | relbot bench window [--sizes SIZES] [--reuse] | relbot bench slack [--rate N] [--seconds N]")
		return exitUsage
	}
	fs, o := benchFlags(args[0])
	if !parseFlags("bench "+args[0], fs, args[1:], io) {
		return exitUsage
	}
	sizeText, workers, reuse, rate, seconds := &o.size, &o.workers, &o.reuse, &o.rate, &o.seconds
	size, err := parseSize(*sizeText)
	if err != nil {
		fmt.Fprintln(io.Err, "relbot: --size: "+err.Error())
		return exitUsage
	}
	admin := getenv("RELBOT_DEMO_PG")
	if admin == "" {
		admin = defaultAdminDSN
	}
	dir := getenv("RELBOT_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "relbot-bench")
	}
	if args[0] == "window" {
		sizes, err := parseSizes(o.sizes)
		if err != nil {
			fmt.Fprintln(io.Err, "relbot: --sizes: "+err.Error())
			return exitUsage
		}
		if err := benchWindow(ctx, io, admin, dir+"-window", sizes, *reuse); err != nil {
			fmt.Fprintln(io.Err, "relbot: bench: "+oneLine(err.Error()))
			return exitFailed
		}
		return exitOK
	}
	if args[0] == "slack" {
		if *rate <= 0 || *seconds <= 0 || *rate > 2000 || *seconds > 300 {
			fmt.Fprintln(io.Err, "relbot: --rate must be 1..2000 and --seconds 1..300")
			return exitUsage
		}
		if err := benchSlack(ctx, io, admin, dir+"-slack", *rate, *seconds); err != nil {
			fmt.Fprintln(io.Err, "relbot: bench: "+oneLine(err.Error()))
			return exitFailed
		}
		return exitOK
	}
	run := func(ctx context.Context, io Stdio, admin, dir string, size int64, workers int, reuse bool) error {
		return bench(ctx, io, admin, dir, size, workers, reuse, o.s3)
	}
	if args[0] == "migrate" {
		run = benchMigrate
	}
	if err := run(ctx, io, admin, dir, size, *workers, *reuse); err != nil {
		fmt.Fprintln(io.Err, "relbot: bench: "+oneLine(err.Error()))
		return exitFailed
	}
	return exitOK
}

// benchOptions are bench's flags; each subcommand takes only its own.
type benchOptions struct {
	size, sizes, s3        string
	workers, rate, seconds int
	reuse                  bool
}

func benchFlags(sub string) (*flag.FlagSet, *benchOptions) {
	o := &benchOptions{size: "1GB", sizes: "1GB,4GB", workers: 2, rate: 200, seconds: 30}
	fs := flag.NewFlagSet("bench "+sub, flag.ContinueOnError)
	if sub == "window" {
		fs.StringVar(&o.sizes, "sizes", o.sizes, "sizes of the generated production databases, comma-separated (e.g. 1GB,4GB)")
		fs.BoolVar(&o.reuse, "reuse", o.reuse, "reuse the generated production databases from an earlier run")
		return fs, o
	}
	if sub == "slack" {
		fs.IntVar(&o.rate, "rate", o.rate, "requests per second")
		fs.IntVar(&o.seconds, "seconds", o.seconds, "how long")
		return fs, o
	}
	fs.StringVar(&o.size, "size", o.size, "size of the generated database (e.g. 200MB, 1GB)")
	fs.IntVar(&o.workers, "workers", o.workers, "parallel connections for relbot and pg_dump/pg_restore -j")
	fs.BoolVar(&o.reuse, "reuse", o.reuse, "reuse the generated source database from an earlier run")
	if sub == "backup" {
		fs.StringVar(&o.s3, "s3", "", "also back up into, and restore from, this bucket (s3://bucket?endpoint=…)")
	}
	return fs, o
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} // binary either way, as relbot prints sizes
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, x := range units {
		if n, ok := strings.CutSuffix(u, x.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("%q is not a size like 1GB or 200MB", s)
			}
			return int64(v * float64(x.mult)), nil
		}
	}
	return 0, fmt.Errorf("%q is not a size like 1GB or 200MB", s)
}

type measurement struct {
	name   string
	wall   time.Duration
	output int64 // bytes written, -1 when not applicable
	rssKB  int64
}

func bench(ctx context.Context, io Stdio, admin, dir string, size int64, workers int, reuse bool, bucket string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srcDSN, srcBytes, err := benchSource(ctx, io, admin, dir, size, reuse)
	if err != nil {
		return err
	}
	rows, tables, err := countRows(ctx, srcDSN)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "source: %s on disk, %s, %s; %s; warm cache (a first COPY pass reads everything once)\n\n",
		release.Bytes(srcBytes), release.Count(tables, "table"), release.Count(rows, "row"), release.Count(workers, "worker"))

	w := strconv.Itoa(workers)
	archive := filepath.Join(dir, "relbot.archive")
	run := func(name string, out string, argv ...string) (measurement, error) {
		m, err := measure(ctx, name, argv)
		if err != nil {
			return m, err
		}
		m.output = -1
		if out != "" {
			m.output = pathSize(out)
		}
		fmt.Fprintf(io.Err, "  %-28s %8.2fs\n", name, m.wall.Seconds())
		return m, nil
	}
	if _, err := run("warm-up", "", self, benchWorker, "copy", srcDSN, w); err != nil {
		return err
	}
	dst1 := "relbot_bench_dst_relbot"
	dst2 := "relbot_bench_dst_pgrestore"
	dst3 := "relbot_bench_dst_pgcopydb"
	dst4 := "relbot_bench_dst_bucket"
	dsts := []string{dst1, dst2}
	if bucket != "" {
		dsts = append(dsts, dst4)
	}
	// pgcopydb copies from database to database, indexes and VACUUM
	// ANALYZE included: the other tool that restores in parallel.
	pgcopydb, _ := exec.LookPath("pgcopydb")
	if pgcopydb != "" {
		dsts = append(dsts, dst3)
	}
	for _, n := range dsts {
		if _, err := recreateDatabase(ctx, admin, n); err != nil {
			return err
		}
	}
	defer func() {
		for _, n := range dsts {
			_ = dropDatabase(context.Background(), admin, n)
		}
	}()
	type step struct {
		name string
		out  string
		argv []string
	}
	steps := []step{
		{"plain COPY to /dev/null", "", []string{self, benchWorker, "copy", srcDSN, w}},
		{"relbot backup", archive, []string{self, benchWorker, "backup", srcDSN, w, archive}},
		{"pg_dump -Fc", filepath.Join(dir, "dump.fc"), []string{"pg_dump", "-Fc", "-f", filepath.Join(dir, "dump.fc"), "--dbname", srcDSN}},
		{"pg_dump -Fd -j " + w, filepath.Join(dir, "dump.dir"), []string{"pg_dump", "-Fd", "-j", w, "-f", filepath.Join(dir, "dump.dir"), "--dbname", srcDSN}},
		{"relbot restore (fresh db)", "", []string{self, benchWorker, "restore", dsnWithDatabase(admin, dbName(admin), dst1), w, archive}},
		{"pg_restore -j " + w + " (fresh db)", "", []string{"pg_restore", "-j", w, "--dbname", dsnWithDatabase(admin, dbName(admin), dst2), filepath.Join(dir, "dump.dir")}},
	}
	if bucket != "" {
		// The same archive into the bucket and back, beside the directory's.
		name := fmt.Sprintf("bench/bench-%d.relbot", time.Now().UnixNano())
		steps = append(steps[:2], append([]step{{"relbot backup to a bucket", "", []string{self, benchWorker, "backup-to", srcDSN, w, bucket, name}}}, steps[2:]...)...)
		steps = append(steps, step{"relbot restore from the bucket", "", []string{self, benchWorker, "restore-from", dsnWithDatabase(admin, dbName(admin), dst4), w, bucket, name}})
	}
	cloneName := "pgcopydb clone, " + w + "+" + w + " jobs"
	if pgcopydb != "" {
		steps = append(steps, step{cloneName, "", []string{pgcopydb, "clone", "--source", srcDSN, "--target", dsnWithDatabase(admin, dbName(admin), dst3),
			"--table-jobs", w, "--index-jobs", w, "--dir", filepath.Join(dir, "pgcopydb")}})
	}
	var ms []measurement
	for _, s := range steps {
		m, err := run(s.name, s.out, s.argv...)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	byName := map[string]measurement{}
	for _, m := range ms {
		byName[m.name] = m
	}
	copyWall := byName["plain COPY to /dev/null"].wall
	fmt.Fprintln(io.Out)
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\twall\toutput\tpeak RSS\tvs plain COPY\t")
	for _, m := range ms {
		out := "-"
		if m.output >= 0 {
			out = release.Bytes(m.output)
		}
		fmt.Fprintf(tw, "%s\t%.2fs\t%s\t%s\t%.2fx\t\n", m.name, m.wall.Seconds(), out, release.Bytes(m.rssKB*1024), ratio(m.wall, copyWall))
	}
	_ = tw.Flush()
	rb, fc, fd := byName["relbot backup"], byName["pg_dump -Fc"], byName["pg_dump -Fd -j "+w]
	rr, pr := byName["relbot restore (fresh db)"], byName["pg_restore -j "+w+" (fresh db)"]
	fmt.Fprintf(io.Out, "\nrelbot backup / pg_dump -Fd -j %s:   %.2fx time   (target < 1)\n", w, ratio(rb.wall, fd.wall))
	fmt.Fprintf(io.Out, "relbot backup / plain COPY:          %.2fx time   (target <= 1.2)\n", ratio(rb.wall, copyWall))
	fmt.Fprintf(io.Out, "relbot archive / pg_dump -Fc file:   %.2fx size   (target <= 1)\n", float64(rb.output)/float64(fc.output))
	// relbot's restore includes its ANALYZE; pg_restore's has none.
	fmt.Fprintf(io.Out, "relbot restore / pg_restore -j %s:    %.2fx time   (target <= 0.8; relbot's analyzed, pg_restore's not)\n", w, ratio(rr.wall, pr.wall))
	if pc, ok := byName[cloneName]; ok {
		fmt.Fprintf(io.Out, "relbot restore / pgcopydb clone:     %.2fx time   (target <= 1; both analyzed)\n", ratio(rr.wall, pc.wall))
	} else {
		fmt.Fprintln(io.Out, "pgcopydb clone: not installed (not on PATH), not measured")
	}
	fmt.Fprintf(io.Out, "relbot peak RSS: backup %s, restore %s (target < 150 MiB)\n", release.Bytes(rb.rssKB*1024), release.Bytes(rr.rssKB*1024))
	if bb, ok := byName["relbot backup to a bucket"]; ok {
		br := byName["relbot restore from the bucket"]
		fmt.Fprintf(io.Out, "bucket / directory: backup %.2fx time, peak RSS %s vs %s; restore %.2fx time, peak RSS %s vs %s\n",
			ratio(bb.wall, rb.wall), release.Bytes(bb.rssKB*1024), release.Bytes(rb.rssKB*1024),
			ratio(br.wall, rr.wall), release.Bytes(br.rssKB*1024), release.Bytes(rr.rssKB*1024))
	}
	return nil
}

// benchSource makes (or, with reuse, keeps) the generated source database.
func benchSource(ctx context.Context, io Stdio, admin, dir string, size int64, reuse bool) (string, int64, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	srcDSN := dsnWithDatabase(admin, dbName(admin), "relbot_bench_src")
	var srcBytes int64
	if reuse {
		srcBytes, _ = databaseSize(ctx, srcDSN)
	}
	if srcBytes > 0 {
		return srcDSN, srcBytes, nil
	}
	fmt.Fprintf(io.Out, "generating a NocoBase-like database of about %s ...\n", release.Bytes(size))
	if _, err := recreateDatabase(ctx, admin, "relbot_bench_src"); err != nil {
		return "", 0, err
	}
	start := time.Now()
	if err := fixtures.GenerateLarge(ctx, srcDSN, size, io.Err); err != nil {
		return "", 0, err
	}
	srcBytes, err := databaseSize(ctx, srcDSN)
	if err != nil {
		return "", 0, err
	}
	fmt.Fprintf(io.Out, "generated in %s\n", time.Since(start).Round(time.Second))
	return srcDSN, srcBytes, nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

// measure runs argv as a child and returns its wall time and peak RSS.
func measure(ctx context.Context, name string, argv []string) (measurement, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	m := measurement{name: name, wall: time.Since(start)}
	if err != nil {
		return m, fmt.Errorf("%s: %v: %s", name, err, oneLine(stderr.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssKB = ru.Maxrss
	}
	return m, nil
}

func pathSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func dbName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return cfg.Database
}

func databaseSize(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

func countRows(ctx context.Context, dsn string) (rows int64, tables int, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(n_live_tup), 0)::bigint, count(*)::int FROM pg_stat_user_tables`).Scan(&rows, &tables)
	return rows, tables, err
}

// fileArchive is an archive file opened for the engine.
type fileArchive struct {
	*os.File
	size int64
}

func (f fileArchive) Size() int64 { return f.size }

// runBenchWorker is one measured tool: copy DSN WORKERS | backup DSN
// WORKERS FILE | restore DSN WORKERS FILE.
func runBenchWorker(ctx context.Context, args []string, io Stdio) int {
	if len(args) == 5 && args[0] == "slackload" {
		rate, _ := strconv.Atoi(args[2])
		secs, _ := strconv.Atoi(args[3])
		if err := slackLoad(ctx, args[1], rate, secs, args[4]); err != nil {
			fmt.Fprintln(io.Err, err)
			return exitFailed
		}
		return exitOK
	}
	if len(args) < 3 {
		fmt.Fprintln(io.Err, "usage: relbot __bench copy|backup|restore DSN WORKERS [FILE]")
		return exitUsage
	}
	workers, _ := strconv.Atoi(args[2])
	if p := os.Getenv("RELBOT_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	engine := &pgsnap.Engine{Workers: workers}
	env := &release.Environment{Name: "bench", Database: args[1]}
	var err error
	switch {
	case args[0] == "copy":
		err = plainCopy(ctx, args[1], workers)
	case args[0] == "backup" && len(args) == 4:
		var f *os.File
		if f, err = os.Create(args[3]); err == nil {
			_, err = engine.Create(ctx, env, release.ArchiveHeader{ID: "bench-b1", App: "bench", Env: "bench", Kind: release.BackupManual, CreatedAt: time.Now().UTC()}, f)
			err = errors.Join(err, f.Close())
		}
	case args[0] == "backup-to" && len(args) == 5:
		err = benchBackupTo(ctx, engine, env, args[3], args[4])
	case args[0] == "restore-from" && len(args) == 5:
		err = benchRestoreFrom(ctx, engine, env, args[3], args[4])
	case args[0] == "apply" && len(args) == 5:
		err = benchApply(ctx, args[1], args[3], args[4])
	case args[0] == "copyin" && len(args) == 4:
		err = benchCopyIn(ctx, args[1], args[3])
	case args[0] == "restore" && len(args) == 4:
		var f *os.File
		if f, err = os.Open(args[3]); err == nil {
			st, _ := f.Stat()
			_, err = engine.Restore(ctx, fileArchive{f, st.Size()}, "bench", env, release.RestoreOptions{})
			f.Close()
		}
	default:
		err = fmt.Errorf("unknown bench step %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(io.Err, err)
		return exitFailed
	}
	return exitOK
}

// benchBackupTo writes a backup into a bucket, as a server with its
// artifacts there does.
func benchBackupTo(ctx context.Context, engine *pgsnap.Engine, env *release.Environment, bucket, name string) error {
	store, err := objects.Open(ctx, bucket)
	if err != nil {
		return err
	}
	defer store.Close()
	w, err := store.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := engine.Create(ctx, env, release.ArchiveHeader{ID: "bench-b1", App: "bench", Env: "bench", Kind: release.BackupManual, CreatedAt: time.Now().UTC()}, w); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Commit()
}

// benchRestoreFrom restores the bucket's backup, read by ranges, and
// removes it.
func benchRestoreFrom(ctx context.Context, engine *pgsnap.Engine, env *release.Environment, bucket, name string) error {
	store, err := objects.Open(ctx, bucket)
	if err != nil {
		return err
	}
	defer store.Close()
	a, err := store.Open(ctx, name)
	if err != nil {
		return err
	}
	_, err = engine.Restore(ctx, a, "bench", env, release.RestoreOptions{})
	a.Close()
	return errors.Join(err, store.Remove(ctx, name))
}

// plainCopy reads every table with COPY TO into io.Discard, workers at a
// time in one snapshot: the read limit a backup cannot beat.
func plainCopy(ctx context.Context, dsn string, workers int) error {
	conn, err := pgschema.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		return err
	}
	queue := make(chan *pgschema.Table, len(s.Tables))
	for i := range s.Tables {
		queue <- &s.Tables[i]
	}
	close(queue)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			c, err := pgschema.Connect(gctx, dsn)
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			for t := range queue {
				if _, err := c.PgConn().CopyTo(gctx, io.Discard, appdb.CopyOutSQL(t)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}
