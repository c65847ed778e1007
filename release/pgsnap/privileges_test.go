package pgsnap

import (
	"net/url"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// Owners and grants come back with a restore, into an empty database and
// in place; a role the server does not have is named in a warning.
func TestOwnersAndGrantsAreRestored(t *testing.T) {
	t.Parallel()
	app, report, gone := testenv.UniqueName("relbot_app"), testenv.UniqueName("relbot_report"), testenv.UniqueName("relbot_gone")
	restorer := testenv.UniqueName("relbot_restorer")
	// Registered before the databases, so that it runs after they are
	// dropped: a role cannot go while it owns anything.
	for _, r := range []string{app, report, gone, restorer} {
		testenv.DropRoleAfterDatabases(t, r)
	}
	for _, r := range []string{app, report, gone} {
		testenv.Exec(t, "CREATE ROLE "+r)
	}
	testenv.Exec(t, "CREATE ROLE "+restorer+" LOGIN")
	e := &Engine{Workers: 2}
	src := newEnv(t, "privsrc", `
		CREATE TABLE customers (id serial PRIMARY KEY, name text);
		CREATE VIEW customer_names AS SELECT name FROM customers;
		CREATE TABLE plain (x int);
		CREATE SEQUENCE tickets_seq;
		INSERT INTO customers (name) VALUES ('a'), ('b');
		ALTER TABLE customers OWNER TO `+app+`;
		ALTER VIEW customer_names OWNER TO `+app+`;
		ALTER SEQUENCE tickets_seq OWNER TO `+app+`;
		GRANT SELECT, INSERT ON customers TO `+report+`;
		GRANT SELECT ON customer_names TO `+report+` WITH GRANT OPTION;
		GRANT USAGE ON SEQUENCE customers_id_seq TO `+report+`;
		GRANT SELECT ON plain TO PUBLIC;
		GRANT SELECT ON customers TO `+gone+`;
		CREATE TABLE events (at date, what text) PARTITION BY RANGE (at);
		CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		GRANT SELECT ON events TO `+report+`;
		GRANT SELECT ON events_2026 TO `+report+`;
		CREATE TABLE secrets (id int, note text);
		GRANT SELECT (id) ON secrets TO `+report+`;`, nil)
	path, sum := backup(t, e, src)
	if len(sum.Warnings) > 0 {
		t.Fatalf("warnings: %q", sum.Warnings)
	}
	// The role is gone from the server the backup is restored on.
	execSQL(t, src.Database, "REVOKE ALL ON customers FROM "+gone)
	testenv.Exec(t, "DROP ROLE "+gone)
	want := schemaDump(t, src.Database)
	for _, line := range []string{"OWNER TO " + app, "GRANT SELECT,INSERT ON TABLE public.customers TO " + report, "GRANT SELECT ON TABLE public.plain TO PUBLIC",
		"GRANT SELECT(id) ON TABLE public.secrets TO " + report, "GRANT SELECT ON TABLE public.events_2026 TO " + report, "PARTITION BY RANGE"} {
		if !strings.Contains(want, line) {
			t.Fatalf("the source's dump lacks %q: the test does not test what it says", line)
		}
	}
	a := openArchiveFile(t, path)
	for _, c := range []struct{ name, sql string }{{"into an empty database", ""}, {"in place", "CREATE TABLE customers (id int)"}} {
		t.Run(c.name, func(t *testing.T) {
			dst := newEnv(t, "privdst", c.sql, nil)
			rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := schemaDump(t, dst.Database); got != want {
				t.Fatalf("owners or grants differ:\n%s", lineDiff(want, got))
			}
			warned := false
			for _, w := range rep.Warnings {
				if strings.Contains(w, "role "+gone+" does not exist on this server: its privileges on 1 objects were not granted") {
					warned = true
				}
				if strings.HasPrefix(w, "privileges granted on public.") || strings.Contains(w, "will be owned by the restoring role") {
					t.Errorf("stale warning: %s", w)
				}
			}
			if !warned {
				t.Fatalf("no warning about the missing role: %q", rep.Warnings)
			}
		})
	}

	// A restoring role that is not a superuser and has none of app's
	// privileges keeps the objects, grants app everything on them, says so,
	// and still grants what was granted.
	t.Run("by a role that may not give objects away", func(t *testing.T) {
		dst := newEnv(t, "privnosu", "", nil)
		u, err := url.Parse(dst.Database)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Exec(t, "ALTER DATABASE "+strings.TrimPrefix(u.Path, "/")+" OWNER TO "+restorer)
		u.User = url.User(restorer)
		dst.Database = u.String()
		// Into the empty database, then in place over what that made.
		for _, mode := range []string{"into an empty database, in parallel", "in place, in one transaction"} {
			rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
			if err != nil {
				t.Fatalf("restore %s: %v", mode, err)
			}
			if rep.Mode != mode {
				t.Fatalf("mode %q, want %q", rep.Mode, mode)
			}
			warned := false
			for _, w := range rep.Warnings {
				if strings.Contains(w, "objects of role "+app+" are owned by "+restorer) && strings.Contains(w, app+" was granted all privileges on them instead") {
					warned = true
				}
			}
			if !warned {
				t.Fatalf("no warning about the owner kept: %q", rep.Warnings)
			}
			got := testenv.Rows(t, dst.Database, `SELECT c.relname, pg_get_userbyid(c.relowner) || ' ' || has_table_privilege('`+app+`', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
				|| ' ' || has_table_privilege('`+report+`', c.oid, 'SELECT') FROM pg_class c WHERE c.relname IN ('customers', 'customer_names')`)
			for _, name := range []string{"customers", "customer_names"} {
				if got[name] != restorer+" true true" {
					t.Errorf("%s: %q, want owned by %s, all privileges for %s, SELECT for %s", name, got[name], restorer, app, report)
				}
			}
			waitIdle(t, dst.Database)
		}
	})
}
