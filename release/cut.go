package release

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cut keeps what output shows of a long text: its first line, at most n
// characters. A cut text ends with "…", after the last whole word when one
// ends late enough, so a reader sees that something was left out and no
// word is shown half. Every place that cuts lines for people uses it.
func Cut(s string, n int) string {
	s = strings.TrimSpace(s)
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = strings.TrimRightFunc(s[:i], unicode.IsSpace), true
	}
	if n < 2 {
		n = 2
	}
	if utf8.RuneCountInString(s) > n {
		all := []rune(s)
		r := all[:n-1] // room for the "…"
		// Back to a word boundary (unless the cut is at one already, or
		// going back would lose more than half).
		for i := len(r) - 1; !unicode.IsSpace(all[n-1]) && i >= len(r)/2; i-- {
			if unicode.IsSpace(r[i]) {
				r = r[:i]
				break
			}
		}
		s, cut = string(r), true
	}
	if !cut {
		return s
	}
	return strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == ';' || r == ':' }) + "…"
}

// CutTail is Cut for where the end matters (a failed command's error comes
// last): the last non-empty line of s, at most n characters, starting with
// "…" before the first whole word kept when anything was left out.
func CutTail(s string, n int) string {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	cut := false
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s, cut = s[i+1:], true
	}
	s = strings.TrimSpace(s)
	if n < 2 {
		n = 2
	}
	if utf8.RuneCountInString(s) > n {
		all := []rune(s)
		r := all[len(all)-(n-1):]
		// Forward to a word boundary, as Cut goes back to one.
		for i := 0; !unicode.IsSpace(all[len(all)-n]) && i < len(r)/2; i++ {
			if unicode.IsSpace(r[i]) {
				r = r[i:]
				break
			}
		}
		s, cut = string(r), true
	}
	if !cut {
		return s
	}
	return "…" + strings.TrimLeftFunc(s, unicode.IsSpace)
}
