// Package checks runs an environment's validation checks from apps.yaml:
// `sql` checks query the environment's database inside a READ ONLY
// transaction, `http` checks compare a response's status with the one
// expected.
package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/httpspec"
)

const (
	// DefaultTimeout bounds a check whose definition sets no timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultExpect is the status an http check expects when it names none.
	DefaultExpect = http.StatusOK
	// maxDetail bounds what a result's Detail quotes of a returned value.
	maxDetail = 200
	// grace lets PostgreSQL's statement_timeout end a slow query (keeping
	// the connection usable) before the context deadline cuts the connection.
	grace = 2 * time.Second
)

// Runner runs checks. The zero value is usable: a nil Client means
// http.DefaultClient.
type Runner struct {
	Client *http.Client
}

var _ release.Checker = (*Runner)(nil)

// Run runs every check of env in order and returns one result per check.
// All sql checks of a run share one connection to env.Database; when it
// cannot be opened, every sql check fails with the reason.
func (r *Runner) Run(ctx context.Context, env *release.Environment) []release.CheckResult {
	if env == nil {
		return nil
	}
	db := &dbConn{dsn: env.Database}
	defer db.close()
	results := make([]release.CheckResult, 0, len(env.Checks))
	for _, c := range env.Checks {
		start := time.Now()
		ok, detail := r.one(ctx, db, c)
		results = append(results, release.CheckResult{
			Name:     c.Name,
			OK:       ok,
			Duration: time.Since(start),
			Detail:   oneLine(detail),
		})
	}
	return results
}

func (r *Runner) one(ctx context.Context, db *dbConn, c release.Check) (bool, string) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	switch {
	case c.SQL != "" && c.HTTP != "":
		return false, "check defines both sql and http"
	case c.SQL != "":
		return db.check(ctx, c.SQL, timeout)
	case c.HTTP != "":
		return r.httpCheck(ctx, c.HTTP, c.Expect, timeout)
	}
	return false, "check defines neither sql nor http"
}

// dbConn is the run's one connection, opened at the first sql check.
type dbConn struct {
	dsn     string
	conn    *pgx.Conn
	failure string // why the connection could not be opened; sticks for the run
}

func (d *dbConn) get(ctx context.Context, timeout time.Duration) (*pgx.Conn, string) {
	if d.failure != "" {
		return nil, d.failure
	}
	if d.conn != nil && !d.conn.IsClosed() {
		return d.conn, ""
	}
	// A connection cut by a timed-out check is reopened for the next one.
	d.close()
	if strings.TrimSpace(d.dsn) == "" {
		d.failure = "cannot connect to the database: the environment has no database"
		return nil, d.failure
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, d.dsn)
	if err != nil {
		if ctx.Err() == nil {
			d.failure = "cannot connect to the database: " + err.Error()
			return nil, d.failure
		}
		return nil, "cannot connect to the database: " + ctx.Err().Error()
	}
	d.conn = conn
	return conn, ""
}

func (d *dbConn) close() {
	if d.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.conn.Close(ctx)
		d.conn = nil
	}
}

// check runs query inside a READ ONLY transaction, always rolled back. It
// passes when the first column of the first row is true, or — for a
// non-boolean column — when the query returned a row.
func (d *dbConn) check(ctx context.Context, query string, timeout time.Duration) (bool, string) {
	conn, why := d.get(ctx, timeout)
	if conn == nil {
		return false, why
	}
	qctx, cancel := context.WithTimeout(ctx, timeout+grace)
	defer cancel()
	ok, detail, err := runQuery(qctx, conn, query, timeout)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, "cancelled: " + ctx.Err().Error()
		case qctx.Err() != nil || isStatementTimeout(err):
			return false, fmt.Sprintf("timed out after %s", timeout)
		}
		return false, err.Error()
	}
	return ok, detail
}

func runQuery(ctx context.Context, conn *pgx.Conn, query string, timeout time.Duration) (ok bool, detail string, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, "", err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	// Once this statement ran, the transaction can no longer be made
	// read-write; and the server ends a slow query without losing the
	// connection.
	ms := timeout.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", ms)); err != nil {
		return false, "", err
	}
	// The extended protocol runs exactly one statement: "…; COMMIT; UPDATE…"
	// is refused rather than escaping the read-only transaction.
	rows, err := tx.Query(ctx, query, pgx.QueryExecModeDescribeExec)
	if err != nil {
		return false, "", err
	}
	defer rows.Close()
	if !rows.Next() {
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, "", err
		}
		return false, "returned no rows", nil
	}
	vals, err := rows.Values()
	if err != nil {
		return false, "", err
	}
	rows.Close() // the rest of the rows do not matter, but their errors do
	if err := rows.Err(); err != nil {
		return false, "", err
	}
	if len(vals) == 0 {
		return true, "returned a row", nil
	}
	switch v := vals[0].(type) {
	case nil:
		return false, "returned NULL", nil
	case bool:
		return v, fmt.Sprintf("returned %t", v), nil
	default:
		return true, "returned " + shorten(fmt.Sprint(v)), nil
	}
}

func isStatementTimeout(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "57014" // query_canceled
}

func (r *Runner) httpCheck(ctx context.Context, spec string, expect int, timeout time.Duration) (bool, string) {
	if expect == 0 {
		expect = DefaultExpect
	}
	method, u, err := httpspec.Parse(spec)
	if err != nil {
		return false, err.Error()
	}
	target := method + " " + httpspec.Redact(u)
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, method, u.String(), nil)
	if err != nil {
		return false, target + ": " + unwrapURLError(err).Error()
	}
	req.Header.Set("User-Agent", "relbot")
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, target + ": cancelled: " + ctx.Err().Error()
		case tctx.Err() != nil:
			return false, fmt.Sprintf("%s: timed out after %s", target, timeout)
		}
		return false, target + ": " + unwrapURLError(err).Error()
	}
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, httpspec.MaxBody))
	resp.Body.Close()
	if resp.StatusCode != expect {
		return false, fmt.Sprintf("status %d, expected %d", resp.StatusCode, expect)
	}
	return true, fmt.Sprintf("status %d", resp.StatusCode)
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text carries the
// full URL (query included).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

func shorten(s string) string {
	return release.Cut(s, maxDetail)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
