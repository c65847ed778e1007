package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

type memberData struct {
	name string
	data []byte
}

// sample builds members of different sizes: empty, small, several chunks,
// and incompressible.
func sample() []memberData { return sampleOf(2*ChunkSize + 777) }

// sampleOf scales the larger members to about size bytes.
func sampleOf(size int) []memberData {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, size/2+12345)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	var text strings.Builder
	for i := 0; text.Len() < size; i++ {
		fmt.Fprintf(&text, "%d\tcustomer %d\t{\"k\": %d}\n", i, i%97, i*7)
	}
	return []memberData{
		{"empty", nil},
		{"small", []byte("hello\n")},
		{"text", []byte(text.String())},
		{"noise", noise},
	}
}

func write(t *testing.T, members []memberData, passphrase string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{ID: "crm-b1", App: "crm", Env: "production", CreatedAt: time.Now().UTC()}, passphrase)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(members))
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mw, err := w.Create(m.name)
			if err != nil {
				errs <- err
				return
			}
			// Odd write sizes cross chunk boundaries.
			for p := m.data; len(p) > 0; {
				k := min(len(p), 99991)
				if _, err := mw.Write(p[:k]); err != nil {
					errs <- err
					return
				}
				p = p[k:]
			}
			_, err = mw.Close()
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(map[string]string{"note": "meta"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, pass := range []string{"", "correct horse battery staple"} {
		t.Run(fmt.Sprintf("encrypted=%v", pass != ""), func(t *testing.T) {
			members := sample()
			file := write(t, members, pass)
			r, err := Open(bytes.NewReader(file), int64(len(file)), pass)
			if err != nil {
				t.Fatal(err)
			}
			if r.Header().App != "crm" || r.Header().Format != FormatVersion {
				t.Fatalf("header %+v", r.Header())
			}
			if (r.Header().Encryption != nil) != (pass != "") {
				t.Fatalf("encryption recorded wrongly: %+v", r.Header().Encryption)
			}
			if string(r.Meta()) != `{"note":"meta"}` {
				t.Fatalf("meta %s", r.Meta())
			}
			if err := r.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, want := range members {
				m, ok := r.Member(want.name)
				if !ok {
					t.Fatalf("member %s missing", want.name)
				}
				got, err := io.ReadAll(r.Open(m))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want.data) {
					t.Fatalf("member %s: %d bytes back, want %d", want.name, len(got), len(want.data))
				}
			}
			if pass != "" && bytes.Contains(file, []byte("customer 5\t")) {
				t.Fatal("encrypted archive holds plain text")
			}
		})
	}
}

func TestCompresses(t *testing.T) {
	members := sample()[:3]
	file := write(t, members, "")
	raw := 0
	for _, m := range members {
		raw += len(m.data)
	}
	if len(file)*3 > raw {
		t.Fatalf("archive %d bytes for %d bytes of repetitive text", len(file), raw)
	}
}

// Every flipped byte must be caught by Open or Check, naming a part.
func TestFlippedByteIsFound(t *testing.T) {
	for _, pass := range []string{"", "a passphrase of some length"} {
		file := write(t, sampleOf(300_000), pass)
		rng := rand.New(rand.NewPCG(3, 4))
		positions := []int{0, 9, 14, len(file) - 1, len(file) - 20, len(file) - 60, len(file) - 100}
		for range 60 {
			positions = append(positions, rng.IntN(len(file)))
		}
		for _, pos := range positions {
			bad := bytes.Clone(file)
			bad[pos] ^= 0x20
			err := openAndCheck(bad, pass)
			if err == nil {
				t.Fatalf("flip at %d of %d (encrypted=%v) not detected", pos, len(file), pass != "")
			}
			if strings.Contains(err.Error(), "CheckStored passed") {
				t.Fatalf("flip at %d: %v", pos, err)
			}
			var d *DamagedError
			if !errors.As(err, &d) && !errors.Is(err, ErrNotArchive) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("flip at %d: unexpected error kind %T: %v", pos, err, err)
			}
		}
	}
}

// openAndCheck opens and checks a file; the stored-bytes check alone must
// already find any damage, since restore relies on it before touching a
// database.
func openAndCheck(file []byte, pass string) error {
	r, err := Open(bytes.NewReader(file), int64(len(file)), pass)
	if err != nil {
		return err
	}
	if err := r.CheckStored(context.Background()); err != nil {
		return err
	}
	if err := r.Check(context.Background()); err != nil {
		return fmt.Errorf("CheckStored passed a file Check refuses: %w", err)
	}
	return nil
}

func TestDamageNamesMember(t *testing.T) {
	file := write(t, sample(), "")
	r, err := Open(bytes.NewReader(file), int64(len(file)), "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Member("text")
	bad := bytes.Clone(file)
	bad[m.Chunks[1].Offset+10] ^= 1
	err = openAndCheck(bad, "")
	var d *DamagedError
	if !errors.As(err, &d) || d.Member != "text" || !strings.Contains(err.Error(), "chunk 1") {
		t.Fatalf("want damage in member text chunk 1, got %v", err)
	}
}

func TestTruncatedForeignAndKeys(t *testing.T) {
	file := write(t, sample()[:2], "the right passphrase")
	cases := []struct {
		name string
		data []byte
		pass string
		want error
	}{
		{"truncated", file[:len(file)-7], "the right passphrase", ErrTruncated},
		{"cut in half", file[:len(file)/2], "the right passphrase", ErrTruncated},
		{"foreign", []byte("PGDMP\x01\x0e\x00 some pg_dump custom archive ..............................................................................."), "", ErrNotArchive},
		{"empty", nil, "", ErrNotArchive},
		{"wrong key", file, "a wrong passphrase", ErrWrongKey},
		{"no key", file, "", ErrNeedKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(c.data), int64(len(c.data)), c.pass)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestDuplicateMemberRefused(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create("a"); err == nil {
		t.Fatal("second member a accepted")
	}
}
