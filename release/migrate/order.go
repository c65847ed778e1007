package migrate

import (
	"strings"

	"github.com/relbot/relbot/release/pgschema"
)

// postObject is a view or a function whose definition needs relations
// (Function.DependsOn): the apply drops the target's before touching any
// table and makes them again after every table and row is in place.
type postObject struct {
	key      string // quoted relation name or function signature
	what     string // for people: "view public.v", "function public.f(integer)"
	deps     []string
	view     bool
	drop     string
	create   []string
	refresh  []string
	inSource bool // the source has an object of that name
}

// postObjects lists the source's and the target's post objects, each in
// dependency order (an object after those it needs), and refuses those
// that something outside the model uses.
func (c *compiler) postObjects() (src, tgt []postObject) {
	srcKeys := map[string]bool{}
	for _, v := range c.src.Views {
		srcKeys[pgschema.Ident(v.Schema, v.Name)] = true
	}
	for _, f := range c.src.Functions {
		srcKeys[f.Signature] = true
	}
	collect := func(s *pgschema.Schema) []postObject {
		var out []postObject
		for i := range s.Views {
			v := &s.Views[i]
			o := postObject{key: pgschema.Ident(v.Schema, v.Name), deps: v.DependsOn, view: true, create: v.CreateStatements()}
			kind := "VIEW"
			if v.Materialized {
				kind = "MATERIALIZED VIEW"
				o.refresh = []string{"REFRESH MATERIALIZED VIEW " + o.key}
			}
			o.what = strings.ToLower(kind) + " " + pgschema.Key(v.Schema, v.Name)
			o.drop = "DROP " + kind + " " + o.key
			out = append(out, o)
		}
		for i := range s.Functions {
			f := &s.Functions[i]
			if len(f.DependsOn) == 0 {
				continue
			}
			o := postObject{key: f.Signature, deps: f.DependsOn, what: strings.ToLower(f.Kind) + " " + f.Signature,
				drop: "DROP " + f.Kind + " " + f.Signature, create: []string{f.Def}}
			if f.Comment != "" {
				o.create = append(o.create, "COMMENT ON "+f.Kind+" "+f.Signature+" IS "+pgschema.QuoteLiteral(f.Comment))
			}
			if len(f.UsedBy) > 0 {
				c.refuse("%s reads %s and is used by %s: the apply drops and makes again what reads tables, and cannot make that again; change it to a function without an SQL-standard body or drop that use",
					o.what, strings.Join(readable(f.DependsOn), ", "), strings.Join(f.UsedBy, ", "))
			}
			out = append(out, o)
		}
		for i := range out {
			out[i].inSource = srcKeys[out[i].key]
		}
		return pgschema.DependencyOrder(out, func(o postObject) string { return o.key }, func(o postObject) []string { return o.deps })
	}
	return collect(c.src), collect(c.tgt)
}

// readable turns quoted relation names ("public"."x") into the names users
// read (x); function signatures stay as they are.
func readable(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if parts := strings.Split(strings.Trim(n, `"`), `"."`); strings.HasPrefix(n, `"`) && len(parts) == 2 {
			out[i] = pgschema.Key(strings.ReplaceAll(parts[0], `""`, `"`), strings.ReplaceAll(parts[1], `""`, `"`))
		}
	}
	return out
}
