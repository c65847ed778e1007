package release

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short enough", 20, "short enough"},
		{"  trimmed  ", 20, "trimmed"},
		{"the quick brown fox jumps", 20, "the quick brown fox…"},
		{"the quick brown fox, jumps", 22, "the quick brown fox…"},
		{"first line\nsecond line", 40, "first line…"},
		{"a-very-long-identifier-without-spaces", 10, "a-very-lo…"},
		{"üñíçødé wörds ärè cöünted äs rünes", 16, "üñíçødé wörds…"},
	} {
		got := Cut(c.in, c.n)
		if got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if utf8.RuneCountInString(got) > c.n {
			t.Errorf("Cut(%q, %d) = %q: longer than %d", c.in, c.n, got, c.n)
		}
		if got != strings.TrimSpace(c.in) && !strings.HasSuffix(got, "…") {
			t.Errorf("Cut(%q, %d) = %q: a cut without …", c.in, c.n, got)
		}
	}
}

func TestCutTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short enough\n", 20, "short enough"},
		{"output\nerror: the last line\n\n", 40, "…error: the last line"},
		{"connection refused by the upstream host", 20, "…the upstream host"},
		{"a-very-long-identifier-without-spaces", 10, "…ut-spaces"},
	} {
		got := CutTail(c.in, c.n)
		if got != c.want {
			t.Errorf("CutTail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if utf8.RuneCountInString(got) > c.n {
			t.Errorf("CutTail(%q, %d) = %q: longer than %d", c.in, c.n, got, c.n)
		}
	}
}
