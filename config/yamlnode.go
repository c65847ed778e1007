package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// A decoder walks the YAML syntax tree itself, rather than unmarshalling
// into structs, so that every problem can name its exact field path and
// line, unknown keys can be refused with a suggestion, and ${NAME} is
// expanded on decoded strings. It keeps only the first problem: one clear
// line is what the user gets.
type decoder struct {
	getenv  func(string) string
	anchors map[string]ast.Node
	err     *Error
	// expanded maps each value ${NAME} gave to NAME, so that no problem
	// quotes a value from the environment (it may be a password).
	expanded map[string]string
}

// val is one YAML node with where it is.
type val struct {
	node ast.Node
	path string
	line int
}

func (d *decoder) failf(v val, format string, args ...any) {
	if d.err == nil {
		d.err = &Error{Line: v.line, Field: v.path, Problem: d.unexpand(fmt.Sprintf(format, args...))}
	}
}

// unexpand writes ${NAME} back for every value of four or more characters
// the environment gave, longest first.
func (d *decoder) unexpand(msg string) string {
	values := make([]string, 0, len(d.expanded))
	for v := range d.expanded {
		if len(v) >= 4 {
			values = append(values, v)
		}
	}
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	for _, v := range values {
		msg = strings.ReplaceAll(msg, v, "${"+d.expanded[v]+"}")
	}
	return msg
}

func (d *decoder) failed() bool { return d.err != nil }

// collectAnchors records anchors so that aliases can be resolved; YAML
// anchors are a common way to share hooks between environments.
func (d *decoder) collectAnchors(n ast.Node) {
	ast.Walk(anchorVisitor{d}, n)
}

type anchorVisitor struct{ d *decoder }

func (a anchorVisitor) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a.d.anchors[an.Name.GetToken().Value] = an.Value
	}
	return a
}

// resolve strips tags and anchors and follows aliases.
func (d *decoder) resolve(v val) (ast.Node, bool) {
	n := v.node
	for range 64 { // bounds alias chains
		switch t := n.(type) {
		case *ast.TagNode:
			n = t.Value
		case *ast.AnchorNode:
			n = t.Value
		case *ast.AliasNode:
			name := ""
			if t.Value != nil {
				name = t.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.failf(v, "unknown alias *%s", name)
				return nil, false
			}
			n = target
		default:
			return n, true
		}
	}
	d.failf(v, "aliases nest too deeply")
	return nil, false
}

func (d *decoder) isNull(v val) bool {
	if v.node == nil {
		return true
	}
	n, ok := d.resolve(v)
	if !ok {
		return true
	}
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

func nodeLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		n = m.Values[0].Key
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func childPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// fields is a decoded mapping: keys in document order and their values.
type fields struct {
	at   val
	keys []string
	vals map[string]val
}

// get returns the value of key; absent and null values are both "not given".
func (f *fields) get(d *decoder, key string) (val, bool) {
	v, ok := f.vals[key]
	if !ok || d.isNull(v) {
		return val{path: childPath(f.at.path, key), line: f.at.line}, false
	}
	return v, true
}

// child is the path and line used to report a missing key.
func (f *fields) child(key string) val {
	return val{path: childPath(f.at.path, key), line: f.at.line}
}

// mapping decodes v as a mapping. allowed lists the known keys; nil accepts
// any key (app names, table names).
func (d *decoder) mapping(v val, allowed []string) *fields {
	f := &fields{at: v, vals: map[string]val{}}
	n, ok := d.resolve(v)
	if !ok {
		return f
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.failf(v, "must be a mapping of keys to values, not %s", describe(n))
		return f
	}
	var merged []*ast.MappingValueNode
	for _, mv := range m.Values {
		if mv.Key != nil && mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeSource(val{node: mv.Value, path: v.path, line: nodeLine(mv.Key)})...)
			continue
		}
		d.addEntry(f, v, mv, allowed, true)
	}
	// Merged keys (<<: *anchor) fill in only what the mapping leaves out.
	for _, mv := range merged {
		d.addEntry(f, v, mv, allowed, false)
	}
	return f
}

func (d *decoder) mergeSource(v val) []*ast.MappingValueNode {
	n, ok := d.resolve(v)
	if !ok {
		return nil
	}
	switch t := n.(type) {
	case *ast.MappingNode:
		return t.Values
	case *ast.SequenceNode:
		var out []*ast.MappingValueNode
		for _, item := range t.Values {
			out = append(out, d.mergeSource(val{node: item, path: v.path, line: nodeLine(item)})...)
		}
		return out
	}
	d.failf(v, "<< must merge a mapping")
	return nil
}

