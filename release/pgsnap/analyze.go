package pgsnap

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// analyzeTable is one ANALYZE job: a table, its quoted name, its size.
type analyzeTable struct {
	name  string
	bytes int64
}

// analyzeTargets lists what a restored database needs statistics of, the
// largest first: every table and populated materialized view outside the
// system schemas. A partition is analyzed by its partitioned root (which
// gathers both the whole tree's and each partition's statistics), so the
// roots stand for their trees and their size is the tree's.
func analyzeTargets(ctx context.Context, conn *pgx.Conn) ([]analyzeTable, error) {
	rows, err := conn.Query(ctx, `
		SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
			CASE WHEN c.relkind = 'p' THEN (WITH RECURSIVE tree(oid) AS (SELECT c.oid
					UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)
				SELECT coalesce(sum(pg_catalog.pg_relation_size(tree.oid)), 0)::bigint FROM tree)
			ELSE pg_catalog.pg_relation_size(c.oid) END AS bytes
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm', 'p') AND NOT c.relispartition AND c.relispopulated
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
		ORDER BY bytes DESC, 1`)
	if err != nil {
		return nil, fmt.Errorf("list the tables to analyze: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (analyzeTable, error) {
		var t analyzeTable
		return t, r.Scan(&t.name, &t.bytes)
	})
}

// analyze gathers planner statistics of every table of database db on the
// engine's workers, largest table first: a restored database has none, and
// until autovacuum gets to it every query plans as on empty tables.
func (e *Engine) analyze(ctx context.Context, conn *pgx.Conn, dsn, db string) (int, time.Duration, error) {
	start := time.Now()
	targets, err := analyzeTargets(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	jobs := make([]func(context.Context, *pgx.Conn) error, len(targets))
	for i, t := range targets {
		jobs[i] = func(ctx context.Context, c *pgx.Conn) error {
			if _, err := c.Exec(ctx, "ANALYZE "+t.name); err != nil {
				return fmt.Errorf("analyze %s: %w", t.name, err)
			}
			return nil
		}
	}
	if err := e.runParallel(ctx, dsn, db, jobs); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	e.log().Info(fmt.Sprintf("analyzed %d tables in %.1f s", len(targets), took.Seconds()), "tables", len(targets), "duration", took)
	return len(targets), took, nil
}
