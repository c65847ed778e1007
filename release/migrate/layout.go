package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// checkLayout resolves the target's NocoBase layout and refuses a file made
// from an installation laid out otherwise, as NocoBase's own Migration
// Manager does: tables and columns would not meet under their names. A
// target without NocoBase's tables (and no stated layout) receives the
// source's, so nothing is compared.
func (f *File) checkLayout(tgt *pgschema.Schema, env *release.Environment) (*release.LayoutReport, error) {
	rep, err := nocobase.LayoutOf(withoutMarker(tgt), env)
	if err != nil {
		return nil, err
	}
	src := f.Meta.Layout
	if src == nil || (!rep.Found && env.Layout == nil) {
		return rep, nil
	}
	if rep.Found {
		// COLLECTION_MANAGER_SCHEMA and sub-apps are read from rows, which
		// an inspected schema does not hold: read them from the database
		// (the catalogue and two small tables, without locks).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		full, err := nocobase.Layouts{}.Layout(ctx, env)
		cancel()
		if err != nil {
			return nil, err
		}
		if full.Layout.SchemaName() == rep.Layout.SchemaName() {
			rep.Layout.CollectionSchema = full.Layout.CollectionSchema
		}
		rep.SubAppSchemas = full.SubAppSchemas
	}
	if len(src.Differences(rep.Layout, f.Meta.SourceEnv, env.Name)) > 0 {
		return nil, release.LayoutMismatch(f.Meta.ID, f.Meta.SourceEnv, env.Name, *src, rep.Layout)
	}
	return rep, nil
}

// layoutWarnings are the file's own preset warnings and what the plan could
// not compare.
func (f *File) layoutWarnings(rep *release.LayoutReport, env *release.Environment) []string {
	out := append([]string(nil), f.Meta.PresetWarnings...)
	if len(rep.SubAppSchemas) > 0 {
		out = append(out, env.Name+": "+release.SubAppWarning(rep.SubAppSchemas))
	}
	switch {
	case f.Meta.Layout == nil && rep.Found:
		out = append(out, fmt.Sprintf("the file records no NocoBase layout (made by an older relbot, or from a database without NocoBase's tables): it was not compared with %s's (%s)", env.Name, rep.Layout))
	case f.Meta.Layout != nil && !rep.Found && env.Layout == nil:
		out = append(out, fmt.Sprintf("%s has no NocoBase tables yet: it receives them laid out as %s's (%s)", env.Name, f.Meta.SourceEnv, *f.Meta.Layout))
	}
	return out
}