func (d *decoder) addEntry(f *fields, parent val, mv *ast.MappingValueNode, allowed []string, explicit bool) {
	line := nodeLine(mv.Key)
	key, ok := d.keyText(val{node: mv.Key, path: parent.path, line: line})
	if !ok {
		return
	}
	at := val{node: mv.Value, path: childPath(parent.path, key), line: line}
	if _, dup := f.vals[key]; dup {
		if explicit {
			d.failf(at, "duplicate key")
		}
		return
	}
	if allowed != nil && !contains(allowed, key) {
		if s := suggest(key, allowed); s != "" {
			d.failf(at, "unknown key (did you mean %q?)", s)
		} else {
			d.failf(at, "unknown key (known keys: %s)", strings.Join(allowed, ", "))
		}
		return
	}
	f.keys = append(f.keys, key)
	f.vals[key] = at
}

func (d *decoder) keyText(v val) (string, bool) {
	n, ok := d.resolve(v)
	if !ok {
		return "", false
	}
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return t.GetToken().Value, true
	}
	d.failf(v, "keys must be plain names, not %s", describe(n))
	return "", false
}

// list decodes v as a sequence; each item carries its own path and line.
func (d *decoder) list(v val) []val {
	n, ok := d.resolve(v)
	if !ok {
		return nil
	}
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		d.failf(v, "must be a list, not %s", describe(n))
		return nil
	}
	out := make([]val, len(s.Values))
	for i, item := range s.Values {
		line := nodeLine(item)
		if i < len(s.Entries) && s.Entries[i] != nil && s.Entries[i].Start != nil {
			line = s.Entries[i].Start.Position.Line
		}
		out[i] = val{node: item, path: indexPath(v.path, i), line: line}
	}
	return out
}

// text returns a scalar's text before expansion. Numbers are accepted as
// text (a channel or table name may look like one); booleans are not,
// because "yes"/"on" turning into true is never what a name meant.
func (d *decoder) text(v val) (string, bool) {
	n, ok := d.resolve(v)
	if !ok {
		return "", false
	}
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		if t.Value == nil {
			return "", true
		}
		return t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode:
		return t.GetToken().Value, true
	case *ast.NullNode:
		return "", true
	}
	d.failf(v, "must be a string, not %s", describe(n))
	return "", false
}

// str decodes a string scalar and expands ${NAME} in it.
func (d *decoder) str(v val) string {
	s, ok := d.text(v)
	if !ok {
		return ""
	}
	out, err := expand(s, func(name string) string {
		v := d.getenv(name)
		if v != "" {
			if d.expanded == nil {
				d.expanded = map[string]string{}
			}
			d.expanded[v] = name
		}
		return v
	})
	if err != nil {
		d.failf(v, "%s", err)
		return ""
	}
	return out
}

// integer accepts a YAML integer or a string that is one after expansion
// (keep: ${BACKUPS_KEPT}).
func (d *decoder) integer(v val) int {
	n, ok := d.resolve(v)
	if !ok {
		return 0
	}
	var s string
	switch t := n.(type) {
	case *ast.IntegerNode:
		s = t.GetToken().Value
	case *ast.StringNode:
		s = d.str(v)
		if d.failed() {
			return 0
		}
	default:
		d.failf(v, "must be a whole number, not %s", describe(n))
		return 0
	}
	i, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		d.failf(v, "must be a whole number")
		return 0
	}
	return i
}

func (d *decoder) boolean(v val) bool {
	n, ok := d.resolve(v)
	if !ok {
		return false
	}
	switch t := n.(type) {
	case *ast.BoolNode:
		return t.Value
	case *ast.StringNode:
		s := d.str(v)
		switch s {
		case "true":
			return true
		case "false":
			return false
		}
		if !d.failed() {
			d.failf(v, "must be true or false")
		}
		return false
	}
	d.failf(v, "must be true or false, not %s", describe(n))
	return false
}

// duration reads "30m", "24h", "1h30m" and also whole days ("7d", "1d12h"),
// which is how people write approval expiries. A bare 0 means zero.
func (d *decoder) duration(v val) time.Duration {
	n, ok := d.resolve(v)
	if !ok {
		return 0
	}
	if i, isInt := n.(*ast.IntegerNode); isInt && i.GetToken().Value == "0" {
		return 0
	}
	s := d.str(v)
	if d.failed() {
		return 0
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.failf(v, "%q is not a duration such as 30s, 30m, 24h or 7d", s)
		return 0
	}
	return dur
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

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.BoolNode:
		return "true/false"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.NullNode, nil:
		return "empty"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	}
	return n.Type().String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

// syntaxError turns a YAML parser error into one line with its line number.
// The library's own rendering quotes the offending source lines, which may
// hold a DSN written inline, so only its message is kept.
func syntaxError(err error) *Error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return &Error{Line: line, Problem: "not valid YAML: " + oneLine(ye.GetMessage())}
	}
	return &Error{Problem: "not valid YAML"}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
