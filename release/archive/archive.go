// Package archive is relbot's backup file format: one file holding named
// members (a table's COPY stream, a storage file), each cut into chunks that
// are compressed with zstd, optionally sealed with AES-256-GCM, and
// checksummed with sha256.
//
// Layout:
//
//	"RELBOTA1" | header length (uint32 BE) | header JSON
//	chunk ... chunk                       (members interleave: workers write in parallel)
//	manifest (a chunk: zstd, sealed when encrypted)
//	trailer: manifest offset, manifest length (uint64 BE), sha256(header),
//	         sha256(stored manifest), "RELBOTZ1"
//
// The manifest lists every member with the offset, length and sha256 of each
// of its chunks and the sha256 of its whole content, so a reader can check
// every byte of the file before it trusts any, and can read members in any
// order and in parallel (io.ReaderAt). Chunks and manifest tile the file
// exactly: a flipped byte anywhere lands in something that is checked.
package archive

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/scrypt"
)

const (
	magic       = "RELBOTA1"
	endMagic    = "RELBOTZ1"
	trailerSize = 8 + 8 + 32 + 32 + 8
	// FormatVersion is written in every header; readers refuse newer ones.
	FormatVersion = 1
	// ChunkSize is how much raw content one chunk holds: large enough for
	// zstd to find repetition, small enough to keep memory flat.
	ChunkSize = 4 << 20
	// maxStoredChunk bounds what a reader allocates for one chunk, so a
	// damaged manifest cannot make it allocate gigabytes.
	maxStoredChunk = ChunkSize + ChunkSize/8 + 1<<16
	maxHeader      = 1 << 20
)

// Header says what an archive is before anything else is read.
type Header struct {
	Format           int         `json:"format"`
	ID               string      `json:"id"`
	App              string      `json:"app"`
	Env              string      `json:"env"`
	Kind             string      `json:"kind"`
	CreatedBy        string      `json:"created_by"`
	CreatedAt        time.Time   `json:"created_at"`
	ServerVersion    string      `json:"server_version"`
	ServerVersionNum int         `json:"server_version_num"`
	Encryption       *Encryption `json:"encryption,omitempty"`
}

// Encryption records how the archive's key is derived from the passphrase
// and a value that tells a wrong passphrase from damage.
type Encryption struct {
	Alg string `json:"alg"`
	// Salt is scrypt's (and, before algScryptArchiveSalt, HKDF's too).
	Salt []byte `json:"salt"`
	// ArchiveSalt is this archive's alone: its keys are expanded with it
	// (algScryptArchiveSalt), so archives whose Salt is shared do not
	// share a key.
	ArchiveSalt []byte `json:"archive_salt,omitempty"`
	KeyCheck    string `json:"key_check"`
	// KDF is the password hash the passphrase goes through first; archives
	// written before it existed (Alg algHKDF) have none.
	KDF *KDF `json:"kdf,omitempty"`
}

// KDF names a password key derivation and its parameters.
type KDF struct {
	Name string `json:"name"` // "scrypt"
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
}

const (
	// algHKDF is the first archives' derivation: HKDF of the passphrase
	// itself, which lets anyone holding an archive guess passphrases at
	// hash speed. Still read; no longer written.
	algHKDF = "aes-256-gcm/hkdf-sha256"
	// algScrypt runs the passphrase through scrypt (Encryption.KDF) first.
	// Still read; no longer written.
	algScrypt = "aes-256-gcm/scrypt/hkdf-sha256"
	// algScryptArchiveSalt is algScrypt with the keys expanded from the
	// archive's own salt (Encryption.ArchiveSalt), which lets the
	// archives of a process share scrypt's salt and its one run
	// (writeSalt).
	algScryptArchiveSalt = "aes-256-gcm/scrypt/hkdf-sha256/archive-salt"
)

// writeKDF is what new archives use: scrypt's recommended interactive
// cost (32 MiB, about 0.1 s on a server core) per archive opened, which
// makes each offline guess that expensive too.
var writeKDF = KDF{Name: "scrypt", N: 1 << 15, R: 8, P: 1}

// checkKDF refuses parameters a damaged or hostile header could use to make
// a reader spend unbounded memory or time: at most eight times what is
// written today in either (256 MiB).
func checkKDF(k *KDF) error {
	if k == nil || k.Name != "scrypt" {
		name := "none"
		if k != nil {
			name = k.Name
		}
		return fmt.Errorf("%w (key derivation %q)", ErrNewer, name)
	}
	if k.N < 2 || k.N&(k.N-1) != 0 || k.N > 1<<18 || k.R < 1 || k.R > 32 || k.P < 1 || k.P > 16 || 128*k.N*k.R > 256<<20 || k.N*k.R*k.P > 1<<21 {
		return damaged("header", "impossible scrypt parameters N=%d r=%d p=%d", k.N, k.R, k.P)
	}
	return nil
}

