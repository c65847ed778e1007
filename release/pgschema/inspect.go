package pgschema

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is a connection or transaction to read catalogues through.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SessionParams are set on every engine connection, as pg_dump does: an
// empty search_path makes the server qualify every name it prints, and fixed
// output formats make COPY text identical between a dump and its restore.
var SessionParams = map[string]string{
	"search_path":                         "",
	"DateStyle":                           "ISO",
	"IntervalStyle":                       "postgres",
	"extra_float_digits":                  "3",
	"TimeZone":                            "UTC",
	"client_encoding":                     "UTF8",
	"bytea_output":                        "hex",
	"standard_conforming_strings":         "on",
	"synchronize_seqscans":                "off", // a scan must start at the table's first page, or checksums differ
	"check_function_bodies":               "off", // functions may name tables created after them
	"statement_timeout":                   "0",
	"idle_in_transaction_session_timeout": "0",
	"row_security":                        "off",
	"application_name":                    "relbot",
}

// Connect opens a connection with SessionParams.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := ConnConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// ConnConfig parses dsn and adds SessionParams.
func ConnConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("malformed database URL: %w", redactDSNError(err))
	}
	for k, v := range SessionParams {
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

// redactDSNError drops pgx's echo of the connection string, which may hold a
// password.
func redactDSNError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.Contains(msg[:i], "cannot parse") {
		return fmt.Errorf("cannot parse connection string: %s", msg[i+2:])
	}
	return err
}

const userSchema = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'`

func notExtensionMember(class, oid string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend ed
		WHERE ed.classid = '%s'::regclass AND ed.objid = %s AND ed.deptype = 'e')`, class, oid)
}

// Inspect reads the whole schema of the database q is connected to. Run it
// inside the snapshot the data is read in, so that both agree.
func Inspect(ctx context.Context, q Querier) (*Schema, error) {
	s := &Schema{}
	if err := q.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int`).
		Scan(&s.ServerVersion, &s.ServerVersionNum); err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	steps := []struct {
		what string
		fn   func(context.Context, Querier) error
	}{
		{"schemas", s.readNamespaces},
		{"extensions", s.readExtensions},
		{"enums", s.readEnums},
		{"domains", s.readDomains},
		{"composite types", s.readComposites},
		{"functions", s.readFunctions},
		{"tables", s.readTables},
		{"sequences", s.readSequences},
		{"views", s.readViews},
		{"privileges", s.readPrivileges},
		{"unsupported objects", s.readUnsupported},
	}
	for _, st := range steps {
		if err := st.fn(ctx, q); err != nil {
			return nil, fmt.Errorf("inspect %s: %w", st.what, err)
		}
	}
	return s, nil
}

// description is the comment on catalog's object oid (its column sub, or
// 0), or the empty string. It is obj_description and col_description
// written out as a subquery: those are SQL functions, run through the
// function executor for every row, which made them most of the time of a
// catalog's columns read (5.6 ms against 2.3 ms for 470 columns here).
func description(catalog, oid, sub string) string {
	return `coalesce((SELECT ds.description FROM pg_catalog.pg_description ds WHERE ` + describes(catalog, oid, sub) + `), '')`
}

// describes is the condition that pg_description row ds is about
// catalog's object oid (its column sub, or 0).
func describes(catalog, oid, sub string) string {
	return `ds.objoid = ` + oid + ` AND ds.classoid = 'pg_catalog.` + catalog + `'::pg_catalog.regclass AND ds.objsubid = ` + sub
}

func (s *Schema) warnf(format string, args ...any) {
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, args...))
}

func (s *Schema) readNamespaces(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT n.nspname, `+description("pg_namespace", "n.oid", "0")+`
		FROM pg_catalog.pg_namespace n
		WHERE `+userSchema+` AND `+notExtensionMember("pg_namespace", "n.oid")+`
		ORDER BY n.nspname`)
	if err != nil {
		return err
	}
	s.Schemas, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Namespace, error) {
		var ns Namespace
		err := r.Scan(&ns.Name, &ns.Comment)
		// public's own comment is the server's default, not the user's.
		if ns.Name == "public" && ns.Comment == "standard public schema" {
			ns.Comment = ""
		}
		return ns, err
	})
	return err
}

func (s *Schema) readExtensions(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT e.extname, n.nspname, e.extversion
		FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname <> 'plpgsql' ORDER BY e.extname`)
	if err != nil {
		return err
	}
	s.Extensions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Extension, error) {
		var e Extension
		return e, r.Scan(&e.Name, &e.Schema, &e.Version)
	})
	return err
}

