// Package pgschema reads the structure of a PostgreSQL database from its
// catalogues into a plain model, and turns that model back into DDL.
//
// The server deparses most objects itself (pg_get_indexdef,
// pg_get_constraintdef, pg_get_viewdef, pg_get_functiondef, format_type), with
// search_path empty so that every name comes out schema-qualified: the DDL
// means the same thing in any database. What the model cannot reproduce is
// listed in Schema.Warnings, never dropped silently.
package pgschema

import "strings"

// Schema is everything relbot rebuilds of a database, apart from rows.
type Schema struct {
	ServerVersion    string      `json:"server_version"`
	ServerVersionNum int         `json:"server_version_num"`
	Schemas          []Namespace `json:"schemas"`
	Extensions       []Extension `json:"extensions,omitempty"`
	Enums            []Enum      `json:"enums,omitempty"`
	Domains          []Domain    `json:"domains,omitempty"`
	Composites       []Composite `json:"composites,omitempty"`
	Functions        []Function  `json:"functions,omitempty"`
	Sequences        []Sequence  `json:"sequences,omitempty"`
	Tables           []Table     `json:"tables"`
	// Views are in dependency order: a view comes after the views it reads.
	Views []View `json:"views,omitempty"`
	// Privileges are the owner and grants of every table, view and
	// sequence, restored where the roles exist.
	Privileges []Privileges `json:"privileges,omitempty"`
	Warnings   []string     `json:"warnings,omitempty"`
}

// Privileges are one relation's owner and grants.
type Privileges struct {
	Kind   string `json:"kind"` // TABLE, VIEW, MATERIALIZED VIEW, SEQUENCE, FUNCTION or PROCEDURE
	Schema string `json:"schema"`
	Name   string `json:"name"` // a function's or procedure's signature
	Owner  string `json:"owner"`
	// Linked sequences (identity, serial) follow their table's owner.
	Linked bool `json:"linked,omitempty"`
	// Grants are the explicit privileges; nil means the defaults (the
	// owner's alone), as with a NULL relacl.
	Grants []Grant `json:"grants,omitempty"`
}

// Grant is one privilege given to one role ("" is PUBLIC).
type Grant struct {
	Grantee   string `json:"grantee"`
	Privilege string `json:"privilege"` // SELECT, INSERT, USAGE, ...
	Grantable bool   `json:"grantable,omitempty"`
}

// Namespace is a user schema ("public" included).
type Namespace struct {
	Name    string `json:"name"`
	Comment string `json:"comment,omitempty"`
}

// Extension is an installed extension; its own objects are not in the model.
type Extension struct {
	Name    string `json:"name"`
	Schema  string `json:"schema"`
	Version string `json:"version"`
}

// Enum is an enum type with its labels in sort order.
type Enum struct {
	Schema  string   `json:"schema"`
	Name    string   `json:"name"`
	Labels  []string `json:"labels"`
	Comment string   `json:"comment,omitempty"`
}

// Domain is a domain type.
type Domain struct {
	Schema    string       `json:"schema"`
	Name      string       `json:"name"`
	BaseType  string       `json:"base_type"`
	NotNull   bool         `json:"not_null,omitempty"`
	Default   string       `json:"default,omitempty"`
	Collation string       `json:"collation,omitempty"`
	Checks    []Constraint `json:"checks,omitempty"`
	Comment   string       `json:"comment,omitempty"`
}

// Composite is a standalone composite type (CREATE TYPE x AS (...)).
type Composite struct {
	Schema     string   `json:"schema"`
	Name       string   `json:"name"`
	Attributes []Column `json:"attributes"`
	Comment    string   `json:"comment,omitempty"`
}

// Function is a function or procedure, kept as the server's own definition.
type Function struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	Signature string `json:"signature"` // schema-qualified name(argument types)
	Kind      string `json:"kind"`      // FUNCTION or PROCEDURE
	Def       string `json:"def"`
	Comment   string `json:"comment,omitempty"`
	// DependsOn are the relations (qualified, quoted) and functions
	// (signatures) the function's definition needs to exist: an SQL-standard
	// body's references, row types of arguments and results. Such a function
	// is made after those relations, and dropped before them.
	DependsOn []string `json:"depends_on,omitempty"`
	// UsedBy are objects other than views and functions that use a function
	// with DependsOn (a column default, a check, an index...).
	UsedBy []string `json:"-"`
}

// Sequence is a sequence with its parameters and where it stood.
type Sequence struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Start     int64  `json:"start"`
	Increment int64  `json:"increment"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
	Cache     int64  `json:"cache"`
	Cycle     bool   `json:"cycle,omitempty"`
	// OwnedBy is "column" of OwnerTable when the sequence belongs to a column.
	OwnerTable  string `json:"owner_table,omitempty"` // qualified, quoted
	OwnerColumn string `json:"owner_column,omitempty"`
	// Identity sequences are created by their column's ADD GENERATED clause.
	Identity  bool   `json:"identity,omitempty"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
	Comment   string `json:"comment,omitempty"`
}

