package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// Snapshot reads env's versioned tables in one REPEATABLE READ snapshot
// and stores each table's rows as a blob, unless the same rows are stored
// already.
func (e *Engine) Snapshot(ctx context.Context, app *release.App, env *release.Environment, blobs release.VersionBlobs) (*release.VersionSnapshot, error) {
	conn, err := appdb.Connect(ctx, env.Database, "", env.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	schema, err := inspect(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", env.Name, err)
	}
	tables, err := versioned(app, env, schema)
	if err != nil {
		return nil, err
	}
	layout, err := nocobase.LayoutOf(schema, env)
	if err != nil {
		return nil, err
	}
	snap := &release.VersionSnapshot{}
	if snap.CoreVersion, snap.Plugins, err = nocobase.AppVersions(ctx, tx, schema, layout.Layout); err != nil {
		return nil, err
	}
	for i := range tables {
		vt := &tables[i]
		t := schema.Table(vt.Table)
		if vt.Schema, err = tableJSON(t); err != nil {
			return nil, err
		}
		vt.Columns = t.CopyColumns()
		written, n, err := storeTable(ctx, conn, blobs, t, vt)
		if err != nil {
			return nil, err
		}
		if written {
			snap.NewBlobs++
			snap.NewBytes += n
		}
	}
	snap.Tables = tables
	return snap, nil
}

// storeTable hashes a table's rows and writes its blob if it is new. The
// blob's name is its content's hash, known only after a first read, and
// artifacts are named when created: a new table is read twice, both times
// in the transaction's snapshot, so both reads see the same rows (checked).
// An unchanged table is read once and stored no more.
func storeTable(ctx context.Context, conn *pgx.Conn, blobs release.VersionBlobs, t *pgschema.Table, vt *release.VersionTable) (bool, int64, error) {
	sql := canonicalCopy(t)
	h := sha256.New()
	var sum appdb.RowChecksum
	if _, err := conn.PgConn().CopyTo(ctx, io.MultiWriter(h, &sum), sql); err != nil {
		return false, 0, fmt.Errorf("read %s: %w", t.Key(), err)
	}
	vt.Blob, vt.Rows, vt.Checksum = hex.EncodeToString(h.Sum(nil)), sum.Rows, sum.Sum()
	if ok, err := blobs.Has(ctx, vt.Blob); err != nil || ok {
		return false, 0, err
	}
	w, err := blobs.Create(ctx, vt.Blob)
	if release.ErrorCode(err) == release.CodeConflict {
		return false, 0, nil // written meanwhile by another version of the same rows
	}
	if err != nil {
		return false, 0, err
	}
	defer w.Abort()
	cw := &countWriter{w: w}
	enc, err := newEncoder(cw)
	if err != nil {
		return false, 0, err
	}
	again := sha256.New()
	if _, err := conn.PgConn().CopyTo(ctx, io.MultiWriter(enc, again), sql); err != nil {
		enc.Close()
		return false, 0, fmt.Errorf("store %s: %w", t.Key(), err)
	}
	if err := enc.Close(); err != nil {
		return false, 0, fmt.Errorf("store %s: %w", t.Key(), err)
	}
	if hex.EncodeToString(again.Sum(nil)) != vt.Blob {
		return false, 0, fmt.Errorf("store %s: the second read of the snapshot differs from the first", t.Key())
	}
	if err := w.Commit(); err != nil {
		if release.ErrorCode(err) == release.CodeConflict {
			return false, 0, nil
		}
		return false, 0, err
	}
	return true, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
