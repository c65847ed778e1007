package commands

import (
	"strings"
	"unicode"
)

// token is one word of a command line. quoted words are never read as flags
// or "--", so a note may start with "--".
type token struct {
	text   string
	quoted bool
}

// closers maps each opening quote to the quotes that close it. Slack (and
// phones) turn typed quotes into smart ones, sometimes in the wrong
// direction, so a smart double quote is closed by any double quote.
var closers = map[rune]string{
	'"':      `"`,
	'\'':     `'`,
	'\u201c': "\u201d\u201c\"", // “
	'\u201d': "\u201d\u201c\"", // ”
	'\u201e': "\u201d\u201c\"", // „
	'\u2018': "\u2019\u2018'",  // ‘
}

// split breaks text into words on white space. A quote opens only at the
// start of a word or right after '=' (--note="a b", NAME='a b'), so an
// apostrophe inside a word (don't, don’t) stays a letter. There are no
// backslash escapes: values such as paths keep their backslashes; use the
// other kind of quote to include a quote character.
func split(text string) ([]token, error) {
	var (
		toks    []token
		cur     strings.Builder
		inWord  bool
		quoted  bool
		closeBy string // non-empty while inside quotes
		prev    rune
	)
	for _, r := range text {
		switch {
		case closeBy != "":
			if strings.ContainsRune(closeBy, r) {
				closeBy = ""
			} else {
				cur.WriteRune(r)
			}
		case unicode.IsSpace(r):
			if inWord {
				toks = append(toks, token{cur.String(), quoted})
				cur.Reset()
				inWord, quoted = false, false
			}
		case closers[r] != "" && (!inWord || prev == '='):
			closeBy = closers[r]
			// Only a word quoted from its start is kept from being read as
			// a flag: --note="a b" is still the flag --note.
			quoted = quoted || !inWord
			inWord = true
		default:
			cur.WriteRune(r)
			inWord = true
		}
		prev = r
	}
	if closeBy != "" {
		// The quoted text is not echoed: it may be a secret typed by mistake.
		return nil, &UsageError{Message: "a quote is opened but never closed"}
	}
	if inWord {
		toks = append(toks, token{cur.String(), quoted})
	}
	return toks, nil
}
