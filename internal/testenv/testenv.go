// Package testenv gives tests their own real PostgreSQL databases and the
// local Redis. Each database is created for one test and dropped after it;
// a template (an expensive fixture built once per test process, cloned per
// test) is dropped when the process's tests end, by Main.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	createDatabase(t, name, "")
	return name, DSNFor(name)
}

// createDatabase creates database name (a copy of template, if not empty)
// that commits without waiting for its WAL to reach the disk: the server
// is shared and its disk busy, and a test's database needs no durability
// across a server crash (a killed client loses nothing either way).
func createDatabase(t testing.TB, name, template string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool := adminPool(t)
	id := pgx.Identifier{name}.Sanitize()
	create := "CREATE DATABASE " + id
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	for _, sql := range []string{create, "ALTER DATABASE " + id + " SET synchronous_commit = off"} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if sql == create {
			t.Cleanup(func() { dropAfter(t, name) })
		}
	}
}

// drops are the test databases being dropped in the background. DROP
// DATABASE waits for a checkpoint, which takes seconds on a busy server
// (it syncs every file written since the last one, other processes' too);
// drops side by side share one. So under Main a test hands its databases
// to these goroutines and ends; Main waits for them, then drops the roles
// the tests registered, before it exits.
var drops struct {
	wg    sync.WaitGroup
	slot  chan struct{} // bounds the connections the drops take
	mu    sync.Mutex
	errs  []error
	roles []string // DropRoleAfterDatabases's, under Main
}

// dropSlots is how many drops run side by side in a test process: each
// waits on the server's next checkpoint, so they cost a connection, not
// work. With 8, drops queued behind each other for minutes under load
// (a package's tests done in 10 s, its process ending two minutes later);
// with 24 the shared server once ran out of its 100 connections (with
// other test processes on it), failing a test.
const dropSlots = 16

// dropAfter drops a database of an ended test: in the background under
// Main, else at once.
func dropAfter(t testing.TB, name string) {
	t.Helper()
	if !underMain() {
		DropDatabase(t, name)
		return
	}
	drops.wg.Add(1)
	go func() {
		defer drops.wg.Done()
		drops.slot <- struct{}{}
		defer func() { <-drops.slot }()
		if err := dropNow(name); err != nil {
			drops.mu.Lock()
			drops.errs = append(drops.errs, err)
			drops.mu.Unlock()
		}
	}()
}

func underMain() bool {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	return templates.inMain
}

// DropRoleAfterDatabases drops role after the databases of the test and
// its subtests (a role cannot go while it owns anything): under Main,
// after every database of the process, so the test need not wait for its
// drops; else when the test ends. Register it before creating the
// databases that use it.
func DropRoleAfterDatabases(t testing.TB, role string) {
	t.Helper()
	if underMain() {
		drops.mu.Lock()
		drops.roles = append(drops.roles, role)
		drops.mu.Unlock()
		return
	}
	// Cleanups run last-registered first: the databases' drops, registered
	// after this one, have run by then.
	t.Cleanup(func() { Exec(t, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()) })
}

func dropNow(name string) error {
	return execAdmin("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)")
}

// execAdmin runs one statement on the admin database, outside any test.
func execAdmin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := admin()
	if err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// adminConns bounds the pool of connections to the admin database: drops
// (dropSlots) mostly wait on the server's checkpoint, so they take turns
// on fewer connections.
const adminConns = 8

// admin is the process's connections to the admin database, shared by
// its tests' creates, drops and waits. A connection per statement was
// most of the tests' connections (about 1,800 of 8,600 in a run), each a
// server process started and ended.
var admin = sync.OnceValues(func() (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(AdminDSN())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = adminConns
	cfg.MaxConnIdleTime = 10 * time.Second
	// As the databases' own setting (createDatabase): nothing here needs
	// to survive a server crash.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	return pgxpool.NewWithConfig(context.Background(), cfg)
})

