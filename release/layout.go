package release

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Layout is where and how a NocoBase installation names its tables: the
// settings DB_SCHEMA, DB_TABLE_PREFIX, DB_UNDERSCORED and
// COLLECTION_MANAGER_SCHEMA it was installed with. relbot's knowledge of NocoBase (the preset's 2.2.15 table list, the
// variables and versions tables) is written in the plain names and mapped
// through the layout onto the real ones.
type Layout struct {
	// Schema holds every NocoBase table; "" is public.
	Schema string `json:"schema,omitempty"`
	// TablePrefix starts every table name (nb_ in nb_ui_schemas).
	TablePrefix string `json:"table_prefix,omitempty"`
	// Underscored: tables and columns in snake_case (uiSchemas is
	// ui_schemas, createdAt is created_at).
	Underscored bool `json:"underscored,omitempty"`
	// CollectionSchema holds the tables of the user's collections when it
	// is not Schema (COLLECTION_MANAGER_SCHEMA); "" is Schema itself.
	CollectionSchema string `json:"collection_schema,omitempty"`
}

// CollectionSchemaName is the schema of the user collections' tables.
func (l Layout) CollectionSchemaName() string {
	if l.CollectionSchema == "" {
		return l.SchemaName()
	}
	return l.CollectionSchema
}

// SchemaName is the schema with public spelled out.
func (l Layout) SchemaName() string {
	if l.Schema == "" {
		return "public"
	}
	return l.Schema
}

// String describes the layout in the words of NocoBase's settings.
func (l Layout) String() string {
	prefix := "no table prefix"
	if l.TablePrefix != "" {
		prefix = "table prefix " + l.TablePrefix
	}
	kase := "camelCase names"
	if l.Underscored {
		kase = "underscored names"
	}
	out := fmt.Sprintf("schema %s, %s, %s", l.SchemaName(), prefix, kase)
	if l.CollectionSchemaName() != l.SchemaName() {
		out += ", collections in schema " + l.CollectionSchemaName()
	}
	return out
}

// Table is the real name of the table NocoBase 2.2.15 calls name in a
// plain install, without its schema.
func (l Layout) Table(name string) string {
	if l.Underscored {
		name = Underscore(name)
	}
	return l.TablePrefix + name
}

// Column is the real name of a column a plain install calls name.
func (l Layout) Column(name string) string {
	if l.Underscored {
		return Underscore(name)
	}
	return name
}

// Key is the table's name as relbot shows and matches tables (the form of
// pgschema's Key): schema.table, or just table in public.
func (l Layout) Key(name string) string {
	if l.SchemaName() == "public" {
		return l.Table(name)
	}
	return l.Schema + "." + l.Table(name)
}

// Differences names each setting in which l and o differ, as NocoBase's
// own Migration Manager compares installations; ln and on name the sides.
func (l Layout) Differences(o Layout, ln, on string) []string {
	var out []string
	if l.SchemaName() != o.SchemaName() {
		out = append(out, fmt.Sprintf("DB_SCHEMA is %s in %s, %s in %s", l.SchemaName(), ln, o.SchemaName(), on))
	}
	if l.TablePrefix != o.TablePrefix {
		out = append(out, fmt.Sprintf("DB_TABLE_PREFIX is %s in %s, %s in %s", orEmpty(l.TablePrefix), ln, orEmpty(o.TablePrefix), on))
	}
	if l.Underscored != o.Underscored {
		out = append(out, fmt.Sprintf("DB_UNDERSCORED is %t in %s, %t in %s", l.Underscored, ln, o.Underscored, on))
	}
	if l.CollectionSchemaName() != o.CollectionSchemaName() {
		out = append(out, fmt.Sprintf("COLLECTION_MANAGER_SCHEMA is %s in %s, %s in %s (where the tables of the user's collections are)", l.collectionSetting(), ln, o.collectionSetting(), on))
	}
	return out
}

// collectionSetting is COLLECTION_MANAGER_SCHEMA as NocoBase reads it:
// unset means DB_SCHEMA.
func (l Layout) collectionSetting() string {
	if l.CollectionSchema == "" {
		return "unset (" + l.SchemaName() + ")"
	}
	return l.CollectionSchema
}

func orEmpty(s string) string {
	if s == "" {
		return "empty"
	}
	return s
}

