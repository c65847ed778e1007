package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// apps.yaml is decoded in two steps: goccy/go-yaml decodes the document
// into the plain structs below in its strict mode (unknown keys and
// duplicate keys refused; anchors, aliases and merge keys resolved by the
// library), then the checker (check.go, apps.go, roles.go) turns them into
// release.App values and refuses what is malformed. Leaves are scalars that keep their node, so
// that the validator, not the library, says what type a value must have;
// a problem names its field path, and the line comes from the document's
// index of paths (docIndex).

type fileRaw struct {
	Apps          map[string]*appRaw `yaml:"apps"`
	TimeZone      scalar             `yaml:"time_zone"`
	TerminalUsers map[string]scalar  `yaml:"terminal_users"`
}

type appRaw struct {
	Channel       scalar               `yaml:"channel"`
	Builtin       builtinRaw           `yaml:"builtin"`
	Rules         map[string]scalar    `yaml:"rules"`
	VersionTables *[]scalar            `yaml:"version_tables"`
	Versions      *versionsRaw         `yaml:"versions"`
	Environments  *[]*envRaw           `yaml:"environments"`
	Recovery      *recoveryRaw         `yaml:"recovery"`
	TimeZone      scalar               `yaml:"time_zone"`
	Roles         map[string]*[]scalar `yaml:"roles"`
	NocoBase      *layoutRaw           `yaml:"nocobase"`
}

type versionsRaw struct {
	Keep scalar `yaml:"keep"`
}

// envRaw is one environment of the chain; recoveryRaw is the recovery
// environment, whose name is fixed and so is no key.
type envRaw struct {
	Name      scalar `yaml:"name"`
	EnvFields `yaml:",inline"`
}

type recoveryRaw struct {
	EnvFields `yaml:",inline"`
}

// EnvFields are the keys of an environment but its name. (Exported only
// because the YAML library inlines exported embedded structs alone.)
type EnvFields struct {
	Database       scalar               `yaml:"database"`
	Storage        scalar               `yaml:"storage"`
	StorageExclude *[]scalar            `yaml:"storage_exclude"`
	Approvals      *approvalsRaw        `yaml:"approvals"`
	Checks         *[]*checkRaw         `yaml:"checks"`
	Freeze         *[]scalar            `yaml:"freeze"`
	Notice         scalar               `yaml:"notice"`
	Backup         *backupRaw           `yaml:"backup"`
	Hooks          map[string]*hookRaw  `yaml:"hooks"`
	Roles          map[string]*[]scalar `yaml:"roles"`
	NocoBase       *layoutRaw           `yaml:"nocobase"`
}

type layoutRaw struct {
	Schema           scalar `yaml:"schema"`
	TablePrefix      scalar `yaml:"table_prefix"`
	Underscored      scalar `yaml:"underscored"`
	CollectionSchema scalar `yaml:"collection_schema"`
	SubAppSchemas    scalar `yaml:"sub_app_schemas"`
}

type approvalsRaw struct {
	Required  scalar    `yaml:"required"`
	Approvers *[]scalar `yaml:"approvers"`
	AllowSelf scalar    `yaml:"allow_self"`
	Expire    scalar    `yaml:"expire"`
}

type checkRaw struct {
	Name    scalar `yaml:"name"`
	SQL     scalar `yaml:"sql"`
	HTTP    scalar `yaml:"http"`
	Expect  scalar `yaml:"expect"`
	Timeout scalar `yaml:"timeout"`
}

type backupRaw struct {
	Schedule scalar `yaml:"schedule"`
	Keep     scalar `yaml:"keep"`
	Verify   scalar `yaml:"verify"`
}

type hookRaw struct {
	HTTP    scalar    `yaml:"http"`
	Exec    *[]scalar `yaml:"exec"`
	Timeout scalar    `yaml:"timeout"`
	Env     *[]scalar `yaml:"env"`
}

// scalar is one value as written: the validator reads it as text, a
// number, a boolean or a duration, and says "must be a string, not a
// list" itself. A zero scalar is a key that is absent.
type scalar struct{ node ast.Node }

func (s *scalar) UnmarshalYAML(n ast.Node) error {
	s.node = unwrap(n)
	return nil
}

