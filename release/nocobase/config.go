package nocobase

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
)

// The change summary reads a handful of NocoBase's configuration tables,
// in COPY's text form, from either side of a migration: the rows a file
// carries and the rows its target has. Only the columns the summary looks
// at are kept; these tables hold configuration (tens of thousands of rows
// in a big app), not business data.

// summaryTable is one table the summary reads, in the names of a plain
// 2.2.15 install: its key columns, then the others it compares.
type summaryTable struct {
	name string
	key  []string
	cols []string
	// digest are columns kept as a digest of their JSON's value, not the
	// value: the page trees' nodes are compared, never shown, and a big
	// app has tens of thousands.
	digest []string
	// only, when set, keeps just the rows whose column has the value: of
	// a tree's closure table, the parent links (depth 1).
	only *columnValue
}

type columnValue struct{ col, value string }

var parentLinks = &columnValue{"depth", "1"}

var summaryTables = []summaryTable{
	{"desktopRoutes", []string{"id"}, []string{"parentId", "title", "type", "icon", "schemaUid", "hidden", "hideInMenu", "enableTabs", "options"}, nil, nil},
	{"mobileRoutes", []string{"id"}, []string{"parentId", "title", "type", "icon", "schemaUid", "hidden", "hideInMenu", "enableTabs", "options"}, nil, nil},
	{"rolesDesktopRoutes", []string{"desktopRouteId", "roleName"}, nil, nil, nil},
	{"rolesMobileRoutes", []string{"mobileRouteId", "roleName"}, nil, nil, nil},
	{"collections", []string{"key"}, []string{"name", "title", "hidden", "inherit", "description", "options"}, nil, nil},
	{"fields", []string{"key"}, []string{"collectionName", "name", "type", "interface", "description", "options"}, nil, nil},
	{"workflows", []string{"id"}, []string{"key", "title", "current", "enabled", "sync", "type", "description", "config", "options"}, nil, nil},
	{"flow_nodes", []string{"id"}, []string{"workflowId", "key", "title", "type", "upstreamId", "downstreamId", "branchIndex", "config"}, nil, nil},
	{"roles", []string{"name"}, []string{"title", "description", "strategy", "snippets", "default", "hidden", "allowConfigure", "allowNewMenu"}, nil, nil},
	{"rolesResources", []string{"id"}, []string{"roleName", "name", "dataSourceKey", "usingActionsConfig"}, nil, nil},
	{"rolesResourcesActions", []string{"id"}, []string{"rolesResourceId", "name", "fields", "scopeId"}, nil, nil},
	{"dataSourcesRolesResources", []string{"id"}, []string{"roleName", "name", "dataSourceKey", "usingActionsConfig"}, nil, nil},
	{"dataSourcesRolesResourcesActions", []string{"id"}, []string{"rolesResourceId", "name", "fields", "scopeId"}, nil, nil},
	{"applicationPlugins", []string{"id"}, []string{"name", "packageName", "version", "enabled", "installed", "builtIn"}, nil, nil},
	// The pages' contents: the UI schema tree (1.x pages) and the flow
	// model tree (2.x pages), each node and its closure rows.
	{"uiSchemas", []string{"x-uid"}, []string{"schema"}, []string{"schema"}, nil},
	{"uiSchemaTreePath", []string{"ancestor", "descendant"}, []string{"depth", "sort"}, nil, parentLinks},
	{"flowModels", []string{"uid"}, []string{"options"}, []string{"options"}, nil},
	{"flowModelTreePath", []string{"ancestor", "descendant"}, []string{"depth", "sort"}, nil, parentLinks},
}

// SummaryTables are the keys (schema.table as pgschema shows them) of the
// tables the change summary reads, in layout l.
func SummaryTables(l release.Layout) []string {
	out := make([]string, len(summaryTables))
	for i, t := range summaryTables {
		out[i] = l.Key(t.name)
	}
	return out
}

// Config is one side's configuration rows, as far as the summary reads it.
type Config struct {
	layout release.Layout
	tables map[string]*configRows // by plain name
}

// NewConfig starts an empty side in layout l.
func NewConfig(l release.Layout) *Config {
	return &Config{layout: l, tables: map[string]*configRows{}}
}

// configRows holds a table's rows: the key columns, then the compared
// ones; a nil value is NULL or a column the table does not have.
type configRows struct {
	def  *summaryTable
	rows []configRow
}

type configRow []*string

func (r configRow) get(t *summaryTable, col string) string {
	if v := r.ptr(t, col); v != nil {
		return *v
	}
	return ""
}

func (r configRow) ptr(t *summaryTable, col string) *string {
	if i := t.index(col); i >= 0 && i < len(r) {
		return r[i]
	}
	return nil
}

func (t *summaryTable) index(col string) int {
	if i := slices.Index(t.key, col); i >= 0 {
		return i
	}
	if i := slices.Index(t.cols, col); i >= 0 {
		return len(t.key) + i
	}
	return -1
}

