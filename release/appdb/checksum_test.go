package appdb

import "testing"

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
