package appdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"math/bits"
)

// RowChecksum is an order-independent checksum of a table's rows in COPY
// text form (one row per line): the sum, modulo 2^256, of every row's
// sha256. A restored table may keep its rows in another physical order
// than the source (the free space map places them), so what must match is
// the multiset of rows, not the byte stream. A sum, unlike XOR, does not
// cancel duplicate rows.
type RowChecksum struct {
	acc     [4]uint64
	partial []byte
	Rows    int64
	binary  *binaryTuples
}

// NewBinaryRowChecksum sums the rows of a COPY stream in binary format:
// each tuple's bytes (its field count, each field's length and bytes),
// hashed as they stream, so that a wide row is never held whole. The
// file's header and trailer are left out.
func NewBinaryRowChecksum() *RowChecksum {
	return &RowChecksum{binary: &binaryTuples{hash: sha256.New(), state: stateHeader, need: binaryHeaderLen}}
}

func (c *RowChecksum) Write(p []byte) (int, error) {
	n := len(p)
	if c.binary != nil {
		return n, c.binary.write(c, p)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			break
		}
		if len(c.partial) > 0 {
			c.partial = append(c.partial, p[:i+1]...)
			c.add(c.partial)
			c.partial = c.partial[:0]
		} else {
			c.add(p[:i+1])
		}
		p = p[i+1:]
	}
	return n, nil
}

func (c *RowChecksum) add(row []byte) {
	c.addSum(sha256.Sum256(row))
	c.Rows++
}

func (c *RowChecksum) addSum(s [32]byte) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		c.acc[i], carry = bits.Add64(c.acc[i], binary.BigEndian.Uint64(s[i*8:]), carry)
	}
}

// Sum is the checksum in hex. Rows not ended by a newline (there are none
// in COPY text) are left out.
func (c *RowChecksum) Sum() string {
	var b [32]byte
	for i := range 4 {
		binary.BigEndian.PutUint64(b[i*8:], c.acc[i])
	}
	return hex.EncodeToString(b[:])
}

// Add adds o's rows to c. The sum does not depend on how rows are grouped,
// so a table read in parts (ranges read by several workers) has the
// checksum of the same table read whole.
func (c *RowChecksum) Add(o *RowChecksum) {
	var carry uint64
	for i := 3; i >= 0; i-- {
		c.acc[i], carry = bits.Add64(c.acc[i], o.acc[i], carry)
	}
	c.Rows += o.Rows
}

// COPY's binary format: an 11-byte signature, a flags word and the length
// of a header extension; then tuples, each a field count (int16, -1 ends
// the data) and per field a length (int32, -1 for NULL) and its bytes.
const (
	binarySignature = "PGCOPY\n\377\r\n\000"
	binaryHeaderLen = len(binarySignature) + 4 + 4
)

type binaryState int

const (
	stateHeader binaryState = iota
	stateExtension
	stateTupleStart
	stateFieldLength
	stateFieldData
	stateTrailer
)

// binaryTuples cuts a binary COPY stream into tuples across writes.
type binaryTuples struct {
	hash   hash.Hash
	state  binaryState
	fixed  [binaryHeaderLen]byte // a header, field count or length cut between writes
	have   int
	need   int   // bytes still to take in the current state
	fields int   // fields of the current tuple still to come
	skip   int64 // header extension or field bytes still to come
	sum    [32]byte
}

var errBinaryCopy = errors.New("not COPY's binary format")

func (b *binaryTuples) write(c *RowChecksum, p []byte) error {
	for len(p) > 0 {
		switch b.state {
		case stateExtension:
			n := int(min(b.skip, int64(len(p))))
			b.skip -= int64(n)
			p = p[n:]
			if b.skip == 0 {
				b.expect(stateTupleStart, 2)
			}
			continue
		case stateFieldData:
			n := int(min(b.skip, int64(len(p))))
			b.hash.Write(p[:n])
			b.skip -= int64(n)
			p = p[n:]
			if b.skip == 0 {
				b.fieldDone(c)
			}
			continue
		case stateTrailer:
			return errBinaryCopy // nothing may follow the trailer
		}
		n := copy(b.fixed[b.have:b.need], p)
		b.have += n
		p = p[n:]
		if b.have < b.need {
			return nil
		}
		word := b.fixed[:b.need]
		switch b.state {
		case stateHeader:
			if string(word[:len(binarySignature)]) != binarySignature {
				return errBinaryCopy
			}
			b.skip = int64(binary.BigEndian.Uint32(word[len(binarySignature)+4:]))
			b.state = stateExtension
			if b.skip == 0 {
				b.expect(stateTupleStart, 2)
			}
		case stateTupleStart:
			count := int16(binary.BigEndian.Uint16(word))
			if count == -1 {
				b.state = stateTrailer
				continue
			}
			if count < 0 {
				return errBinaryCopy
			}
			b.hash.Reset()
			b.hash.Write(word)
			b.fields = int(count)
			if b.fields == 0 {
				b.tupleDone(c)
				continue
			}
			b.expect(stateFieldLength, 4)
		case stateFieldLength:
			b.hash.Write(word)
			length := int32(binary.BigEndian.Uint32(word))
			switch {
			case length == -1 || length == 0: // NULL, or empty
				b.fieldDone(c)
			case length < 0:
				return errBinaryCopy
			default:
				b.skip = int64(length)
				b.state = stateFieldData
			}
		}
	}
	return nil
}

func (b *binaryTuples) expect(s binaryState, n int) {
	b.state, b.have, b.need = s, 0, n
}

func (b *binaryTuples) fieldDone(c *RowChecksum) {
	b.fields--
	if b.fields == 0 {
		b.tupleDone(c)
		return
	}
	b.expect(stateFieldLength, 4)
}

func (b *binaryTuples) tupleDone(c *RowChecksum) {
	b.hash.Sum(b.sum[:0])
	c.addSum(b.sum)
	c.Rows++
	b.expect(stateTupleStart, 2)
}
