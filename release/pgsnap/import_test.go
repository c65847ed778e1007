package pgsnap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/memory"
	"github.com/relbot/relbot/storage/objects"
)

// installation is one relbot's record of app crm: its own store and
// artifact directory, sharing only the PostgreSQL server.
type installation struct {
	svc   *release.BackupService
	store *memory.Store
	dir   string
}

func newInstallation(t *testing.T, e *Engine, envs ...*release.Environment) *installation {
	t.Helper()
	dir := t.TempDir()
	arts, err := artifacts.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return newInstallationOn(t, e, arts, dir, envs...)
}

func newInstallationOn(t *testing.T, e *Engine, arts release.Artifacts, dir string, envs ...*release.Environment) *installation {
	t.Helper()
	store := memory.NewStore()
	app := &release.App{Name: "crm", Environments: envs}
	core := release.NewCore([]*release.App{app}, store, memory.NewLocker(), nil)
	return &installation{svc: &release.BackupService{Core: core, Store: store, Artifacts: arts, Engine: e, Releases: store}, store: store, dir: dir}
}

// files lists what the artifact directory holds, temporary files included
// (for a bucket: the artifacts listed).
func (in *installation) files(t *testing.T) []string {
	t.Helper()
	if in.dir == "" {
		// Every name an import of this test may have used.
		var out []string
		for i := 1; i <= 30; i++ {
			name := fmt.Sprintf("crm/backups/crm-b%d.relbot", i)
			a, err := in.svc.Artifacts.Open(ctxT(t), name)
			if err == nil {
				a.Close()
				out = append(out, name)
			} else if release.ErrorCode(err) != release.CodeNotFound {
				t.Fatal(err)
			}
		}
		return out
	}
	var out []string
	err := filepath.WalkDir(in.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(in.dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A backup made by one installation is imported by another: listed only
// after every checksum matched and a restore agreed, keeping when and of
// which environment it was taken. Damaged, foreign, migration, other-app,
// wrongly keyed and repeated files, and a user without the role, are each
// refused in one line and leave neither a record nor a file behind.
func TestImportBackupFromAnotherInstallation(t *testing.T) {
	t.Parallel()
	e := &Engine{Workers: 2, Passphrase: "the shared backup passphrase"}
	prodA := newEnv(t, "prod_a", richSQL, sourceFiles)
	a := newInstallation(t, e, &release.Environment{Name: "staging"}, prodA)
	made, err := a.svc.CreateBackup(ctxT(t), "U09ZED", "crm", "prod_a", release.BackupManual)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(made.Artifact)))
	if err != nil {
		t.Fatal(err)
	}

	approvers := release.ApprovalPolicy{Required: 1, Approvers: []string{"U01AAA"}}
	prodB := newEnv(t, "prod_b", "", nil)
	prodB.Approvals = approvers
	// The importing installation keeps its artifacts in a bucket: the file
	// streams into a multipart upload, and the checks and the verify's
	// restore read it back by ranges.
	bucket, err := objects.Open(ctxT(t), testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	b := newInstallationOn(t, e, bucket, "", &release.Environment{Name: "staging"}, prodB)
	imp := func(actor string, data []byte) (*release.Backup, error) {
		return b.svc.ImportBackup(ctxT(t), actor, "crm", "prod_b", "crm-b1.relbot", bytes.NewReader(data))
	}

	got, err := imp("U01AAA", good)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	sum := sha256.Sum256(good)
	o := got.Manifest.Origin
	switch {
	case got.Kind != release.BackupImported || got.Env != "prod_b" || got.ID != "crm-b1":
		t.Errorf("imported as %s %s %s", got.ID, got.Env, got.Kind)
	case !got.CreatedAt.Equal(made.CreatedAt) || got.CreatedBy != "U09ZED":
		t.Errorf("taken %v by %s, want %v by U09ZED", got.CreatedAt, got.CreatedBy, made.CreatedAt)
	case got.SHA256 != hex.EncodeToString(sum[:]) || got.Size != int64(len(good)):
		t.Errorf("sha256 %s size %d, want the file's", got.SHA256, got.Size)
	case got.VerifiedAt == nil || got.Manifest.Rows != made.Manifest.Rows || got.Manifest.Files != made.Manifest.Files || !got.Manifest.Encrypted:
		t.Errorf("manifest %+v verified %v, want the archive's (%+v), verified", got.Manifest, got.VerifiedAt, made.Manifest)
	case o == nil || o.Backup != made.ID || o.Env != "prod_a" || o.Kind != release.BackupManual || o.File != "crm-b1.relbot" || o.ImportedBy != "U01AAA":
		t.Errorf("origin %+v", o)
	}
	stored, err := b.store.GetBackup(ctxT(t), got.ID)
	if err != nil || stored.Manifest.Origin == nil || stored.Manifest.Origin.Env != "prod_a" {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
	wantFiles := b.files(t)
	if len(wantFiles) != 1 {
		t.Fatalf("artifacts after the import: %v", wantFiles)
	}

	// An archive of app tickets, and one with a migration file's kind.
	otherApp := filepath.Join(t.TempDir(), "tickets.relbot")
	f, err := os.Create(otherApp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(ctxT(t), prodA, release.ArchiveHeader{ID: "tickets-b4", App: "tickets", Env: "production", Kind: release.BackupManual, CreatedBy: "x", CreatedAt: time.Now()}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	otherAppData, _ := os.ReadFile(otherApp)
	var migration bytes.Buffer
	aw, err := archive.NewWriter(&migration, archive.Header{ID: "crm-m3", App: "crm", Env: "development", Kind: "migration", CreatedAt: time.Now()}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := aw.Finish(map[string]any{"schema": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	migration.WriteString("RELBOTS1" + strings.Repeat("s", 32)) // as release/migrate signs its files

	ar, err := archive.Open(bytes.NewReader(good), int64(len(good)), e.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	var table archive.Member
	for _, m := range ar.Members() {
		if strings.HasPrefix(m.Name, tablePrefix) && len(m.Chunks) > 0 {
			table = m
			break
		}
	}
	flipped := bytes.Clone(good)
	flipped[table.Chunks[0].Offset+table.Chunks[0].Length/2] ^= 0x01

	// Sound bytes, but a manifest that disagrees with the rows: only the
	// restore into a scratch database finds it.
	lying, err := os.ReadFile(rewriteMeta(t, good, e.Passphrase, func(m *Meta) {
		for i := range m.Tables {
			if m.Tables[i].Key == "ticket_comments" {
				m.Tables[i].Rows++
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}

	wrongKey := newInstallation(t, &Engine{Workers: 2, Passphrase: "another installation's key"}, prodB)
	cases := []struct {
		name  string
		in    *installation
		actor string
		data  []byte
		code  release.Code
		says  string
	}{
		{"the same file again", b, "U01AAA", good, release.CodeConflict, "crm-b1.relbot is backup crm-b1 of crm prod_b already"},
		{"truncated", b, "U01AAA", good[:len(good)/2], release.CodeDamaged, "truncated"},
		{"a flipped byte in a table", b, "U01AAA", flipped, release.CodeDamaged, "damaged in table"},
		{"not a relbot file", b, "U01AAA", []byte("PGDMP a pg_dump custom archive, not relbot's" + strings.Repeat(".", 300)), release.CodeInvalid, "not a relbot backup archive"},
		{"empty", b, "U01AAA", nil, release.CodeInvalid, "not a relbot backup archive"},
		{"a migration file", b, "U01AAA", migration.Bytes(), release.CodeInvalid, "migration file crm-m3, not a backup"},
		{"another app's", b, "U01AAA", otherAppData, release.CodeInvalid, "of app tickets, not crm"},
		{"a manifest the rows disagree with", b, "U01AAA", lying, release.CodeDamaged, "ticket_comments"},
		{"another key", wrongKey, "U01AAA", good, release.CodeForbidden, "different key"},
		{"not an approver", b, "U04ALICE", good, release.CodeForbidden, "U04ALICE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.in.files(t)
			_, err := c.in.svc.ImportBackup(ctxT(t), c.actor, "crm", "prod_b", "crm-b1.relbot", bytes.NewReader(c.data))
			msg := release.ErrorMessage(err)
			if err == nil || release.ErrorCode(err) != c.code || !strings.Contains(msg, c.says) || strings.Contains(msg, "\n") {
				t.Fatalf("got %v (code %s); want code %s saying %q on one line", err, release.ErrorCode(err), c.code, c.says)
			}
			if c.actor != "U04ALICE" && !strings.HasPrefix(msg, "cannot import crm-b1.relbot: ") && c.code != release.CodeConflict {
				t.Errorf("the refusal does not name the file: %q", msg)
			}
			if after := c.in.files(t); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("artifacts were %v, are %v", before, after)
			}
			if list, _ := c.in.store.ListBackups(ctxT(t), "crm", "prod_b"); len(list) != len(before) {
				t.Errorf("%d backups listed, want %d", len(list), len(before))
			}
		})
	}
}
