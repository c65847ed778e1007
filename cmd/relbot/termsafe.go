package main

import (
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/relbot/relbot/commands"
)

// termSafe wraps what the terminal prints so that text from users and
// databases (a lock reason typed in Slack, a check's output) cannot drive
// the reader's terminal: every control character but tab and newline, and
// every bidirectional override, is written as \uXXXX, and bytes that are
// not UTF-8 as \xNN. \uXXXX is also a valid escape inside a JSON string,
// so --json output stays JSON (encoding/json escapes C0 itself, not C1).
// Each Write is escaped on its own: the terminal writes whole lines and
// whole JSON documents. Writes may come from several goroutines at once
// (the log handler and a release's progress notices share stderr), so
// they are taken one at a time: each keeps its lines whole.
func termSafe(w io.Writer) io.Writer { return &safeWriter{w: w} }

type safeWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (s *safeWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clean := true
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if unsafeRune(r, size) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s.w.Write(p)
	}
	s.buf = s.buf[:0]
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			s.buf = fmt.Appendf(s.buf, `\x%02x`, p[i])
		case unsafeRune(r, size):
			s.buf = fmt.Appendf(s.buf, `\u%04x`, r)
		default:
			s.buf = append(s.buf, p[i:i+size]...)
		}
		i += size
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func unsafeRune(r rune, size int) bool {
	if r == utf8.RuneError && size == 1 {
		return true
	}
	return r != '\n' && r != '\t' && commands.ControlRune(r)
}