// ChunkRef locates one stored chunk.
type ChunkRef struct {
	Offset int64  `json:"o"`
	Length int64  `json:"l"` // stored bytes
	Raw    int64  `json:"r"` // content bytes
	SHA256 string `json:"h"` // of the stored bytes
}

// Member is one named stream in the archive.
type Member struct {
	Name   string     `json:"name"`
	Bytes  int64      `json:"bytes"`  // content bytes
	SHA256 string     `json:"sha256"` // of the whole content
	Chunks []ChunkRef `json:"chunks"`
}

// Manifest is the archive's table of contents plus the caller's metadata.
type Manifest struct {
	Members []Member        `json:"members"`
	Meta    json.RawMessage `json:"meta"`
}

// Errors a reader returns; DamagedError names the damaged part.
var (
	ErrNotArchive = errors.New("not a relbot archive")
	ErrTruncated  = errors.New("archive is truncated (its end is missing)")
	ErrNeedKey    = errors.New("archive is encrypted and no backup key is configured")
	ErrWrongKey   = errors.New("archive was encrypted with a different backup key")
	ErrNewer      = errors.New("archive was written by a newer relbot")
)

// DamagedError says which part of an archive failed its check.
type DamagedError struct {
	Member string
	Detail string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("archive is damaged: %s: %s", e.Member, e.Detail)
}

func damaged(member, format string, args ...any) error {
	return &DamagedError{Member: member, Detail: fmt.Sprintf(format, args...)}
}

// sealer encrypts and authenticates chunks when the archive has a key.
type sealer struct{ aead cipher.AEAD }

// masterKey is what the per-purpose keys are expanded from: the scrypt
// hash of the passphrase, or for an archive of the first format the
// passphrase itself.
func masterKey(passphrase string, e *Encryption) ([]byte, error) {
	switch e.Alg {
	case algHKDF:
		return []byte(passphrase), nil
	case algScrypt, algScryptArchiveSalt:
		if err := checkKDF(e.KDF); err != nil {
			return nil, err
		}
		return scryptKey(passphrase, e.Salt, *e.KDF)
	}
	return nil, fmt.Errorf("%w (encryption %q)", ErrNewer, e.Alg)
}

// scryptKey derives once per passphrase, salt and parameters in a process:
// verify and restore open the same archive more than once.
func scryptKey(passphrase string, salt []byte, k KDF) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00%d\x00%d\x00%s\x00", len(passphrase), k.N, k.R, k.P, passphrase)
	h.Write(salt)
	id := string(h.Sum(nil))
	scryptCache.Lock()
	key, ok := scryptCache.keys[id]
	scryptCache.Unlock()
	if ok {
		return key, nil
	}
	key, err := scrypt.Key([]byte(passphrase), salt, k.N, k.R, k.P, 32)
	if err != nil {
		return nil, err
	}
	scryptCache.Lock()
	if len(scryptCache.keys) >= 64 {
		clear(scryptCache.keys) // a server sees few archives at once
	}
	scryptCache.keys[id] = key
	scryptCache.Unlock()
	return key, nil
}

var scryptCache = struct {
	sync.Mutex
	keys map[string][]byte
}{keys: map[string][]byte{}}

// keySalt is the salt the archive's keys are expanded with.
func keySalt(e *Encryption) ([]byte, error) {
	if e.Alg != algScryptArchiveSalt {
		return e.Salt, nil
	}
	if len(e.ArchiveSalt) != saltSize {
		return nil, damaged("header", "archive salt of %d bytes, want %d", len(e.ArchiveSalt), saltSize)
	}
	return e.ArchiveSalt, nil
}

// saltSize is the size of scrypt's salt and of an archive's own.
const saltSize = 16

func deriveKey(master, salt []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, master, salt, "relbot archive v1 "+purpose, 32)
}

func keyCheck(master, salt []byte) (string, error) {
	k, err := deriveKey(master, salt, "check")
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("relbot key check"))
	return hex.EncodeToString(m.Sum(nil)), nil
}

func newSealer(master, salt []byte) (*sealer, error) {
	k, err := deriveKey(master, salt, "data")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext. The member name and chunk index are
// authenticated, so chunks cannot be swapped between members or reordered.
func (s *sealer) seal(dst, plain []byte, aad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	dst = append(dst[:0], nonce...)
	return s.aead.Seal(dst, nonce, plain, []byte(aad))
}

func (s *sealer) open(dst, stored []byte, aad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(stored) < n {
		return nil, errors.New("sealed chunk too short")
	}
	return s.aead.Open(dst[:0], stored[:n], stored[n:], []byte(aad))
}

func chunkAAD(member string, index int) string { return fmt.Sprintf("%s\x00%d", member, index) }

const manifestAAD = "\x00manifest"
