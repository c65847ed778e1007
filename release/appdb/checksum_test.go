package appdb

import (
	"fmt"
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