// Underscore is NocoBase's snake case (Sequelize's Utils.underscore, from
// inflection): an underscore before every upper-case letter, none at the
// start, then lower case. Other characters stay: "x-uid" is "x-uid",
// "main_desktopRoutes_path" is "main_desktop_routes_path".
func Underscore(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// LayoutReport is an environment's layout and how relbot knows it.
type LayoutReport struct {
	Env string `json:"env"`
	// Layout is omitted from JSON when it is NocoBase's default (schema
	// public, no table prefix, camelCase), which would print as {}.
	Layout Layout `json:"layout,omitzero"`
	// Found: NocoBase's tables are in the database. Without them the
	// layout is the stated one or the plain default.
	Found bool `json:"found"`
	// How is "detected", "stated in apps.yaml", "stated in apps.yaml and
	// detected", or why it is a default.
	How string `json:"how"`
	// Error is why it could not be read (the database is down, or the
	// stated layout contradicts it).
	Error string `json:"error,omitempty"`
	// SubAppSchemas are the schemas of sub-apps kept apart
	// (USE_DB_SCHEMA_IN_SUBAPP), which relbot does not handle.
	SubAppSchemas []string `json:"sub_app_schemas,omitempty"`
}

// Text is the report in one line.
func (r LayoutReport) Text() string {
	if r.Error != "" {
		return "unknown: " + r.Error
	}
	out := r.Layout.String() + " (" + r.How + ")"
	if len(r.SubAppSchemas) > 0 {
		out += "; WARNING: " + SubAppWarning(r.SubAppSchemas)
	}
	return out
}

// SubAppWarning says what relbot does not do for sub-apps kept in schemas
// of their own.
func SubAppWarning(schemas []string) string {
	return fmt.Sprintf("sub-apps keep their tables in schemas of their own (USE_DB_SCHEMA_IN_SUBAPP: %s), which relbot does not support: it compares, migrates and keeps the secrets of the main app's tables only",
		strings.Join(schemas, ", "))
}

// LayoutReader reads an environment's NocoBase layout from its database,
// checked against the layout apps.yaml states for it.
type LayoutReader interface {
	Layout(ctx context.Context, env *Environment) (*LayoutReport, error)
}

// Layouts reports the layout of each environment of app, the recovery
// environment last; an environment that cannot be read says why in its
// report instead of failing the others.
func (s *MigrationService) Layouts(ctx context.Context, app string) ([]LayoutReport, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	envs := append([]*Environment{}, a.Environments...)
	if a.Recovery != nil {
		envs = append(envs, a.Recovery)
	}
	out := make([]LayoutReport, 0, len(envs))
	for _, e := range envs {
		rep := LayoutReport{Env: e.Name}
		// A database that does not answer must not hold up a listing.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := s.LayoutReader.Layout(lctx, e)
		cancel()
		if err != nil {
			rep.Error = ErrorMessage(err)
		} else {
			rep = *r
			rep.Env = e.Name
		}
		out = append(out, rep)
	}
	return out, nil
}

// checkLayouts refuses, before a deploy is requested, a migration made from
// an installation whose layout differs from the target's: NocoBase's own
// Migration Manager refuses the same. Files made before layouts were
// recorded, and targets without NocoBase tables yet, are not refused here
// (the engine says what it does with them).
func (s *MigrationService) checkLayouts(ctx context.Context, a *App, e *Environment, m *Migration) error {
	src := m.Summary.Layout
	if src == nil {
		return nil
	}
	tgt, err := s.LayoutReader.Layout(ctx, e)
	if err != nil {
		return wrapUser(err, "cannot read the NocoBase layout of %s %s", a.Name, e.Name)
	}
	if !tgt.Found && e.Layout == nil {
		return nil
	}
	if diff := src.Differences(tgt.Layout, m.SourceEnv, e.Name); len(diff) > 0 {
		return LayoutMismatch(m.ID, m.SourceEnv, e.Name, *src, tgt.Layout)
	}
	return nil
}

// LayoutMismatch is the refusal of a migration between installations
// whose layouts differ, naming each setting that differs.
func LayoutMismatch(id, from, to string, src, tgt Layout) error {
	return Errorf(CodeIncompatible, "migration %s was made from %s (%s) and %s is laid out differently (%s): %s; NocoBase cannot migrate between installations whose layouts differ, so nothing was done",
		id, from, src, to, tgt, strings.Join(src.Differences(tgt, from, to), "; "))
}