func (s *Schema) readEnums(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT n.nspname, t.typname,
			array(SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
			`+description("pg_type", "t.oid", "0")+`
		FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
		WHERE t.typtype = 'e' AND `+userSchema+` AND `+notExtensionMember("pg_type", "t.oid")+`
		ORDER BY n.nspname, t.typname`)
	if err != nil {
		return err
	}
	s.Enums, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Enum, error) {
		var e Enum
		return e, r.Scan(&e.Schema, &e.Name, &e.Labels, &e.Comment)
	})
	return err
}

const collationOf = `(SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
	FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = %s)`

func (s *Schema) readDomains(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT n.nspname, t.typname, pg_catalog.format_type(t.typbasetype, t.typtypmod),
			t.typnotnull, coalesce(t.typdefault, ''),
			CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN `+fmt.Sprintf(collationOf, "t.typcollation")+` ELSE '' END,
			`+description("pg_type", "t.oid", "0")+`,
			array(SELECT c.conname FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid ORDER BY c.conname),
			array(SELECT pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid ORDER BY c.conname)
		FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
		JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
		WHERE t.typtype = 'd' AND `+userSchema+` AND `+notExtensionMember("pg_type", "t.oid")+`
		ORDER BY n.nspname, t.typname`)
	if err != nil {
		return err
	}
	s.Domains, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Domain, error) {
		var d Domain
		var names, defs []string
		if err := r.Scan(&d.Schema, &d.Name, &d.BaseType, &d.NotNull, &d.Default, &d.Collation, &d.Comment, &names, &defs); err != nil {
			return d, err
		}
		for i := range names {
			d.Checks = append(d.Checks, Constraint{Name: names[i], Type: "c", Def: defs[i]})
		}
		return d, nil
	})
	return err
}

