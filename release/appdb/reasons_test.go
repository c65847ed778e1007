package appdb

import (
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

// The Why column explains the rule beside it: each reason names the rule
// that decided it, and none lists rules the table does not get ("NocoBase
// system table (overwrite, schema-only)" next to overwrite read as a
// contradiction).
func TestRuleReasonsNameTheDecidingRule(t *testing.T) {
	table := func(name string, pk ...string) pgschema.Table {
		return pgschema.Table{Schema: "public", Name: name, PrimaryKey: pk}
	}
	s := &pgschema.Schema{Tables: []pgschema.Table{
		table("uiSchemas", "x_uid"), table("applicationPlugins", "id"), table("environmentVariables", "name"), table("users", "id"),
		table("rolesDesktopRoutes", "id"), table("aiSkills", "id"), table("applicationVersion", "id"), table("customers", "id"),
		table("products", "id"), table("verifiers", "name"),
	}}
	app := &release.App{Name: "crm", Builtin: "nocobase", Rules: map[string]release.Rule{"products": release.RuleUpsert}}
	rules, err := Rules(app, release.Layout{}, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"uiSchemas":            "NocoBase configuration table → overwrite",
		"products":             "stated in apps.yaml (rules.products) → upsert",
		"users":                "NocoBase business data stays where it is written → schema-only",
		"customers":            "user table: its rows stay in each environment → schema-only",
		"environmentVariables": "NocoBase variables: values never travel → schema-only",
		"verifiers":            "NocoBase configuration table → overwrite",
	}
	for _, r := range rules {
		if !strings.HasSuffix(r.Reason, " → "+string(r.Rule)) {
			t.Errorf("%s (%s): reason %q does not name its rule", r.Table, r.Rule, r.Reason)
		}
		why := strings.TrimSuffix(r.Reason, " → "+string(r.Rule))
		for _, other := range release.Rules {
			if other != r.Rule && strings.Contains(why, string(other)) {
				t.Errorf("%s (%s): reason %q names %s too", r.Table, r.Rule, r.Reason, other)
			}
		}
		if w, ok := want[r.Table]; ok && r.Reason != w {
			t.Errorf("%s: reason %q, want %q", r.Table, r.Reason, w)
		}
	}
	app.Builtin, app.BuiltinTables, app.Rules = "", []string{"uiSchemas"}, nil
	rules, err = Rules(app, release.Layout{}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Table == "uiSchemas" && r.Reason != "listed in apps.yaml builtin → overwrite" {
			t.Errorf("builtin list: reason %q", r.Reason)
		}
	}
}
