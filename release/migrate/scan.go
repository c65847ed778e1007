package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// The scan for known secrets in the rows a migration file would carry.
// Each COPY field is decoded from COPY's text form first, then looked at
// as written, with JSON string escapes undone (\u00XX in either case of
// hex digits; every string of a json or jsonb column, keys included, is
// decoded by a JSON parser), and with percent-encoding undone; each of
// those is searched for the secret itself and for its base64 forms.

// minSecretScan is the shortest secret scanned for: shorter values would
// match ordinary text everywhere.
const minSecretScan = 6

// secretPattern is one known secret: its value and its base64 forms (the
// standard and URL alphabets, at each of the three alignments a value can
// take inside a longer encoded text such as "user:secret").
type secretPattern struct {
	plain []byte
	b64   [][]byte
}

func secretPatterns(values []string) []secretPattern {
	var out []secretPattern
	for _, v := range values {
		if len(v) < minSecretScan {
			continue
		}
		out = append(out, secretPattern{plain: []byte(v), b64: base64Forms([]byte(v))})
	}
	return out
}

// base64Forms are the characters of base64(x + v + y) that depend on v
// alone, for every length of x modulo 3: found whatever surrounds v.
func base64Forms(v []byte) [][]byte {
	var forms [][]byte
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for lead := range 3 {
			buf := append(make([]byte, lead), v...)
			s := enc.EncodeToString(buf)
			// The first characters mix in the lead bytes; the last one of
			// a partial group mixes in what follows.
			skip := [3]int{0, 2, 3}[lead]
			end := len(s)
			if len(buf)%3 != 0 {
				end--
			}
			if end-skip >= minSecretScan {
				forms = append(forms, []byte(s[skip:end]))
			}
		}
	}
	return forms
}

// rowScanner looks at each COPY row as it streams past.
type rowScanner struct {
	table   *pgschema.Table
	refs    map[string]bool
	secrets []secretPattern
	lines   appdb.Lines
	leak    error
	cols    []string
	isJSON  []bool // per COPY column: json or jsonb
}

func (s *rowScanner) Write(p []byte) (int, error) {
	if s.lines.Line == nil {
		s.lines.Line = func(line []byte) error {
			if err := s.row(line); err != nil {
				s.leak = err
				return err
			}
			return nil
		}
	}
	return s.lines.Write(p)
}

func (s *rowScanner) row(line []byte) error {
	if bytes.Contains(line, []byte("$env.")) {
		for _, m := range envRef.FindAllSubmatch(line, -1) {
			s.refs[string(m[1])] = true
		}
	}
	if len(s.secrets) == 0 {
		return nil
	}
	if s.cols == nil {
		s.cols = s.table.CopyColumns()
		s.isJSON = make([]bool, len(s.cols))
		for i, name := range s.cols {
			if c := s.table.Column(name); c != nil && (c.Type == "json" || c.Type == "jsonb") {
				s.isJSON[i] = true
			}
		}
	}
	fields := bytes.Split(line, []byte{'\t'})
	for i, f := range fields {
		if string(f) == `\N` {
			continue
		}
		if s.holdsSecret(appdb.CopyUnescape(f), i < len(s.isJSON) && s.isJSON[i]) {
			return s.leakError(fields, i)
		}
	}
	return nil
}

// holdsSecret looks for a secret in one decoded field.
func (s *rowScanner) holdsSecret(v []byte, isJSON bool) bool {
	if s.matches(v) {
		return true
	}
	if isJSON && json.Valid(v) {
		return s.jsonStringHolds(v)
	}
	if bytes.IndexByte(v, '\\') >= 0 {
		return s.matches(jsonUnescape(v))
	}
	return false
}

// jsonStringHolds decodes every string of a JSON document (keys too) and
// looks for a secret in each.
func (s *rowScanner) jsonStringHolds(v []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			return s.matches(jsonUnescape(v)) // cannot be: v is valid JSON
		}
		if str, ok := tok.(string); ok && s.matches([]byte(str)) {
			return true
		}
	}
}

// matches looks for a secret in text as written and percent-decoded.
func (s *rowScanner) matches(v []byte) bool {
	if s.contains(v) {
		return true
	}
	if bytes.IndexByte(v, '%') >= 0 || bytes.IndexByte(v, '+') >= 0 {
		return s.contains(percentDecode(v, false)) || s.contains(percentDecode(v, true))
	}
	return false
}

func (s *rowScanner) contains(v []byte) bool {
	for _, sp := range s.secrets {
		if bytes.Contains(v, sp.plain) {
			return true
		}
		for _, f := range sp.b64 {
			if bytes.Contains(v, f) {
				return true
			}
		}
	}
	return false
}

// leakError names the table, column and row key of a secret in clear —
// never the value.
func (s *rowScanner) leakError(fields [][]byte, field int) error {
	column := "?"
	if field < len(s.cols) {
		column = s.cols[field]
	}
	var key []string
	for _, pk := range s.table.PrimaryKey {
		for i, c := range s.cols {
			if c == pk && i < len(fields) {
				key = append(key, pk+"="+string(fields[i]))
			}
		}
	}
	where := "a row without primary key"
	if len(key) > 0 {
		where = "row " + strings.Join(key, ", ")
	}
	return release.Errorf(release.CodeForbidden, "migration refused: table %s, column %s, %s holds the value of a secret in clear; store it as a secret and reference it as {{$env.NAME}}", s.table.Key(), column, where)
}

// jsonUnescape undoes JSON string escapes wherever they stand (JSON held in
// a text column, or text that quotes JSON), leaving anything malformed as
// it is. \uXXXX takes hex digits in either case, and surrogate pairs.
func jsonUnescape(v []byte) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 == len(v) {
			out = append(out, v[i])
			continue
		}
		switch c := v[i+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
			i++
		case 'b', 'f', 'n', 'r', 't':
			out = append(out, "\b\f\n\r\t"[strings.IndexByte("bfnrt", c)])
			i++
		case 'u':
			r, ok := hex4(v[i+2:])
			if !ok {
				out = append(out, v[i])
				continue
			}
			i += 5
			if utf16.IsSurrogate(r) && i+2 < len(v) && v[i+1] == '\\' && v[i+2] == 'u' {
				if r2, ok := hex4(v[i+3:]); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, v[i])
		}
	}
	return out
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		h := appdb.HexDigit(c)
		if h < 0 {
			return 0, false
		}
		r = r*16 + rune(h)
	}
	return r, true
}

// percentDecode undoes URL percent-encoding (%XX in either case; with
// plus, also + for a space as in a query string), leaving a malformed %
// as it is.
func percentDecode(v []byte, plus bool) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '%' && i+2 < len(v) && appdb.HexDigit(v[i+1]) >= 0 && appdb.HexDigit(v[i+2]) >= 0:
			out = append(out, byte(appdb.HexDigit(v[i+1])<<4|appdb.HexDigit(v[i+2])))
			i += 2
		case plus && v[i] == '+':
			out = append(out, ' ')
		default:
			out = append(out, v[i])
		}
	}
	return out
}