func (s *Schema) readComposites(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT n.nspname, t.typname, `+description("pg_type", "t.oid", "0")+`,
			array(SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
			array(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
		FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
		JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
		WHERE t.typtype = 'c' AND c.relkind = 'c' AND `+userSchema+` AND `+notExtensionMember("pg_type", "t.oid")+`
		ORDER BY n.nspname, t.typname`)
	if err != nil {
		return err
	}
	s.Composites, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Composite, error) {
		var c Composite
		var names, types []string
		if err := r.Scan(&c.Schema, &c.Name, &c.Comment, &names, &types); err != nil {
			return c, err
		}
		for i := range names {
			c.Attributes = append(c.Attributes, Column{Name: names[i], Type: types[i]})
		}
		return c, nil
	})
	return err
}

func (s *Schema) readFunctions(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT p.oid, n.nspname, p.proname, p.oid::regprocedure::text, p.prokind,
			CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_catalog.pg_get_functiondef(p.oid) ELSE '' END,
			`+description("pg_proc", "p.oid", "0")+`
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE `+userSchema+` AND `+notExtensionMember("pg_proc", "p.oid")+`
		ORDER BY n.nspname, p.proname, p.oid::regprocedure::text`)
	if err != nil {
		return err
	}
	index := map[uint32]int{}
	var oids []uint32
	for rows.Next() {
		var f Function
		var kind string
		var oid uint32
		if err := rows.Scan(&oid, &f.Schema, &f.Name, &f.Signature, &kind, &f.Def, &f.Comment); err != nil {
			rows.Close()
			return err
		}
		switch kind {
		case "p":
			f.Kind = "PROCEDURE"
		case "a":
			s.warnf("aggregate %s is not restored", f.Signature)
			continue
		default:
			f.Kind = "FUNCTION"
		}
		index[oid] = len(s.Functions)
		oids = append(oids, oid)
		s.Functions = append(s.Functions, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(oids) == 0 {
		return nil
	}
	// What a function's definition needs: relations its SQL-standard body
	// reads, row types of relations in its signature, functions it calls.
	rows, err = q.Query(ctx, `SELECT DISTINCT d.objid, CASE
			WHEN d.refclassid = 'pg_catalog.pg_proc'::regclass THEN d.refobjid::regprocedure::text
			ELSE '"' || replace(rn.nspname, '"', '""') || '"."' || replace(rc.relname, '"', '""') || '"' END
		FROM pg_catalog.pg_depend d
		LEFT JOIN pg_catalog.pg_type ty ON d.refclassid = 'pg_catalog.pg_type'::regclass AND ty.oid = d.refobjid
		LEFT JOIN pg_catalog.pg_class rc ON rc.oid = CASE WHEN d.refclassid = 'pg_catalog.pg_class'::regclass THEN d.refobjid ELSE ty.typrelid END
		LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
		WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = ANY($1) AND d.deptype = 'n' AND d.refobjid <> d.objid
			AND ((d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = ANY($1))
				OR (rc.oid IS NOT NULL AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')))
		ORDER BY 1, 2`, oids)
	if err != nil {
		return err
	}
	var fn uint32
	var dep string
	var needy []uint32
	if _, err := pgx.ForEachRow(rows, []any{&fn, &dep}, func() error {
		f := &s.Functions[index[fn]]
		if len(f.DependsOn) == 0 {
			needy = append(needy, fn)
		}
		f.DependsOn = append(f.DependsOn, dep)
		return nil
	}); err != nil {
		return err
	}
	if len(needy) == 0 {
		return nil
	}
	// Such functions are dropped and made again around the tables they
	// need; what else uses them cannot follow.
	rows, err = q.Query(ctx, `SELECT d.refobjid, pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
		FROM pg_catalog.pg_depend d
		WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = ANY($1) AND d.deptype = 'n'
			AND d.classid <> 'pg_catalog.pg_proc'::regclass
			AND NOT (d.classid = 'pg_catalog.pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r
				JOIN pg_catalog.pg_class v ON v.oid = r.ev_class WHERE r.oid = d.objid AND r.rulename = '_RETURN' AND v.relkind IN ('v', 'm')))
		ORDER BY 1, 2`, needy)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, []any{&fn, &dep}, func() error {
		f := &s.Functions[index[fn]]
		f.UsedBy = append(f.UsedBy, dep)
		return nil
	})
	return err
}

func (s *Schema) readTables(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence = 'u',
			coalesce(c.reloptions, '{}'), `+description("pg_class", "c.oid", "0")+`,
			pg_catalog.pg_relation_size(c.oid)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'f') AND `+userSchema+` AND `+notExtensionMember("pg_class", "c.oid")+`
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return err
	}
	var oids []uint32
	byOID := map[uint32]int{}
	for rows.Next() {
		var oid uint32
		var kind string
		var t Table
		if err := rows.Scan(&oid, &t.Schema, &t.Name, &kind, &t.Unlogged, &t.Options, &t.Comment, &t.Bytes); err != nil {
			rows.Close()
			return err
		}
		switch kind {
		case "p":
			s.warnf("partitioned table %s: its partitions are backed up as plain tables; the partitioning itself is not restored", t.Key())
			continue
		case "f":
			s.warnf("foreign table %s is not backed up", t.Key())
			continue
		}
		byOID[oid] = len(s.Tables)
		oids = append(oids, oid)
		s.Tables = append(s.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(oids) == 0 {
		return nil
	}
	if err := s.readColumns(ctx, q, oids, byOID); err != nil {
		return err
	}
	if err := s.readConstraints(ctx, q, oids, byOID); err != nil {
		return err
	}
	if err := readIndexes(ctx, q, oids, func(rel uint32, ix Index) {
		t := &s.Tables[byOID[rel]]
		t.Indexes = append(t.Indexes, ix)
	}); err != nil {
		return err
	}
	if err := s.readTriggers(ctx, q, oids, byOID); err != nil {
		return err
	}
	if err := s.readInherits(ctx, q, oids, byOID); err != nil {
		return err
	}
	if err := s.readTableDependents(ctx, q, oids, byOID); err != nil {
		return err
	}
	s.Tables = ParentsFirst(s.Tables)
	return nil
}

// readInherits reads each table's parents (partitions are plain tables here).
func (s *Schema) readInherits(ctx context.Context, q Querier, oids []uint32, byOID map[uint32]int) error {
	rows, err := q.Query(ctx, `SELECT i.inhrelid, pn.nspname, pc.relname, c.relispartition
		FROM pg_catalog.pg_inherits i
		JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
		JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
		JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE i.inhrelid = ANY($1)
		ORDER BY i.inhrelid, i.inhseqno`, oids)
	if err != nil {
		return err
	}
	var rel uint32
	var schema, name string
	var partition bool
	_, err = pgx.ForEachRow(rows, []any{&rel, &schema, &name, &partition}, func() error {
		t := &s.Tables[byOID[rel]]
		if partition {
			t.PartitionOf = Ident(schema, name)
		} else {
			t.Inherits = append(t.Inherits, Ident(schema, name))
		}
		return nil
	})
	return err
}

// readTableDependents lists what depends on a table (or its row type)
// beyond what the model makes again with it: its own parts, foreign keys,
// views, child tables and functions (Function.DependsOn).
func (s *Schema) readTableDependents(ctx context.Context, q Querier, oids []uint32, byOID map[uint32]int) error {
	rows, err := q.Query(ctx, `SELECT c.oid, pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_depend d ON d.deptype = 'n' AND ((d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid)
			OR (d.refclassid = 'pg_catalog.pg_type'::regclass AND d.refobjid = c.reltype))
		WHERE c.oid = ANY($1)
			AND NOT (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid)
			AND NOT (d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = c.reltype)
			AND NOT (d.classid = 'pg_catalog.pg_proc'::regclass)
			AND NOT (d.classid = 'pg_catalog.pg_constraint'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
				WHERE co.oid = d.objid AND (co.contype = 'f' OR co.conrelid = c.oid)))
			AND NOT (d.classid = 'pg_catalog.pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r
				JOIN pg_catalog.pg_class v ON v.oid = r.ev_class WHERE r.oid = d.objid AND r.rulename = '_RETURN' AND v.relkind IN ('v', 'm')))
			AND NOT (d.classid = 'pg_catalog.pg_class'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
				WHERE i.inhrelid = d.objid AND i.inhparent = c.oid))
		ORDER BY 1, 2`, oids)
	if err != nil {
		return err
	}
	var rel uint32
	var what string
	if _, err = pgx.ForEachRow(rows, []any{&rel, &what}, func() error {
		t := &s.Tables[byOID[rel]]
		t.Dependents = append(t.Dependents, what)
		return nil
	}); err != nil {
		return err
	}
	// What uses a sequence the table owns (another table's default):
	// dropping the table drops the sequence.
	rows, err = q.Query(ctx, `SELECT c.oid, pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' (through sequence ' || sq.relname || ')'
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_depend own ON own.refclassid = 'pg_catalog.pg_class'::regclass AND own.refobjid = c.oid
			AND own.classid = 'pg_catalog.pg_class'::regclass AND own.deptype IN ('a', 'i')
		JOIN pg_catalog.pg_class sq ON sq.oid = own.objid AND sq.relkind = 'S'
		JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = sq.oid AND d.deptype = 'n'
		WHERE c.oid = ANY($1)
			AND d.classid NOT IN ('pg_catalog.pg_proc'::regclass, 'pg_catalog.pg_rewrite'::regclass)
			AND NOT (d.classid = 'pg_catalog.pg_attrdef'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef ad WHERE ad.oid = d.objid
				AND ad.adrelid IN (WITH RECURSIVE t(r) AS (SELECT c.oid UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent = t.r) SELECT r FROM t)))
		ORDER BY 1, 2`, oids)
	if err != nil {
		return err
	}
	if _, err = pgx.ForEachRow(rows, []any{&rel, &what}, func() error {
		t := &s.Tables[byOID[rel]]
		t.Dependents = append(t.Dependents, what)
		return nil
	}); err != nil {
		return err
	}
	rows, err = q.Query(ctx, `SELECT polrelid, 'policy ' || polname FROM pg_catalog.pg_policy WHERE polrelid = ANY($1)
		UNION ALL SELECT ev_class, 'rule ' || rulename FROM pg_catalog.pg_rewrite WHERE ev_class = ANY($1) AND rulename <> '_RETURN'
		UNION ALL SELECT oid, 'row-level security' FROM pg_catalog.pg_class WHERE oid = ANY($1) AND relrowsecurity
		UNION ALL SELECT stxrelid, 'statistics ' || stxname FROM pg_catalog.pg_statistic_ext WHERE stxrelid = ANY($1)
		UNION ALL SELECT pr.prrelid, 'membership of publication ' || p.pubname FROM pg_catalog.pg_publication_rel pr
			JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = ANY($1)
		UNION ALL SELECT attrelid, 'privileges on column ' || attname FROM pg_catalog.pg_attribute
			WHERE attrelid = ANY($1) AND attacl IS NOT NULL AND NOT attisdropped
		ORDER BY 1, 2`, oids)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, []any{&rel, &what}, func() error {
		t := &s.Tables[byOID[rel]]
		t.Attached = append(t.Attached, what)
		return nil
	})
	return err
}

// ParentsFirst orders tables so that every table comes after the parents
// it inherits from (CREATE TABLE ... INHERITS needs them), keeping the
// given order otherwise.
func ParentsFirst(tables []Table) []Table {
	return DependencyOrder(tables, func(t Table) string { return t.QualifiedName() }, func(t Table) []string { return t.Inherits })
}

// DependencyOrder sorts items so that each comes after the items of the
// list it depends on (deps names them by key), keeping the given order
// otherwise; dependencies outside the list, and cycles, are passed over.
func DependencyOrder[T any](items []T, key func(T) string, deps func(T) []string) []T {
	index := make(map[string]int, len(items))
	for i := range items {
		index[key(items[i])] = i
	}
	out := make([]T, 0, len(items))
	visited := make([]bool, len(items))
	var visit func(int)
	visit = func(i int) {
		if visited[i] {
			return
		}
		visited[i] = true
		for _, d := range deps(items[i]) {
			if j, ok := index[d]; ok {
				visit(j)
			}
		}
		out = append(out, items[i])
	}
	for i := range items {
		visit(i)
	}
	return out
}

func (s *Schema) readColumns(ctx context.Context, q Querier, oids []uint32, byOID map[uint32]int) error {
	rows, err := q.Query(ctx, `SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
			coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text, a.attgenerated::text,
			CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN `+fmt.Sprintf(collationOf, "a.attcollation")+` ELSE '' END,
			`+description("pg_class", "a.attrelid", "a.attnum")+`,
			NOT a.attislocal AND NOT (SELECT r.relispartition FROM pg_catalog.pg_class r WHERE r.oid = a.attrelid)
		FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var rel uint32
		var c Column
		var def string
		if err := rows.Scan(&rel, &c.Name, &c.Type, &c.NotNull, &def, &c.Identity, &c.Generated, &c.Collation, &c.Comment, &c.Inherited); err != nil {
			rows.Close()
			return err
		}
		if c.Generated == "s" {
			c.Generated = def
		} else {
			c.Generated = ""
			c.Default = def
		}
		t := &s.Tables[byOID[rel]]
		t.Columns = append(t.Columns, c)
	}
	return rows.Err()
}

func (s *Schema) readConstraints(ctx context.Context, q Querier, oids []uint32, byOID map[uint32]int) error {
	rows, err := q.Query(ctx, `SELECT co.conrelid, co.conname, co.contype::text, pg_catalog.pg_get_constraintdef(co.oid),
			array(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY k(num, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.num ORDER BY k.ord),
			coalesce(rn.nspname, ''), coalesce(rc.relname, ''),
			`+description("pg_constraint", "co.oid", "0")+`,
			co.conislocal, (SELECT r.relispartition FROM pg_catalog.pg_class r WHERE r.oid = co.conrelid)
		FROM pg_catalog.pg_constraint co
		LEFT JOIN pg_catalog.pg_class rc ON rc.oid = co.confrelid
		LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
		WHERE co.conrelid = ANY($1) AND co.contype IN ('p', 'u', 'c', 'f', 'x')
		ORDER BY co.conrelid, co.conname`, oids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var rel uint32
		var c Constraint
		var refSchema, refTable string
		var local, partition bool
		if err := rows.Scan(&rel, &c.Name, &c.Type, &c.Def, &c.Columns, &refSchema, &refTable, &c.Comment, &local, &partition); err != nil {
			rows.Close()
			return err
		}
		t := &s.Tables[byOID[rel]]
		if !local && (partition || c.Type != "c") {
			// A partition's copy of its partitioned table's constraint.
			s.warnf("inherited constraint %s on %s is not restored", c.Name, t.Key())
			continue
		}
		c.Inherited = !local
		if refTable != "" {
			c.References = Ident(refSchema, refTable)
		}
		if c.Type == "p" {
			t.PrimaryKey = c.Columns
		}
		t.Constraints = append(t.Constraints, c)
	}
	return rows.Err()
}

func readIndexes(ctx context.Context, q Querier, oids []uint32, add func(uint32, Index)) error {
	rows, err := q.Query(ctx, `SELECT i.indrelid, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
			`+description("pg_class", "ic.oid", "0")+`, i.indisvalid
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = ANY($1) AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
			WHERE co.conindid = i.indexrelid AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))
		ORDER BY i.indrelid, ic.relname`, oids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var rel uint32
		var ix Index
		var valid bool
		if err := rows.Scan(&rel, &ix.Name, &ix.Def, &ix.Comment, &valid); err != nil {
			rows.Close()
			return err
		}
		if !valid {
			continue // a failed CREATE INDEX CONCURRENTLY leaves one behind; pg_dump skips it too
		}
		add(rel, ix)
	}
	return rows.Err()
}

func (s *Schema) readTriggers(ctx context.Context, q Querier, oids []uint32, byOID map[uint32]int) error {
	rows, err := q.Query(ctx, `SELECT tg.tgrelid, tg.tgname, pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled::text,
			`+description("pg_trigger", "tg.oid", "0")+`
		FROM pg_catalog.pg_trigger tg
		WHERE tg.tgrelid = ANY($1) AND NOT tg.tgisinternal
		ORDER BY tg.tgrelid, tg.tgname`, oids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var rel uint32
		var tg Trigger
		if err := rows.Scan(&rel, &tg.Name, &tg.Def, &tg.Enabled, &tg.Comment); err != nil {
			rows.Close()
			return err
		}
		t := &s.Tables[byOID[rel]]
		t.Triggers = append(t.Triggers, tg)
	}
	return rows.Err()
}

// sequenceBatch is how many sequences one query reads the values of.
const sequenceBatch = 500

// readSequenceValues reads every sequence's last_value and is_called, a
// query per sequenceBatch of them (a UNION ALL): a query per sequence was
// two round trips each, most of Inspect's time on a catalog of hundreds
// of tables, each with its sequence.
func (s *Schema) readSequenceValues(ctx context.Context, q Querier) error {
	for start := 0; start < len(s.Sequences); start += sequenceBatch {
		batch := s.Sequences[start:min(start+sequenceBatch, len(s.Sequences))]
		var b strings.Builder
		for i, sq := range batch {
			if i > 0 {
				b.WriteString("\nUNION ALL ")
			}
			fmt.Fprintf(&b, "SELECT %d, last_value, is_called FROM %s", i, Ident(sq.Schema, sq.Name))
		}
		rows, err := q.Query(ctx, b.String())
		if err != nil {
			return fmt.Errorf("sequences' values: %w", err)
		}
		read := 0
		for rows.Next() {
			var i int
			var last int64
			var called bool
			if err := rows.Scan(&i, &last, &called); err != nil {
				rows.Close()
				return fmt.Errorf("sequences' values: %w", err)
			}
			if i < 0 || i >= len(batch) {
				rows.Close()
				return fmt.Errorf("sequences' values: row %d of %d", i, len(batch))
			}
			batch[i].LastValue, batch[i].IsCalled = last, called
			read++
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sequences' values: %w", err)
		}
		if read != len(batch) {
			return fmt.Errorf("sequences' values: %d rows for %d sequences", read, len(batch))
		}
	}
	return nil
}

func (s *Schema) readSequences(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname, pg_catalog.format_type(sq.seqtypid, NULL),
			sq.seqstart, sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqcache, sq.seqcycle,
			coalesce(tn.nspname, ''), coalesce(tc.relname, ''), coalesce(ta.attname, ''), coalesce(d.deptype = 'i', false),
			`+description("pg_class", "c.oid", "0")+`
		FROM pg_catalog.pg_sequence sq
		JOIN pg_catalog.pg_class c ON c.oid = sq.seqrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
			AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
		LEFT JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
		LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
		LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
		WHERE `+userSchema+` AND `+notExtensionMember("pg_class", "c.oid")+`
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var sq Sequence
		var ownerSchema, ownerTable string
		if err := rows.Scan(&sq.Schema, &sq.Name, &sq.Type, &sq.Start, &sq.Increment, &sq.Min, &sq.Max, &sq.Cache, &sq.Cycle,
			&ownerSchema, &ownerTable, &sq.OwnerColumn, &sq.Identity, &sq.Comment); err != nil {
			rows.Close()
			return err
		}
		if ownerTable != "" {
			sq.OwnerTable = Ident(ownerSchema, ownerTable)
		}
		s.Sequences = append(s.Sequences, sq)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := s.readSequenceValues(ctx, q); err != nil {
		return err
	}
	for i := range s.Sequences {
		sq := &s.Sequences[i]
		if sq.Identity {
			for ti := range s.Tables {
				t := &s.Tables[ti]
				if t.QualifiedName() == sq.OwnerTable {
					if c := t.Column(sq.OwnerColumn); c != nil {
						c.IdentitySequence = Ident(sq.Schema, sq.Name)
					}
				}
			}
		}
	}
	return nil
}

func (s *Schema) readViews(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid), c.relkind = 'm',
			coalesce(c.reloptions, '{}'), `+description("pg_class", "c.oid", "0")+`,
			array(SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_description ds ON `+describes("pg_class", "c.oid", "a.attnum")+`
				WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum),
			array(SELECT ds.description FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_description ds ON `+describes("pg_class", "c.oid", "a.attnum")+`
				WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('v', 'm') AND `+userSchema+` AND `+notExtensionMember("pg_class", "c.oid")+`
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return err
	}
	var views []View
	var oids []uint32
	for rows.Next() {
		var oid uint32
		var v View
		var names, comments []string
		if err := rows.Scan(&oid, &v.Schema, &v.Name, &v.Def, &v.Materialized, &v.Options, &v.Comment, &names, &comments); err != nil {
			rows.Close()
			return err
		}
		for i := range names {
			if v.ColumnComments == nil {
				v.ColumnComments = map[string]string{}
			}
			v.ColumnComments[names[i]] = comments[i]
		}
		views = append(views, v)
		oids = append(oids, oid)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(views) == 0 {
		return nil
	}
	index := map[uint32]int{}
	for i, oid := range oids {
		index[oid] = i
	}
	if err := readIndexes(ctx, q, oids, func(rel uint32, ix Index) {
		v := &views[index[rel]]
		v.Indexes = append(v.Indexes, ix)
	}); err != nil {
		return err
	}
	deps := map[int][]int{}
	drows, err := q.Query(ctx, `SELECT DISTINCT r.ev_class, d.refobjid
		FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
			AND d.refobjid <> r.ev_class AND r.ev_class = ANY($1)`, oids)
	if err != nil {
		return err
	}
	for drows.Next() {
		var view, ref uint32
		if err := drows.Scan(&view, &ref); err != nil {
			drows.Close()
			return err
		}
		if j, ok := index[ref]; ok {
			deps[index[view]] = append(deps[index[view]], j)
		}
	}
	if err := drows.Err(); err != nil {
		return err
	}
	for i, js := range deps {
		for _, j := range js {
			views[i].DependsOn = append(views[i].DependsOn, Ident(views[j].Schema, views[j].Name))
		}
		sort.Strings(views[i].DependsOn)
	}
	// Functions a view calls, so that those made after tables (those with
	// DependsOn) come before the view.
	frows, err := q.Query(ctx, `SELECT DISTINCT r.ev_class, d.refobjid::regprocedure::text
		FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
		JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_proc'::regclass AND r.ev_class = ANY($1)
			AND `+userSchema+` ORDER BY 1, 2`, oids)
	if err != nil {
		return err
	}
	var view uint32
	var fn string
	if _, err := pgx.ForEachRow(frows, []any{&view, &fn}, func() error {
		v := &views[index[view]]
		v.DependsOn = append(v.DependsOn, fn)
		return nil
	}); err != nil {
		return err
	}
	// Depth-first topological order; names sort the rest so output is stable.
	state := make([]int, len(views)) // 0 new, 1 visiting, 2 done
	var visit func(int)
	visit = func(i int) {
		if state[i] != 0 {
			return
		}
		state[i] = 1
		sort.Ints(deps[i])
		for _, j := range deps[i] {
			visit(j)
		}
		state[i] = 2
		s.Views = append(s.Views, views[i])
	}
	for i := range views {
		visit(i)
	}
	return nil
}

// ReadPrivileges reads the owner and explicit grants of every relation.
func ReadPrivileges(ctx context.Context, q Querier) ([]Privileges, error) {
	var s Schema
	if err := s.readPrivileges(ctx, q); err != nil {
		return nil, err
	}
	return s.Privileges, nil
}

// ReadRoleAccess reads the roles of the server q is on, and which of them the
// current role may give objects to: all for a superuser; otherwise roles
// whose privileges it has (USAGE: so that it can still read and alter what
// it gave away) and that may create in the object's schema. Everything is
// read at once: a failing query inside a restore's transaction would abort it.
func ReadRoleAccess(ctx context.Context, q Querier) (RoleAccess, error) {
	var current string
	var super bool
	if err := q.QueryRow(ctx, `SELECT rolname, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&current, &super); err != nil {
		return RoleAccess{}, err
	}
	exists := map[string]bool{}
	rows, err := q.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles`)
	if err != nil {
		return RoleAccess{}, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return RoleAccess{}, err
	}
	for _, n := range names {
		exists[n] = true
	}
	type roleSchema struct{ role, schema string }
	mayOwn := map[roleSchema]bool{}
	if !super {
		rows, err := q.Query(ctx, `SELECT r.rolname, n.nspname FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_namespace n
			WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE') AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE')
				AND `+userSchema)
		if err != nil {
			return RoleAccess{}, err
		}
		var role, schema string
		if _, err := pgx.ForEachRow(rows, []any{&role, &schema}, func() error {
			mayOwn[roleSchema{role, schema}] = true
			return nil
		}); err != nil {
			return RoleAccess{}, err
		}
	}
	return RoleAccess{
		Current: current,
		Exists:  func(role string) bool { return exists[role] },
		CanOwn:  func(role, schema string) bool { return super || mayOwn[roleSchema{role, schema}] },
	}, nil
}

// readPrivileges reads the owner and explicit grants of every relation.
func (s *Schema) readPrivileges(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT c.relkind::text, n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner),
			EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
				AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')),
			CASE WHEN c.relacl IS NULL THEN NULL ELSE coalesce((SELECT json_agg(json_build_object(
				'grantee', CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
				'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.grantee, a.privilege_type)
				FROM pg_catalog.aclexplode(c.relacl) a), '[]') END
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'v', 'm', 'S') AND `+userSchema+` AND `+notExtensionMember("pg_class", "c.oid")+`
		UNION ALL
		SELECT CASE p.prokind WHEN 'p' THEN 'P' ELSE 'F' END, n.nspname, p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner), false,
			CASE WHEN p.proacl IS NULL THEN NULL ELSE coalesce((SELECT json_agg(json_build_object(
				'grantee', CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
				'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.grantee, a.privilege_type)
				FROM pg_catalog.aclexplode(p.proacl) a), '[]') END
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE p.prokind IN ('f', 'p', 'w') AND `+userSchema+` AND `+notExtensionMember("pg_proc", "p.oid")+`
		ORDER BY 2, 3`)
	if err != nil {
		return err
	}
	defer rows.Close()
	// Partitioned and foreign tables are not restored (readTables warns);
	// partitions are, as plain tables, and keep their owner and grants.
	// Functions and procedures are named by their signature.
	kinds := map[string]string{"r": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "F": "FUNCTION", "P": "PROCEDURE"}
	for rows.Next() {
		var kind string
		var grants []byte
		p := Privileges{}
		if err := rows.Scan(&kind, &p.Schema, &p.Name, &p.Owner, &p.Linked, &grants); err != nil {
			return err
		}
		p.Kind = kinds[kind]
		if grants != nil {
			p.Grants = []Grant{}
			if err := json.Unmarshal(grants, &p.Grants); err != nil {
				return fmt.Errorf("grants on %s: %w", Key(p.Schema, p.Name), err)
			}
		}
		s.Privileges = append(s.Privileges, p)
	}
	return rows.Err()
}