// given reports whether the key is present with a value: YAML's null is
// no value, as if the key were left out.
func (s scalar) given() bool {
	_, null := s.node.(*ast.NullNode)
	return s.node != nil && !null
}

// builtinRaw is builtin:, a preset's name or a list of tables.
type builtinRaw struct {
	preset scalar
	tables *[]scalar
}

func (b *builtinRaw) UnmarshalYAML(unmarshal func(any) error) error {
	var tables []scalar
	if err := unmarshal(&tables); err == nil {
		b.tables = &tables
		return nil
	}
	return unmarshal(&b.preset)
}

func (b builtinRaw) given() bool { return b.tables != nil || b.preset.given() }

func unwrap(n ast.Node) ast.Node {
	for range 64 {
		switch t := n.(type) {
		case *ast.TagNode:
			n = t.Value
		case *ast.AnchorNode:
			n = t.Value
		default:
			return n
		}
	}
	return n
}

// path is a field's place in apps.yaml: keys (string) and list indexes
// (int). It renders as apps.crm.environments[0].database.
type path []any

func (p path) key(k string) path { return append(p[:len(p):len(p)], k) }
func (p path) index(i int) path  { return append(p[:len(p):len(p)], i) }

func (p path) String() string {
	var s string
	for _, seg := range p {
		switch v := seg.(type) {
		case string:
			s = childPath(s, v)
		case int:
			s = indexPath(s, v)
		}
	}
	return s
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

// docIndex knows, for every field path written in the document, its line
// and (for mappings) its keys in document order. It follows the text, not
// aliases: a path reached through an alias is reported at the alias.
type docIndex struct {
	lines  map[string]int
	keys   map[string][]string
	values map[string]ast.Node   // the value written at a path
	nodes  map[*token.Token]path // where each value's first token is
	keyTk  map[*token.Token]path // where each key is
}

func indexDoc(root ast.Node) *docIndex {
	ix := &docIndex{lines: map[string]int{}, keys: map[string][]string{}, values: map[string]ast.Node{},
		nodes: map[*token.Token]path{}, keyTk: map[*token.Token]path{}}
	if root != nil {
		ix.lines[""] = nodeLine(root)
		ix.values[""] = unwrap(root)
		ix.walk(root, nil, 0)
	}
	return ix
}

func (ix *docIndex) walk(n ast.Node, p path, depth int) {
	if n == nil || depth > 200 {
		return
	}
	if tk := n.GetToken(); tk != nil {
		if _, seen := ix.nodes[tk]; !seen {
			ix.nodes[tk] = p
		}
	}
	switch t := n.(type) {
	case *ast.TagNode:
		ix.walk(t.Value, p, depth+1)
	case *ast.AnchorNode:
		ix.walk(t.Value, p, depth+1)
	case *ast.AliasNode:
		ix.walk(t.Value, p, depth+1)
	case *ast.MappingNode:
		for _, mv := range t.Values {
			ix.walk(mv, p, depth+1)
		}
	case *ast.MappingValueNode:
		if t.Key == nil {
			return
		}
		if t.Key.IsMergeKey() {
			// The merged mapping's keys fill in the mapping holding <<.
			ix.walk(t.Value, p, depth+1)
			return
		}
		k, ok := keyText(t.Key)
		if !ok {
			return
		}
		child := p.key(k)
		cs := child.String()
		if _, dup := ix.lines[cs]; !dup {
			ix.lines[cs] = nodeLine(t.Key)
			ps := p.String()
			ix.keys[ps] = append(ix.keys[ps], k)
		}
		if tk := t.Key.GetToken(); tk != nil {
			ix.keyTk[tk] = child
		}
		if _, dup := ix.values[cs]; !dup {
			ix.values[cs] = unwrap(t.Value)
		}
		ix.walk(t.Value, child, depth+1)
	case *ast.SequenceNode:
		for i, item := range t.Values {
			child := p.index(i)
			line := nodeLine(item)
			if i < len(t.Entries) && t.Entries[i] != nil && t.Entries[i].Start != nil && t.Entries[i].Start.Position != nil {
				line = t.Entries[i].Start.Position.Line
			}
			ix.lines[child.String()] = line
			ix.values[child.String()] = unwrap(item)
			ix.walk(item, child, depth+1)
		}
	}
}

// line is the line of p, or of its nearest ancestor that is written (a
// missing key is reported at the mapping that lacks it).
func (ix *docIndex) line(p path) int {
	for i := len(p); i >= 0; i-- {
		if l, ok := ix.lines[p[:i].String()]; ok {
			return l
		}
	}
	return 0
}

// order returns the keys of m in the order the document writes them at p;
// keys it does not write there (merged from an alias) follow, sorted.
func order[V any](ix *docIndex, p path, m map[string]V) []string {
	out := make([]string, 0, len(m))
	seen := map[string]bool{}
	for _, k := range ix.keys[p.String()] {
		if _, ok := m[k]; ok && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// pathOf finds the field a library error's token belongs to.
func (ix *docIndex) pathOf(tk *token.Token, key bool) (path, bool) {
	if tk == nil {
		return nil, false
	}
	m := ix.nodes
	if key {
		m = ix.keyTk
	}
	if p, ok := m[tk]; ok {
		return p, true
	}
	if tk.Position == nil {
		return nil, false
	}
	// The library may hand back a copy of the token.
	var best path
	found := false
	for t, p := range m {
		if t.Position != nil && t.Position.Offset == tk.Position.Offset && t.Position.Line == tk.Position.Line {
			if !found || len(p) < len(best) {
				best, found = p, true
			}
		}
	}
	return best, found
}

func keyText(n ast.Node) (string, bool) {
	switch t := unwrap(n).(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		return t.GetToken().Value, true
	}
	return "", false
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

// mergeKeysFirst moves each mapping's << entries before its own keys:
// goccy/go-yaml lets the later of two equal keys win, and YAML says a
// mapping's own keys win over merged ones wherever << is written.
func mergeKeysFirst(n ast.Node) {
	ast.Walk(mergeVisitor{}, n)
}

type mergeVisitor struct{}

func (mergeVisitor) Visit(n ast.Node) ast.Visitor {
	if m, ok := n.(*ast.MappingNode); ok {
		sort.SliceStable(m.Values, func(i, j int) bool {
			return isMerge(m.Values[i]) && !isMerge(m.Values[j])
		})
	}
	return mergeVisitor{}
}

func isMerge(mv *ast.MappingValueNode) bool { return mv.Key != nil && mv.Key.IsMergeKey() }

// decodeDocument parses data and decodes its single document into raw.
// The index it returns places later problems.
func decodeDocument(data []byte, raw *fileRaw) (*docIndex, *Error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		// A duplicate key is refused by the parser, whose error has no
		// path: parse again accepting it to find where it is.
		var se *yaml.SyntaxError
		if errors.As(err, &se) && strings.Contains(se.GetMessage(), "already defined") {
			if f2, err2 := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey()); err2 == nil {
				for _, doc := range f2.Docs {
					ix := indexDoc(doc.Body)
					if p, ok := ix.pathOf(se.GetToken(), true); ok && se.GetToken().Position != nil {
						// The second of the two is the one to remove.
						return nil, &Error{Line: se.GetToken().Position.Line, Field: p.String(), Problem: "duplicate key"}
					}
				}
			}
		}
		return nil, syntaxError(err)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			return nil, &Error{Line: nodeLine(doc.Body), Problem: "apps.yaml must hold a single YAML document"}
		}
		body = doc.Body
	}
	ix := indexDoc(body)
	if body == nil {
		return ix, nil
	}
	if _, null := unwrap(body).(*ast.NullNode); null {
		return ix, nil
	}
	mergeKeysFirst(body)
	if err := nodeToValue(body, raw); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, ix.decodeError(err)
	}
	return ix, nil
}

