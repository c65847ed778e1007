package config

import (
	"fmt"

	"github.com/relbot/relbot/release"
)

// ValidateRulesAgainstSchema checks what apps.yaml cannot know alone: that
// every table with a rule override, and every version table, exists in the
// source database, and that upsert and insert-ignore (which match rows by
// primary key) name only tables that have one. tables maps each table of the
// source database to whether it has a primary key.
func ValidateRulesAgainstSchema(app *release.App, tables map[string]bool) error {
	base := childPath("apps", app.Name)
	for _, t := range sortedKeys(app.Rules) {
		rule := app.Rules[t]
		hasPK, exists := tables[t]
		field := childPath(childPath(base, "rules"), t)
		switch {
		case !exists:
			return &Error{Field: field, Problem: fmt.Sprintf("table %q does not exist in the source database", t)}
		case rule.NeedsPrimaryKey() && !hasPK:
			return &Error{Field: field, Problem: fmt.Sprintf("%s matches rows by primary key and table %q has none (use overwrite, schema-only or skip)", rule, t)}
		}
	}
	for i, t := range app.VersionTables {
		if _, exists := tables[t]; !exists {
			return &Error{Field: indexPath(childPath(base, "version_tables"), i), Problem: fmt.Sprintf("table %q does not exist in the source database", t)}
		}
	}
	return nil
}
