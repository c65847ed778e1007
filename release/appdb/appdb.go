// Package appdb is what relbot's engines share about an app's database:
// connections and scratch databases, relbot's marker schema, the effective
// rule of each table (rules.go), and reading a table's rows the one way
// backups, migration files and versions compare them (COPY in column
// order, RowChecksum). The engines (release/pgsnap, release/migrate,
// release/versions) do not import each other; what two of them need lives
// here (internal/deprule holds that rule).
package appdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// MarkerSchema holds relbot's own bookkeeping in a target database; it is
// never part of a migration, a version or a drift.
const MarkerSchema = "relbot"

// Prefixes of the schemas where relbot keeps, in a target, a release's
// snapshot (the tables an apply replaced or edited, as they were) and a
// prepared apply's shadow tables. Like MarkerSchema they are relbot's own.
const (
	SnapshotSchemaPrefix = "relbot_snap_"
	PrepareSchemaPrefix  = "relbot_prep_"
)

// IsOwnSchema reports whether a schema is relbot's own bookkeeping, never
// part of a migration, a version or a drift.
func IsOwnSchema(name string) bool {
	return name == MarkerSchema || strings.HasPrefix(name, SnapshotSchemaPrefix) || strings.HasPrefix(name, PrepareSchemaPrefix)
}

// WithoutOwn is s without relbot's own schemas and what is in them.
func WithoutOwn(s *pgschema.Schema) *pgschema.Schema {
	out := *s
	out.Tables = nil
	for _, t := range s.Tables {
		if !IsOwnSchema(t.Schema) {
			out.Tables = append(out.Tables, t)
		}
	}
	out.Schemas = nil
	for _, ns := range s.Schemas {
		if !IsOwnSchema(ns.Name) {
			out.Schemas = append(out.Schemas, ns)
		}
	}
	out.Sequences = nil
	for _, sq := range s.Sequences {
		if !IsOwnSchema(sq.Schema) {
			out.Sequences = append(out.Sequences, sq)
		}
	}
	out.Privileges = nil
	for _, p := range s.Privileges {
		if !IsOwnSchema(p.Schema) {
			out.Privileges = append(out.Privileges, p)
		}
	}
	return &out
}

// Connect opens an engine connection (pgschema.SessionParams) to dsn, or
// to database db on the same server when db is not empty. env, when not
// empty, names the environment in errors ("cannot connect to staging's
// database"); else the database is named. The DSN, which may hold a
// password, is never quoted.
func Connect(ctx context.Context, dsn, db, env string) (*pgx.Conn, error) {
	cfg, err := pgschema.ConnConfig(dsn)
	if err != nil {
		if env != "" {
			return nil, release.Errorf(release.CodeInvalid, "%s: %v", env, err)
		}
		return nil, release.Errorf(release.CodeInvalid, "%v", err)
	}
	if db != "" {
		cfg.Database = db
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if env != "" {
			return nil, release.Errorf(release.CodeUnavailable, "cannot connect to %s's database: %w", env, err)
		}
		return nil, release.Errorf(release.CodeUnavailable, "cannot connect to database %s: %w", cfg.Database, err)
	}
	return conn, nil
}

// CreateScratch makes an empty database on dsn's server and returns its
// name and a function that drops it.
func CreateScratch(ctx context.Context, dsn, prefix string) (string, func(), error) {
	conn, err := Connect(ctx, dsn, "", "")
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgschema.QuoteIdent(name)+" TEMPLATE template0"); err != nil {
		return "", nil, release.Errorf(release.CodeForbidden, "cannot create a scratch database on the server (relbot's role needs CREATEDB): %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := Connect(ctx, dsn, "", "")
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgschema.QuoteIdent(name)+" WITH (FORCE)")
	}
	return name, drop, nil
}

// CopyOutSQL reads a table's non-generated columns, the way restore writes them.
func CopyOutSQL(t *pgschema.Table) string {
	return "COPY " + t.QualifiedName() + copyColumns(t) + " TO STDOUT"
}

// CopyInSQL writes a table's non-generated columns.
func CopyInSQL(t *pgschema.Table) string {
	return "COPY " + t.QualifiedName() + copyColumns(t) + " FROM STDIN"
}

func copyColumns(t *pgschema.Table) string {
	cols := t.CopyColumns()
	if len(cols) == 0 {
		return ""
	}
	return " (" + pgschema.ColumnList(cols) + ")"
}

// FirstLine shortens a statement for a message: its first line, at most
// 200 characters, cut as release.Cut cuts every line people read.
func FirstLine(s string) string {
	return release.Cut(s, 200)
}

// PluginChanges renders plugins grouped by their change ("2.2.14 ->
// 2.2.15": names), one line a change, in a stable order.
func PluginChanges(byChange map[string][]string) []string {
	var out []string
	for _, change := range slices.Sorted(maps.Keys(byChange)) {
		ps := slices.Sorted(slices.Values(byChange[change]))
		if len(ps) == 1 {
			out = append(out, fmt.Sprintf("plugin %s: %s", ps[0], change))
			continue
		}
		out = append(out, fmt.Sprintf("%d plugins %s: %s", len(ps), change, strings.Join(ps, ", ")))
	}
	return out
}
