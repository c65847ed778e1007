package pgsnap

import (
	"errors"
	"testing"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
)

// oldBackupSQL is what testdata/hkdf-backup.relbot was taken of, by the
// relbot whose backup key went through HKDF alone (before scrypt), with
// the passphrase "an old backup passphrase" and two storage files.
const oldBackupSQL = `
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, tier text, data jsonb);
CREATE TABLE orders (id int PRIMARY KEY, customer_id bigint REFERENCES customers(id), total numeric(10,2), placed timestamptz);
INSERT INTO customers (name, tier, data) SELECT 'customer ' || i, CASE WHEN i % 3 = 0 THEN 'gold' END, jsonb_build_object('n', i) FROM generate_series(1, 40) i;
INSERT INTO orders SELECT i, 1 + i % 40, i * 1.25, timestamptz '2026-11-01 00:00:00+00' + i * interval '1 hour' FROM generate_series(1, 120) i;
`

// A backup written before the backup key went through scrypt still
// checks, verifies and restores with its passphrase: the same schema, rows
// and files as the database it was taken of; a wrong passphrase is told.
func TestOldHKDFBackupStillRestores(t *testing.T) {
	t.Parallel()
	want := newEnv(t, "oldwant", oldBackupSQL, nil)
	wantFiles := map[string]string{"apps/main/readme.txt": "written before scrypt\n", "uploads/a.txt": "an upload\n"}
	a := openArchiveFile(t, "testdata/hkdf-backup.relbot")
	e := &Engine{Workers: 2, Passphrase: "an old backup passphrase"}

	h, _, err := e.Check(ctxT(t), a, "crm")
	if err != nil || h.ID != "crm-b3" {
		t.Fatalf("check: %+v %v", h, err)
	}
	rep, err := e.Verify(ctxT(t), a, "crm", want)
	if err != nil || !rep.OK() || rep.Tables != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	dst := newEnv(t, "oldrestored", "", nil)
	if _, err := e.Restore(ctxT(t), a, "crm", dst, release.RestoreOptions{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, w := schemaDump(t, dst.Database), schemaDump(t, want.Database); got != w {
		t.Fatalf("schema differs:\n%s", lineDiff(w, got))
	}
	equalMaps(t, "tables", tableSums(t, want.Database), tableSums(t, dst.Database))
	equalMaps(t, "storage files", wantFiles, storageFiles(t, dst.Storage))

	wrong := &Engine{Workers: 2, Passphrase: "a new backup passphrase"}
	if _, _, err := wrong.Check(ctxT(t), a, "crm"); !errors.Is(err, archive.ErrWrongKey) || release.ErrorCode(err) != release.CodeForbidden {
		t.Fatalf("wrong passphrase: %v", err)
	}
}