func (t *summaryTable) keyOf(r configRow) string {
	parts := make([]string, len(t.key))
	for i := range t.key {
		if r[i] != nil {
			parts[i] = *r[i]
		}
	}
	return strings.Join(parts, "\x00")
}

func findSummaryTable(name string) *summaryTable {
	for i := range summaryTables {
		if summaryTables[i].name == name {
			return &summaryTables[i]
		}
	}
	return nil
}

// Writer takes the rows of the table whose key (in this side's layout)
// is key, in COPY's text form with the given columns (the table's real
// names), as COPY writes them; Close reports a cut-off last row. It is
// nil for a table the summary does not read.
func (c *Config) Writer(key string, columns []string) io.WriteCloser {
	for i := range summaryTables {
		t := &summaryTables[i]
		if c.layout.Key(t.name) != key {
			continue
		}
		want := append(append([]string(nil), t.key...), t.cols...)
		at := make([]int, len(want))
		for j, plain := range want {
			at[j] = slices.Index(columns, c.layout.Column(plain))
		}
		rows := &configRows{def: t}
		c.tables[t.name] = rows
		w := &copyReader{rows: rows, at: at, key: key, digest: make([]bool, len(want))}
		for j, plain := range want {
			w.digest[j] = slices.Contains(t.digest, plain)
		}
		w.Line = w.row
		return w
	}
	return nil
}

// copyReader parses COPY text rows as they stream past.
type copyReader struct {
	appdb.Lines
	rows   *configRows
	at     []int  // per summary column, its field in the COPY row; -1 absent
	digest []bool // per summary column, kept as a digest
	key    string
}

func (w *copyReader) row(line []byte) error {
	fields := bytes.Split(line, []byte{'\t'})
	r := make(configRow, len(w.at))
	for j, f := range w.at {
		if f < 0 || f >= len(fields) || string(fields[f]) == `\N` {
			continue
		}
		v := string(appdb.CopyUnescape(fields[f]))
		if w.digest[j] {
			sum := sha256.Sum256([]byte(canonicalJSON(v)))
			v = hex.EncodeToString(sum[:12])
		}
		r[j] = &v
	}
	if only := w.rows.def.only; only != nil {
		if v := r.ptr(w.rows.def, only.col); v == nil || *v != only.value {
			return nil
		}
	}
	w.rows.rows = append(w.rows.rows, r)
	return nil
}

func (w *copyReader) Close() error {
	if w.Cut() {
		return fmt.Errorf("rows of %s end in the middle of a row", w.key)
	}
	return nil
}

// After is what the target holds once a file is applied: per table, the
// file's rows (overwrite), the target's with the file's replacing and
// adding by key (upsert), the target's with only the file's new keys
// added (insert-ignore), or the target's own (any other rule, or a table
// the file does not carry). ruleOf gives a table's rule by its key.
func After(before, file *Config, ruleOf func(key string) release.Rule) *Config {
	out := NewConfig(before.layout)
	for _, t := range summaryTables {
		b, f := before.tables[t.name], file.tables[t.name]
		if f == nil {
			if b != nil {
				out.tables[t.name] = b
			}
			continue
		}
		rule := ruleOf(before.layout.Key(t.name))
		switch rule {
		case release.RuleOverwrite:
			out.tables[t.name] = f
		case release.RuleUpsert, release.RuleInsertIgnore:
			merged := &configRows{def: f.def}
			index := map[string]int{}
			if b != nil {
				for _, r := range b.rows {
					index[t.keyOf(r)] = len(merged.rows)
					merged.rows = append(merged.rows, r)
				}
			}
			for _, r := range f.rows {
				k := t.keyOf(r)
				if i, ok := index[k]; ok {
					if rule == release.RuleUpsert {
						merged.rows[i] = r
					}
					continue
				}
				index[k] = len(merged.rows)
				merged.rows = append(merged.rows, r)
			}
			out.tables[t.name] = merged
		default:
			if b != nil {
				out.tables[t.name] = b
			}
		}
	}
	return out
}

// Has reports whether a side holds the table NocoBase calls name.
func (c *Config) Has(name string) bool { return c.tables[name] != nil }

// rowsOf lists a table's rows with their definition; no rows when the
// side lacks the table.
func (c *Config) rowsOf(name string) (*summaryTable, []configRow) {
	if r := c.tables[name]; r != nil {
		return r.def, r.rows
	}
	return findSummaryTable(name), nil
}

// canonicalJSON compares JSON by value: json keeps the text as written,
// jsonb its own spacing and key order.
func canonicalJSON(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return s
	}
	return string(b)
}

// jsonKeysDiffering names the top-level keys whose values differ between
// two JSON objects (any key, when either is not an object).
func jsonKeysDiffering(a, b string) []string {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal([]byte(a), &ma) != nil || json.Unmarshal([]byte(b), &mb) != nil {
		if canonicalJSON(a) != canonicalJSON(b) {
			return []string{"(whole value)"}
		}
		return nil
	}
	var out []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || canonicalJSON(string(va)) != canonicalJSON(string(vb)) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
