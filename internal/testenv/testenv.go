// Package testenv gives tests their own real PostgreSQL databases and the
// local Redis. Each database is created for one test and dropped after it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminDSN is the maintenance database tests connect to for CREATE DATABASE.
// RELBOT_TEST_PG overrides it.
func AdminDSN() string {
	if v := os.Getenv("RELBOT_TEST_PG"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis tests use; RELBOT_TEST_REDIS overrides it.
func RedisURL() string {
	if v := os.Getenv("RELBOT_TEST_REDIS"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/0"
}

// DSNFor returns AdminDSN with its database replaced by name.
func DSNFor(name string) string {
	u, err := url.Parse(AdminDSN())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// UniqueName returns a fresh lower-case identifier starting with prefix.
func UniqueName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + "_" + hex.EncodeToString(b)
}

// NewDatabase creates an empty database for this test and drops it when the
// test ends. It returns the database's name and DSN.
func NewDatabase(t testing.TB, prefix string) (name, dsn string) {
	t.Helper()
	name = UniqueName("t_" + prefix)
	Exec(t, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { DropDatabase(t, name) })
	return name, DSNFor(name)
}

// DropDatabase drops a database if it exists, ending its sessions first.
func DropDatabase(t testing.TB, name string) {
	t.Helper()
	Exec(t, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// Exec runs one statement on the admin database.
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("connect to test PostgreSQL (%s): %v", AdminDSN(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Connect opens a connection to dsn that is closed when the test ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Rows runs sql on dsn and maps each row's first column to its second
// (both text).
func Rows(t testing.TB, dsn, sql string) map[string]string {
	t.Helper()
	conn := Connect(t, dsn)
	defer CloseAndWait(t, conn)
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { out[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// CloseAndWait closes conn and waits until the server has ended its
// session: the server ends it a moment after the client leaves, and code
// under test that refuses to work on a database others are connected to
// (a restore in place) would otherwise count it.
func CloseAndWait(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	pid := conn.PgConn().PID()
	conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Fatalf("connect to test PostgreSQL (%s): %v", AdminDSN(), err)
	}
	defer admin.Close(context.Background())
	for {
		var alive bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", int32(pid)).Scan(&alive); err != nil {
			t.Fatalf("wait for session %d to end: %v", pid, err)
		}
		if !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
