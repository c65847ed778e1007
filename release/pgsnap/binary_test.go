package pgsnap

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// Every built-in type relbot copies in binary, with the values text and
// binary treat differently (NULL and empty, escapes, NaN and infinities,
// negative zero, arrays with NULLs and commas, TOASTed bytea); and tables
// whose types stay in text: an enum, a domain, a composite.
const binarySQL = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE every_type (
    id bigserial PRIMARY KEY, b bool, i2 smallint, i4 integer, r real, d double precision,
    n numeric(12,3), nn numeric, t text, v varchar(20), c char(5), nm name, j json, jb jsonb,
    u uuid, dt date, tm time, tmz timetz, ts timestamp(3), tsz timestamptz, iv interval,
    ip inet, cd cidr, mac macaddr, raw bytea, ta text[], ia integer[], ja jsonb[]);
ALTER TABLE every_type ALTER COLUMN raw SET STORAGE EXTERNAL;
INSERT INTO every_type (b, i2, i4, r, d, n, nn, t, v, c, nm, j, jb, u, dt, tm, tmz, ts, tsz, iv, ip, cd, mac, raw, ta, ia, ja)
SELECT i % 2 = 0, (i % 30000)::smallint, i, i / 7.0, -i / 3.0, i * 1.001, i::numeric / 13, 'row ' || i || E'\t\\ \n end',
       'v' || i, 'c' || (i % 100), 'n' || i, ('{"i": ' || i || '}')::json, jsonb_build_object('i', i, 'a', jsonb_build_array(i, null, 'x')),
       md5(i::text)::uuid, date '2020-01-01' + i, time '00:00' + i * interval '1 second', timetz '12:00+02', timestamp '2020-01-01' + i * interval '1 ms',
       timestamptz '2020-01-01 00:00+00' + i * interval '1 minute', i * interval '1 hour', ('10.0.' || (i % 256) || '.1')::inet, '10.1.0.0/16',
       '08:00:2b:01:02:03', decode(md5(i::text), 'hex'), ARRAY['a,b', NULL, 'i' || i], ARRAY[i, NULL], ARRAY[jsonb_build_object('i', i)]
FROM generate_series(1, 3000) i;
INSERT INTO every_type (t, v, c, raw, ta, nn, d, r, tsz, dt, jb) VALUES
    ('', '', '', '', '{}', 'NaN', 'Infinity', '-0', 'infinity', '-infinity', '{}'),
    (E'\u017c\u00f3\u0142w \U0001F422', NULL, NULL, '\x00ff5c0a0d', '{""}', '-0.000', '-Infinity', 'NaN', '-infinity', 'infinity', 'null'),
    (NULL, NULL, NULL, (SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 20000) g), NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE with_enum (id int, m mood);
INSERT INTO with_enum SELECT i, CASE WHEN i % 2 = 0 THEN 'sad'::mood ELSE 'happy' END FROM generate_series(1, 50) i;
CREATE TABLE with_domain (id int, p posint);
INSERT INTO with_domain SELECT i, i FROM generate_series(1, 50) i;
CREATE TABLE with_composite (id int, p pair);
INSERT INTO with_composite SELECT i, ROW(i, 'p' || i)::pair FROM generate_series(1, 50) i;
CREATE TABLE with_generated (id int, twice int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO with_generated SELECT i FROM generate_series(1, 50) i;
`

// Tables of built-in types are stored in binary, others in text; both
// restore exactly (compared in text, independently of how they were
// stored, and whole tables split into parts); verify finds nothing; and a
// target of another encoding is refused before anything is changed.
func TestBinaryTablesRestoreExactly(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, SplitBytes: testSplitBytes}
	src := newEnv(t, "binsrc", binarySQL, nil)
	path, _ := backup(t, e, src)
	_, meta, err := e.openArchive(openArchiveFile(t, path), "crm")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Encoding != "UTF8" {
		t.Errorf("encoding %q recorded", meta.Encoding)
	}
	formats := map[string]string{}
	for _, ti := range meta.Tables {
		formats[ti.Key] = ti.Format
		if ti.Key == "every_type" && len(ti.Parts) < 2 {
			t.Errorf("every_type is not split (%d parts): the binary parts are not tested", len(ti.Parts))
		}
	}
	for key, want := range map[string]string{"every_type": formatBinary, "with_generated": formatBinary, "with_enum": "", "with_domain": "", "with_composite": ""} {
		if formats[key] != want {
			t.Errorf("table %s stored as %q, want %q", key, formats[key], want)
		}
	}
	wantSchema, wantRows := schemaDump(t, src.Database), rowSums(t, src.Database)

	dst := newEnv(t, "bindst", "", nil)
	if _, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, "tables", wantRows, rowSums(t, dst.Database))
	if got := schemaDump(t, dst.Database); got != wantSchema {
		t.Error("the restored schema differs from the source's")
	}
	report, err := e.Verify(ctxT(t), openArchiveFile(t, path), "crm", src)
	if err != nil || len(report.Problems) > 0 {
		t.Fatalf("verify: %v %v", err, report)
	}

	name := testenv.UniqueName("t_binascii")
	testenv.Exec(t, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
	t.Cleanup(func() { testenv.DropDatabase(t, name) })
	other := &release.Environment{Name: "ascii", Database: testenv.DSNFor(name)}
	_, err = e.Restore(ctxT(t), openArchiveFile(t, path), "crm", other, release.RestoreOptions{})
	var re *release.Error
	if !errors.As(err, &re) || re.Code != release.CodeIncompatible || !strings.Contains(err.Error(), "encoded UTF8") || !strings.Contains(err.Error(), "SQL_ASCII") {
		t.Fatalf("restore into SQL_ASCII: %v", err)
	}
	var n int
	if err := testenv.Connect(t, other.Database).QueryRow(context.Background(), "SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused restore left %d relations (%v)", n, err)
	}
}
