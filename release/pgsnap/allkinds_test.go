package pgsnap

import (
	"context"
	_ "embed"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

//go:embed testdata/allkinds.sql
var allKindsSQL string

// allKinds is testdata/allkinds.sql for roles made for this test alone,
// dropped after its databases.
func allKinds(t *testing.T) string {
	owner, reader := testenv.UniqueName("relbot_kinds_owner"), testenv.UniqueName("relbot_kinds_reader")
	for _, r := range []string{owner, reader} {
		testenv.DropRoleAfterDatabases(t, r)
	}
	testenv.Exec(t, "CREATE ROLE "+owner)
	testenv.Exec(t, "CREATE ROLE "+reader)
	return strings.NewReplacer("{{owner}}", owner, "{{reader}}", reader).Replace(allKindsSQL)
}

// fullDump is all of pg_dump's output: schema, rows, sequence values and
// large objects.
func fullDump(t *testing.T, dsn string) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--dbname", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if !restrictLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// rowSums is every table's own row count and checksum, partitions and
// inheritance children included.
func rowSums(t *testing.T, dsn string) map[string]string {
	t.Helper()
	conn, err := pgschema.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tables, err := listTables(ctxT(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		ti, err := TableChecksum(ctxT(t), conn, tb)
		if err != nil {
			t.Fatal(err)
		}
		out[ti.Key] = fmt.Sprintf("%d rows %s", ti.Rows, ti.Checksum)
	}
	return out
}

// Every object kind SQL can make comes back exactly, into an empty
// database and in place over the same kinds of objects, and verify
// agrees.
func TestEveryObjectKindRoundTrips(t *testing.T) {
	t.Parallel()
	sql := allKinds(t)
	e := &Engine{Workers: 2}
	src := newEnv(t, "kindsrc", sql, nil)
	path, sum := backup(t, e, src)
	if len(sum.Warnings) > 0 {
		t.Fatalf("backup warnings: %q", sum.Warnings)
	}
	want, wantAll, wantRows := schemaDump(t, src.Database), fullDump(t, src.Database), rowSums(t, src.Database)
	for _, s := range []string{"PARTITION BY HASH", "INHERITS (app.tools, app.labels)", "OF app.person_t", "CREATE TYPE app.myint;", "AS RANGE",
		"NOT VALID", "CREATE OPERATOR CLASS", "CREATE STATISTICS", "CREATE TEXT SEARCH CONFIGURATION", "CREATE COLLATION", "CREATE RULE",
		"CREATE POLICY", "CREATE PUBLICATION", "SET default_table_access_method = heap2", "COMPRESSION pglz", "SET STORAGE EXTERNAL", "CREATE UNLOGGED SEQUENCE",
		"ALTER DEFAULT PRIVILEGES", "SUPPORT generate_series_int4_support", "CREATE EVENT TRIGGER",
		"CREATE FOREIGN TABLE", "CREATE CAST", "SET SESSION AUTHORIZATION", "CREATE AGGREGATE", "CREATE CONVERSION", "COMMENT ON CONSTRAINT even_check ON DOMAIN"} {
		if !strings.Contains(want, s) {
			t.Fatalf("the source's schema lacks %q: the test does not test what it says", s)
		}
	}
	if !strings.Contains(wantAll, "lowrite") || !strings.Contains(wantAll, "COMMENT ON LARGE OBJECT") || rowSums(t, src.Database)["app.orders_eu_1"] == "" {
		t.Fatal("the source lacks large object data or partition rows")
	}
	a := openArchiveFile(t, path)
	vrep, err := e.Verify(ctxT(t), a, "crm", src)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(vrep.Problems) > 0 {
		t.Fatalf("verify found problems: %q", vrep.Problems)
	}
	for _, c := range []struct{ name, sql, mode string }{
		{"into an empty database", "", "into an empty database, in parallel"},
		{"in place over every kind", sql + "; INSERT INTO app.things VALUES (99, 'only in the target'); SELECT lo_from_bytea(0, 'target');", "in place, in one transaction"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := newEnv(t, "kinddst", c.sql, nil)
			rep, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if rep.Mode != c.mode || len(rep.Warnings) > 0 {
				t.Fatalf("mode %q, warnings %q", rep.Mode, rep.Warnings)
			}
			if got := schemaDump(t, dst.Database); got != want {
				t.Fatalf("pg_dump --schema-only differs:\n%s", lineDiff(want, got))
			}
			equalMaps(t, "tables' rows", wantRows, rowSums(t, dst.Database))
			if got := fullDump(t, dst.Database); got != wantAll {
				t.Fatalf("pg_dump (rows, sequence values, large objects) differs:\n%s", lineDiff(wantAll, got))
			}
		})
	}
}
