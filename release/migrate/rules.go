// Package migrate is relbot's migration engine: the effective per-table
// rules of an app, the migration file made from development, and the plan
// and transactional apply of that file to another environment.
package migrate

import (
	"crypto/hkdf"
	"crypto/sha256"
	_ "embed"
	"fmt"
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

func parsePreset(tsv string) map[string]presetTable {
	out := map[string]presetTable{}
	for _, line := range strings.Split(tsv, "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 5 || strings.HasPrefix(f[0], "#") || f[0] == "table" {
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

// MarkerSchema holds relbot's own bookkeeping in a target database; it is
// never part of a migration.
const MarkerSchema = "relbot"

// TableRule is the effective rule of one table and why.
type TableRule struct {
	Table  string       `json:"table"`
	Rule   release.Rule `json:"rule"`
	Reason string       `json:"reason"`
}

// Rules computes the effective rule of every table of s for app: apps.yaml
// overrides, then the preset's built-in tables, then schema-only for
// everything user-defined. An override naming a table that does not exist,
// or upsert/insert-ignore on a table without a primary key, is refused
// with the table named.
func Rules(app *release.App, s *pgschema.Schema) ([]TableRule, error) {
	exists := map[string]*pgschema.Table{}
	for i := range s.Tables {
		t := &s.Tables[i]
		if t.Schema == MarkerSchema {
			continue
		}
		exists[t.Key()] = t
	}
	var names []string
	for name := range app.Rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t, ok := exists[name]
		if !ok {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules names table %q, which development does not have", app.Name, name)
		}
		if r := app.Rules[name]; r.NeedsPrimaryKey() && len(t.PrimaryKey) == 0 {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules.%s: %s matches rows by primary key and table %s has none (use overwrite, schema-only or skip)", app.Name, name, r, name)
		}
		if name == nocobaseVariables && app.Builtin == "nocobase" && app.Rules[name].CarriesRows() {
			return nil, release.Errorf(release.CodeInvalid, "apps.yaml: apps.%s.rules.%s: the variables table never carries values between environments", app.Name, name)
		}
	}
	builtin := map[string]bool{}
	for _, t := range app.BuiltinTables {
		builtin[t] = true
	}
	out := make([]TableRule, 0, len(exists))
	for key, t := range exists {
		out = append(out, defaultRule(app, key, t, builtin))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

func defaultRule(app *release.App, key string, t *pgschema.Table, builtin map[string]bool) TableRule {
	if r, ok := app.Rules[key]; ok {
		return TableRule{key, r, "apps.yaml override"}
	}
	if builtin[key] {
		return TableRule{key, release.RuleOverwrite, "built-in table (apps.yaml builtin list)"}
	}
	if app.Builtin != "nocobase" {
		return TableRule{key, release.RuleSchemaOnly, "user table"}
	}
	if key == "applicationPlugins" {
		return TableRule{key, release.RuleOverwrite, "NocoBase plugin registry: configuration"}
	}
	if key == nocobaseVariables {
		return TableRule{key, release.RuleSchemaOnly, "NocoBase variables: values never travel"}
	}
	if strings.HasSuffix(key, "_desktopRoutes_path") || strings.HasSuffix(key, "_mobileRoutes_path") || nocobaseLinkTables[key] {
		return TableRule{key, release.RuleOverwrite, "NocoBase configuration link table"}
	}
	pt, ok := nocobasePreset[key]
	if !ok {
		return TableRule{key, release.RuleSchemaOnly, "user table"}
	}
	if len(pt.rules) == 0 {
		return TableRule{key, release.RuleSchemaOnly, "NocoBase runtime table"}
	}
	// Runtime and business data stay where they were written, even where a
	// plugin also allows overwrite; system configuration takes the plugin's
	// preferred rule.
	if pt.category == "business" || pt.category == "runtime" {
		for _, r := range []string{"schema-only", "skip"} {
			if contains(pt.rules, r) {
				return TableRule{key, release.Rule(r), "NocoBase " + pt.category + " data"}
			}
		}
	}
	rule := release.Rule(pt.rules[0])
	if rule.NeedsPrimaryKey() && len(t.PrimaryKey) == 0 {
		rule = release.RuleOverwrite
	}
	category := pt.category + " "
	if category == "- " {
		category = ""
	}
	return TableRule{key, rule, fmt.Sprintf("NocoBase %stable (%s)", category, strings.Join(pt.rules, ", "))}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

// SigningKey derives the key that signs migration files from relbot's
// secret key, so the two uses never share key material directly.
func SigningKey(secretKey []byte) []byte {
	if len(secretKey) == 0 {
		return nil
	}
	k, err := hkdf.Key(sha256.New, secretKey, nil, "relbot migration file signature", 32)
	if err != nil {
		return nil
	}
	return k
}
