package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// benchWindow releases the same configuration migration to production
// databases of each size twice, through the release service as a deploy
// runs it: the classic way (the pre-release backup inside the window, the
// file's rows loaded inside the apply's transaction) and the window way
// (backup and preparation before maintenance on, the prepared tables
// swapped in). It prints how long users were held out (maintenance on to
// off, from the steps' times) and the whole release, per size and way.
func benchWindow(ctx context.Context, io Stdio, admin, dir string, sizes []int64, reuse bool) error {
	return benchWindowAs(ctx, io, admin, dir, "relbot_bench_w", sizes, reuse)
}

// benchWindowAs is benchWindow with its databases named prefix...: the
// smoke test's own names keep it apart from a bench run on the machine.
func benchWindowAs(ctx context.Context, io Stdio, admin, dir, prefix string, sizes []int64, reuse bool) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Smallest first: its configuration is the file's, and its figures
	// print before the larger databases are generated.
	sizes = slices.Sorted(slices.Values(sizes))
	prods := make([]string, len(sizes))
	for i, size := range sizes {
		prods[i] = prefix + sizeTag(size)
	}
	// generate makes size i's production database once (kept with
	// --reuse); each release gets its own copy of it.
	generate := func(i int) error {
		dsn := dsnWithDatabase(admin, dbName(admin), prods[i])
		if reuse {
			if have, _ := databaseSize(ctx, dsn); have > 0 {
				return nil
			}
		}
		fmt.Fprintf(io.Out, "generating a NocoBase-like production database of about %s ...\n", release.Bytes(sizes[i]))
		if _, err := recreateDatabase(ctx, admin, prods[i]); err != nil {
			return err
		}
		start := time.Now()
		if err := fixtures.GenerateLarge(ctx, dsn, sizes[i], io.Err); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "generated in %s\n", time.Since(start).Round(time.Second))
		return nil
	}
	if err := generate(0); err != nil {
		return err
	}
	// The source: the smallest size's configuration, changed a little, so
	// that every target receives the same file (≈150k uiSchemas rows at 1 GiB).
	src := prefix + "src"
	srcDSN, err := copyDatabase(ctx, admin, prods[0], src)
	if err != nil {
		return err
	}
	defer func() { _ = dropDatabase(context.Background(), admin, src) }()
	if err := execOn(ctx, srcDSN, `UPDATE "uiSchemas" SET "name" = "name" || '_v2' WHERE "x-uid" IN (SELECT "x-uid" FROM "uiSchemas" ORDER BY "x-uid" LIMIT 500)`); err != nil {
		return err
	}

	// One app, its chain development -> classic/window per size, in the
	// order the releases run (each passed the one before).
	app := &release.App{Name: "bench", Builtin: "nocobase", Environments: []*release.Environment{{Name: "development", Database: srcDSN}}}
	type run struct {
		size    int64
		env     string
		classic bool
		db      string
	}
	var runs []run
	for i, size := range sizes {
		for _, classic := range []bool{true, false} {
			way := "window"
			if classic {
				way = "classic"
			}
			env := way + "-" + sizeTag(size)
			runs = append(runs, run{size: size, env: env, classic: classic, db: prods[i] + "_" + way})
			app.Environments = append(app.Environments, &release.Environment{Name: env,
				Hooks: map[string]release.Hook{release.HookMaintenanceOn: {Exec: []string{"true"}}, release.HookMaintenanceOff: {Exec: []string{"true"}}}})
		}
	}
	botDSN, err := recreateDatabase(ctx, admin, prefix+"bot")
	if err != nil {
		return err
	}
	defer func() { _ = dropDatabase(context.Background(), admin, prefix+"bot") }()
	settings := &config.Settings{DatabaseURL: botDSN, ArtifactDir: filepath.Join(dir, "artifacts"), BackupKey: demoBackupKey,
		SecretKey: strings.Repeat("5e", 32), TimeZone: "UTC"}
	sys, err := build(ctx, settings, []*release.App{app}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer sys.close()

	start := time.Now()
	m, err := sys.migrations.CreateMigration(ctx, "bench", app.Name, "", "bench window")
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "migration %s: %s, made in %s\n\n", m.ID, release.Bytes(m.Size), time.Since(start).Round(time.Millisecond))

	type result struct {
		run
		window, whole time.Duration
		steps         []release.Step
	}
	var results []result
	for i, rn := range runs {
		if i > 0 && i%2 == 0 {
			if err := generate(i / 2); err != nil {
				return err
			}
		}
		dsn, err := copyDatabase(ctx, admin, prodOf(prods, sizes, rn.size), rn.db)
		if err != nil {
			return err
		}
		e, _ := app.Env(rn.env)
		e.Database = dsn
		r, err := benchRelease(ctx, sys, m.ID, rn.env, rn.classic)
		// The copy and the pre-release backup are not needed any more: the
		// next sizes need the disk.
		_ = dropDatabase(context.Background(), admin, rn.db)
		_ = os.RemoveAll(filepath.Join(settings.ArtifactDir, app.Name, "backups"))
		// The next release's preflight compares it with this environment:
		// the production database it was copied from stands in for it.
		e.Database = dsnWithDatabase(admin, dbName(admin), prodOf(prods, sizes, rn.size))
		if err != nil {
			return fmt.Errorf("%s: %w", rn.env, err)
		}
		res := result{run: rn, steps: r.Steps}
		res.window, res.whole = windowTimes(r.Steps)
		results = append(results, res)
		fmt.Fprintf(io.Out, "%s (%s): held out %.2fs, whole release %.2fs\n", rn.env, release.Bytes(rn.size), res.window.Seconds(), res.whole.Seconds())
		for _, st := range r.Steps {
			if st.Started != nil && st.Ended != nil {
				fmt.Fprintf(io.Out, "    %-20s %7.2fs  %s\n", st.Name, st.Ended.Sub(*st.Started).Seconds(), release.Cut(strings.ReplaceAll(st.Log, "\n", " | "), 110))
			}
		}
	}

	fmt.Fprintln(io.Out)
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\theld out, classic\theld out, window\tratio\twhole, classic\twhole, window\tratio\t")
	for i := 0; i+1 < len(results); i += 2 {
		c, w := results[i], results[i+1]
		fmt.Fprintf(tw, "%s\t%.2fs\t%.2fs\t%.1fx\t%.2fs\t%.2fs\t%.2fx\t\n", release.Bytes(c.size),
			c.window.Seconds(), w.window.Seconds(), ratio(c.window, w.window), c.whole.Seconds(), w.whole.Seconds(), ratio(c.whole, w.whole))
	}
	_ = tw.Flush()
	if len(results) >= 4 {
		first, last := results[1], results[len(results)-1]
		fmt.Fprintf(io.Out, "\nwindow way, held out %s -> %s: %+.0f%% (targets: <= 3s at 1 GiB, < 10%% growth 1 -> 4 GiB, >= 5x shorter than classic)\n",
			release.Bytes(first.size), release.Bytes(last.size), 100*(ratio(last.window, first.window)-1))
	}
	return nil
}

