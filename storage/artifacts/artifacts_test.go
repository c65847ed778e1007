package artifacts

import (
	"bytes"
	"context"
	"io"
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

func TestCommitAndOpen(t *testing.T) {
	d, root := newDir(t)
	name := "crm/backups/crm-b3.relbot"
	data := bytes.Repeat([]byte("relbot"), 100000)

	w, err := d.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	// Invisible until committed.
	if _, err := d.Open(ctx, name); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("Open before Commit: %v, want not found", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit should be a no-op: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if got := entries(t, root); len(got) != 1 || got[0] != name {
		t.Fatalf("files %v, want only %s (no temporary file left)", got, name)
	}

	a, err := d.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Size() != int64(len(data)) {
		t.Fatalf("Size %d, want %d", a.Size(), len(data))
	}
	got, err := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (%v)", err)
	}
	tail := make([]byte, 6)
	if _, err := a.ReadAt(tail, a.Size()-6); err != nil || string(tail) != "relbot" {
		t.Fatalf("ReadAt: %q, %v", tail, err)
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
}

func TestAbort(t *testing.T) {
	d, root := newDir(t)
	w, err := d.Create(ctx, "crm/migrations/crm-m1.relbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if got := entries(t, root); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	if _, err := d.Open(ctx, "crm/migrations/crm-m1.relbot"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("Open after Abort: %v", err)
	}
}

func TestOverwriteRefused(t *testing.T) {
	d, root := newDir(t)
	name := "crm/migrations/crm-m7.relbot"
	if err := write(t, d, name, []byte("first")); err != nil {
		t.Fatal(err)
	}
	// Refused early, at Create.
	_, err := d.Create(ctx, name)
	wantCode(t, "Create over existing", err, release.CodeConflict)

	// And at Commit, when the name appeared while the second was written.
	w1, err := d.Create(ctx, "crm/x")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := d.Create(ctx, "crm/x")
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("one"))
	w2.Write([]byte("two"))
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "second Commit", w2.Commit(), release.CodeConflict)
	b, _ := os.ReadFile(filepath.Join(root, "crm", "x"))
	if string(b) != "one" {
		t.Fatalf("content %q, want the first commit's", b)
	}
	b, _ = os.ReadFile(filepath.Join(root, "crm", "migrations", "crm-m7.relbot"))
	if string(b) != "first" {
		t.Fatalf("content %q, want first", b)
	}
	if got := entries(t, root); len(got) != 2 {
		t.Fatalf("files %v, want 2 and no temporary file", got)
	}
}

func TestBadNamesRefused(t *testing.T) {
	d, root := newDir(t)
	// Something just outside the root, that traversal would reach.
	if err := os.WriteFile(filepath.Join(filepath.Dir(root), "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"", ".", "/etc/passwd", "../secret", "crm/../../secret", "crm/../secret",
		"./crm/b", "crm//b", "crm/b/", `crm\b`, "crm/.tmp-b",
	} {
		_, err := d.Create(ctx, name)
		wantCode(t, "Create "+name, err, release.CodeInvalid)
		if !strings.Contains(release.ErrorMessage(err), "invalid artifact name") {
			t.Errorf("Create %q: message %q", name, release.ErrorMessage(err))
		}
		_, err = d.Open(ctx, name)
		wantCode(t, "Open "+name, err, release.CodeInvalid)
		wantCode(t, "Remove "+name, d.Remove(ctx, name), release.CodeInvalid)
		_, err = d.Path(name)
		wantCode(t, "Path "+name, err, release.CodeInvalid)
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

func TestRemove(t *testing.T) {
	d, _ := newDir(t)
	name := "crm/backups/crm-b1.relbot"
	if err := write(t, d, name, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	_, err := d.Open(ctx, name)
	wantCode(t, "Open after Remove", err, release.CodeNotFound)
	wantCode(t, "Remove again", d.Remove(ctx, name), release.CodeNotFound)
	wantCode(t, "Remove a directory", d.Remove(ctx, "crm/backups"), release.CodeInvalid)
	_, err = d.Open(ctx, "crm/backups")
	wantCode(t, "Open a directory", err, release.CodeNotFound)
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

func TestCancelledContext(t *testing.T) {
	d, _ := newDir(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Create(c, "crm/a"); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
}

// The contract every artifact store keeps (storage/objects runs it too).
func TestContract(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) release.Artifacts {
		d, _ := newDir(t)
		return d
	})
}
