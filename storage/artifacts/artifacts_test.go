package artifacts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/internal/artifactstest"
)

var ctx = context.Background()

func newDir(t *testing.T) (*Dir, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "artifacts")
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

func write(t *testing.T, d *Dir, name string, data []byte) error {
	t.Helper()
	w, err := d.Create(ctx, name)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w.Commit()
}

func wantCode(t *testing.T, what string, err error, code release.Code) {
	t.Helper()
	if got := release.ErrorCode(err); err == nil || got != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, got, code)
	}
}

// entries lists every file under root, temporary ones included.
func entries(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// What the directory adds to the contract (TestContract): archives are
// private files, and no temporary file outlives a commit, an abort or a
// refused commit.
func TestFilesArePrivateAndNoTemporaryFileStays(t *testing.T) {
	d, root := newDir(t)
	name := "crm/backups/crm-b3.relbot"
	if err := write(t, d, name, bytes.Repeat([]byte("relbot"), 100000)); err != nil {
		t.Fatal(err)
	}
	// Private: archives hold every row of a database.
	for p, want := range map[string]os.FileMode{
		name: 0o600, "crm/backups": 0o700, "crm": 0o700, ".": 0o700,
	} {
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	w, err := d.Create(ctx, "crm/migrations/crm-m1.relbot")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	w1, _ := d.Create(ctx, "crm/x")
	w2, _ := d.Create(ctx, "crm/x")
	w1.Write([]byte("one"))
	w2.Write([]byte("two"))
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "the second Commit", w2.Commit(), release.CodeConflict)
	if got := entries(t, root); strings.Join(got, ",") != "crm/backups/crm-b3.relbot,crm/x" {
		t.Fatalf("files %v, want the two committed and no temporary file", got)
	}
}

// Names are checked before any path is made of them: nothing outside the
// root is reached, and Path refuses what the store refuses.
func TestBadNamesReachNothingOutside(t *testing.T) {
	d, root := newDir(t)
	if err := os.WriteFile(filepath.Join(filepath.Dir(root), "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../secret", "crm/../../secret", "/etc/passwd"} {
		_, err := d.Path(name)
		wantCode(t, "Path "+name, err, release.CodeInvalid)
		wantCode(t, "Remove "+name, d.Remove(ctx, name), release.CodeInvalid)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(root), "secret")); err != nil || string(b) != "s" {
		t.Fatalf("the file outside the root: %q, %v", b, err)
	}
}

func TestSymlinkOutOfRootRefused(t *testing.T) {
	d, root := newDir(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "f"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "crm")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(ctx, "crm/f"); err == nil {
		t.Fatal("Open followed a symlink out of the root")
	}
	if err := write(t, d, "crm/g", []byte("x")); err == nil {
		t.Fatal("Create wrote through a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(outside, "g")); err == nil {
		t.Fatal("a file was written outside the root")
	}
}

func TestRemoveADirectoryRefused(t *testing.T) {
	d, _ := newDir(t)
	if err := write(t, d, "crm/backups/crm-b1.relbot", []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Remove a directory", d.Remove(ctx, "crm/backups"), release.CodeInvalid)
}

func TestPath(t *testing.T) {
	d, root := newDir(t)
	if err := write(t, d, "crm/backups/crm-b1.relbot", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	p, err := d.Path("crm/backups/crm-b1.relbot")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "crm", "backups", "crm-b1.relbot"); p != want {
		t.Fatalf("Path = %s, want %s", p, want)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "abc" {
		t.Fatalf("read %s: %q, %v", p, b, err)
	}
}

// The contract every artifact store keeps (storage/objects runs it too).
func TestContract(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) release.Artifacts {
		d, _ := newDir(t)
		return d
	})
}
