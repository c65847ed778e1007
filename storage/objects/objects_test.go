package objects

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/internal/artifactstest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv("RELBOT_OBJECTS_HELPER"); url != "" {
		uploadAndHang(url)
		return
	}
	testenv.Main(m)
}

// uploadAndHang is the process TestKilledUploadLeavesNoObject kills: it
// uploads three parts of an artifact, says so, and waits to be killed.
func uploadAndHang(url string) {
	s, err := Open(context.Background(), url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w, err := s.Create(context.Background(), "crm/backups/crm-b7.relbot")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	part := bytes.Repeat([]byte("p"), PartSize)
	for range 3 {
		if _, err := w.Write(part); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Println("UPLOADING")
	select {}
}

// A process killed (SIGKILL) in the middle of an upload leaves no object
// under the name, so nothing could take it for a backup; its parts stay
// in an incomplete upload, which opening the store aborts once stale.
func TestKilledUploadLeavesNoObject(t *testing.T) {
	raw := testenv.S3(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RELBOT_OBJECTS_HELPER="+raw)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "UPLOADING\n" {
		cmd.Process.Kill()
		t.Fatalf("helper: %q %v", line, err)
	}
	time.Sleep(500 * time.Millisecond) // the parts in flight reach the server
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s, err := Open(context.Background(), raw) // the dead process's bucket
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Open(context.Background(), "crm/backups/crm-b7.relbot"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("after the kill: %v, want no object", err)
	}
	if err := s.List(context.Background(), func(name string, _ int64) error { return fmt.Errorf("listed %s", name) }); err != nil {
		t.Fatalf("after the kill: %v, want nothing listed", err)
	}
	if n := incompleteUploads(t, raw); n != 1 {
		t.Fatalf("%d incomplete uploads after the kill, want the dead one's", n)
	}
	// As the store does for uploads older than a day.
	if err := s.abortUploads("", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := incompleteUploads(t, raw); n != 0 {
		t.Fatalf("%d incomplete uploads after the clean-up", n)
	}
}

func incompleteUploads(t *testing.T, raw string) int {
	t.Helper()
	u, _ := url.Parse(raw)
	resp, err := http.Get(u.Query().Get("endpoint") + "/" + u.Host + "?uploads")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Uploads []struct {
			Key string `xml:"Key"`
		} `xml:"Upload"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list uploads: %s %v", resp.Status, err)
	}
	return len(list.Uploads)
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The contract the directory store keeps, against a real S3-compatible
// server (SeaweedFS).
func TestContract(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) release.Artifacts { return open(t) })
}

// A bad URL, or a bucket that does not answer, is one clear line naming
// the store without its keys.
func TestBadStores(t *testing.T) {
	testenv.S3(t) // the SDK's credentials
	for _, c := range []struct {
		url  string
		code release.Code
		says string
	}{
		{"s3://", release.CodeInvalid, "want s3://bucket"},
		{"http://host/x", release.CodeInvalid, "want s3://bucket"},
		{"s3://b?endpoint=http://127.0.0.1:1&use_path_style=true&region=us-east-1", release.CodeUnavailable, "does not answer"},
		{"s3://b?endpoint=http://127.0.0.1:1&secret=sk-hidden", release.CodeInvalid, `unknown query parameter "secret"`},
		{"s3://b?use_path_style=maybe", release.CodeInvalid, "use_path_style"},
	} {
		_, err := Open(context.Background(), c.url)
		msg := release.ErrorMessage(err)
		if release.ErrorCode(err) != c.code || !strings.Contains(msg, c.says) || strings.Contains(msg, "sk-hidden") || strings.Contains(msg, "\n") {
			t.Errorf("%s: %v (code %s), want %s saying %q", c.url, err, release.ErrorCode(err), c.code, c.says)
		}
	}
}

// An upload aborted after several parts (a backup that failed half-way)
// leaves no incomplete multipart upload behind in the bucket, and no
// object.
func TestAbortedUploadLeavesNothing(t *testing.T) {
	raw := testenv.S3(t)
	s, err := Open(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.Create(context.Background(), "crm/backups/crm-b1.relbot")
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("x"), 1<<20)
	for range 3 * PartSize >> 20 {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if n := incompleteUploads(t, raw); n != 0 {
		t.Fatalf("%d incomplete uploads left", n)
	}
	if _, err := s.Open(context.Background(), "crm/backups/crm-b1.relbot"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("open after abort: %v", err)
	}
}

// An installation's artifacts move from a directory to a bucket, each
// read back and checked; a second run finds them present; an artifact the
// bucket holds with other bytes stops it, named, and is left alone.
func TestMigrateFromADirectory(t *testing.T) {
	ctx := context.Background()
	dir, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"crm/backups/crm-b1.relbot":    bytes.Repeat([]byte("backup "), 3<<20), // several parts
		"crm/migrations/crm-m1.relbot": []byte("migration"),
		"crm/versions/ab/abcdef":       []byte("blob"),
	}
	for name, data := range files {
		w, err := dir.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	b := open(t)
	var seen []string
	rep, err := artifacts.Migrate(ctx, dir, b, func(name string, _ int64, what string) { seen = append(seen, name+": "+what) })
	if err != nil || rep.Artifacts != 3 || rep.Copied != 3 || rep.Present != 0 || rep.Bytes != int64(len(files["crm/backups/crm-b1.relbot"])+13) {
		t.Fatalf("migrate: %+v, %v (%v)", rep, err, seen)
	}
	var listed []string
	if err := b.List(ctx, func(name string, size int64) error {
		if int64(len(files[name])) != size {
			t.Errorf("%s: %d bytes listed, %d written", name, size, len(files[name]))
		}
		listed = append(listed, name)
		return nil
	}); err != nil || len(listed) != 3 {
		t.Fatalf("listed %v, %v", listed, err)
	}
	for name, data := range files {
		a, err := b.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(io.NewSectionReader(a, 0, a.Size()))
		a.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("%s differs in the bucket", name)
		}
	}
	if rep, err := artifacts.Migrate(ctx, dir, b, func(string, int64, string) {}); err != nil || rep.Present != 3 || rep.Copied != 0 {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
	other := open(t)
	w, _ := other.Create(ctx, "crm/migrations/crm-m1.relbot")
	w.Write([]byte("not the same"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err = artifacts.Migrate(ctx, dir, other, func(string, int64, string) {})
	if release.ErrorCode(err) != release.CodeConflict || !strings.Contains(release.ErrorMessage(err), "crm/migrations/crm-m1.relbot is in the target already with other bytes") {
		t.Fatalf("a differing artifact: %v", err)
	}
}
