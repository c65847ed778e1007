package checks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

func setupDB(t *testing.T) string {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "checks")
	conn := testenv.Connect(t, dsn)
	_, err := conn.Exec(context.Background(), `
		CREATE TABLE "uiSchemas" (id int PRIMARY KEY, name text);
		INSERT INTO "uiSchemas" VALUES (1, 'home'), (2, 'orders'), (3, 'admin');
		CREATE TABLE empty_table (id int);`)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

type want struct {
	ok     bool
	detail string // substring of Detail
}

func expect(t *testing.T, got []release.CheckResult, checks []release.Check, wants []want) {
	t.Helper()
	if len(got) != len(checks) {
		t.Fatalf("%d results for %d checks", len(got), len(checks))
	}
	for i, w := range wants {
		g := got[i]
		if g.Name != checks[i].Name {
			t.Errorf("result %d is %q, want %q (order)", i, g.Name, checks[i].Name)
		}
		if g.OK != w.ok || !strings.Contains(g.Detail, w.detail) {
			t.Errorf("%s: ok=%v detail=%q, want ok=%v detail~%q", g.Name, g.OK, g.Detail, w.ok, w.detail)
		}
		if strings.Contains(g.Detail, "\n") {
			t.Errorf("%s: detail has several lines: %q", g.Name, g.Detail)
		}
		if g.Duration <= 0 {
			t.Errorf("%s: duration %s", g.Name, g.Duration)
		}
	}
}