// readUnsupported lists what exists in the database but is not restored, so
// that the manifest says so instead of dropping it silently.
func (s *Schema) readUnsupported(ctx context.Context, q Querier) error {
	checks := []struct{ sql, msg string }{
		{`SELECT n.nspname || '.' || c.relname || ' (' || p.polname || ')' FROM pg_catalog.pg_policy p
			JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY 1`,
			"row-level security policy %s is not restored"},
		{`SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relrowsecurity AND ` + userSchema + ` ORDER BY 1`,
			"row-level security on %s is not enabled after a restore"},
		{`SELECT n.nspname || '.' || c.relname || ' (' || r.rulename || ')' FROM pg_catalog.pg_rewrite r
			JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE r.rulename <> '_RETURN' AND ` + userSchema + ` ORDER BY 1`,
			"rule %s is not restored"},
		{`SELECT DISTINCT pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace n
			WHERE n.nspowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
				AND n.nspname <> 'public' AND ` + userSchema + ` ORDER BY 1`,
			"schemas owned by role %s will be owned by the restoring role"},
		{`SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.nspacl IS NOT NULL AND n.nspname <> 'public' AND ` + userSchema + ` ORDER BY 1`,
			"privileges granted on schema %s are not restored"},
		{`SELECT DISTINCT n.nspname || '.' || c.relname FROM pg_catalog.pg_attribute a
			JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE a.attacl IS NOT NULL AND NOT a.attisdropped AND ` + userSchema + ` ORDER BY 1`,
			"column privileges granted on %s are not restored"},
		{`SELECT count(*)::text || ' large objects' FROM pg_catalog.pg_largeobject_metadata HAVING count(*) > 0`,
			"%s are not backed up"},
		{`SELECT evtname FROM pg_catalog.pg_event_trigger ORDER BY 1`,
			"event trigger %s is not restored"},
		{`SELECT pubname FROM pg_catalog.pg_publication ORDER BY 1`,
			"publication %s is not restored"},
	}
	for _, c := range checks {
		rows, err := q.Query(ctx, c.sql)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			s.warnf(c.msg, n)
		}
	}
	return nil
}
