package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// A checker validates the decoded structs and keeps the first problem: one
// clear line is what the user gets. It reads scalars (expanding ${NAME})
// and knows where each path is written.
type checker struct {
	getenv func(string) string
	ix     *docIndex
	err    *Error
	// expanded maps each value ${NAME} gave to NAME, so that no problem
	// quotes a value from the environment (it may be a password).
	expanded map[string]string
}

func (c *checker) failf(p path, format string, args ...any) {
	if c.err == nil {
		c.err = &Error{Line: c.ix.line(p), Field: p.String(), Problem: c.unexpand(fmt.Sprintf(format, args...))}
	}
}

func (c *checker) failed() bool { return c.err != nil }

// unexpand writes ${NAME} back for every value of four or more characters
// the environment gave, longest first.
func (c *checker) unexpand(msg string) string {
	values := make([]string, 0, len(c.expanded))
	for v := range c.expanded {
		if len(v) >= 4 {
			values = append(values, v)
		}
	}
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		msg = strings.ReplaceAll(msg, v, "${"+c.expanded[v]+"}")
	}
	return msg
}

// present refuses a value written as null where a mapping must be (a
// null pointer in the decoded structs).
func (c *checker) present(given bool, p path) bool {
	if !given && !c.failed() {
		c.failf(p, "must be a mapping of keys to values, not empty")
	}
	return given
}

// checkKeys returns m's keys in document order, refusing those not in
// allowed (nil allows any): mappings whose keys are names (hooks, roles)
// rather than struct fields.
func checkKeys[V any](c *checker, p path, m map[string]V, allowed []string) []string {
	keys := order(c.ix, p, m)
	if allowed == nil {
		return keys
	}
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			c.failf(p.key(k), "%s", unknownKeyProblem(k, allowed))
			return nil
		}
	}
	return keys
}

// text returns a scalar's text before expansion. Numbers are accepted as
// text (a channel or table name may look like one); booleans are not,
// because "yes"/"on" turning into true is never what a name meant.
func (c *checker) text(s scalar, p path) (string, bool) {
	switch t := s.node.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		if t.Value == nil {
			return "", true
		}
		return t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode:
		return t.GetToken().Value, true
	case *ast.NullNode, nil:
		return "", true
	}
	c.failf(p, "must be a string, not %s", describe(s.node))
	return "", false
}

// str decodes a string scalar and expands ${NAME} in it.
func (c *checker) str(s scalar, p path) string {
	text, ok := c.text(s, p)
	if !ok {
		return ""
	}
	out, err := expand(text, func(name string) string {
		v := c.getenv(name)
		if v != "" {
			if c.expanded == nil {
				c.expanded = map[string]string{}
			}
			c.expanded[v] = name
		}
		return v
	})
	if err != nil {
		c.failf(p, "%s", err)
		return ""
	}
	return out
}

// integer accepts a YAML integer or a string that is one after expansion
// (keep: ${BACKUPS_KEPT}).
func (c *checker) integer(s scalar, p path) int {
	var text string
	switch t := s.node.(type) {
	case *ast.IntegerNode:
		text = t.GetToken().Value
	case *ast.StringNode:
		text = c.str(s, p)
		if c.failed() {
			return 0
		}
	default:
		c.failf(p, "must be a whole number, not %s", describe(s.node))
		return 0
	}
	i, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		c.failf(p, "must be a whole number")
		return 0
	}
	return i
}

func (c *checker) boolean(s scalar, p path) bool {
	switch t := s.node.(type) {
	case *ast.BoolNode:
		return t.Value
	case *ast.StringNode:
		switch c.str(s, p) {
		case "true":
			return true
		case "false":
			return false
		}
		if !c.failed() {
			c.failf(p, "must be true or false")
		}
		return false
	}
	c.failf(p, "must be true or false, not %s", describe(s.node))
	return false
}

// duration reads "30m", "24h", "1h30m" and also whole days ("7d", "1d12h"),
// which is how people write approval expiries. A bare 0 means zero.
func (c *checker) duration(s scalar, p path) time.Duration {
	if i, isInt := s.node.(*ast.IntegerNode); isInt && i.GetToken().Value == "0" {
		return 0
	}
	text := c.str(s, p)
	if c.failed() {
		return 0
	}
	d, err := parseDuration(text)
	if err != nil {
		c.failf(p, "%q is not a duration such as 30s, 30m, 24h or 7d", text)
		return 0
	}
	return d
}

var daysPrefix = regexp.MustCompile(`^(\d+)d(.*)$`)

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 100000 {
			return 0, errors.New("bad days")
		}
		rest := time.Duration(0)
		if m[2] != "" {
			if rest, err = time.ParseDuration(m[2]); err != nil {
				return 0, err
			}
		}
		return time.Duration(days)*24*time.Hour + rest, nil
	}
	return time.ParseDuration(s)
}

// suggest returns the known key closest to a misspelt one, if close enough
// to be a typo.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	lk := strings.ToLower(key)
	for _, k := range known {
		dist := levenshtein(lk, k)
		if dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	if best != "" && bestDist > len(best)/2 {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
