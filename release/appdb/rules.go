package appdb

import (
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// nocobaseTSV is the table list of a real NocoBase 2.2.15 app: each table,
// its row count, whether it has a primary key, and the data category and
// migration rules its plugin declares (first = preferred).
//
//go:embed nocobase-2.2.15-tables.tsv
var nocobaseTSV string

// presetTable is what a preset knows of one table.
type presetTable struct {
	category string   // system, business, runtime or "-"
	rules    []string // as the plugin declares them, preferred first
}

var nocobasePreset = parsePreset(nocobaseTSV)

// userCollections are in the list because the app it was read from had
// them as collections: they are not NocoBase's, and a table of that name
// elsewhere is a user table.
var userCollections = map[string]bool{"tickets": true}

func parsePreset(tsv string) map[string]presetTable {
	out := map[string]presetTable{}
	for _, line := range strings.Split(tsv, "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 5 || strings.HasPrefix(f[0], "#") || f[0] == "table" {
			continue
		}
		if userCollections[f[0]] {
			continue
		}
		pt := presetTable{category: f[3]}
		if f[4] != "-" {
			pt.rules = strings.Split(f[4], ",")
		}
		out[f[0]] = pt
	}
	return out
}

// NocoBase tables that declare no rule but belong with configuration: they
// link pages, layouts, menus and roles (NOCOBASE.md). Left schema-only, a
// migrated page would arrive without its layout, tree path or role access.
var nocobaseLinkTables = map[string]bool{
	"rolesDesktopRoutes": true, "rolesMobileRoutes": true, "desktopRoutesUiLayouts": true,
	"rolesUischemas": true, "rolesAiEmployees": true, "collectionCategory": true,
}

// nocobaseVariables never carries values between environments.
const nocobaseVariables = "environmentVariables"

// TableRule is the effective rule of one table and why.
type TableRule struct {
	Table  string       `json:"table"`
	Rule   release.Rule `json:"rule"`
	Reason string       `json:"reason"`
}

