package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// New archives run the passphrase through scrypt, with its parameters in
// the header; the key check no longer follows from a hash of the
// passphrase alone, so guessing offline costs a scrypt run per guess.
func TestNewArchivesUseScrypt(t *testing.T) {
	pass := "correct horse battery staple"
	file := write(t, sample()[:2], pass)
	r, err := Open(bytes.NewReader(file), int64(len(file)), pass)
	if err != nil {
		t.Fatal(err)
	}
	e := r.Header().Encryption
	if e == nil || e.Alg != algScryptArchiveSalt || e.KDF == nil || *e.KDF != (KDF{Name: "scrypt", N: 1 << 15, R: 8, P: 1}) || len(e.Salt) != 16 || len(e.ArchiveSalt) != 16 {
		t.Fatalf("encryption header: %+v", e)
	}
	if hkdfOnly, _ := keyCheck([]byte(pass), e.Salt); hkdfOnly == e.KeyCheck {
		t.Fatal("the key check is still a plain HKDF of the passphrase")
	}
	if _, err := Open(bytes.NewReader(file), int64(len(file)), "correct horse battery stapler"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

// The archives one process writes with one passphrase share scrypt's
// salt (one derivation, not one per backup), while each has keys of its
// own (its own archive salt, so its own key check); another passphrase
// gets another salt.
func TestArchivesOfOneProcessShareTheScryptSalt(t *testing.T) {
	encryption := func(file []byte, pass string) *Encryption {
		t.Helper()
		r, err := Open(bytes.NewReader(file), int64(len(file)), pass)
		if err != nil {
			t.Fatal(err)
		}
		return r.Header().Encryption
	}
	pass := "a passphrase only this test uses"
	a := encryption(write(t, sample()[:1], pass), pass)
	b := encryption(write(t, sample()[1:2], pass), pass)
	if !bytes.Equal(a.Salt, b.Salt) {
		t.Fatal("two archives of one process and passphrase have different scrypt salts")
	}
	if bytes.Equal(a.ArchiveSalt, b.ArchiveSalt) || a.KeyCheck == b.KeyCheck {
		t.Fatalf("two archives share their keys: %+v and %+v", a, b)
	}
	other := "another passphrase only this test uses"
	if c := encryption(write(t, sample()[:1], other), other); bytes.Equal(c.Salt, a.Salt) {
		t.Fatal("two passphrases share a scrypt salt")
	}
}

// A header of the archive-salt format without its 16-byte archive salt is
// damaged, not opened with some other key.
func TestMissingArchiveSaltIsDamage(t *testing.T) {
	for _, salt := range [][]byte{nil, make([]byte, 8), make([]byte, 32)} {
		_, err := keySalt(&Encryption{Alg: algScryptArchiveSalt, Salt: make([]byte, 16), ArchiveSalt: salt})
		var d *DamagedError
		if !errors.As(err, &d) || d.Member != "header" {
			t.Errorf("archive salt of %d bytes: %v", len(salt), err)
		}
	}
}

// Archives of the earlier formats (testdata, written by those relbots:
// HKDF of the passphrase; scrypt with one salt for everything) still
// open, check and read with their passphrase, and still tell a wrong or
// missing one.
func TestOldArchivesStillRead(t *testing.T) {
	for _, c := range []struct {
		file, pass, alg, id string
		created             time.Time
		readme              string
	}{
		{"hkdf-passphrase.relbot", "an old backup passphrase", algHKDF, "crm-b7",
			time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), "hello from an archive written before scrypt\n"},
		{"scrypt-passphrase.relbot", "a backup passphrase of the scrypt format", algScrypt, "crm-b8",
			time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), "hello from an archive of the scrypt format\n"},
	} {
		t.Run(c.alg, func(t *testing.T) {
			file, err := os.ReadFile("testdata/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(bytes.NewReader(file), int64(len(file)), c.pass)
			if err != nil {
				t.Fatal(err)
			}
			h := r.Header()
			if h.Encryption == nil || h.Encryption.Alg != c.alg || (h.Encryption.KDF != nil) != (c.alg == algScrypt) ||
				h.Encryption.ArchiveSalt != nil || h.ID != c.id || !h.CreatedAt.Equal(c.created) {
				t.Fatalf("header: %+v, encryption %+v", h, h.Encryption)
			}
			if err := r.CheckStored(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := r.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"table/public.customers":       strings.Repeat("1\tAda Lovelace\t{\"tier\": \"gold\"}\n2\tAlan Turing\t\\N\n", 90_000),
				"storage/apps/main/readme.txt": c.readme,
			}
			if len(r.Members()) != len(want) {
				t.Fatalf("members: %+v", r.Members())
			}
			for name, data := range want {
				m, ok := r.Member(name)
				if !ok {
					t.Fatalf("no member %s", name)
				}
				got, err := io.ReadAll(r.Open(m))
				if err != nil || string(got) != data {
					t.Fatalf("member %s: %d bytes (%v), want %d", name, len(got), err, len(data))
				}
			}
			if len(r.Members()[0].Chunks)+len(r.Members()[1].Chunks) < 3 {
				t.Fatal("the old archive should span several chunks")
			}
			for pass, wantErr := range map[string]error{"a new backup passphrase": ErrWrongKey, "": ErrNeedKey} {
				if _, err := Open(bytes.NewReader(file), int64(len(file)), pass); !errors.Is(err, wantErr) {
					t.Fatalf("passphrase %q: %v, want %v", pass, err, wantErr)
				}
			}
		})
	}
}

// A header naming an unknown derivation is from a newer relbot; one whose
// scrypt parameters would take gigabytes is refused before any work.
func TestKDFParametersAreBounded(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, 16)
	for name, c := range map[string]struct {
		e    Encryption
		want string
	}{
		"unknown alg":     {Encryption{Alg: "chacha20/argon2id", Salt: salt}, "newer relbot"},
		"unknown kdf":     {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "argon2id", N: 1, R: 1, P: 1}}, "newer relbot"},
		"no kdf":          {Encryption{Alg: algScrypt, Salt: salt}, "newer relbot"},
		"huge N":          {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "scrypt", N: 1 << 30, R: 8, P: 1}}, "impossible scrypt parameters"},
		"huge memory":     {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "scrypt", N: 1 << 18, R: 32, P: 1}}, "impossible scrypt parameters"},
		"N not a power 2": {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "scrypt", N: 1000, R: 8, P: 1}}, "impossible scrypt parameters"},
		"p zero":          {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "scrypt", N: 1024, R: 8, P: 0}}, "impossible scrypt parameters"},
		"huge time":       {Encryption{Alg: algScrypt, Salt: salt, KDF: &KDF{Name: "scrypt", N: 1 << 18, R: 8, P: 16}}, "impossible scrypt parameters"},
	} {
		start := time.Now()
		_, err := masterKey("pass", &c.e)
		if err == nil || !strings.Contains(err.Error(), c.want) || time.Since(start) > time.Second {
			t.Errorf("%s: %v after %s, want %q at once", name, err, time.Since(start), c.want)
		}
	}
}
