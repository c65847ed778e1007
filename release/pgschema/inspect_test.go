package pgschema

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
)

// Every sequence's value and is_called are read, across more than one
// batch of the query that reads them, whatever its name and state: never
// used, advanced, set back with is_called false, owned by a column, an
// identity.
func TestSequenceValuesAcrossBatches(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "pgschema")
	conn := testenv.Connect(t, dsn)
	ctx := context.Background()
	var ddl strings.Builder
	ddl.WriteString(`CREATE SCHEMA "Other ""Schema""";
		CREATE TABLE "Other ""Schema""".owner (id serial PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY (START 7));
		CREATE SEQUENCE "Other ""Schema""".";" START 3;
		SELECT setval('"Other ""Schema""".owner_id_seq', 42);
		SELECT setval('"Other ""Schema""".";"', 11, false);
		INSERT INTO "Other ""Schema""".owner DEFAULT VALUES;
	`)
	for i := range sequenceBatch + 1 {
		fmt.Fprintf(&ddl, "CREATE SEQUENCE public.s%d START %d;\n", i, i+1)
		switch i % 3 {
		case 1:
			fmt.Fprintf(&ddl, "SELECT setval('public.s%d', %d);\n", i, 10*i+1)
		case 2:
			fmt.Fprintf(&ddl, "SELECT setval('public.s%d', %d, false);\n", i, 10*i+2)
		}
	}
	if _, err := conn.Exec(ctx, ddl.String()); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sequences) != sequenceBatch+4 {
		t.Fatalf("%d sequences, want %d", len(s.Sequences), sequenceBatch+4)
	}
	for _, sq := range s.Sequences {
		var last int64
		var called bool
		if err := conn.QueryRow(ctx, `SELECT last_value, is_called FROM `+Ident(sq.Schema, sq.Name)).Scan(&last, &called); err != nil {
			t.Fatal(err)
		}
		if sq.LastValue != last || sq.IsCalled != called {
			t.Errorf("%s: last_value %d, is_called %v; the sequence has %d, %v", Key(sq.Schema, sq.Name), sq.LastValue, sq.IsCalled, last, called)
		}
	}
	want := map[string]string{`Other "Schema".owner_id_seq`: "43 true", `Other "Schema".;`: "11 false",
		`Other "Schema".owner_n_seq`: "7 true", "s0": "1 false", "s1": "11 true", "s2": "22 false"}
	for _, sq := range s.Sequences {
		if w, ok := want[Key(sq.Schema, sq.Name)]; ok {
			if got := fmt.Sprintf("%d %v", sq.LastValue, sq.IsCalled); got != w {
				t.Errorf("%s: %s, want %s", Key(sq.Schema, sq.Name), got, w)
			}
			delete(want, Key(sq.Schema, sq.Name))
		}
	}
	if len(want) > 0 {
		t.Errorf("not inspected: %v", want)
	}
}

// Comments are read on every kind of object that carries one, and only
// its own: a column's comment is not its table's, nor another column's.
func TestCommentsAreRead(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "pgschema")
	conn := testenv.Connect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `
		CREATE SCHEMA app; COMMENT ON SCHEMA app IS 'the app';
		CREATE TYPE app.mood AS ENUM ('ok'); COMMENT ON TYPE app.mood IS 'an enum';
		CREATE DOMAIN app.pos AS int CHECK (VALUE > 0); COMMENT ON DOMAIN app.pos IS 'a domain';
		CREATE TYPE app.pair AS (a int, b int); COMMENT ON TYPE app.pair IS 'a composite';
		CREATE FUNCTION app.one() RETURNS int LANGUAGE sql AS 'SELECT 1'; COMMENT ON FUNCTION app.one() IS 'a function';
		CREATE TABLE app.t (id int PRIMARY KEY, a text, b text, CONSTRAINT b_set CHECK (b <> ''));
		COMMENT ON TABLE app.t IS 'a table'; COMMENT ON COLUMN app.t.b IS 'column b';
		COMMENT ON CONSTRAINT b_set ON app.t IS 'a check';
		CREATE INDEX t_a ON app.t (a); COMMENT ON INDEX app.t_a IS 'an index';
		CREATE FUNCTION app.trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
		CREATE TRIGGER t_trg BEFORE INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION app.trg();
		COMMENT ON TRIGGER t_trg ON app.t IS 'a trigger';
		CREATE SEQUENCE app.q; COMMENT ON SEQUENCE app.q IS 'a sequence';
		CREATE VIEW app.v AS SELECT id, a, b FROM app.t; COMMENT ON VIEW app.v IS 'a view';
		COMMENT ON COLUMN app.v.b IS 'view column b'; COMMENT ON COLUMN app.v.id IS 'view column id';
	`); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range s.Schemas {
		got["schema "+n.Name] = n.Comment
	}
	for _, e := range s.Enums {
		got["enum "+e.Name] = e.Comment
	}
	for _, d := range s.Domains {
		got["domain "+d.Name] = d.Comment
	}
	for _, c := range s.Composites {
		got["composite "+c.Name] = c.Comment
	}
	for _, f := range s.Functions {
		got["function "+f.Name] = f.Comment
	}
	for _, tb := range s.Tables {
		got["table "+tb.Name] = tb.Comment
		for _, c := range tb.Columns {
			got["column "+c.Name] = c.Comment
		}
		for _, c := range tb.Constraints {
			got["constraint "+c.Name] = c.Comment
		}
		for _, i := range tb.Indexes {
			got["index "+i.Name] = i.Comment
		}
		for _, tg := range tb.Triggers {
			got["trigger "+tg.Name] = tg.Comment
		}
	}
	for _, sq := range s.Sequences {
		got["sequence "+sq.Name] = sq.Comment
	}
	for _, v := range s.Views {
		got["view "+v.Name] = v.Comment
		for c, comment := range v.ColumnComments {
			got["view column "+c] = comment
		}
	}
	want := map[string]string{
		"schema app": "the app", "enum mood": "an enum", "domain pos": "a domain", "composite pair": "a composite",
		"function one": "a function", "function trg": "", "table t": "a table", "column id": "", "column a": "", "column b": "column b",
		"constraint b_set": "a check", "constraint t_pkey": "", "index t_a": "an index", "trigger t_trg": "a trigger",
		"sequence q": "a sequence", "view v": "a view", "view column b": "view column b", "view column id": "view column id",
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: comment %q (read: %v), want %q", k, g, ok, w)
		}
	}
	if _, ok := got["view column a"]; ok {
		t.Error("a view column without a comment has one")
	}
}
