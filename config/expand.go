package config

import (
	"fmt"
	"regexp"
	"strings"
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} with getenv(NAME) and $$ with $. It works on
// decoded YAML strings, so values may hold any character without breaking
// the YAML. A lone $ is kept as it is: SQL checks use $1-style text and
// nobody should have to escape it. Substituted values are not expanded
// again.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf(`unterminated "${" (write $$ for a literal dollar)`)
			}
			name := s[i+2 : i+2+end]
			if !varName.MatchString(name) {
				// The text is not quoted: it may be a pasted value, not a name.
				return "", fmt.Errorf(`invalid variable reference after "${" (names are letters, digits and _)`)
			}
			v := getenv(name)
			if v == "" {
				return "", fmt.Errorf("${%s} is not set", name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
