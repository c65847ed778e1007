package archive

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// maxManifest bounds the manifest a reader accepts (it grows with the number
// of members, not with their size).
const maxManifest = 1 << 30

var decoderOnce = sync.OnceValues(func() (*zstd.Decoder, error) {
	// DecodeAll is safe for concurrent use. The memory cap makes a damaged
	// frame that claims a huge size an error, not an allocation.
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(2*ChunkSize+1<<20))
})

// Reader reads an archive through io.ReaderAt.
type Reader struct {
	r         io.ReaderAt
	size      int64
	header    Header
	manifest  Manifest
	byName    map[string]*Member
	seal      *sealer
	dec       *zstd.Decoder
	dataStart int64
	manOff    int64
	manLen    int64
}

// Open reads and checks the header, trailer and manifest. passphrase is
// needed for encrypted archives.
// PeekHeader reads the header of what may be an archive without checking
// anything else: only to say what a file that does not open is (a
// migration file carries a signature after its archive).
func PeekHeader(r io.ReaderAt, size int64) (Header, bool) {
	var h Header
	head := make([]byte, len(magic)+4)
	if size < int64(len(head)) {
		return h, false
	}
	if _, err := r.ReadAt(head, 0); err != nil || string(head[:len(magic)]) != magic {
		return h, false
	}
	hlen := int64(binary.BigEndian.Uint32(head[len(magic):]))
	if hlen > maxHeader || int64(len(head))+hlen > size {
		return h, false
	}
	hb := make([]byte, hlen)
	if _, err := r.ReadAt(hb, int64(len(head))); err != nil {
		return h, false
	}
	return h, json.Unmarshal(hb, &h) == nil
}

func Open(r io.ReaderAt, size int64, passphrase string) (*Reader, error) {
	dec, err := decoderOnce()
	if err != nil {
		return nil, err
	}
	ar := &Reader{r: r, size: size, dec: dec}
	head := make([]byte, len(magic)+4)
	if size < int64(len(head)) {
		return nil, ErrNotArchive
	}
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if string(head[:len(magic)]) != magic {
		return nil, ErrNotArchive
	}
	if size < int64(len(head))+trailerSize {
		return nil, ErrTruncated
	}
	var t [trailerSize]byte
	if _, err := r.ReadAt(t[:], size-trailerSize); err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if string(t[80:88]) != endMagic {
		return nil, ErrTruncated
	}
	hlen := int64(binary.BigEndian.Uint32(head[len(magic):]))
	ar.dataStart = int64(len(head)) + hlen
	if hlen > maxHeader || ar.dataStart > size-trailerSize {
		return nil, damaged("header", "impossible length %d", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := r.ReadAt(hb, int64(len(head))); err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if sum := sha256.Sum256(hb); !bytes.Equal(sum[:], t[16:48]) {
		return nil, damaged("header", "checksum mismatch")
	}
	if err := json.Unmarshal(hb, &ar.header); err != nil {
		return nil, damaged("header", "%v", err)
	}
	if ar.header.Format > FormatVersion {
		return nil, fmt.Errorf("%w (format %d; this one reads up to %d)", ErrNewer, ar.header.Format, FormatVersion)
	}
	if e := ar.header.Encryption; e != nil {
		if passphrase == "" {
			return nil, ErrNeedKey
		}
		master, err := masterKey(passphrase, e)
		if err != nil {
			return nil, err
		}
		salt, err := keySalt(e)
		if err != nil {
			return nil, err
		}
		check, err := keyCheck(master, salt)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal([]byte(check), []byte(e.KeyCheck)) {
			return nil, ErrWrongKey
		}
		if ar.seal, err = newSealer(master, salt); err != nil {
			return nil, err
		}
	}
	ar.manOff = int64(binary.BigEndian.Uint64(t[0:8]))
	ar.manLen = int64(binary.BigEndian.Uint64(t[8:16]))
	if ar.manOff < ar.dataStart || ar.manLen <= 0 || ar.manLen > maxManifest || ar.manOff+ar.manLen != size-trailerSize {
		return nil, damaged("trailer", "manifest location out of range")
	}
	stored := make([]byte, ar.manLen)
	if _, err := r.ReadAt(stored, ar.manOff); err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	if sum := sha256.Sum256(stored); !bytes.Equal(sum[:], t[48:80]) {
		return nil, damaged("manifest", "checksum mismatch")
	}
	body, _, err := ar.decode(stored, manifestAAD, maxManifest, nil, nil)
	if err != nil {
		return nil, damaged("manifest", "%v", err)
	}
	if err := json.Unmarshal(body, &ar.manifest); err != nil {
		return nil, damaged("manifest", "%v", err)
	}
	ar.byName = make(map[string]*Member, len(ar.manifest.Members))
	for i := range ar.manifest.Members {
		m := &ar.manifest.Members[i]
		ar.byName[m.Name] = m
	}
	return ar, nil
}

// decode opens (with a key) and decompresses one stored chunk, into
// openBuf and outBuf when they are large enough; it returns the content
// and the opened buffer, for the next chunk to reuse.
func (ar *Reader) decode(stored []byte, aad string, limit int64, openBuf, outBuf []byte) (out, opened []byte, err error) {
	z := stored
	if ar.seal != nil {
		if z, err = ar.seal.open(openBuf[:0], stored, aad); err != nil {
			return nil, openBuf, fmt.Errorf("decrypt: %w", err)
		}
		openBuf = z
	}
	out, err = ar.dec.DecodeAll(z, outBuf[:0])
	if err != nil {
		return nil, openBuf, fmt.Errorf("decompress: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, openBuf, errors.New("content larger than recorded")
	}
	return out, openBuf, nil
}

// Header is the archive's header.
func (ar *Reader) Header() Header { return ar.header }

// Meta is the caller's metadata stored in the manifest.
func (ar *Reader) Meta() json.RawMessage { return ar.manifest.Meta }

// Members lists every member in the order they were completed.
func (ar *Reader) Members() []Member { return ar.manifest.Members }

// Member finds a member by name.
func (ar *Reader) Member(name string) (*Member, bool) {
	m, ok := ar.byName[name]
	return m, ok
}

// Check verifies the whole file: chunks and manifest tile it exactly, every
// chunk's stored checksum, and every member's content checksum after
// decoding. The first failure names the member.
func (ar *Reader) Check(ctx context.Context) error {
	if err := ar.CheckStored(ctx); err != nil {
		return err
	}
	for _, m := range ar.manifest.Members {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, ar.Open(&m)); err != nil {
			return err
		}
	}
	return nil
}

// CheckStored verifies every stored byte without decoding: chunks and
// manifest tile the file exactly and every chunk matches its sha256. A
// flipped byte anywhere fails it, naming the member, at the cost of one
// read of the file; readers still check content as they decode.
func (ar *Reader) CheckStored(ctx context.Context) error {
	type span struct {
		member string
		index  int
		ref    ChunkRef
	}
	var spans []span
	for _, m := range ar.manifest.Members {
		for i, c := range m.Chunks {
			spans = append(spans, span{m.Name, i, c})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].ref.Offset < spans[j].ref.Offset })
	at := ar.dataStart
	for _, s := range spans {
		if s.ref.Offset != at {
			return damaged(s.member, "chunk %d at offset %d does not follow the previous one (expected %d)", s.index, s.ref.Offset, at)
		}
		at += s.ref.Length
	}
	if at != ar.manOff {
		return damaged("manifest", "data ends at %d but the manifest starts at %d", at, ar.manOff)
	}
	buf := make([]byte, 0, maxStoredChunk)
	for _, s := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.ref.Length <= 0 || s.ref.Length > maxStoredChunk {
			return damaged(s.member, "chunk %d has an impossible length", s.index)
		}
		buf = buf[:s.ref.Length]
		if _, err := ar.r.ReadAt(buf, s.ref.Offset); err != nil {
			return fmt.Errorf("read %s chunk %d: %w", s.member, s.index, err)
		}
		if sum := sha256.Sum256(buf); hex.EncodeToString(sum[:]) != s.ref.SHA256 {
			return damaged(s.member, "chunk %d at offset %d: checksum mismatch", s.index, s.ref.Offset)
		}
	}
	return nil
}

