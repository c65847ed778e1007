package appdb

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

func checksumOf(parts ...string) (string, int64) {
	var c RowChecksum
	for _, p := range parts {
		c.Write([]byte(p))
	}
	return c.Sum(), c.Rows
}

func TestRowChecksum(t *testing.T) {
	t.Parallel()
	base, rows := checksumOf("a\t1\n", "b\t2\n", "c\t3\n")
	if rows != 3 {
		t.Fatalf("rows %d", rows)
	}
	if s, _ := checksumOf("c\t3\nb\t2\na\t1\n"); s != base {
		t.Error("order changed the checksum")
	}
	if s, _ := checksumOf("a\t", "1\nb", "\t2\nc\t3", "\n"); s != base {
		t.Error("how the stream was cut changed the checksum")
	}
	if s, _ := checksumOf("a\t1\n", "b\t2\n", "c\t4\n"); s == base {
		t.Error("a changed value kept the checksum")
	}
	dup, _ := checksumOf("a\t1\na\t1\n")
	if one, _ := checksumOf("a\t1\n"); dup == one {
		t.Error("a duplicate row was not counted")
	}
	if empty, n := checksumOf(); n != 0 || empty != "0000000000000000000000000000000000000000000000000000000000000000" {
		t.Errorf("empty table: %s %d", empty, n)
	}
}

// A table read in ranges by several workers has, with its parts' sums
// added, the checksum and row count of the table read whole; with 200
// rows the 64-bit words carry into each other many times.
func TestRowChecksumAddEqualsWhole(t *testing.T) {
	t.Parallel()
	var whole RowChecksum
	parts := make([]RowChecksum, 3)
	for i := range 200 {
		row := []byte(fmt.Sprintf("%d\trow %d\n", i, i*7))
		whole.Write(row)
		parts[i%3].Write(row)
	}
	var merged RowChecksum
	for i := len(parts) - 1; i >= 0; i-- {
		merged.Add(&parts[i])
	}
	if merged.Sum() != whole.Sum() || merged.Rows != whole.Rows {
		t.Fatalf("merged %s (%d rows), whole %s (%d rows)", merged.Sum(), merged.Rows, whole.Sum(), whole.Rows)
	}
	var short RowChecksum
	short.Add(&parts[0])
	short.Add(&parts[1])
	if short.Sum() == whole.Sum() {
		t.Fatal("a missing part kept the checksum")
	}
}

// binaryCopy writes rows as COPY's binary format does: nil is NULL.
func binaryCopy(extension string, rows ...[]any) []byte {
	out := []byte("PGCOPY\n\377\r\n\000")
	out = binary.BigEndian.AppendUint32(out, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(extension)))
	out = append(out, extension...)
	for _, r := range rows {
		out = binary.BigEndian.AppendUint16(out, uint16(len(r)))
		for _, f := range r {
			if f == nil {
				out = binary.BigEndian.AppendUint32(out, 0xFFFFFFFF)
				continue
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(f.(string))))
			out = append(out, f.(string)...)
		}
	}
	return binary.BigEndian.AppendUint16(out, 0xFFFF)
}

func binarySum(t *testing.T, cuts []int, stream []byte) (string, int64) {
	t.Helper()
	c := NewBinaryRowChecksum()
	last := 0
	for _, at := range append(cuts, len(stream)) {
		if _, err := c.Write(stream[last:at]); err != nil {
			t.Fatalf("cut at %d: %v", at, err)
		}
		last = at
	}
	return c.Sum(), c.Rows
}

// The binary format's checksum counts tuples wherever the stream is cut
// (a header, a field count, a length or a value split between writes),
// ignores the header and row order, and tells NULL from an empty value.
func TestBinaryRowChecksum(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("\x00\xff\n\\", 5000) // bytes COPY text would escape
	stream := binaryCopy("", []any{"1", "a"}, []any{"2", nil}, []any{"3", ""}, []any{"4", big}, []any{})
	whole, rows := binarySum(t, nil, stream)
	if rows != 5 {
		t.Fatalf("rows %d", rows)
	}
	for at := 1; at < len(stream); at++ {
		if s, _ := binarySum(t, []int{at}, stream); s != whole {
			t.Fatalf("a cut at byte %d changed the checksum", at)
		}
	}
	bytewise := make([]int, 0, 64)
	for at := 1; at < 64; at++ {
		bytewise = append(bytewise, at)
	}
	if s, _ := binarySum(t, bytewise, stream); s != whole {
		t.Fatal("a stream cut into single bytes changed the checksum")
	}
	for _, c := range []struct {
		name   string
		stream []byte
		same   bool
	}{
		{"rows reordered", binaryCopy("", []any{}, []any{"4", big}, []any{"3", ""}, []any{"2", nil}, []any{"1", "a"}), true},
		{"a header extension", binaryCopy("ext", []any{"1", "a"}, []any{"2", nil}, []any{"3", ""}, []any{"4", big}, []any{}), true},
		{"NULL for an empty value", binaryCopy("", []any{"1", "a"}, []any{"2", nil}, []any{"3", nil}, []any{"4", big}, []any{}), false},
		{"a byte changed", binaryCopy("", []any{"1", "b"}, []any{"2", nil}, []any{"3", ""}, []any{"4", big}, []any{}), false},
	} {
		if s, _ := binarySum(t, nil, c.stream); (s == whole) != c.same {
			t.Errorf("%s: same checksum %v, want %v", c.name, s == whole, c.same)
		}
	}
	// Every row read in binary adds up as in text: parts sum to the whole.
	var merged RowChecksum
	merged.Add(NewBinaryRowChecksum())
	first := NewBinaryRowChecksum()
	first.Write(binaryCopy("", []any{"1", "a"}, []any{"2", nil}))
	second := NewBinaryRowChecksum()
	second.Write(binaryCopy("", []any{"3", ""}, []any{"4", big}, []any{}))
	merged.Add(first)
	merged.Add(second)
	if merged.Sum() != whole || merged.Rows != rows {
		t.Fatal("parts read in binary do not add up to the whole")
	}
	for _, bad := range [][]byte{[]byte("1\ta\n2\tb\n3\tc\n4\td\n5\te\n"), append(binaryCopy("", []any{"1"}), 0, 1)} {
		if _, err := NewBinaryRowChecksum().Write(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
