package archive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Writer writes an archive. Members may be written from several goroutines
// at once; each compresses and seals its own chunks, and only the append to
// the file is serialised.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	off      int64
	err      error
	members  []Member
	names    map[string]bool
	seal     *sealer
	enc      *zstd.Encoder
	header   [32]byte
	finished bool
}

var encoderOnce = sync.OnceValues(func() (*zstd.Encoder, error) {
	// EncodeAll is safe for concurrent use; one encoder serves every writer.
	// Its concurrency is how many chunks it compresses at once (EncodeAll
	// waits for a free one): with 1, the backup's workers took turns
	// compressing, one core for all of them.
	// The fastest level with entropy coding of literals kept on: COPY text
	// of bytea is hex with no repeats, which only entropy coding halves;
	// measured on the 1 GB benchmark database it gives a smaller archive
	// than the default level at a quarter of its CPU.
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
})

// NewWriter writes h to w and returns a Writer for the members. With a
// non-empty passphrase every chunk and the manifest are encrypted.
func NewWriter(w io.Writer, h Header, passphrase string) (*Writer, error) {
	enc, err := encoderOnce()
	if err != nil {
		return nil, err
	}
	aw := &Writer{w: w, enc: enc, names: map[string]bool{}}
	h.Format = FormatVersion
	if passphrase != "" {
		kdfSalt, err := writeSalt(passphrase)
		if err != nil {
			return nil, err
		}
		salt := make([]byte, saltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		kdf := writeKDF
		e := &Encryption{Alg: algScryptArchiveSalt, Salt: kdfSalt, ArchiveSalt: salt, KDF: &kdf}
		master, err := masterKey(passphrase, e)
		if err != nil {
			return nil, err
		}
		if e.KeyCheck, err = keyCheck(master, salt); err != nil {
			return nil, err
		}
		if aw.seal, err = newSealer(master, salt); err != nil {
			return nil, err
		}
		h.Encryption = e
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	aw.header = sha256.Sum256(hb)
	var lenBuf [4]byte
	binary.BigEndian.PutUint32(lenBuf[:], uint32(len(hb)))
	if err := aw.append([]byte(magic), lenBuf[:], hb); err != nil {
		return nil, err
	}
	return aw, nil
}

func (aw *Writer) append(parts ...[]byte) error {
	if aw.err != nil {
		return aw.err
	}
	for _, p := range parts {
		n, err := aw.w.Write(p)
		aw.off += int64(n)
		if err != nil {
			aw.err = fmt.Errorf("write archive: %w", err)
			return aw.err
		}
	}
	return nil
}

// encode compresses and, with a key, seals one chunk's content, into
// zbuf and sealBuf (nil: allocated).
func (aw *Writer) encode(raw []byte, aad string, zbuf, sealBuf []byte) []byte {
	if zbuf == nil {
		zbuf = make([]byte, 0, len(raw)/2+64)
	}
	z := aw.enc.EncodeAll(raw, zbuf[:0])
	if aw.seal == nil {
		return z
	}
	if sealBuf == nil {
		sealBuf = make([]byte, 0, len(z)+64)
	}
	return aw.seal.seal(sealBuf[:0], z, aad)
}

// storedBuffers hold a chunk as stored while it is written: as large as
// a chunk can be stored, since a chunk of random bytes (a scan, a PDF)
// does not shrink and a smaller buffer was grown and copied each time.
var storedBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxStoredChunk); return &b }}

func (aw *Writer) writeChunk(stored []byte, raw int) (ChunkRef, error) {
	sum := sha256.Sum256(stored)
	aw.mu.Lock()
	defer aw.mu.Unlock()
	ref := ChunkRef{Offset: aw.off, Length: int64(len(stored)), Raw: int64(raw), SHA256: hex.EncodeToString(sum[:])}
	return ref, aw.append(stored)
}

