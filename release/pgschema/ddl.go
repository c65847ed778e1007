package pgschema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Restore order, as pg_restore does it: objects rows go into first, then the
// rows, then what checks or indexes rows, foreign keys last, then what may
// fire on rows (triggers) and what reads them (views).

// PreData is the DDL that must run before rows are loaded: schemas,
// extensions, types, functions, sequences, tables with their columns.
func (s *Schema) PreData() []string {
	var out []string
	for _, ns := range s.Schemas {
		out = append(out, "CREATE SCHEMA IF NOT EXISTS "+QuoteIdent(ns.Name))
		if ns.Comment != "" {
			out = append(out, "COMMENT ON SCHEMA "+QuoteIdent(ns.Name)+" IS "+QuoteLiteral(ns.Comment))
		}
	}
	for _, e := range s.Extensions {
		out = append(out, fmt.Sprintf("CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s", QuoteIdent(e.Name), QuoteIdent(e.Schema)))
	}
	for _, e := range s.Enums {
		labels := make([]string, len(e.Labels))
		for i, l := range e.Labels {
			labels[i] = QuoteLiteral(l)
		}
		out = append(out, fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", Ident(e.Schema, e.Name), strings.Join(labels, ", ")))
		out = appendComment(out, "TYPE "+Ident(e.Schema, e.Name), e.Comment)
	}
	for _, d := range s.Domains {
		out = append(out, d.DDL())
		out = appendComment(out, "DOMAIN "+Ident(d.Schema, d.Name), d.Comment)
	}
	for _, c := range s.Composites {
		attrs := make([]string, len(c.Attributes))
		for i, a := range c.Attributes {
			attrs[i] = QuoteIdent(a.Name) + " " + a.Type
		}
		out = append(out, fmt.Sprintf("CREATE TYPE %s AS (%s)", Ident(c.Schema, c.Name), strings.Join(attrs, ", ")))
		out = appendComment(out, "TYPE "+Ident(c.Schema, c.Name), c.Comment)
	}
	for _, f := range s.Functions {
		if len(f.DependsOn) > 0 {
			continue // made with the views, after the tables (PostData)
		}
		out = append(out, f.Def)
		out = appendComment(out, f.Kind+" "+f.Signature, f.Comment)
	}
	for _, sq := range s.Sequences {
		if sq.Identity {
			continue
		}
		out = append(out, fmt.Sprintf("CREATE SEQUENCE %s AS %s %s", Ident(sq.Schema, sq.Name), sq.Type, sq.options()))
		out = appendComment(out, "SEQUENCE "+Ident(sq.Schema, sq.Name), sq.Comment)
	}
	for i := range s.Tables {
		out = append(out, s.Tables[i].CreateStatements(s.Sequence)...)
	}
	for _, sq := range s.Sequences {
		if sq.OwnerTable != "" && !sq.Identity {
			out = append(out, fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", Ident(sq.Schema, sq.Name), sq.OwnerTable, QuoteIdent(sq.OwnerColumn)))
		}
	}
	return out
}

// DDL creates the domain with its checks.
func (d *Domain) DDL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE DOMAIN %s AS %s", Ident(d.Schema, d.Name), d.BaseType)
	if d.Collation != "" {
		b.WriteString(" COLLATE " + d.Collation)
	}
	if d.Default != "" {
		b.WriteString(" DEFAULT " + d.Default)
	}
	if d.NotNull {
		b.WriteString(" NOT NULL")
	}
	for _, c := range d.Checks {
		fmt.Fprintf(&b, " CONSTRAINT %s %s", QuoteIdent(c.Name), c.Def)
	}
	return b.String()
}

func (sq *Sequence) options() string {
	cycle := "NO CYCLE"
	if sq.Cycle {
		cycle = "CYCLE"
	}
	return fmt.Sprintf("START WITH %d INCREMENT BY %d MINVALUE %d MAXVALUE %d CACHE %d %s",
		sq.Start, sq.Increment, sq.Min, sq.Max, sq.Cache, cycle)
}

// ColumnDef is the column as it appears in CREATE TABLE or ADD COLUMN.
func (c *Column) ColumnDef() string {
	var b strings.Builder
	b.WriteString(QuoteIdent(c.Name) + " " + c.Type)
	if c.Collation != "" {
		b.WriteString(" COLLATE " + c.Collation)
	}
	if c.Generated != "" {
		b.WriteString(" GENERATED ALWAYS AS (" + c.Generated + ") STORED")
	} else if c.Default != "" {
		b.WriteString(" DEFAULT " + c.Default)
	}
	if c.NotNull {
		b.WriteString(" NOT NULL")
	}
	return b.String()
}

// Sequence finds a sequence by its quoted, qualified name.
func (s *Schema) Sequence(qualified string) *Sequence {
	for i := range s.Sequences {
		if Ident(s.Sequences[i].Schema, s.Sequences[i].Name) == qualified {
			return &s.Sequences[i]
		}
	}
	return nil
}

// CreateStatements creates the table with its columns, identities and
// comments, but none of its constraints or indexes. seq finds an identity
// column's sequence by name, for its parameters.
func (t *Table) CreateStatements(seq func(string) *Sequence) []string {
	name := t.QualifiedName()
	var cols []string
	for i := range t.Columns {
		if !t.Columns[i].Inherited {
			cols = append(cols, "    "+t.Columns[i].ColumnDef())
		}
	}
	create := "CREATE TABLE "
	if t.Unlogged {
		create = "CREATE UNLOGGED TABLE "
	}
	stmt := create + name + " ()"
	if len(cols) > 0 {
		stmt = create + name + " (\n" + strings.Join(cols, ",\n") + "\n)"
	}
	if len(t.Inherits) > 0 {
		// Inherited columns, their defaults, NOT NULL and checks come from
		// the parents, which exist already (tables are parents first).
		stmt += " INHERITS (" + strings.Join(t.Inherits, ", ") + ")"
	}
	if len(t.Options) > 0 {
		stmt += " WITH (" + strings.Join(t.Options, ", ") + ")"
	}
	out := []string{stmt}
	for i := range t.Columns {
		c := &t.Columns[i]
		if c.Inherited {
			// A child may set its own default or NOT NULL on an inherited
			// column; setting the parent's again changes nothing.
			if c.Default != "" && c.Generated == "" {
				out = append(out, fmt.Sprintf("ALTER TABLE ONLY %s ALTER COLUMN %s SET DEFAULT %s", name, QuoteIdent(c.Name), c.Default))
			}
			if c.NotNull {
				out = append(out, fmt.Sprintf("ALTER TABLE ONLY %s ALTER COLUMN %s SET NOT NULL", name, QuoteIdent(c.Name)))
			}
			continue
		}
		if s := c.IdentityStatement(name, seq(c.IdentitySequence)); s != "" {
			out = append(out, s)
		}
	}
	out = appendComment(out, "TABLE "+name, t.Comment)
	for _, c := range t.Columns {
		out = appendComment(out, "COLUMN "+name+"."+QuoteIdent(c.Name), c.Comment)
	}
	return out
}

// IdentityStatement makes c an identity column with its sequence's
// parameters, or returns "" when c is not one. With sq nil the server's
// defaults are used.
func (c *Column) IdentityStatement(table string, sq *Sequence) string {
	if c.Identity == "" {
		return ""
	}
	kind := "BY DEFAULT"
	if c.Identity == "a" {
		kind = "ALWAYS"
	}
	opts := ""
	if c.IdentitySequence != "" {
		opts = " (SEQUENCE NAME " + c.IdentitySequence
		if sq != nil {
			opts += " " + sq.options()
		}
		opts += ")"
	}
	return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s ADD GENERATED %s AS IDENTITY%s", table, QuoteIdent(c.Name), kind, opts)
}

// KeyStatements adds the table's primary key, unique, exclusion and check
// constraints and its indexes: what must exist before foreign keys point at
// it. Statements of one table run in order; tables may run in parallel.
func (t *Table) KeyStatements() []string {
	name := t.QualifiedName()
	var out []string
	for _, pass := range []string{"p", "u", "x", "c"} {
		for _, c := range t.Constraints {
			if c.Type == pass && !c.Inherited {
				out = append(out, c.AddStatement(name))
			}
		}
	}
	for _, ix := range t.Indexes {
		out = append(out, ix.Def)
	}
	return out
}

// ForeignKeyStatements adds the table's foreign keys.
func (t *Table) ForeignKeyStatements() []string {
	var out []string
	for _, c := range t.Constraints {
		if c.Type == "f" && !c.Inherited {
			out = append(out, c.AddStatement(t.QualifiedName()))
		}
	}
	return out
}

// AddStatement adds the constraint to table. A check constraint is added
// to the table's children too, as PostgreSQL requires of a parent (unless
// it is NO INHERIT); it merges with a child's own of the same name.
func (c *Constraint) AddStatement(table string) string {
	only := "ONLY "
	if c.Type == "c" {
		only = ""
	}
	return fmt.Sprintf("ALTER TABLE %s%s ADD CONSTRAINT %s %s", only, table, QuoteIdent(c.Name), c.Def)
}

// DropStatement drops the constraint from table (and a check constraint
// from the children that have it only through table).
func (c *Constraint) DropStatement(table string) string {
	only := "ONLY "
	if c.Type == "c" {
		only = ""
	}
	return fmt.Sprintf("ALTER TABLE %s%s DROP CONSTRAINT %s", only, table, QuoteIdent(c.Name))
}

// PostData is what runs after every table's keys and foreign keys exist:
// identity sequences' parameters and every sequence's position, views,
// triggers, comments on constraints and indexes, refreshed materialized views.
func (s *Schema) PostData() []string {
	var out []string
	for _, sq := range s.Sequences {
		seq := Ident(sq.Schema, sq.Name)
		if sq.Identity {
			out = appendComment(out, "SEQUENCE "+seq, sq.Comment)
		}
		out = append(out, fmt.Sprintf("SELECT pg_catalog.setval(%s, %d, %t)", QuoteLiteral(seq), sq.LastValue, sq.IsCalled))
	}
	out = append(out, s.ReaderStatements()...)
	for i := range s.Tables {
		t := &s.Tables[i]
		name := t.QualifiedName()
		for _, c := range t.Constraints {
			out = appendComment(out, "CONSTRAINT "+QuoteIdent(c.Name)+" ON "+name, c.Comment)
		}
		for _, ix := range t.Indexes {
			out = appendComment(out, "INDEX "+Ident(t.Schema, ix.Name), ix.Comment)
		}
		for _, tg := range t.Triggers {
			out = append(out, tg.Def)
			out = appendComment(out, "TRIGGER "+QuoteIdent(tg.Name)+" ON "+name, tg.Comment)
			switch tg.Enabled {
			case "D":
				out = append(out, "ALTER TABLE "+name+" DISABLE TRIGGER "+QuoteIdent(tg.Name))
			case "R":
				out = append(out, "ALTER TABLE "+name+" ENABLE REPLICA TRIGGER "+QuoteIdent(tg.Name))
			case "A":
				out = append(out, "ALTER TABLE "+name+" ENABLE ALWAYS TRIGGER "+QuoteIdent(tg.Name))
			}
		}
	}
	for _, v := range s.Views {
		if v.Materialized {
			out = append(out, "REFRESH MATERIALIZED VIEW "+Ident(v.Schema, v.Name))
		}
	}
	return out
}

// ReaderStatements create the views and the functions whose definitions
// need relations (Function.DependsOn), each after what it needs.
func (s *Schema) ReaderStatements() []string {
	type item struct {
		key   string
		deps  []string
		stmts []string
	}
	var items []item
	for i := range s.Views {
		v := &s.Views[i]
		items = append(items, item{Ident(v.Schema, v.Name), v.DependsOn, v.CreateStatements()})
	}
	for _, f := range s.Functions {
		if len(f.DependsOn) > 0 {
			items = append(items, item{f.Signature, f.DependsOn, appendComment([]string{f.Def}, f.Kind+" "+f.Signature, f.Comment)})
		}
	}
	index := map[string]int{}
	for i, it := range items {
		index[it.key] = i
	}
	var out []string
	state := make([]bool, len(items))
	var visit func(int)
	visit = func(i int) {
		if state[i] {
			return
		}
		state[i] = true
		for _, d := range items[i].deps {
			if j, ok := index[d]; ok {
				visit(j)
			}
		}
		out = append(out, items[i].stmts...)
	}
	for i := range items {
		visit(i)
	}
	return out
}

// CreateStatements creates the view (a materialized one empty), its indexes
// and comments.
func (v *View) CreateStatements() []string {
	name := Ident(v.Schema, v.Name)
	with := ""
	if len(v.Options) > 0 {
		with = " WITH (" + strings.Join(v.Options, ", ") + ")"
	}
	def := strings.TrimRight(strings.TrimSpace(v.Def), ";")
	var out []string
	if v.Materialized {
		out = append(out, "CREATE MATERIALIZED VIEW "+name+with+" AS\n"+def+"\nWITH NO DATA")
	} else {
		out = append(out, "CREATE VIEW "+name+with+" AS\n"+def)
	}
	for _, ix := range v.Indexes {
		out = append(out, ix.Def)
		out = appendComment(out, "INDEX "+Ident(v.Schema, ix.Name), ix.Comment)
	}
	kind := "VIEW "
	if v.Materialized {
		kind = "MATERIALIZED VIEW "
	}
	out = appendComment(out, kind+name, v.Comment)
	for _, col := range slices.Sorted(maps.Keys(v.ColumnComments)) {
		out = appendComment(out, "COLUMN "+name+"."+QuoteIdent(col), v.ColumnComments[col])
	}
	return out
}

func appendComment(out []string, target, comment string) []string {
	if comment == "" {
		return out
	}
	return append(out, "COMMENT ON "+target+" IS "+QuoteLiteral(comment))
}

// RoleAccess is what the server a schema is restored on allows: which
// roles exist, and whether the restoring role may make one the owner of an
// object in a schema.
type RoleAccess struct {
	Current string
	Exists  func(role string) bool
	CanOwn  func(role, schema string) bool
}

// PrivilegeStatements gives back owners and grants where access allows
// (grants first, so that the restoring role grants as the owner it still
// is; ALTER ... OWNER then hands them over) and says, a line a role, what
// it could not.
func PrivilegeStatements(privs []Privileges, access RoleAccess) (stmts, warnings []string) {
	noGrantee := map[string]int{} // grants to roles that do not exist here
	noOwner := map[string]int{}   // objects of owners that do not exist here
	notOwned := map[string]int{}  // objects of owners the restoring role may not give to
	var owners []string
	for _, p := range privs {
		object := Ident(p.Schema, p.Name)
		on := "TABLE " + object
		switch p.Kind {
		case "SEQUENCE":
			on = "SEQUENCE " + object
		case "FUNCTION", "PROCEDURE":
			object = p.Name // the signature, qualified already
			on = p.Kind + " " + object
		}
		type key struct {
			grantee   string
			grantable bool
		}
		var order []key
		byGrantee := map[key][]string{}
		if (p.Kind == "FUNCTION" || p.Kind == "PROCEDURE") && p.Grants != nil && !slices.ContainsFunc(p.Grants, func(g Grant) bool { return g.Grantee == "" }) {
			// A function's default lets PUBLIC execute it; an explicit list
			// without PUBLIC means it was revoked.
			stmts = append(stmts, "REVOKE ALL ON "+on+" FROM PUBLIC")
		}
		for _, g := range p.Grants {
			if g.Grantee == p.Owner {
				continue // the owner holds every privilege by default
			}
			if g.Grantee != "" && !access.Exists(g.Grantee) {
				noGrantee[g.Grantee]++
				continue
			}
			k := key{g.Grantee, g.Grantable}
			if _, ok := byGrantee[k]; !ok {
				order = append(order, k)
			}
			byGrantee[k] = append(byGrantee[k], g.Privilege)
		}
		for _, k := range order {
			to := "PUBLIC"
			if k.grantee != "" {
				to = QuoteIdent(k.grantee)
			}
			st := fmt.Sprintf("GRANT %s ON %s TO %s", strings.Join(byGrantee[k], ", "), on, to)
			if k.grantable {
				st += " WITH GRANT OPTION"
			}
			stmts = append(stmts, st)
		}
		switch {
		case p.Linked || p.Owner == access.Current:
		case !access.Exists(p.Owner):
			noOwner[p.Owner]++
		case !access.CanOwn(p.Owner, p.Schema):
			// The owner stays relbot's role; the role that owned it keeps
			// its access through a grant.
			notOwned[p.Owner]++
			stmts = append(stmts, fmt.Sprintf("GRANT ALL ON %s TO %s", on, QuoteIdent(p.Owner)))
		default:
			owners = append(owners, fmt.Sprintf("ALTER %s %s OWNER TO %s", p.Kind, object, QuoteIdent(p.Owner)))
		}
	}
	stmts = append(stmts, owners...)
	for _, role := range slices.Sorted(maps.Keys(noOwner)) {
		warnings = append(warnings, fmt.Sprintf("role %s does not exist on this server: its %d objects are owned by %s", role, noOwner[role], access.Current))
	}
	for _, role := range slices.Sorted(maps.Keys(notOwned)) {
		warnings = append(warnings, fmt.Sprintf("%d objects of role %s are owned by %s, which may not give objects to %s (it lacks %s's privileges, or %s may not create in their schema); %s was granted all privileges on them instead",
			notOwned[role], role, access.Current, role, role, role, role))
	}
	for _, role := range slices.Sorted(maps.Keys(noGrantee)) {
		warnings = append(warnings, fmt.Sprintf("role %s does not exist on this server: its privileges on %d objects were not granted", role, noGrantee[role]))
	}
	return stmts, warnings
}