// nodeToValue decodes body with the library's strict mode. Duplicate keys
// were refused by the parser; what the decoder would call one is an own
// key next to a merged one, which YAML allows. The library panics on some
// odd documents (found by FuzzParseApps: a tag on an alias where a list
// goes); that is a refusal, not a crash of relbot.
func nodeToValue(body ast.Node, raw *fileRaw) (err error) {
	defer func() {
		if recover() != nil {
			err = &Error{Problem: "cannot be decoded: the YAML library failed on it (look for tags such as ! or !!map next to aliases)"}
		}
	}()
	return yaml.NodeToValue(body, raw, yaml.Strict(), yaml.AllowDuplicateMapKey())
}

// decodeError puts a decoding error from the library into the one-line
// form of every other problem: the field, its line, and what is wrong in
// relbot's words (the library's rendering quotes source lines, which may
// hold a password).
func (ix *docIndex) decodeError(err error) *Error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		if errors.Is(err, yaml.ErrExceededMaxDepth) {
			return &Error{Problem: "nests too deeply"}
		}
		return &Error{Problem: "cannot be decoded: " + oneLine(err.Error())}
	}
	var ue *yaml.UnknownFieldError
	isKey := errors.As(err, &ue)
	p, found := ix.pathOf(ye.GetToken(), isKey)
	line := 0
	if tk := ye.GetToken(); tk != nil && tk.Position != nil {
		line = tk.Position.Line
	}
	if !found {
		return &Error{Line: line, Problem: "not valid: " + oneLine(ye.GetMessage())}
	}
	if isKey && len(p) > 0 {
		return ix.unknownKey(p[:len(p)-1])
	}
	msg := ye.GetMessage()
	if strings.Contains(msg, "could not find alias") {
		return &Error{Line: ix.line(p), Field: p.String(), Problem: "unknown alias *" + ye.GetToken().Value}
	}
	// "must be a mapping, not a mapping" would say nothing: a tagged or
	// otherwise odd value keeps the library's words.
	if want, got := kindAt(p), describe(ix.values[p.String()]); want != "" && !strings.HasPrefix(want, got) {
		return &Error{Line: ix.line(p), Field: p.String(), Problem: "must be " + want + ", not " + got}
	}
	return &Error{Line: ix.line(p), Field: p.String(), Problem: oneLine(msg)}
}

