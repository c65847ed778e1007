package appdb

import "bytes"

// CopyUnescape decodes one field of COPY's text format: backslash escapes
// of control characters, octal \NNN and hex \xHH bytes.
func CopyUnescape(f []byte) []byte {
	if bytes.IndexByte(f, '\\') < 0 {
		return f
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			out = append(out, c)
			continue
		}
		i++
		switch c = f[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, j := 0, i
			for ; j < len(f) && j < i+3 && f[j] >= '0' && f[j] <= '7'; j++ {
				n = n*8 + int(f[j]-'0')
			}
			out = append(out, byte(n))
			i = j - 1
		case 'x':
			n, j := 0, i+1
			for ; j < len(f) && j < i+3 && HexDigit(f[j]) >= 0; j++ {
				n = n*16 + HexDigit(f[j])
			}
			if j == i+1 {
				out = append(out, 'x')
				break
			}
			out = append(out, byte(n))
			i = j - 1
		default:
			out = append(out, c)
		}
	}
	return out
}

func HexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Lines is a writer that hands each line of COPY text (without its
// newline) to Line as the stream passes, however writes cut it; Line's
// error stops the stream. Close reports a cut-off last line.
type Lines struct {
	Line    func(line []byte) error
	partial []byte
}

func (l *Lines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
		}
		if err := l.Line(line); err != nil {
			return 0, err
		}
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Cut reports whether the stream ended in the middle of a line.
func (l *Lines) Cut() bool { return len(l.partial) > 0 }
