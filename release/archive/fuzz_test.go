package archive

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"
)

const fuzzPass = "a fuzzed passphrase"

// The reader takes any bytes without panicking or allocating beyond its
// bounds; whatever it opens can be checked and read to the end. Seeds are
// real archives: plain, encrypted with scrypt, and two written before
// scrypt (one a backup of a database).
func FuzzArchiveOpen(f *testing.F) {
	small := []memberData{{"empty", nil}, {"small", []byte("hello\n")}, {"table/public.t", []byte("1\ta\n2\tb\n")}}
	for _, pass := range []string{"", fuzzPass} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Header{ID: "crm-b1", App: "crm", Env: "production", CreatedAt: time.Unix(0, 0).UTC()}, pass)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range small {
			mw, err := w.Create(m.name)
			if err != nil {
				f.Fatal(err)
			}
			mw.Write(m.data)
			if _, err := mw.Close(); err != nil {
				f.Fatal(err)
			}
		}
		if err := w.Finish(map[string]any{"schema": map[string]any{"tables": []string{"t"}}}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, name := range []string{"testdata/hkdf-passphrase.relbot", "../pgsnap/testdata/hkdf-backup.relbot"} {
		old, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(old)
	}
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, pass := range []string{"", fuzzPass, "an old backup passphrase"} {
			r, err := Open(bytes.NewReader(b), int64(len(b)), pass)
			if err != nil {
				continue
			}
			_ = r.Header()
			_ = r.Meta()
			stored := r.CheckStored(context.Background())
			checked := r.Check(context.Background())
			if stored == nil && checked != nil {
				t.Fatalf("CheckStored passed what Check refuses: %v", checked)
			}
			for _, m := range r.Members() {
				_, _ = io.Copy(io.Discard, r.Open(&m))
			}
		}
	})
}