// writeSalts is the scrypt salt this process writes archives with, per
// passphrase. Every archive of an installation is encrypted with its one
// backup key, so a scrypt salt per archive made an attacker do no more
// work (the passphrase found for one archive opens them all); it cost
// every backup a scrypt run, 0.1 s and 32 MiB here. Each archive still
// has keys of its own, expanded with its own salt (ArchiveSalt).
var writeSalts = struct {
	sync.Mutex
	byPassphrase map[[32]byte][]byte
}{byPassphrase: map[[32]byte][]byte{}}

func writeSalt(passphrase string) ([]byte, error) {
	id := sha256.Sum256([]byte("relbot write salt\x00" + passphrase))
	writeSalts.Lock()
	defer writeSalts.Unlock()
	if salt, ok := writeSalts.byPassphrase[id]; ok {
		return salt, nil
	}
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	writeSalts.byPassphrase[id] = salt
	return salt, nil
}

// chunkBuffers are members' chunk buffers: a backup writes a member per
// table and per file, most of them far smaller than a chunk, and a fresh
// 4 MiB buffer for each was most of the writer's allocation.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, ChunkSize); return &b }}

// Create starts a member. Names must be unique.
func (aw *Writer) Create(name string) (*MemberWriter, error) {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	if aw.names[name] {
		return nil, fmt.Errorf("archive member %q written twice", name)
	}
	aw.names[name] = true
	buf := chunkBuffers.Get().(*[]byte)
	return &MemberWriter{aw: aw, m: Member{Name: name}, sum: sha256.New(), buf: (*buf)[:0]}, nil
}

// MemberWriter streams one member's content into chunks.
type MemberWriter struct {
	aw  *Writer
	m   Member
	sum hash.Hash
	buf []byte
}

func (mw *MemberWriter) Write(p []byte) (int, error) {
	n := len(p)
	mw.sum.Write(p)
	mw.m.Bytes += int64(n)
	for len(p) > 0 {
		k := min(cap(mw.buf)-len(mw.buf), len(p))
		mw.buf = append(mw.buf, p[:k]...)
		p = p[k:]
		if len(mw.buf) == cap(mw.buf) {
			if err := mw.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (mw *MemberWriter) flush() error {
	if len(mw.buf) == 0 {
		return nil
	}
	zbuf := storedBuffers.Get().(*[]byte)
	defer storedBuffers.Put(zbuf)
	var sealBuf []byte
	if mw.aw.seal != nil {
		sb := storedBuffers.Get().(*[]byte)
		defer storedBuffers.Put(sb)
		sealBuf = *sb
	}
	stored := mw.aw.encode(mw.buf, chunkAAD(mw.m.Name, len(mw.m.Chunks)), *zbuf, sealBuf)
	ref, err := mw.aw.writeChunk(stored, len(mw.buf))
	if err != nil {
		return err
	}
	mw.m.Chunks = append(mw.m.Chunks, ref)
	mw.buf = mw.buf[:0]
	return nil
}

// Close writes what is buffered and records the member.
func (mw *MemberWriter) Close() (Member, error) {
	if err := mw.flush(); err != nil {
		return Member{}, err
	}
	mw.m.SHA256 = hex.EncodeToString(mw.sum.Sum(nil))
	mw.aw.mu.Lock()
	mw.aw.members = append(mw.aw.members, mw.m)
	mw.aw.mu.Unlock()
	buf := mw.buf[:0]
	mw.buf = nil
	chunkBuffers.Put(&buf)
	return mw.m, nil
}

// Finish writes the manifest with meta and the trailer. Members still open
// are not in the manifest.
func (aw *Writer) Finish(meta any) error {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	if aw.finished {
		return errors.New("archive already finished")
	}
	aw.finished = true
	mb, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode manifest meta: %w", err)
	}
	body, err := json.Marshal(Manifest{Members: aw.members, Meta: mb})
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	stored := aw.encode(body, manifestAAD, nil, nil)
	sum := sha256.Sum256(stored)
	var t [trailerSize]byte
	binary.BigEndian.PutUint64(t[0:8], uint64(aw.off))
	binary.BigEndian.PutUint64(t[8:16], uint64(len(stored)))
	copy(t[16:48], aw.header[:])
	copy(t[48:80], sum[:])
	copy(t[80:88], endMagic)
	return aw.append(stored, t[:])
}