// benchRelease deploys migration id to env and runs it to its end, the
// classic way or the window way; variables the file references that env
// lacks are set first.
func benchRelease(ctx context.Context, sys *system, id, env string, classic bool) (*release.Release, error) {
	sys.releases.ClassicWindow = classic
	for range 2 {
		r, err := sys.releases.RequestDeploy(ctx, "bench", id, env, nil, true)
		var missing *release.MissingVariables
		if errors.As(err, &missing) {
			for _, name := range missing.Names {
				if _, err := sys.variables.SetVariable(ctx, "bench", missing.App, env, name, "https://bench.example.com"); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if r, err = sys.releases.Run(ctx, r.ID); err != nil {
			return r, err
		}
		return r, nil
	}
	return nil, fmt.Errorf("variables still missing after setting them")
}

// windowTimes are, from a release's steps, how long users were held out
// (maintenance on started to maintenance off ended) and the whole run.
func windowTimes(steps []release.Step) (window, whole time.Duration) {
	var on, off, first, last *time.Time
	for _, st := range steps {
		if st.Started != nil && (first == nil || st.Started.Before(*first)) {
			first = st.Started
		}
		if st.Ended != nil && (last == nil || st.Ended.After(*last)) {
			last = st.Ended
		}
		switch st.Name {
		case release.StepMaintenanceOn:
			on = st.Started
		case release.StepMaintenanceOff:
			off = st.Ended
		}
	}
	if on != nil && off != nil {
		window = off.Sub(*on)
	}
	if first != nil && last != nil {
		whole = last.Sub(*first)
	}
	return window, whole
}

func prodOf(prods []string, sizes []int64, size int64) string {
	for i, s := range sizes {
		if s == size {
			return prods[i]
		}
	}
	return ""
}

// sizeTag names a size in database and environment names: 1g, 20m.
func sizeTag(size int64) string {
	if size >= 1<<30 && size%(1<<30) == 0 {
		return fmt.Sprintf("%dg", size>>30)
	}
	return fmt.Sprintf("%dm", size>>20)
}

// parseSizes reads --sizes: sizes like 1GB,4GB, each once.
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		n, err := parseSize(part)
		if err != nil {
			return nil, err
		}
		if n < 1<<20 {
			return nil, fmt.Errorf("%q is below 1MB", part)
		}
		for _, o := range out {
			if sizeTag(o) == sizeTag(n) {
				return nil, fmt.Errorf("%s is given twice", strings.TrimSpace(part))
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// copyDatabase makes name a copy of from (CREATE DATABASE ... TEMPLATE,
// a file copy: nothing measured depends on how the copy is made).
func copyDatabase(ctx context.Context, admin, from, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgschema.QuoteIdent(name)+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgschema.QuoteIdent(name)+" TEMPLATE "+pgschema.QuoteIdent(from)); err != nil {
		return "", fmt.Errorf("copy database %s: %w", from, err)
	}
	return dsnWithDatabase(admin, dbName(admin), name), nil
}
