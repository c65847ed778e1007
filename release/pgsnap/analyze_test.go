package pgsnap

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

// notAnalyzed lists the tables and materialized views of dsn that no
// ANALYZE (by hand: last_analyze, not autovacuum's) has seen, and counts
// them all.
func notAnalyzed(t *testing.T, dsn string) ([]string, int) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing []string
	var n int
	err = conn.QueryRow(ctxT(t), `SELECT coalesce(array_agg(s.relname::text ORDER BY s.relname) FILTER (WHERE s.last_analyze IS NULL), '{}'), count(*)
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE c.relkind IN ('r', 'm')`).Scan(&missing, &n)
	if err != nil {
		t.Fatal(err)
	}
	return missing, n
}

func TestRestoreAnalyzes(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2}
	src := newEnv(t, "src", richSQL, nil)
	path, _ := backup(t, e, src)
	wantRows := tableSums(t, src.Database)
	a := openArchiveFile(t, path)

	for _, c := range []struct {
		name     string
		existing string // the target's own objects: a restore in place
		opts     release.RestoreOptions
	}{
		{name: "into an empty database"},
		{name: "in place", existing: "CREATE TABLE old (x int); INSERT INTO old VALUES (1);"},
		{name: "with --no-analyze", opts: release.RestoreOptions{NoAnalyze: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := newEnv(t, "dst", c.existing, nil)
			rep, err := e.Restore(ctxT(t), a, "crm", dst, c.opts)
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			equalMaps(t, "tables", wantRows, tableSums(t, dst.Database))
			missing, n := notAnalyzed(t, dst.Database)
			if n < 10 { // rich.sql's nine tables and a materialized view
				t.Fatalf("only %d tables in the restored database", n)
			}
			if c.opts.NoAnalyze {
				if len(missing) != n || rep.Analyzed != 0 || rep.AnalyzeTime != 0 {
					t.Fatalf("--no-analyze: %d of %d tables not analyzed, report %d in %s; want none analyzed", len(missing), n, rep.Analyzed, rep.AnalyzeTime)
				}
				return
			}
			if len(missing) > 0 {
				t.Fatalf("not analyzed after the restore: %v", missing)
			}
			if rep.Analyzed != n || rep.AnalyzeTime <= 0 {
				t.Fatalf("report: %d tables analyzed in %s, want %d", rep.Analyzed, rep.AnalyzeTime, n)
			}
		})
	}
}

// A maintenance_work_mem the server refuses fails the restore in one line
// naming it, and the empty target stays empty.
func TestRestoreRefusesABadMaintenanceWorkMem(t *testing.T) {
	t.Parallel()
	src := newEnv(t, "src", richSQL, nil)
	path, _ := backup(t, &Engine{Workers: 2}, src)
	dst := newEnv(t, "dst", "", nil)
	e := &Engine{Workers: 2, MaintenanceWorkMem: "1kB"}
	_, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "maintenance_work_mem 1kB") {
		t.Fatalf("err %v, want one naming maintenance_work_mem 1kB", err)
	}
	conn, err := pgx.Connect(ctxT(t), dst.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if empty, err := isEmpty(ctxT(t), conn); err != nil || !empty {
		t.Fatalf("the target is not empty again after the refusal (%v)", err)
	}
}