func TestSQLChecks(t *testing.T) {
	dsn := setupDB(t)
	checks := []release.Check{
		{Name: "pages exist", SQL: `SELECT count(*) > 0 FROM "uiSchemas"`},
		{Name: "false", SQL: `SELECT count(*) > 10 FROM "uiSchemas"`},
		{Name: "no rows", SQL: `SELECT id FROM empty_table`},
		{Name: "null", SQL: `SELECT NULL::boolean`},
		{Name: "count", SQL: `SELECT count(*) FROM "uiSchemas"`},
		{Name: "zero count still a row", SQL: `SELECT count(*) FROM empty_table`},
		{Name: "rows", SQL: `SELECT name FROM "uiSchemas" ORDER BY id`},
		{Name: "error", SQL: `SELECT * FROM no_such_table`},
		{Name: "after error", SQL: `SELECT true`},
		{Name: "update refused", SQL: `UPDATE "uiSchemas" SET name = 'hacked' RETURNING true`},
		{Name: "insert refused", SQL: `INSERT INTO empty_table VALUES (1)`},
		{Name: "escape refused", SQL: `COMMIT; DELETE FROM "uiSchemas"`},
		{Name: "read-write refused", SQL: `SELECT set_config('transaction_read_only', 'off', true)`},
		{Name: "late error", SQL: `SELECT 1 / (3 - id) > 0 FROM "uiSchemas" ORDER BY id`},
	}
	got := (&Runner{}).Run(context.Background(), &release.Environment{Name: "staging", Database: dsn, Checks: checks})
	expect(t, got, checks, []want{
		{true, "returned true"},
		{false, "returned false"},
		{false, "returned no rows"},
		{false, "returned NULL"},
		{true, "returned 3"},
		{true, "returned 0"},
		{true, "returned home"},
		{false, `relation "no_such_table" does not exist`},
		{true, "returned true"},
		{false, "read-only transaction"},
		{false, "read-only transaction"},
		{false, "cannot insert multiple commands"},
		{false, "read-write"},
		{false, "division by zero"},
	})

	// Nothing changed.
	conn := testenv.Connect(t, dsn)
	var n int
	var names string
	if err := conn.QueryRow(context.Background(), `SELECT count(*), string_agg(name, ',' ORDER BY id) FROM "uiSchemas"`).Scan(&n, &names); err != nil {
		t.Fatal(err)
	}
	if n != 3 || names != "home,orders,admin" {
		t.Fatalf("checks changed data: %d rows %q", n, names)
	}
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM empty_table`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("checks changed data: %d rows, %v", n, err)
	}
}

func TestSQLChecksShareOneConnection(t *testing.T) {
	dsn := setupDB(t)
	checks := []release.Check{
		{Name: "a", SQL: `SELECT pg_backend_pid()`},
		{Name: "b", SQL: `SELECT nope`},
		{Name: "c", SQL: `SELECT pg_backend_pid()`},
	}
	got := (&Runner{}).Run(context.Background(), &release.Environment{Database: dsn, Checks: checks})
	if !got[0].OK || !got[2].OK || got[0].Detail != got[2].Detail {
		t.Fatalf("checks used different connections: %+v", got)
	}
}

func TestSQLTimeout(t *testing.T) {
	dsn := setupDB(t)
	checks := []release.Check{
		{Name: "slow", SQL: `SELECT pg_sleep(5) IS NULL`, Timeout: 200 * time.Millisecond},
		{Name: "next", SQL: `SELECT true`},
	}
	start := time.Now()
	got := (&Runner{}).Run(context.Background(), &release.Environment{Database: dsn, Checks: checks})
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %s", d)
	}
	expect(t, got, checks, []want{{false, "timed out after 200ms"}, {true, "returned true"}})
}

func TestSQLConnectionFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	checks := []release.Check{
		{Name: "one", SQL: `SELECT true`, Timeout: 5 * time.Second},
		{Name: "health", HTTP: "GET " + srv.URL},
		{Name: "two", SQL: `SELECT true`},
	}
	env := &release.Environment{Database: "postgres://relbot:pw-s3cr3t@127.0.0.1:1/nodb?sslmode=disable&connect_timeout=2", Checks: checks}
	got := (&Runner{}).Run(context.Background(), env)
	expect(t, got, checks, []want{{false, "cannot connect to the database"}, {true, "status 200"}, {false, "cannot connect to the database"}})
	if got[0].Detail != got[2].Detail {
		t.Errorf("sql checks should fail with the same reason: %q vs %q", got[0].Detail, got[2].Detail)
	}
	for _, r := range got {
		if strings.Contains(r.Detail, "pw-s3cr3t") {
			t.Errorf("password leaked: %q", r.Detail)
		}
	}

	got = (&Runner{}).Run(context.Background(), &release.Environment{Checks: checks[:1]})
	if got[0].OK || !strings.Contains(got[0].Detail, "no database") {
		t.Fatalf("%+v", got[0])
	}
}

func TestHTTPChecks(t *testing.T) {
	slowDone := make(chan struct{})
	var (
		mu      sync.Mutex
		methods []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("healthy"))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/created":
			w.WriteHeader(http.StatusCreated)
		case "/slow":
			select {
			case <-slowDone:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(slowDone)
	checks := []release.Check{
		{Name: "health", HTTP: "GET " + srv.URL + "/ok"},
		{Name: "down", HTTP: "GET " + srv.URL + "/down"},
		{Name: "expect 201", HTTP: "POST " + srv.URL + "/created", Expect: 201},
		{Name: "expect 503", HTTP: "GET " + srv.URL + "/down", Expect: 503},
		{Name: "wrong expect", HTTP: "GET " + srv.URL + "/ok", Expect: 204},
		{Name: "slow", HTTP: "GET " + srv.URL + "/slow?token=tok-s3cr3t", Timeout: 100 * time.Millisecond},
		{Name: "refused", HTTP: "GET http://u:pw-s3cr3t@127.0.0.1:1/x"},
		{Name: "malformed", HTTP: "GRAB " + srv.URL},
		{Name: "both", SQL: "SELECT true", HTTP: "GET " + srv.URL},
		{Name: "neither"},
	}
	got := (&Runner{Client: srv.Client()}).Run(context.Background(), &release.Environment{Checks: checks})
	expect(t, got, checks, []want{
		{true, "status 200"},
		{false, "status 503, expected 200"},
		{true, "status 201"},
		{true, "status 503"},
		{false, "status 200, expected 204"},
		{false, "timed out after 100ms"},
		{false, "127.0.0.1:1/x"},
		{false, "GRAB"},
		{false, "both"},
		{false, "neither"},
	})
	for _, r := range got {
		if strings.Contains(r.Detail, "s3cr3t") {
			t.Errorf("secret leaked: %q", r.Detail)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(methods[:3], " ") != "GET GET POST" {
		t.Errorf("methods %v", methods)
	}
}

func TestNoChecks(t *testing.T) {
	if got := (&Runner{}).Run(context.Background(), &release.Environment{}); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
}