// Rules computes the effective rule of every table of s for app, whose
// NocoBase layout is l: apps.yaml overrides, then the preset's built-in
// tables, then schema-only for everything user-defined. The preset knows
// NocoBase 2.2.15's plain names and finds each under l (nocobase.uiSchemas
// is uiSchemas of a plain install); apps.yaml may name a table by its real
// name or by that plain name (ResolveName). An override naming a table
// that does not exist, two overrides of one table, or upsert/insert-ignore
// on a table without a primary key, is refused with the table named.
func Rules(app *release.App, l release.Layout, s *pgschema.Schema) ([]TableRule, error) {
	exists := map[string]*pgschema.Table{}
	for i := range s.Tables {
		t := &s.Tables[i]
		if IsOwnSchema(t.Schema) {
			continue
		}
		exists[t.Key()] = t
	}
	var names []string
	for name := range app.Rules {
		names = append(names, name)
	}
	sort.Strings(names)
	overrides := map[string]release.Rule{}
	written := map[string]string{} // real key -> the name apps.yaml used
	for _, name := range names {
		key, ok := ResolveName(l, s, name)
		if !ok {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules names table %q, which development does not have%s", app.Name, name, NorMapped(l, name))
		}
		if other, dup := written[key]; dup {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules names table %s twice, as %q and as %q: keep one", app.Name, key, other, name)
		}
		written[key] = name
		t := exists[key]
		if r := app.Rules[name]; r.NeedsPrimaryKey() && len(t.PrimaryKey) == 0 {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules.%s: %s matches rows by primary key and table %s has none (use overwrite, schema-only or skip)", app.Name, name, r, key)
		}
		if key == l.Key(nocobaseVariables) && app.Builtin == "nocobase" && app.Rules[name].CarriesRows() {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules.%s: the variables table never carries values between environments", app.Name, name)
		}
		overrides[key] = app.Rules[name]
	}
	builtin := map[string]bool{}
	for _, name := range app.BuiltinTables {
		if key, ok := ResolveName(l, s, name); ok {
			builtin[key] = true
		}
	}
	preset := presetNames(l)
	out := make([]TableRule, 0, len(exists))
	for key, t := range exists {
		out = append(out, defaultRule(app, l, key, t, overrides, written, builtin, preset))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

// ResolveName finds the table apps.yaml means by name: the table of that
// key (schema.table, or table in public) when s has one, else the table
// NocoBase 2.2.15 calls name under layout l. Real names win, so a user
// table is never shadowed by a mapped one.
func ResolveName(l release.Layout, s *pgschema.Schema, name string) (string, bool) {
	if t := s.Table(name); t != nil && !IsOwnSchema(t.Schema) {
		return name, true
	}
	if key := l.Key(name); s.Table(key) != nil {
		return key, true
	}
	return "", false
}

// NorMapped completes "the database has no table name" with the name the
// layout gives it, when that is another.
func NorMapped(l release.Layout, name string) string {
	if l.Key(name) == name {
		return ""
	}
	return fmt.Sprintf(" (nor %q, its name under the layout %s)", l.Key(name), l)
}

// presetNames maps the real key of each table of the 2.2.15 list under l
// to its plain name.
func presetNames(l release.Layout) map[string]string {
	out := make(map[string]string, len(nocobasePreset))
	for name := range nocobasePreset {
		out[l.Key(name)] = name
	}
	return out
}

// pathTable reports whether t is one of NocoBase's route tree path tables
// (<app>_desktopRoutes_path, <app>_mobileRoutes_path) under l.
func pathTable(l release.Layout, t *pgschema.Table) bool {
	if t.Schema != l.SchemaName() || !strings.HasPrefix(t.Name, l.TablePrefix) {
		return false
	}
	return strings.HasSuffix(t.Name, l.Column("_desktopRoutes_path")) || strings.HasSuffix(t.Name, l.Column("_mobileRoutes_path"))
}

// decided is a table's rule with the reason that decided it, which names
// the rule: "NocoBase configuration table → overwrite". The Why column
// shows the reason beside the rule, so it must never read as another.
func decided(key string, r release.Rule, why string) TableRule {
	return TableRule{key, r, why + " → " + string(r)}
}

func defaultRule(app *release.App, l release.Layout, key string, t *pgschema.Table, overrides map[string]release.Rule, written map[string]string,
	builtin map[string]bool, preset map[string]string) TableRule {
	if r, ok := overrides[key]; ok {
		return decided(key, r, "stated in apps.yaml (rules."+written[key]+")")
	}
	if builtin[key] {
		return decided(key, release.RuleOverwrite, "listed in apps.yaml builtin")
	}
	if app.Builtin != "nocobase" {
		return decided(key, release.RuleSchemaOnly, "user table: its rows stay in each environment")
	}
	name, known := preset[key]
	as := ""
	if known && name != key {
		as = " (" + name + " in NocoBase's names)"
	}
	switch {
	case name == "applicationPlugins":
		return decided(key, release.RuleOverwrite, "NocoBase plugin registry: configuration"+as)
	case name == nocobaseVariables:
		return decided(key, release.RuleSchemaOnly, "NocoBase variables: values never travel"+as)
	case pathTable(l, t) || nocobaseLinkTables[name]:
		return decided(key, release.RuleOverwrite, "NocoBase configuration link table"+as)
	}
	pt, ok := nocobasePreset[name]
	if !known || !ok {
		return decided(key, release.RuleSchemaOnly, "user table: its rows stay in each environment")
	}
	if len(pt.rules) == 0 {
		return decided(key, release.RuleSchemaOnly, "NocoBase table whose plugin declares no rule"+as)
	}
	// Runtime and business data stay where they were written, even where a
	// plugin also allows overwrite; system configuration takes the plugin's
	// preferred rule.
	if pt.category == "business" || pt.category == "runtime" {
		for _, r := range []string{"schema-only", "skip"} {
			if slices.Contains(pt.rules, r) {
				return decided(key, release.Rule(r), "NocoBase "+pt.category+" data stays where it is written"+as)
			}
		}
	}
	what := "NocoBase table"
	if pt.category == "system" {
		what = "NocoBase system table"
	}
	rule := release.Rule(pt.rules[0])
	if rule.NeedsPrimaryKey() && len(t.PrimaryKey) == 0 {
		return decided(key, release.RuleOverwrite, fmt.Sprintf("%s%s: its plugin prefers %s, which needs a primary key it lacks", what, as, rule))
	}
	if pt.category == "system" && rule == release.RuleOverwrite {
		return decided(key, rule, "NocoBase configuration table"+as)
	}
	return decided(key, rule, what+as+", as its plugin prefers")
}

// minPresetTables is "a handful": a NocoBase database with fewer of the
// preset's tables than this is not the one the preset was written for,
// or its layout is not the one relbot uses.
const minPresetTables = 5

// Coverage says loudly when the preset or the builtin list does not fit
// the source: a preset matching no table, or only a few, makes a file that
// carries no configuration at all. env and how name the source and how its
// layout was found.
func Coverage(app *release.App, l release.Layout, s *pgschema.Schema, rules []TableRule, env, how string) []string {
	var out []string
	if app.Builtin == "nocobase" {
		var matched []string
		for name := range nocobasePreset {
			if s.Table(l.Key(name)) != nil {
				matched = append(matched, l.Key(name))
			}
		}
		sort.Strings(matched)
		switch {
		case len(matched) == 0:
			out = append(out, fmt.Sprintf("PRESET MATCHED NO TABLE: builtin: nocobase found none of the %d tables of NocoBase 2.2.15 in %s under the layout %s (%s); every table is schema-only. Is this a NocoBase database, with this layout? State it in apps.yaml (nocobase: {schema, table_prefix, underscored}) if it is another.",
				len(nocobasePreset), env, l, how))
		case len(matched) < minPresetTables:
			out = append(out, fmt.Sprintf("PRESET MATCHED ONLY %d TABLES: builtin: nocobase found only %s of the %d tables of NocoBase 2.2.15 in %s under the layout %s (%s); check the layout (apps.yaml nocobase:).",
				len(matched), strings.Join(matched, ", "), len(nocobasePreset), env, l, how))
		}
	}
	if len(app.BuiltinTables) > 0 {
		var missing []string
		for _, name := range app.BuiltinTables {
			if _, ok := ResolveName(l, s, name); !ok {
				missing = append(missing, name)
			}
		}
		switch {
		case len(missing) == len(app.BuiltinTables):
			out = append(out, fmt.Sprintf("BUILTIN LIST MATCHED NO TABLE: none of the %d tables apps.yaml lists under builtin is in %s, by its name or under the layout %s (%s).",
				len(missing), env, l, how))
		case len(missing) > 0:
			out = append(out, fmt.Sprintf("builtin lists tables %s does not have, by their names or under the layout %s: %s.", env, l, strings.Join(missing, ", ")))
		}
	}
	carried := 0
	for _, r := range rules {
		if r.Rule.CarriesRows() {
			carried++
		}
	}
	if carried == 0 {
		out = append(out, fmt.Sprintf("NOTHING CARRIED: no table's rows are in this file (all %d tables are schema-only or skipped); applying it changes structure only.", len(rules)))
	}
	return out
}

// RuleOf finds a table's rule in rules; tables not listed are skipped.
func RuleOf(rules []TableRule, table string) release.Rule {
	for _, r := range rules {
		if r.Table == table {
			return r.Rule
		}
	}
	return release.RuleSkip
}
