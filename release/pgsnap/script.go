package pgsnap

import (
	"bufio"
	"errors"
	"io"
	"regexp"
	"strings"
)

// A pg_dump script is read statement by statement so that relbot can run
// it on its own connection, inside its own transaction: psql is not
// involved. The reader knows SQL's quoting (strings, E'' strings, quoted
// names, dollar quotes, comments) so that a semicolon inside a function
// body does not end a statement, and it drops psql's backslash commands.

// statement is one SQL statement of a pg_dump script and the TOC entry it
// belongs to (from pg_dump's "-- Name: ...; Type: ...;" comment).
type statement struct {
	SQL   string
	Entry string // the entry's header, e.g. "customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: app"
	Type  string // CONSTRAINT, INDEX, ACL, ... ("" before the first entry)
	Seq   int    // entry number in the script
	// Settings are the SET statements in effect where the script reaches
	// this statement (see withSettings).
	Settings []string
}

type scriptReader struct {
	r     *bufio.Reader
	entry string
	typ   string
	seq   int
}

func newScriptReader(r io.Reader) *scriptReader {
	return &scriptReader{r: bufio.NewReaderSize(r, 64*1024)}
}

var entryHeader = regexp.MustCompile(`^-- (?:Data for )?Name: (.*); Type: ([^;]*); Schema: `)

// Next returns the next statement, or io.EOF after the last.
func (s *scriptReader) Next() (statement, error) {
	var b strings.Builder
	const (
		normal = iota
		single
		escaped // E'...'
		quoted  // "..."
		dollar
	)
	state := normal
	var tag string // the dollar quote's tag, $ included at both ends
	depth := 0     // /* */ nesting
	var prev byte  // last byte added in normal state
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if strings.TrimSpace(b.String()) != "" {
					return statement{}, errors.New("pg_dump script ends inside a statement")
				}
				return statement{}, io.EOF
			}
			return statement{}, err
		}
		switch state {
		case single, escaped:
			b.WriteByte(c)
			switch {
			case c == '\\' && state == escaped:
				n, err := s.r.ReadByte()
				if err != nil {
					return statement{}, errors.New("pg_dump script ends inside a string")
				}
				b.WriteByte(n)
			case c == '\'':
				if n, err := s.r.Peek(1); err == nil && n[0] == '\'' {
					_, _ = s.r.ReadByte()
					b.WriteByte('\'')
				} else {
					state = normal
				}
			}
			continue
		case quoted:
			b.WriteByte(c)
			if c == '"' {
				state = normal
			}
			continue
		case dollar:
			b.WriteByte(c)
			if c == '$' && strings.HasSuffix(b.String(), tag) {
				state = normal
			}
			continue
		}
		if depth > 0 {
			b.WriteByte(c)
			if c == '*' && s.peekIs('/') {
				_, _ = s.r.ReadByte()
				b.WriteByte('/')
				depth--
			} else if c == '/' && s.peekIs('*') {
				_, _ = s.r.ReadByte()
				b.WriteByte('*')
				depth++
			}
			continue
		}
		empty := strings.TrimSpace(b.String()) == ""
		switch {
		case c == '-' && s.peekIs('-'):
			line, _ := s.r.ReadString('\n')
			if empty {
				// A comment between statements: pg_dump's entry headers.
				if m := entryHeader.FindStringSubmatch("-" + line); m != nil {
					s.entry, s.typ = strings.TrimSpace(m[1])+"; Type: "+m[2], m[2]
					s.seq++
				}
				b.Reset()
			} else {
				b.WriteString("-" + line)
			}
			continue
		case c == '\\' && empty:
			// A psql command such as \restrict: to the end of the line.
			_, _ = s.r.ReadString('\n')
			b.Reset()
			continue
		case c == '/' && s.peekIs('*'):
			_, _ = s.r.ReadByte()
			b.WriteString("/*")
			depth = 1
			continue
		case c == ';':
			sql := strings.TrimSpace(b.String())
			if sql == "" {
				continue
			}
			return statement{SQL: sql, Entry: s.entry, Type: s.typ, Seq: s.seq}, nil
		case c == '\'':
			if (prev == 'E' || prev == 'e') && !identByte(s.beforeLast(&b)) {
				state = escaped
			} else {
				state = single
			}
		case c == '"':
			state = quoted
		case c == '$' && !identByte(prev):
			t, ok := s.dollarTag()
			if ok {
				b.WriteString(t)
				tag, state = t, dollar
				prev = '$'
				continue
			}
		}
		b.WriteByte(c)
		prev = c
	}
}

func (s *scriptReader) peekIs(c byte) bool {
	n, err := s.r.Peek(1)
	return err == nil && n[0] == c
}

// dollarTag reads the rest of a dollar quote's opening tag after its first
// $, returning the whole tag ("$$" or "$body$"); ok is false for $1 and the
// like, and then nothing was consumed.
func (s *scriptReader) dollarTag() (string, bool) {
	for n := 1; n <= 64; n++ {
		p, err := s.r.Peek(n)
		if err != nil || len(p) < n {
			return "", false
		}
		c := p[n-1]
		switch {
		case c == '$':
			_, _ = s.r.Discard(n)
			return "$" + string(p), true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || (n > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

// beforeLast is the byte before the last one written to b (0 if none).
func (s *scriptReader) beforeLast(b *strings.Builder) byte {
	str := b.String()
	if len(str) < 2 {
		return 0
	}
	return str[len(str)-2]
}

func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// readScript reads a whole (schema-sized) script.
func readScript(r io.Reader) ([]statement, error) {
	sr := newScriptReader(r)
	var out []statement
	for {
		st, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
}
