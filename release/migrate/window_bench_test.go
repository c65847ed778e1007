package migrate

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// BenchmarkApplyWindow compares, on the generated production database of
// `relbot bench migrate` (fixtures.GenerateLarge; RELBOT_BENCH_MB sets its
// size, 256 by default; it scales the configuration rows with it), the
// time an apply holds its transaction (the maintenance window's share, the
// file's signature check before it left out) without preparation, with a
// release snapshot, and with the preparation done ahead (Prepare, measured
// apart) and a release snapshot; then the targeted revert.
// The target is a copy of the source: every configuration table's rows are
// replaced, as in `relbot bench migrate`.
func BenchmarkApplyWindow(b *testing.B) {
	mb := int64(256)
	if s := os.Getenv("RELBOT_BENCH_MB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("RELBOT_BENCH_MB=%q: want a number of MiB", s)
		}
		mb = n
	}
	tmpl := testenv.Template(b, "window_"+strconv.FormatInt(mb, 10), func(ctx context.Context, dsn string) error {
		return fixtures.GenerateLarge(ctx, dsn, mb<<20, nil)
	})
	_, srcDSN := testenv.NewDatabaseFrom(b, "wb_src", tmpl)
	src := &release.Environment{Name: "development", Database: srcDSN}
	app := &release.App{Name: "bench", Builtin: "nocobase", Environments: []*release.Environment{src}}
	e := &Engine{SigningKey: testKey}
	var buf bytes.Buffer
	sum, err := e.Create(context.Background(), release.MigrationInput{App: app, Source: src, ID: "bench-w1", By: "bench", CreatedAt: time.Now().UTC()}, &buf)
	if err != nil {
		b.Fatal(err)
	}
	var rows int64
	for _, t := range sum.Tables {
		if t.Carried {
			rows += t.Rows
		}
	}
	file := buf.Bytes()
	var plain, snapOnly, prepared, prepare, revert time.Duration
	var swapped int
	var last *release.ApplyResult
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		targets := make([]*release.Environment, 3)
		for j := range targets {
			_, dsn := testenv.NewDatabaseFrom(b, "wb_tgt", tmpl)
			targets[j] = &release.Environment{Name: "production", Database: dsn}
		}
		ctx := context.Background()
		b.StartTimer()
		res, err := e.Apply(ctx, reader(file), app, targets[0], release.ApplyOptions{By: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		plain += inTx(res)
		res, err = e.Apply(ctx, reader(file), app, targets[1], release.ApplyOptions{By: "bench", Snapshot: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		snapOnly += inTx(res)
		t0 := time.Now()
		prep, err := e.Prepare(ctx, reader(file), app, targets[2], release.PrepareOptions{Key: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		prepare += time.Since(t0)
		swapped = len(prep.Tables)
		res, err = e.Apply(ctx, reader(file), app, targets[2], release.ApplyOptions{By: "bench", Prepared: "bench", Snapshot: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		prepared += inTx(res)
		if len(res.Warnings) > 0 {
			b.Logf("warnings: %v", res.Warnings)
		}
		last = res
		rres, err := e.Revert(ctx, app, targets[2], "bench", release.RevertOptions{By: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		revert += rres.Duration
	}
	// Where the prepared apply's time goes: its slowest steps.
	steps := slices.Clone(last.Steps)
	slices.SortFunc(steps, func(x, y release.ExecutedStep) int { return int(y.Duration - x.Duration) })
	for _, st := range steps[:min(5, len(steps))] {
		b.Logf("prepared apply step %6.3fs %s", st.Duration.Seconds(), st.What)
	}
	n := float64(b.N)
	b.ReportMetric(plain.Seconds()/n, "unprepared-s")
	b.ReportMetric(snapOnly.Seconds()/n, "unprepared+snapshot-s")
	b.ReportMetric(prepared.Seconds()/n, "prepared+snapshot-s")
	b.ReportMetric(prepare.Seconds()/n, "prepare-ahead-s")
	b.ReportMetric(revert.Seconds()/n, "revert-s")
	b.Logf("%d MiB source, %d carried rows (uiSchemas %d), %d tables swapped in: apply in the window %.2fs unprepared, %.2fs unprepared with snapshot, %.2fs prepared with snapshot (%.1fx shorter); Prepare ahead %.2fs; targeted revert %.2fs",
		mb, rows, summaryRows(sum, "uiSchemas"), swapped, plain.Seconds()/n, snapOnly.Seconds()/n, prepared.Seconds()/n, plain.Seconds()/prepared.Seconds(), prepare.Seconds()/n, revert.Seconds()/n)
}

func summaryRows(s *release.MigrationSummary, table string) int64 {
	for _, t := range s.Tables {
		if t.Table == table {
			return t.Rows
		}
	}
	return 0
}

// inTx is an apply's time less its first step (reading the file to check
// its signature, before the transaction does anything).
func inTx(res *release.ApplyResult) time.Duration {
	d := res.Duration
	if len(res.Steps) > 0 && strings.HasPrefix(res.Steps[0].What, "check the migration file") {
		d -= res.Steps[0].Duration
	}
	return d
}
