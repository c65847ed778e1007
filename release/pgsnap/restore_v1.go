package pgsnap

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// The reader of archives written before pg_dump took the schema (archive
// meta without pg_dump's sections): their schema is relbot's own model,
// rebuilt with release/pgschema's DDL.

// restoreInPlace drops what the database holds and rebuilds it from the
// archive, all in one transaction.
func restoreInPlace(ctx context.Context, conn *pgx.Conn, ar *archive.Reader, meta *Meta, kept *keptRows) ([]string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return nil, err
	}
	current, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := kept.keepRows(ctx, tx); err != nil {
		return nil, err
	}
	if err := execAll(ctx, tx, DropStatements(current, meta.Schema)); err != nil {
		return nil, fmt.Errorf("clear the target: %w", err)
	}
	if err := execAll(ctx, tx, meta.Schema.PreData()); err != nil {
		return nil, err
	}
	keptWarnings, err := loadInPlace(ctx, tx, ar, meta, kept)
	if err != nil {
		return nil, err
	}
	for i := range meta.Schema.Tables {
		if err := execAll(ctx, tx, meta.Schema.Tables[i].KeyStatements()); err != nil {
			return nil, err
		}
	}
	for i := range meta.Schema.Tables {
		if err := execAll(ctx, tx, meta.Schema.Tables[i].ForeignKeyStatements()); err != nil {
			return nil, err
		}
	}
	if err := execAll(ctx, tx, meta.Schema.PostData()); err != nil {
		return nil, err
	}
	warnings, err := restorePrivileges(ctx, tx, meta.Schema)
	if err != nil {
		return nil, err
	}
	return append(keptWarnings, warnings...), tx.Commit(ctx)
}

// restoreParallel fills an empty database: DDL on conn, then rows, keys
// and foreign keys by several workers, then the rest on conn. On failure it
// drops what it made, leaving the database empty as it found it.
func (e *Engine) restoreParallel(ctx context.Context, conn *pgx.Conn, dsn, db string, ar *archive.Reader, meta *Meta, kept *keptRows) (warnings []string, err error) {
	before, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if after, ierr := pgschema.Inspect(cctx, conn); ierr == nil {
			if cerr := execAll(cctx, conn, DropStatements(after, before)); cerr != nil {
				e.log().Error("could not empty the database after a failed restore", "err", cerr)
			}
		}
	}()
	if err := inTx(ctx, conn, meta.Schema.PreData()); err != nil {
		return nil, err
	}
	skip, err := kept.resolve(ctx, conn, meta)
	if err != nil {
		return nil, err
	}
	tables := map[string]*pgschema.Table{}
	for i := range meta.Schema.Tables {
		tables[meta.Schema.Tables[i].Key()] = &meta.Schema.Tables[i]
	}
	// Largest first; then keys per table; then foreign keys.
	infos := append([]TableInfo(nil), meta.Tables...)
	sortByBytes(infos)
	// A table's keys and indexes are built by the worker that loaded it,
	// right after its rows: the other worker keeps loading meanwhile (as
	// pg_restore -j overlaps them). Foreign keys wait for every key.
	tablesJobs := make([]func(context.Context, *pgx.Conn) error, 0, len(infos))
	var fks []func(context.Context, *pgx.Conn) error
	for _, ti := range infos {
		t := tables[ti.Key]
		keys := t.KeyStatements()
		tablesJobs = append(tablesJobs, func(ctx context.Context, c *pgx.Conn) error {
			if !skip[ti.Key] {
				if err := loadFresh(ctx, c, ar, meta, ti); err != nil {
					return err
				}
			}
			return execAll(ctx, c, keys)
		})
		for _, s := range t.ForeignKeyStatements() {
			fks = append(fks, func(ctx context.Context, c *pgx.Conn) error { return execAll(ctx, c, []string{s}) })
		}
	}
	if err := e.runParallel(ctx, dsn, db, tablesJobs, fks); err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := execAll(ctx, tx, meta.Schema.PostData()); err != nil {
			return err
		}
		warnings, err = restorePrivileges(ctx, tx, meta.Schema)
		return err
	})
	return append(notLoaded(meta, skip), warnings...), err
}

// restorePrivileges gives objects back to their owners and grants what
// was granted, as far as the roles exist here and the restoring role may.
func restorePrivileges(ctx context.Context, q pgschema.Querier, s *pgschema.Schema) ([]string, error) {
	if len(s.Privileges) == 0 {
		return nil, nil
	}
	access, err := pgschema.ReadRoleAccess(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	stmts, warnings := pgschema.PrivilegeStatements(s.Privileges, access)
	if err := execAll(ctx, q, stmts); err != nil {
		return nil, fmt.Errorf("restore owners and grants: %w", err)
	}
	return warnings, nil
}

// DropStatements removes every user object of current that keep does not
// also have at the database level (schemas and extensions keep lists what
// to leave). Objects are dropped CASCADE and IF EXISTS, since dropping one
// may already have removed another.
func DropStatements(current, keep *pgschema.Schema) []string {
	var out []string
	for i := len(current.Views) - 1; i >= 0; i-- {
		v := current.Views[i]
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		out = append(out, "DROP "+kind+" IF EXISTS "+pgschema.Ident(v.Schema, v.Name)+" CASCADE")
	}
	for _, t := range current.Tables {
		out = append(out, "DROP TABLE IF EXISTS "+t.QualifiedName()+" CASCADE")
	}
	for _, s := range current.Sequences {
		if s.OwnerTable == "" {
			out = append(out, "DROP SEQUENCE IF EXISTS "+pgschema.Ident(s.Schema, s.Name)+" CASCADE")
		}
	}
	for _, f := range current.Functions {
		out = append(out, "DROP "+f.Kind+" IF EXISTS "+f.Signature+" CASCADE")
	}
	for _, c := range current.Composites {
		out = append(out, "DROP TYPE IF EXISTS "+pgschema.Ident(c.Schema, c.Name)+" CASCADE")
	}
	for _, d := range current.Domains {
		out = append(out, "DROP DOMAIN IF EXISTS "+pgschema.Ident(d.Schema, d.Name)+" CASCADE")
	}
	for _, en := range current.Enums {
		out = append(out, "DROP TYPE IF EXISTS "+pgschema.Ident(en.Schema, en.Name)+" CASCADE")
	}
	keepExt := map[string]bool{}
	for _, x := range keep.Extensions {
		keepExt[x.Name] = true
	}
	for _, x := range current.Extensions {
		if !keepExt[x.Name] {
			out = append(out, "DROP EXTENSION IF EXISTS "+pgschema.QuoteIdent(x.Name)+" CASCADE")
		}
	}
	keepSchema := map[string]bool{"public": true}
	for _, s := range keep.Schemas {
		keepSchema[s.Name] = true
	}
	for _, x := range keep.Extensions {
		keepSchema[x.Schema] = true
	}
	for _, s := range current.Schemas {
		if !keepSchema[s.Name] {
			out = append(out, "DROP SCHEMA IF EXISTS "+pgschema.QuoteIdent(s.Name)+" CASCADE")
		}
	}
	return out
}
