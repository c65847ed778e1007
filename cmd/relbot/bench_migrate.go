package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/migrate"
	"github.com/relbot/relbot/release/pgschema"
)

// benchKey signs the benchmark's migration file.
var benchKey = migrate.SigningKey([]byte("relbot bench signing key, 32 b."))

func benchApp(src, dst string) *release.App {
	return &release.App{Name: "bench", Builtin: "nocobase", Environments: []*release.Environment{
		{Name: "development", Database: src}, {Name: "production", Database: dst},
	}}
}

// benchMigrate compares applying a migration file carrying the generated
// database's configuration tables (~150k uiSchemas rows and their tree
// paths) to a production-sized target, with a plain COPY of the same rows
// into empty tables.
func benchMigrate(ctx context.Context, io Stdio, admin, dir string, size int64, workers int, reuse bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srcDSN, srcBytes, err := benchSource(ctx, io, admin, dir, size, reuse)
	if err != nil {
		return err
	}
	target := "relbot_bench_mtarget"
	empty := "relbot_bench_mcopy"
	targetDSN, err := recreateDatabase(ctx, admin, target)
	if err != nil {
		return err
	}
	emptyDSN, err := recreateDatabase(ctx, admin, empty)
	if err != nil {
		return err
	}
	defer func() {
		_ = dropDatabase(context.Background(), admin, target)
		_ = dropDatabase(context.Background(), admin, empty)
	}()
	// The target is a copy of the source: production-sized, every row kept.
	archive := filepath.Join(dir, "target.archive")
	w := strconv.Itoa(workers)
	for _, argv := range [][]string{{self, benchWorker, "backup", srcDSN, w, archive}, {self, benchWorker, "restore", targetDSN, w, archive}} {
		if _, err := measure(ctx, "prepare target", argv); err != nil {
			return err
		}
	}
	file := filepath.Join(dir, "bench.migration")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	app := benchApp(srcDSN, targetDSN)
	sum, err := (&migrate.Engine{SigningKey: benchKey}).Create(ctx, release.MigrationInput{App: app, Source: app.Environments[0], ID: "bench-m1", By: "bench", CreatedAt: time.Now().UTC()}, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	var carried, rows int64
	for _, t := range sum.Tables {
		if t.Carried {
			carried++
			rows += t.Rows
		}
	}
	fmt.Fprintf(io.Out, "source: %s; migration file %s carrying %s, %s (uiSchemas %d)\n\n",
		release.Bytes(srcBytes), release.Bytes(pathSize(file)), release.Count(carried, "table"), release.Count(rows, "row"), tableRows(sum, "uiSchemas"))

	copyM, err := measure(ctx, "plain COPY into empty tables", []string{self, benchWorker, "copyin", emptyDSN, w, file})
	if err != nil {
		return err
	}
	applyM, err := measure(ctx, "relbot migration apply", []string{self, benchWorker, "apply", targetDSN, w, srcDSN, file})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\twall\tpeak RSS\tvs plain COPY\t")
	for _, m := range []measurement{copyM, applyM} {
		fmt.Fprintf(tw, "%s\t%.2fs\t%s\t%.2fx\t\n", m.name, m.wall.Seconds(), release.Bytes(m.rssKB*1024), ratio(m.wall, copyM.wall))
	}
	_ = tw.Flush()
	fmt.Fprintf(io.Out, "\nrelbot apply / plain COPY: %.2fx (target <= 1.5); the apply also drops and re-creates the tables, builds their keys and indexes, and commits all in one transaction\n", ratio(applyM.wall, copyM.wall))
	return nil
}

func tableRows(s *release.MigrationSummary, table string) int64 {
	for _, t := range s.Tables {
		if t.Table == table {
			return t.Rows
		}
	}
	return 0
}

// benchApply applies the file to the target: the measured step.
func benchApply(ctx context.Context, targetDSN, srcDSN, file string) error {
	a, err := openFile(file)
	if err != nil {
		return err
	}
	defer a.Close()
	app := benchApp(srcDSN, targetDSN)
	res, err := (&migrate.Engine{SigningKey: benchKey}).Apply(ctx, a, app, app.Environments[1], release.ApplyOptions{By: "bench"})
	if err != nil {
		return err
	}
	if res.AlreadyApplied != nil {
		return fmt.Errorf("the target already had the file")
	}
	return nil
}

// benchCopyIn creates the carried tables bare (columns only) in an empty
// database and COPYs the file's rows into them: the floor an apply cannot
// beat.
func benchCopyIn(ctx context.Context, dsn, file string) error {
	a, err := openFile(file)
	if err != nil {
		return err
	}
	defer a.Close()
	f, err := (&migrate.Engine{SigningKey: benchKey}).Open(a)
	if err != nil {
		return err
	}
	conn, err := pgschema.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, td := range f.Meta.Tables {
		t := f.Meta.Schema.Table(td.Key)
		cols := ""
		for i := range t.Columns {
			if i > 0 {
				cols += ", "
			}
			cols += pgschema.QuoteIdent(t.Columns[i].Name) + " " + t.Columns[i].Type
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE "+t.QualifiedName()+" ("+cols+")"); err != nil {
			return err
		}
		rows, err := f.Rows(td)
		if err != nil {
			return err
		}
		if _, err := conn.PgConn().CopyFrom(ctx, rows, "COPY "+t.QualifiedName()+" ("+pgschema.ColumnList(td.Columns)+") FROM STDIN"); err != nil {
			return err
		}
	}
	return nil
}

func openFile(path string) (fileArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileArchive{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fileArchive{}, err
	}
	return fileArchive{f, st.Size()}, nil
}
