// Package versions is relbot's version control engine: checkpoints of the
// source environment's configuration tables stored as content-addressed
// blobs, their diff with each other or with the live database, their
// restore in one transaction, and the drift report between environments.
//
// A blob is one table's rows as COPY text in primary key order, compressed
// with zstd; its name is the sha256 of that text. The same rows make the
// same blob, so a table unchanged since the last version costs nothing.
package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// Engine implements release.VersionEngine.
type Engine struct{}

var _ release.VersionEngine = (*Engine)(nil)

// RuleVersionTables marks a user table versioned because apps.yaml lists
// it under version_tables.
const RuleVersionTables = "version_tables"

// inspect reads the schema without relbot's own bookkeeping schema.
func inspect(ctx context.Context, q pgschema.Querier) (*pgschema.Schema, error) {
	s, err := pgschema.Inspect(ctx, q)
	if err != nil {
		return nil, err
	}
	return appdb.WithoutOwn(s), nil
}

// versioned lists the tables a version holds, by name, with the reason:
// every table whose effective rule carries rows, plus apps.yaml's
// version_tables.
func versioned(app *release.App, env *release.Environment, s *pgschema.Schema) ([]release.VersionTable, error) {
	layout, err := nocobase.LayoutOf(s, env)
	if err != nil {
		return nil, err
	}
	l := layout.Layout
	rules, err := appdb.Rules(app, l, s)
	if err != nil {
		return nil, err
	}
	var out []release.VersionTable
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Rule.CarriesRows() {
			out = append(out, release.VersionTable{Table: r.Table, Rule: string(r.Rule)})
			seen[r.Table] = true
		}
	}
	for _, written := range app.VersionTables {
		name, ok := appdb.ResolveName(l, s, written)
		if !ok {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.version_tables names table %q, which the database does not have%s", app.Name, written, appdb.NorMapped(l, written))
		}
		if seen[name] {
			continue
		}
		if app.Builtin == "nocobase" && name == l.Key("environmentVariables") {
			// It holds secrets; versions are not a place for them.
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.version_tables: the variables table is never versioned (it holds secrets)", app.Name)
		}
		out = append(out, release.VersionTable{Table: name, Rule: RuleVersionTables})
		seen[name] = true
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

// canonicalCopy reads a table's rows in a fixed order, so the same rows
// always give the same bytes (and blob name): by primary key, or by every
// column's text for a table without one (identical rows are then
// adjacent and interchangeable).
func canonicalCopy(t *pgschema.Table) string {
	cols := t.CopyColumns()
	var order []string
	if len(t.PrimaryKey) > 0 {
		for _, c := range t.PrimaryKey {
			order = append(order, pgschema.QuoteIdent(c))
		}
	} else {
		for _, c := range cols {
			order = append(order, pgschema.QuoteIdent(c)+`::text COLLATE "C"`)
		}
	}
	q := "SELECT " + pgschema.ColumnList(cols) + " FROM " + t.From() // a parent without its children's rows
	if len(order) > 0 {
		q += " ORDER BY " + strings.Join(order, ", ")
	}
	return "COPY (" + q + ") TO STDOUT"
}

func tableJSON(t *pgschema.Table) (json.RawMessage, error) {
	b, err := json.Marshal(t)
	return json.RawMessage(b), err
}

func tableOf(vt *release.VersionTable) (*pgschema.Table, error) {
	var t pgschema.Table
	if err := json.Unmarshal(vt.Schema, &t); err != nil {
		return nil, release.Errorf(release.CodeDamaged, "version's structure of %s is unreadable", vt.Table)
	}
	return &t, nil
}

// newEncoder compresses blobs. Configuration rows are small and repetitive
// (JSON schemas): the default level pays off and one goroutine is enough.
func newEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
}

// blobReader streams a blob's rows and checks, at the end, that they hash
// to the blob's name: callers load inside a transaction and commit only
// after a clean EOF, so a damaged blob changes nothing.
type blobReader struct {
	art  release.Artifact
	dec  *zstd.Decoder
	h    hash.Hash
	name string
	want string
	// err is what Read failed with: COPY reports only the server's
	// "COPY from stdin failed", so callers look here first.
	err error
}

func openBlob(ctx context.Context, blobs release.VersionBlobs, vt *release.VersionTable) (*blobReader, error) {
	art, err := blobs.Open(ctx, vt.Blob)
	if err != nil {
		if release.ErrorCode(err) == release.CodeNotFound {
			return nil, release.Errorf(release.CodeDamaged, "the stored rows of %s (blob %s) are missing", vt.Table, short(vt.Blob))
		}
		return nil, err
	}
	dec, err := zstd.NewReader(io.NewSectionReader(art, 0, art.Size()), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		art.Close()
		return nil, err
	}
	return &blobReader{art: art, dec: dec, h: sha256.New(), name: vt.Table, want: vt.Blob}, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.dec.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(b.h.Sum(nil)) != b.want {
		b.err = release.Errorf(release.CodeDamaged, "the stored rows of %s (blob %s) are damaged: their hash does not match", b.name, short(b.want))
		return n, b.err
	}
	if err != nil && err != io.EOF {
		b.err = release.Errorf(release.CodeDamaged, "the stored rows of %s (blob %s) are unreadable: %w", b.name, short(b.want), err)
		return n, b.err
	}
	return n, err
}

func (b *blobReader) Close() error {
	b.dec.Close()
	return b.art.Close()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// tempName is a temporary table's name for the n-th table of a side.
func tempName(side string, n int) string {
	return pgschema.QuoteIdent(fmt.Sprintf("relbot_%s_%d", side, n))
}

// loadTemp creates a temporary table with the columns (and, where the
// type still exists, the types) of vt and streams vt's rows into it.
// Typed columns make values compare as the database prints them, the
// same way for the live table and a blob.
func loadTemp(ctx context.Context, tx pgx.Tx, blobs release.VersionBlobs, vt *release.VersionTable, t *pgschema.Table, name string) error {
	defs := make([]string, 0, len(vt.Columns))
	for _, c := range vt.Columns {
		typ := "text"
		if col := t.Column(c); col != nil {
			var ok bool
			if err := tx.QueryRow(ctx, "SELECT pg_catalog.to_regtype($1) IS NOT NULL", col.Type).Scan(&ok); err != nil {
				return err
			}
			if ok {
				typ = col.Type
			}
		}
		defs = append(defs, pgschema.QuoteIdent(c)+" "+typ)
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+name+" ("+strings.Join(defs, ", ")+") ON COMMIT DROP"); err != nil {
		return fmt.Errorf("temporary table for %s: %w", vt.Table, err)
	}
	br, err := openBlob(ctx, blobs, vt)
	if err != nil {
		return err
	}
	defer br.Close()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, br, "COPY "+name+" ("+pgschema.ColumnList(vt.Columns)+") FROM STDIN")
	if err != nil {
		return blobError(vt, br, err)
	}
	if tag.RowsAffected() != vt.Rows {
		return release.Errorf(release.CodeDamaged, "the stored rows of %s: %d read, the version says %d", vt.Table, tag.RowsAffected(), vt.Rows)
	}
	return nil
}

// blobError prefers the blob's own failure to the server's report of it.
func blobError(vt *release.VersionTable, br *blobReader, err error) error {
	if br.err != nil {
		return br.err
	}
	return fmt.Errorf("load the rows of %s: %w", vt.Table, err)
}
