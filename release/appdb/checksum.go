package appdb

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
}

func (c *RowChecksum) Write(p []byte) (int, error) {
	n := len(p)
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
	s := sha256.Sum256(row)
	var carry uint64
	for i := 3; i >= 0; i-- {
		c.acc[i], carry = bits.Add64(c.acc[i], binary.BigEndian.Uint64(s[i*8:]), carry)
	}
	c.Rows++
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