// unknownKey reports the first key, in document order, that the struct at
// p does not know. The library reports some unknown key, not always the
// first, so it is looked for again here.
func (ix *docIndex) unknownKey(p path) *Error {
	known := knownKeys(typeAt(p))
	for _, k := range ix.keys[p.String()] {
		if !slices.Contains(known, k) {
			at := p.key(k)
			return &Error{Line: ix.line(at), Field: at.String(), Problem: unknownKeyProblem(k, known)}
		}
	}
	return &Error{Line: ix.line(p), Field: p.String(), Problem: "unknown key"}
}

func unknownKeyProblem(key string, known []string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	return fmt.Sprintf("unknown key (known keys: %s)", strings.Join(known, ", "))
}

var (
	rawRoot    = reflect.TypeOf(fileRaw{})
	scalarType = reflect.TypeOf(scalar{})
)

// typeAt is the Go type the raw structs decode at p.
func typeAt(p path) reflect.Type {
	t := rawRoot
	for _, seg := range p {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			k, _ := seg.(string)
			f, ok := fieldByKey(t, k)
			if !ok {
				return nil
			}
			t = f
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		default:
			return nil
		}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if len(tag) > 1 && tag[1] == "inline" {
			if ft, ok := fieldByKey(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if tag[0] == key && tag[0] != "-" {
			return f.Type, true
		}
	}
	return nil, false
}

// knownKeys lists the keys a struct type takes, in declaration order.
func knownKeys(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		switch {
		case len(tag) > 1 && tag[1] == "inline":
			out = append(out, knownKeys(f.Type)...)
		case tag[0] != "" && tag[0] != "-":
			out = append(out, tag[0])
		}
	}
	return out
}

// Keys lists every key the decoder takes anywhere in apps.yaml, read from
// the raw structs' tags, so documentation can be checked against it.
func Keys() []string {
	seen := map[reflect.Type]bool{}
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == scalarType || seen[t] {
			return
		}
		seen[t] = true
		for _, k := range knownKeys(t) {
			out = append(out, k)
			if ft, ok := fieldByKey(t, k); ok {
				walk(ft)
			}
		}
	}
	walk(rawRoot)
	return out
}

// kindAt says what the value at p must be, when that is a mapping or a
// list (scalars are checked by the validator).
func kindAt(p path) string {
	t := typeAt(p)
	if t == nil || t == scalarType {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if t == reflect.TypeOf(builtinRaw{}) {
			return ""
		}
		return "a mapping of keys to values"
	case reflect.Slice:
		return "a list"
	}
	return ""
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
