// Package artifactstest is the contract every release.Artifacts keeps: the
// directory store and the object store run the same suite.
package artifactstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/relbot/relbot/release"
)

// Run runs the suite; open returns an empty store of its own per call.
func Run(t *testing.T, open func(t *testing.T) release.Artifacts) {
	for _, c := range []struct {
		name string
		f    func(t *testing.T, s release.Artifacts)
	}{
		{"commit and open", commitAndOpen},
		{"big, read in parallel", bigInParallel},
		{"abort leaves nothing", abort},
		{"never overwritten", overwriteRefused},
		{"bad names refused", badNames},
		{"remove", remove},
		{"cancelled context", cancelled},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t, open(t))
		})
	}
}

var ctx = context.Background()

func write(t *testing.T, s release.Artifacts, name string, data []byte) error {
	t.Helper()
	w, err := s.Create(ctx, name)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	return w.Commit()
}

func read(t *testing.T, s release.Artifacts, name string) []byte {
	t.Helper()
	a, err := s.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCode(t *testing.T, what string, err error, code release.Code) {
	t.Helper()
	if got := release.ErrorCode(err); err == nil || got != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, got, code)
	}
}

func commitAndOpen(t *testing.T, s release.Artifacts) {
	name := "crm/backups/crm-b3.relbot"
	data := bytes.Repeat([]byte("relbot"), 100000)
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, name); release.ErrorCode(err) != release.CodeNotFound {
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
	a, err := s.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Size() != int64(len(data)) {
		t.Fatalf("Size %d, want %d", a.Size(), len(data))
	}
	// Small sequential reads, as a download's copy makes them.
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, io.NewSectionReader(a, 0, a.Size()), make([]byte, 1000)); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("content differs (%v)", err)
	}
	tail := make([]byte, 10)
	if n, err := a.ReadAt(tail, a.Size()-6); n != 6 || err != io.EOF || string(tail[:6]) != "relbot" {
		t.Fatalf("ReadAt over the end: %d %q, %v; want 6, relbot, EOF", n, tail[:n], err)
	}
	if _, err := a.ReadAt(tail, a.Size()); err != io.EOF {
		t.Fatalf("ReadAt at the end: %v, want EOF", err)
	}
	empty := "crm/migrations/empty.relbot"
	if err := write(t, s, empty, nil); err != nil {
		t.Fatal(err)
	}
	if b := read(t, s, empty); len(b) != 0 {
		t.Fatalf("empty artifact reads %d bytes", len(b))
	}
}

// bigInParallel: more than one part of an upload, read back by several
// readers at once, each in order, as a restore's workers do.
func bigInParallel(t *testing.T, s release.Artifacts) {
	data := make([]byte, 20<<20+12345)
	rand.Read(data)
	name := "crm/backups/crm-b9.relbot"
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := w.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	a, err := s.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const readers = 6
	var wg sync.WaitGroup
	errs := make(chan string, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := int64(len(data))*int64(i)/readers, int64(len(data))*int64(i+1)/readers
			buf := make([]byte, 256<<10)
			for off := lo; off < hi; {
				n, err := a.ReadAt(buf[:min(int64(len(buf)), hi-off)], off)
				if err != nil && err != io.EOF {
					errs <- err.Error()
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					errs <- "bytes differ"
					return
				}
				off += int64(n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a parallel reader: %s", e)
	}
}

func abort(t *testing.T, s release.Artifacts) {
	name := "crm/migrations/crm-m1.relbot"
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("half"), 3<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	_, err = s.Open(ctx, name)
	wantCode(t, "Open after Abort", err, release.CodeNotFound)
	// The name is free again.
	if err := write(t, s, name, []byte("whole")); err != nil {
		t.Fatal(err)
	}
}

func overwriteRefused(t *testing.T, s release.Artifacts) {
	name := "crm/migrations/crm-m7.relbot"
	if err := write(t, s, name, []byte("first")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(ctx, name)
	wantCode(t, "Create over an existing artifact", err, release.CodeConflict)
	// Two uploads of one name: the second to commit is refused.
	w1, err := s.Create(ctx, "crm/x")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Create(ctx, "crm/x")
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("one"))
	w2.Write([]byte("two"))
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "the second Commit", w2.Commit(), release.CodeConflict)
	if got := string(read(t, s, "crm/x")); got != "one" {
		t.Fatalf("content %q, want the first commit's", got)
	}
	if got := string(read(t, s, name)); got != "first" {
		t.Fatalf("content %q, want first", got)
	}
}

func badNames(t *testing.T, s release.Artifacts) {
	for _, name := range []string{"", ".", "/etc/passwd", "../secret", "crm/../../secret", "./crm/b", "crm//b", "crm/b/", `crm\b`, "crm/.tmp-b"} {
		_, err := s.Create(ctx, name)
		wantCode(t, "Create "+name, err, release.CodeInvalid)
		if !strings.Contains(release.ErrorMessage(err), "invalid artifact name") {
			t.Errorf("Create %q: message %q", name, release.ErrorMessage(err))
		}
		_, err = s.Open(ctx, name)
		wantCode(t, "Open "+name, err, release.CodeInvalid)
		wantCode(t, "Remove "+name, s.Remove(ctx, name), release.CodeInvalid)
	}
}

func remove(t *testing.T, s release.Artifacts) {
	name := "crm/backups/crm-b1.relbot"
	if err := write(t, s, name, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	_, err := s.Open(ctx, name)
	wantCode(t, "Open after Remove", err, release.CodeNotFound)
	wantCode(t, "Remove again", s.Remove(ctx, name), release.CodeNotFound)
	_, err = s.Open(ctx, "crm/backups")
	wantCode(t, "Open a folder", err, release.CodeNotFound)
}

func cancelled(t *testing.T, s release.Artifacts) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(c, "crm/a"); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
}
