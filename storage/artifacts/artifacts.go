// Package artifacts stores backups and migration files in a directory.
// An artifact appears under its name only once completely written and
// synced, and is never overwritten: the file that passed staging is the one
// production receives.
package artifacts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/relbot/relbot/release"
)

var _ release.Artifacts = (*Dir)(nil)

const (
	dirPerm  = 0o700
	filePerm = 0o600
	// tmpPrefix marks files being written; Commit links them to their name.
	tmpPrefix = ".tmp-"
)

// Dir is a release.Artifacts rooted at a directory. Every access goes
// through os.Root, so no name (nor a symlink inside the tree) reaches
// outside it.
type Dir struct {
	root string
}

// New returns the store rooted at dir, creating it if needed.
func New(dir string) (*Dir, error) {
	if dir == "" {
		return nil, release.Errorf(release.CodeInvalid, "the artifact directory is not set")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, &release.Error{Code: release.CodeUnavailable, Message: fmt.Sprintf("cannot create the artifact directory %s", abs), Err: err}
	}
	return &Dir{root: abs}, nil
}

// CheckName accepts relative slash paths such as "crm/backups/crm-b3.relbot";
// every artifact store names artifacts so.
func CheckName(name string) error { return checkName(name) }

func checkName(name string) error {
	if !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) || strings.HasPrefix(path.Base(name), tmpPrefix) {
		return release.Errorf(release.CodeInvalid, "invalid artifact name %q: want a relative path like crm/backups/crm-b3.relbot, without .. or a leading /", name)
	}
	return nil
}

// Path returns the file path of name, for tools that need one.
func (d *Dir) Path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

func (d *Dir) open() (*os.Root, error) {
	r, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, &release.Error{Code: release.CodeUnavailable, Message: fmt.Sprintf("the artifact directory %s is not available", d.root), Err: err}
	}
	return r, nil
}

// Create starts writing name in a temporary file beside it. It fails at once
// when name already exists, rather than after writing gigabytes.
func (d *Dir) Create(ctx context.Context, name string) (release.ArtifactWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	if _, err := r.Lstat(name); err == nil {
		r.Close()
		return nil, existsError(name)
	}
	dir := path.Dir(name)
	if err := r.MkdirAll(dir, dirPerm); err != nil {
		r.Close()
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	tmp := path.Join(dir, tmpPrefix+path.Base(name)+"-"+randomSuffix())
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	return &writer{root: r, f: f, name: name, tmp: tmp}, nil
}

type writer struct {
	root *os.Root
	f    *os.File
	name string
	tmp  string
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("artifact %s: write after commit or abort", w.name)
	}
	return w.f.Write(p)
}

// Commit makes the artifact visible under its name: data synced first, then
// a hard link (which, unlike rename, fails if the name exists), then the
// directory synced so the name survives a crash.
func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("artifact %s: already committed or aborted", w.name)
	}
	w.done = true
	defer w.root.Close()
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		w.root.Remove(w.tmp)
		return fmt.Errorf("artifact %s: sync: %w", w.name, err)
	}
	if err := w.f.Close(); err != nil {
		w.root.Remove(w.tmp)
		return fmt.Errorf("artifact %s: close: %w", w.name, err)
	}
	err := w.root.Link(w.tmp, w.name)
	w.root.Remove(w.tmp)
	if errors.Is(err, fs.ErrExist) {
		return existsError(w.name)
	}
	if err != nil {
		return fmt.Errorf("artifact %s: %w", w.name, err)
	}
	return syncDir(w.root, path.Dir(w.name))
}

// Abort discards the artifact. It is a no-op after Commit, so callers can
// defer it.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.root.Close()
	w.f.Close()
	if err := w.root.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifact %s: remove temporary file: %w", w.name, err)
	}
	return nil
}

func syncDir(r *os.Root, dir string) error {
	f, err := r.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Open opens a committed artifact for random access.
func (d *Dir) Open(ctx context.Context, name string) (release.Artifact, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	defer r.Close() // the opened file stays valid
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundError(name)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notFoundError(name)
	}
	return &artifact{File: f, size: st.Size()}, nil
}

// artifact is an open file; its size is fixed since artifacts never change.
type artifact struct {
	*os.File
	size int64
}

func (a *artifact) Size() int64 { return a.size }

// Remove deletes a committed artifact, or returns CodeNotFound.
func (d *Dir) Remove(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := d.open()
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return notFoundError(name)
	}
	if err != nil {
		return fmt.Errorf("artifact %s: %w", name, err)
	}
	if st.IsDir() {
		return release.Errorf(release.CodeInvalid, "%s is a directory, not an artifact", name)
	}
	if err := r.Remove(name); err != nil {
		return fmt.Errorf("remove artifact %s: %w", name, err)
	}
	return nil
}

func existsError(name string) error {
	return release.Errorf(release.CodeConflict, "artifact %s already exists; artifacts are never overwritten", name)
}

func notFoundError(name string) error {
	return release.Errorf(release.CodeNotFound, "no artifact %s", name)
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// List calls fn for every committed artifact, in name order; temporary
// files of writes in progress are not artifacts.
func (d *Dir) List(ctx context.Context, fn func(name string, size int64) error) error {
	return filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), info.Size())
	})
}

// Ready says whether the directory can be read.
func (d *Dir) Ready(context.Context) error {
	r, err := d.open()
	if err != nil {
		return err
	}
	return r.Close()
}
