package release

import (
	"errors"
	"testing"
)

// A cause that spans lines (pgx lists every address it tried) still makes
// a one-line message, and the cause stays reachable.
func TestErrorfFoldsLines(t *testing.T) {
	cause := errors.New("failed to connect to `user=x database=y`:\n\t127.0.0.1:5999 (localhost): dial error\n\t[::1]:5999 (localhost): dial error")
	e := Errorf(CodeUnavailable, "cannot connect to staging's database: %w", cause)
	want := "cannot connect to staging's database: failed to connect to `user=x database=y`: 127.0.0.1:5999 (localhost): dial error [::1]:5999 (localhost): dial error"
	if e.Message != want {
		t.Fatalf("message %q\nwant    %q", e.Message, want)
	}
	if !errors.Is(e, cause) {
		t.Fatal("the cause is lost")
	}
}