// Table is an ordinary table.
type Table struct {
	Schema      string       `json:"schema"`
	Name        string       `json:"name"`
	Columns     []Column     `json:"columns"`
	Unlogged    bool         `json:"unlogged,omitempty"`
	Options     []string     `json:"options,omitempty"` // reloptions, e.g. fillfactor=70
	PrimaryKey  []string     `json:"primary_key,omitempty"`
	Constraints []Constraint `json:"constraints,omitempty"`
	Indexes     []Index      `json:"indexes,omitempty"`
	Triggers    []Trigger    `json:"triggers,omitempty"`
	Comment     string       `json:"comment,omitempty"`
	// Inherits are the parents (qualified, quoted) of a table made with
	// INHERITS, in their order. Schema.Tables lists parents before children.
	Inherits []string `json:"inherits,omitempty"`
	// Bytes is the table's size on disk when inspected; it orders work
	// (largest first) and is not compared.
	Bytes int64 `json:"-"`
	// Dependents are objects of the database that depend on the table but
	// that nothing in the model makes again (a column of its row type, a
	// rule...): dropping the table would fail or lose them.
	Dependents []string `json:"-"`
	// Attached are parts of the table the model does not make again
	// (policies, rules, row security, column privileges, extended
	// statistics, publication membership): dropping and
	// making the table again would lose them.
	Attached []string `json:"-"`
	// PartitionOf is the partitioned table (qualified, quoted) a partition
	// belongs to; the model keeps partitions as plain tables.
	PartitionOf string `json:"partition_of,omitempty"`
}

// Column is a column of a table or composite type.
type Column struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	NotNull   bool   `json:"not_null,omitempty"`
	Default   string `json:"default,omitempty"`
	Collation string `json:"collation,omitempty"`
	// Identity is "a" (ALWAYS) or "d" (BY DEFAULT) for identity columns.
	Identity         string `json:"identity,omitempty"`
	IdentitySequence string `json:"identity_sequence,omitempty"` // qualified, quoted
	// Generated is the expression of a stored generated column.
	Generated string `json:"generated,omitempty"`
	Comment   string `json:"comment,omitempty"`
	// Inherited columns come from a parent table only (not declared in the
	// table itself): CREATE TABLE leaves them to INHERITS.
	Inherited bool `json:"inherited,omitempty"`
}

// Constraint is a primary key, unique, check, exclusion or foreign key.
type Constraint struct {
	Name string `json:"name"`
	// Type is p, u, c, x or f as in pg_constraint.contype.
	Type    string   `json:"type"`
	Def     string   `json:"def"`
	Columns []string `json:"columns,omitempty"`
	// References is the qualified, quoted table a foreign key points to.
	References string `json:"references,omitempty"`
	Comment    string `json:"comment,omitempty"`
	// Inherited check constraints come from a parent only; adding the
	// parent's makes them.
	Inherited bool `json:"inherited,omitempty"`
}

// Index is an index that does not back a constraint.
type Index struct {
	Name    string `json:"name"`
	Def     string `json:"def"`
	Comment string `json:"comment,omitempty"`
}

// Trigger is a user trigger.
type Trigger struct {
	Name string `json:"name"`
	Def  string `json:"def"`
	// Enabled is pg_trigger.tgenabled: O (origin, the default), D, R or A.
	Enabled string `json:"enabled"`
	Comment string `json:"comment,omitempty"`
}

// View is a view or materialized view.
type View struct {
	Schema         string            `json:"schema"`
	Name           string            `json:"name"`
	Def            string            `json:"def"`
	Materialized   bool              `json:"materialized,omitempty"`
	Options        []string          `json:"options,omitempty"`
	Indexes        []Index           `json:"indexes,omitempty"`
	Comment        string            `json:"comment,omitempty"`
	ColumnComments map[string]string `json:"column_comments,omitempty"`
	// DependsOn are the functions (signatures) the view calls that depend on
	// relations themselves (Function.DependsOn), and the views it reads.
	DependsOn []string `json:"depends_on,omitempty"`
}

// QualifiedName is the table's name as SQL, quoted: "public"."uiSchemas".
func (t *Table) QualifiedName() string { return Ident(t.Schema, t.Name) }

// Key is the table's name as users read it: public.uiSchemas, or just
// uiSchemas in the public schema.
func (t *Table) Key() string { return Key(t.Schema, t.Name) }

// CopyColumns are the columns COPY reads and writes: all but generated ones.
func (t *Table) CopyColumns() []string {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.Columns {
		if c.Generated == "" {
			cols = append(cols, c.Name)
		}
	}
	return cols
}

// LocalColumns are the columns the table declares itself.
func (t *Table) LocalColumns() []Column {
	var out []Column
	for _, c := range t.Columns {
		if !c.Inherited {
			out = append(out, c)
		}
	}
	return out
}

// From is the table as a FROM clause of its own rows: ONLY, so that a
// parent's children are not read with it.
func (t *Table) From() string { return "ONLY " + t.QualifiedName() }

// Column finds a column by name.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Table finds a table by its Key.
func (s *Schema) Table(key string) *Table {
	for i := range s.Tables {
		if s.Tables[i].Key() == key {
			return &s.Tables[i]
		}
	}
	return nil
}

// Key names an object for users: without the schema when it is public.
func Key(schema, name string) string {
	if schema == "public" {
		return name
	}
	return schema + "." + name
}

// Ident quotes and joins identifiers: Ident("public", "uiSchemas") is
// "public"."uiSchemas".
func Ident(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(QuoteIdent(p))
	}
	return b.String()
}

// QuoteIdent quotes one identifier.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// QuoteLiteral quotes a string constant.
func QuoteLiteral(s string) string {
	if strings.Contains(s, `\`) {
		return `E'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + `'`
	}
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// ColumnList quotes and joins column names for COPY and INSERT.
func ColumnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = QuoteIdent(c)
	}
	return strings.Join(q, ", ")
}