// Open streams a member's content, checking each chunk as it is read and
// the whole content's checksum at the end.
func (ar *Reader) Open(m *Member) io.Reader {
	return &memberReader{ar: ar, m: m, sum: sha256.New()}
}

type memberReader struct {
	ar    *Reader
	m     *Member
	next  int
	cur   []byte
	sum   hash.Hash
	total int64
	err   error
	// The buffers of one chunk, reused for the next once it is read: a
	// chunk is megabytes, and a restore reads thousands.
	stored, opened, raw []byte
}

func (mr *memberReader) Read(p []byte) (int, error) {
	for len(mr.cur) == 0 {
		if mr.err != nil {
			return 0, mr.err
		}
		if mr.next == len(mr.m.Chunks) {
			mr.err = mr.finish()
			return 0, mr.err
		}
		if err := mr.load(); err != nil {
			mr.err = err
			return 0, err
		}
	}
	n := copy(p, mr.cur)
	mr.cur = mr.cur[n:]
	return n, nil
}

func (mr *memberReader) load() error {
	i := mr.next
	ref := mr.m.Chunks[i]
	name := mr.m.Name
	if ref.Length <= 0 || ref.Length > maxStoredChunk || ref.Raw < 0 || ref.Raw > ChunkSize ||
		ref.Offset < mr.ar.dataStart || ref.Offset+ref.Length > mr.ar.manOff {
		return damaged(name, "chunk %d has an impossible location", i)
	}
	mr.stored = slices.Grow(mr.stored[:0], int(ref.Length))[:ref.Length]
	stored := mr.stored
	if _, err := mr.ar.r.ReadAt(stored, ref.Offset); err != nil {
		return fmt.Errorf("read %s chunk %d: %w", name, i, err)
	}
	sum := sha256.Sum256(stored)
	if hex.EncodeToString(sum[:]) != ref.SHA256 {
		return damaged(name, "chunk %d at offset %d: checksum mismatch", i, ref.Offset)
	}
	raw, opened, err := mr.ar.decode(stored, chunkAAD(name, i), ref.Raw, mr.opened, mr.raw)
	mr.opened, mr.raw = opened, raw
	if err != nil {
		return damaged(name, "chunk %d: %v", i, err)
	}
	if int64(len(raw)) != ref.Raw {
		return damaged(name, "chunk %d: %d bytes instead of %d", i, len(raw), ref.Raw)
	}
	mr.sum.Write(raw)
	mr.total += int64(len(raw))
	mr.cur = raw
	mr.next++
	return nil
}

func (mr *memberReader) finish() error {
	if mr.total != mr.m.Bytes {
		return damaged(mr.m.Name, "%d bytes instead of %d", mr.total, mr.m.Bytes)
	}
	if hex.EncodeToString(mr.sum.Sum(nil)) != mr.m.SHA256 {
		return damaged(mr.m.Name, "content checksum mismatch")
	}
	return io.EOF
}
