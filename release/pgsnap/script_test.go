package pgsnap

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

// The script reader splits pg_dump's output where PostgreSQL would, not at
// every semicolon.
func TestScriptReaderSplitsWherePostgresDoes(t *testing.T) {
	t.Parallel()
	script := `\restrict abc123
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: f(integer); Type: FUNCTION; Schema: app; Owner: o
--

CREATE FUNCTION app.f(integer) RETURNS text
    LANGUAGE plpgsql
    AS $_$BEGIN RETURN 'a;b' || $1 || $x$;$x$; END$_$;
COMMENT ON FUNCTION app.f(integer) IS 'it''s; fine';
CREATE TABLE "semi;colon" (a$b integer DEFAULT 1, "x""y" text DEFAULT E'\';', c text /* a ; /* nested ; */ comment */);
SELECT 1 -- trailing; comment
;

--
-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
--

SELECT pg_catalog.lowrite(0, '\x3b3b');
\unrestrict abc123
`
	sr := newScriptReader(strings.NewReader(script))
	var got []statement
	for {
		st, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		st.Settings = nil
		got = append(got, st)
	}
	want := []statement{
		{SQL: "SET statement_timeout = 0"},
		{SQL: "SELECT pg_catalog.set_config('search_path', '', false)"},
		{SQL: "CREATE FUNCTION app.f(integer) RETURNS text\n    LANGUAGE plpgsql\n    AS $_$BEGIN RETURN 'a;b' || $1 || $x$;$x$; END$_$", Entry: "f(integer); Type: FUNCTION", Type: "FUNCTION", Seq: 1},
		{SQL: "COMMENT ON FUNCTION app.f(integer) IS 'it''s; fine'", Entry: "f(integer); Type: FUNCTION", Type: "FUNCTION", Seq: 1},
		{SQL: `CREATE TABLE "semi;colon" (a$b integer DEFAULT 1, "x""y" text DEFAULT E'\';', c text /* a ; /* nested ; */ comment */)`, Entry: "f(integer); Type: FUNCTION", Type: "FUNCTION", Seq: 1},
		{SQL: "SELECT 1 -- trailing; comment", Entry: "f(integer); Type: FUNCTION", Type: "FUNCTION", Seq: 1},
		{SQL: `SELECT pg_catalog.lowrite(0, '\x3b3b')`, Entry: "BLOBS; Type: BLOBS", Type: "BLOBS", Seq: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got:\n%#v\nwant:\n%#v", got, want)
	}
	if _, err := newScriptReader(strings.NewReader("SELECT 'unterminated;")).Next(); err == nil || err == io.EOF {
		t.Fatalf("an unterminated statement: %v", err)
	}
}

func TestSettingsFollowTheScript(t *testing.T) {
	t.Parallel()
	stmts := withSettings([]statement{
		{SQL: "SET default_tablespace = ''"}, {SQL: "CREATE INDEX a ON t (x)"},
		{SQL: "SET default_tablespace = fast"}, {SQL: "SELECT pg_catalog.set_config('search_path', '', false)"}, {SQL: "CREATE INDEX b ON t (y)"},
	})
	if want := []string{"SET default_tablespace = ''"}; !reflect.DeepEqual(stmts[1].Settings, want) {
		t.Fatalf("a: %q", stmts[1].Settings)
	}
	if want := []string{"SET default_tablespace = fast", "SELECT pg_catalog.set_config('search_path', '', false)"}; !reflect.DeepEqual(stmts[4].Settings, want) {
		t.Fatalf("b: %q", stmts[4].Settings)
	}
}

func TestUnrestrictDropsOnlyTheRestrictLines(t *testing.T) {
	t.Parallel()
	in := "\\restrict Ab12\nSELECT '\\restrict me';\n\\restrict not a key line\n\\unrestrict Ab12\n"
	b, err := io.ReadAll(newUnrestrict(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT '\\restrict me';\n\\restrict not a key line\n"; string(b) != want {
		t.Fatalf("%q", b)
	}
}

func TestTableOfPostData(t *testing.T) {
	t.Parallel()
	for sql, want := range map[string]string{
		"ALTER TABLE ONLY app.orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (id, region)": "app.orders",
		`CREATE UNIQUE INDEX "x y" ON ONLY public."Ui Schemas" USING btree (a)`:                "Ui Schemas",
		`CREATE INDEX i ON public."uiSchemas" USING gin (p)`:                                   "uiSchemas",
		"ALTER INDEX app.a ATTACH PARTITION app.b":                                             "",
	} {
		if got := tableOf(sql); got != want {
			t.Errorf("%s: %q, want %q", sql, got, want)
		}
	}
}

func TestFirstDifferenceIgnoresOnlyVersionComments(t *testing.T) {
	t.Parallel()
	a := "--\n-- Dumped from database version 15.20\n-- Dumped by pg_dump version 15.20\nCREATE TABLE t (a int);\nALTER TABLE t OWNER TO x;\n"
	b := "--\n-- Dumped from database version 15.21\n-- Dumped by pg_dump version 15.21\nCREATE TABLE t (a int);\nALTER TABLE t OWNER TO x;\n"
	if d, err := firstDifference(strings.NewReader(a), strings.NewReader(b)); err != nil || d != "" {
		t.Fatalf("%q %v", d, err)
	}
	c := strings.Replace(b, "OWNER TO x", "OWNER TO y", 1)
	if d, _ := firstDifference(strings.NewReader(a), strings.NewReader(c)); d != `line 5 is "ALTER TABLE t OWNER TO x;" in the archive, "ALTER TABLE t OWNER TO y;" in the restore` {
		t.Fatalf("%q", d)
	}
	if d, _ := firstDifference(strings.NewReader(a), strings.NewReader(b+"CREATE INDEX i ON t (a);\n")); !strings.HasPrefix(d, `line 6 is "" in the archive`) {
		t.Fatalf("a longer restore: %q", d)
	}
}

func TestPgDumpTargetKeepsThePasswordOffTheCommandLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dsn, db, arg, password string }{
		{"postgres://relbot:s3cret@db:5432/crm?sslmode=disable", "", "postgres://relbot@db:5432/crm?sslmode=disable", "s3cret"},
		{"postgres://relbot:s3cret@db/crm", "scratch", "postgres://relbot@db/scratch", "s3cret"},
		{`host=db user=relbot password='it\'s a \\ pass' dbname=crm`, "scratch", "host=db user=relbot dbname=crm dbname='scratch'", `it's a \ pass`},
		{"host=db password=plain dbname=crm", "", "host=db dbname=crm", "plain"},
	} {
		arg, env, err := pgDumpTarget(c.dsn, c.db)
		if err != nil {
			t.Fatal(err)
		}
		if arg != c.arg || env[len(env)-1] != "PGPASSWORD="+c.password {
			t.Errorf("%s: %q %q", c.dsn, arg, env[len(env)-1])
		}
	}
}
