package pgsnap

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// Tables whose every column is of a built-in type are copied in COPY's
// binary format: the server neither writes nor parses text for them (a
// bytea's hex doubles its bytes, and scanning COPY text for escapes is the
// largest single cost of a restore). Their rows' checksum is over the
// binary tuples. Other tables (domains, enums, composite, extension
// types, whose binary form may name type OIDs of the source database or
// be missing) stay in text.

// formatBinary is TableInfo.Format for a table stored in binary.
const formatBinary = "binary"

// binaryEncoding is the database encoding binary tables need: binary text
// is the server's bytes, unconverted, so source and target must agree.
const binaryEncoding = "UTF8"

// binarySafeTypes are built-in types whose binary form is the same in
// every database and PostgreSQL version relbot restores into; arrays of
// them too (their binary form names the element type by its built-in OID).
var binarySafeTypes = []string{
	"bytea", "boolean", "smallint", "integer", "bigint", "real", "double precision", "numeric",
	"text", "character varying", "character", "name", "json", "jsonb", "uuid",
	"date", "time without time zone", "time with time zone", "timestamp without time zone",
	"timestamp with time zone", "interval", "inet", "cidr", "macaddr",
}

// binaryTables is which of tables (by key) a backup copies in binary:
// those whose every copied column is of a binarySafeTypes type, when the
// database's encoding is binaryEncoding; and that encoding.
func binaryTables(ctx context.Context, tx pgx.Tx, tables []*pgschema.Table) (map[string]bool, string, error) {
	var encoding string
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.current_setting('server_encoding')").Scan(&encoding); err != nil {
		return nil, "", err
	}
	binary := map[string]bool{}
	if encoding != binaryEncoding {
		return binary, encoding, nil
	}
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r'
			AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
					AND NOT (ty.oid = ANY ($1::pg_catalog.regtype[]) OR (ty.typcategory = 'A' AND ty.typelem = ANY ($1::pg_catalog.regtype[]))))`,
		binarySafeTypes)
	if err != nil {
		return nil, "", fmt.Errorf("list the tables to copy in binary: %w", err)
	}
	safe := map[string]bool{}
	var schema, name string
	if _, err := pgx.ForEachRow(rows, []any{&schema, &name}, func() error {
		safe[(&pgschema.Table{Schema: schema, Name: name}).Key()] = true
		return nil
	}); err != nil {
		return nil, "", fmt.Errorf("list the tables to copy in binary: %w", err)
	}
	for _, t := range tables {
		if safe[t.Key()] {
			binary[t.Key()] = true
		}
	}
	return binary, encoding, nil
}

// rowChecksum is the checksum for rows read in a table's stored format.
func rowChecksum(binary bool) *appdb.RowChecksum {
	if binary {
		return appdb.NewBinaryRowChecksum()
	}
	return &appdb.RowChecksum{}
}

// copyOptions is a COPY statement's option list ("" when none).
func copyOptions(binary, freeze bool) string {
	var opts []string
	if binary {
		opts = append(opts, "FORMAT binary")
	}
	if freeze {
		opts = append(opts, "FREEZE")
	}
	if len(opts) == 0 {
		return ""
	}
	return " (" + strings.Join(opts, ", ") + ")"
}

// checkEncoding refuses a target (what names it) whose encoding differs
// from the source's when the archive holds binary tables, before anything
// is changed.
func checkEncoding(ctx context.Context, q pgschema.Querier, meta *Meta, what string) error {
	hasBinary := false
	for _, ti := range meta.Tables {
		hasBinary = hasBinary || ti.Format == formatBinary
	}
	if !hasBinary {
		return nil
	}
	var encoding string
	if err := q.QueryRow(ctx, "SELECT pg_catalog.current_setting('server_encoding')").Scan(&encoding); err != nil {
		return err
	}
	if encoding != meta.Encoding {
		return release.Errorf(release.CodeIncompatible, "the backup's database is encoded %s and %s %s, and the backup's binary rows are not converted: restore it into a database created with ENCODING '%s'",
			meta.Encoding, what, encoding, meta.Encoding)
	}
	return nil
}