// adminPool is admin or fails the test.
func adminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := admin()
	if err != nil {
		t.Fatalf("test PostgreSQL (%s): %v", AdminDSN(), err)
	}
	return pool
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
	if _, err := adminPool(t).Exec(ctx, sql, args...); err != nil {
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
	pool := adminPool(t)
	for {
		var alive bool
		if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", int32(pid)).Scan(&alive); err != nil {
			t.Fatalf("wait for session %d to end: %v", pid, err)
		}
		if !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NewDatabaseFrom creates a database for this test as a copy of template
// (CREATE DATABASE ... TEMPLATE: a file copy, much faster than loading the
// fixture again) and drops it when the test ends.
func NewDatabaseFrom(t testing.TB, prefix, template string) (name, dsn string) {
	t.Helper()
	name = UniqueName("t_" + prefix)
	createDatabase(t, name, template)
	return name, DSNFor(name)
}

// templates are the databases Template built in this process; Main drops
// them.
var templates struct {
	mu     sync.Mutex
	inMain bool
	byKey  map[string]*templateDB
}

type templateDB struct {
	once sync.Once
	name string
	err  error
}

// Template returns the name of a database that load filled once in this
// test process (the first caller for key builds it, others wait), for
// NewDatabaseFrom to copy. Nobody stays connected to it: a copy needs its
// template to be idle. The package's TestMain must run its tests through
// Main, which drops the templates after them.
func Template(t testing.TB, key string, load func(ctx context.Context, dsn string) error) string {
	t.Helper()
	templates.mu.Lock()
	if !templates.inMain {
		templates.mu.Unlock()
		t.Fatal("testenv.Template: the package's TestMain must call testenv.Main, which drops the templates")
	}
	if templates.byKey == nil {
		templates.byKey = map[string]*templateDB{}
	}
	tp := templates.byKey[key]
	if tp == nil {
		tp = &templateDB{}
		templates.byKey[key] = tp
	}
	templates.mu.Unlock()
	tp.once.Do(func() { tp.name, tp.err = buildTemplate(key, load) })
	if tp.err != nil {
		t.Fatalf("template %s: %v", key, tp.err)
	}
	return tp.name
}

func buildTemplate(key string, load func(ctx context.Context, dsn string) error) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool, err := admin()
	if err != nil {
		return "", err
	}
	name := UniqueName("tmpl_" + key)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", err
	}
	// As createDatabase's; the setting is not copied to the clones.
	if _, err := pool.Exec(ctx, "ALTER DATABASE "+id+" SET synchronous_commit = off"); err != nil {
		_, _ = pool.Exec(context.Background(), "DROP DATABASE "+id)
		return "", err
	}
	err = load(ctx, DSNFor(name))
	// The loader's sessions end a moment after it closes them.
	for err == nil {
		var n int
		if err = pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil || n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		_, _ = pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
		return "", err
	}
	return name, nil
}

// Main runs a package's tests (call it from TestMain), waits for their
// databases to be dropped, and drops the templates they built and the
// roles they registered (DropRoleAfterDatabases). A database
// that could not be dropped fails the run.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to do after it: it returns the exit
// code instead of exiting.
func Run(m *testing.M) int {
	templates.mu.Lock()
	templates.inMain = true
	templates.mu.Unlock()
	drops.slot = make(chan struct{}, dropSlots)
	code := m.Run()
	drops.wg.Wait()
	errs := append(drops.errs, dropTemplates())
	for _, role := range drops.roles {
		errs = append(errs, execAdmin("DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()))
	}
	if pool, err := admin(); err == nil {
		pool.Close()
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		code = 1
	}
	return code
}

func dropTemplates() error {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	var names []string
	for _, tp := range templates.byKey {
		if tp.name != "" {
			names = append(names, tp.name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := admin()
	if err != nil {
		return fmt.Errorf("drop templates: %w", err)
	}
	for _, name := range names {
		if _, err := pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop template %s: %w", name, err)
		}
	}
	return nil
}
