package migrate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// A program is what applying a file to one target does, in order. Plan
// prints it; Apply runs it in one transaction.
type program struct {
	steps       []step
	destructive []string
	warnings    []string
	refusals    []string
	// loads are the tables whose rows the file brings, in step order.
	loads []load
	// rowsChanged are the target tables (qualified) whose rows the
	// program replaces, merges into, rewrites or drops; created are the
	// tables it makes that the target lacks. A release snapshot keeps the
	// rows of the former.
	rowsChanged map[string]bool
	created     []string
	// moved are the target tables (qualified) moved aside into the
	// snapshot's schema rather than dropped, with their name there.
	moved map[string]string
	// rowsWhy says why the rows of a table the target keeps are in
	// rowsChanged (a dropped column).
	rowsWhy map[string]string
	// swapped are the tables (keys) whose prepared shadow table is moved
	// into place; inWindow the loads that are not, each with why.
	swapped  []string
	inWindow []string
}

type stepKind int

const (
	stepSQL stepKind = iota
	stepLoad
)

type step struct {
	kind stepKind
	sql  string
	load *load
}

// load brings one table's rows: into a new or recreated table (plain COPY)
// or merged by primary key into kept rows.
type load struct {
	table   *pgschema.Table // the source definition
	data    TableData
	rule    release.Rule
	fresh   bool // the table is new or recreated in this apply
	target  *pgschema.Table
	trigOff []pgschema.Trigger // triggers to disable during the load
}

type compiler struct {
	meta     *Meta
	src      *pgschema.Schema
	tgt      *pgschema.Schema
	allow    bool
	p        program
	tgtTable map[string]*pgschema.Table
	tgtSeqs  map[string]bool
	scope    map[string]bool // quoted names of source tables not skipped
	data     map[string]TableData
	// only, when set (a revert), limits the program to these target
	// tables (qualified): target tables outside it are neither dropped
	// nor changed, whatever the source has.
	only map[string]bool
	// exact brings kept tables to the source's definition exactly: what
	// the source lacks (constraints, indexes, triggers, comments) goes, as
	// for an overwritten table, while the rows stay.
	exact bool
	// dropViews, with only, are the target's views the revert drops (those
	// the apply made); other views the source lacks are made again.
	dropViews map[string]bool
	// swap are the prepared shadow tables, by source table key: such a
	// table is made again by moving its shadow into place.
	swap map[string]shadow
	// aside, when set, is the snapshot's schema: tables the program drops
	// are moved there instead, and so kept as they were.
	aside      string
	asideNames map[string]bool
}

// shadow is a table prepared ahead with the file's rows, keys and
// indexes, in schema Schema under Name.
type shadow struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	// Restore: the table is one an apply moved aside, whole (a revert
	// moves it back): it has its identity, triggers and comments still.
	Restore bool `json:"restore,omitempty"`
}

// compile compares the file's source schema with the target's and lists
// what to run. Destructive changes to tables whose rows the target keeps
// run only with allow; those of overwritten tables are what overwrite means,
// and are listed all the same.
func compile(meta *Meta, target *pgschema.Schema, allow bool) *program {
	return newCompiler(meta, target, allow).run()
}

// compileWindow is compile for an apply that keeps a release snapshot in
// schema aside (tables it drops are moved there) and swaps in the
// prepared shadow tables swap (either may be empty).
func compileWindow(meta *Meta, target *pgschema.Schema, allow bool, aside string, swap map[string]shadow) *program {
	c := newCompiler(meta, target, allow)
	c.aside, c.swap = aside, swap
	return c.run()
}

// compileRevert is the program that brings the tables in only (qualified
// names) back to meta's definitions (those before an apply), touching no
// other table: a target table in only that meta lacks is dropped.
func compileRevert(meta *Meta, target *pgschema.Schema, only, dropViews map[string]bool, back map[string]shadow) *program {
	c := newCompiler(meta, target, true)
	c.only, c.exact, c.dropViews, c.swap = only, true, dropViews, back
	return c.run()
}

func newCompiler(meta *Meta, target *pgschema.Schema, allow bool) *compiler {
	return &compiler{meta: meta, src: meta.Schema, tgt: withoutMarker(target), allow: allow,
		tgtTable: map[string]*pgschema.Table{}, data: map[string]TableData{}}
}

func (c *compiler) run() *program {
	c.p.rowsChanged = map[string]bool{}
	c.p.moved = map[string]string{}
	for i := range c.tgt.Tables {
		c.tgtTable[c.tgt.Tables[i].Key()] = &c.tgt.Tables[i]
	}
	for _, td := range c.meta.Tables {
		c.data[td.Key] = td
	}
	c.build()
	return &c.p
}

func (c *compiler) sql(format string, args ...any) {
	c.p.steps = append(c.p.steps, step{kind: stepSQL, sql: fmt.Sprintf(format, args...)})
}

func (c *compiler) sqls(stmts []string) {
	for _, s := range stmts {
		c.p.steps = append(c.p.steps, step{kind: stepSQL, sql: s})
	}
}

func (c *compiler) destroy(format string, args ...any) {
	c.p.destructive = append(c.p.destructive, fmt.Sprintf(format, args...))
}

func (c *compiler) warn(format string, args ...any) {
	c.p.warnings = append(c.p.warnings, fmt.Sprintf(format, args...))
}

// refuse records what the apply cannot do; a program with refusals is
// never run.
func (c *compiler) refuse(format string, args ...any) {
	c.p.refusals = append(c.p.refusals, fmt.Sprintf(format, args...))
}

// tablePlan is the decision for one source table.
type tablePlan struct {
	src     *pgschema.Table
	tgt     *pgschema.Table
	rule    release.Rule
	new     bool // the target lacks it
	drop    bool // overwritten by drop and create
	inPlace bool // overwritten in place: emptied of its own rows, reloaded
	altered bool // column types changed: foreign keys are re-made
	swapped bool // made by moving its prepared shadow into place
}

// made reports whether the table is created in this apply.
func (tp *tablePlan) made() bool { return tp.new || tp.drop }

// emptied reports whether the table gets the file's rows into an empty
// table (COPY, no merge).
func (tp *tablePlan) emptied() bool { return tp.made() || tp.inPlace }

// build lists the apply's steps. Nothing depends on the order of table
// names: every foreign key touching a table that changes is dropped by
// name before any table is, and added back (validating every row) after
// all rows are in; views and functions that read tables are dropped
// dependents first and made again after, in dependency order; parents of
// inheritance come before their children.
//
// An overwritten table that exists is emptied in place (TRUNCATE ONLY: its
// children keep their rows, and no ON DELETE CASCADE fires) and brought to
// the source's structure; it is dropped and made again only when its
// columns' order cannot be reached otherwise and nothing else (children,
// objects outside the model) depends on it.
func (c *compiler) build() {
	var plans []*tablePlan
	byName := map[string]*tablePlan{}
	for i := range c.src.Tables {
		s := &c.src.Tables[i]
		rule := appdb.RuleOf(c.meta.Rules, s.Key())
		if rule == release.RuleSkip {
			continue
		}
		tp := &tablePlan{src: s, tgt: c.tgtTable[s.Key()], rule: rule}
		tp.new = tp.tgt == nil
		if tp.tgt != nil && rule == release.RuleOverwrite {
			tp.inPlace = true
		}
		plans = append(plans, tp)
		byName[s.QualifiedName()] = tp
		// The model keeps partitions as plain tables: migrating one would
		// make or fill it outside its partitioned table.
		for _, t := range []*pgschema.Table{s, tp.tgt} {
			if t != nil && t.PartitionOf != "" {
				c.refuse("table %s is a partition of %s, and relbot does not migrate partitioned tables: give it the rule skip in apps.yaml", s.Key(), readable([]string{t.PartitionOf})[0])
				break
			}
		}
	}
	// Children first: a table is dropped and made again only if its
	// target children are too.
	for i := len(plans) - 1; i >= 0; i-- {
		tp := plans[i]
		notSwapped := c.swappable(tp)
		if !tp.inPlace {
			if tp.tgt != nil && !slices.Equal(tp.src.Inherits, tp.tgt.Inherits) {
				c.warn("table %s: its parent tables differ from %s's and stay as the target has them (%s keeps its rows)", tp.src.Key(), c.meta.SourceEnv, tp.rule)
			}
			if tp.new && notSwapped == "" {
				tp.swapped = true
			} else if c.swap != nil && tp.rule.CarriesRows() && notSwapped != "" {
				c.p.inWindow = append(c.p.inWindow, tp.src.Key()+": "+notSwapped)
			}
			continue
		}
		why := needsRemake(tp.src, tp.tgt)
		// With a release snapshot a table that may be made again is: the
		// old one moved aside is the snapshot of its rows, not a copy.
		if why == "" && notSwapped != "" && c.aside == "" {
			if c.swap != nil {
				c.p.inWindow = append(c.p.inWindow, tp.src.Key()+": "+notSwapped)
			}
			continue
		}
		blocked := ""
		for _, ch := range c.children(tp.tgt.QualifiedName()) {
			if ctp := byName[ch.QualifiedName()]; ctp == nil || !ctp.drop {
				blocked = "table " + ch.Key() + " inherits from it and keeps its rows"
			}
		}
		if len(tp.tgt.Attached) > 0 {
			blocked = "making it again would lose its " + strings.Join(tp.tgt.Attached, ", ")
		}
		if len(tp.tgt.Dependents) > 0 {
			blocked = strings.Join(tp.tgt.Dependents, ", ") + " depends on it"
		}
		if blocked != "" {
			if why != "" {
				c.warn("overwrite %s: %s differs from %s's and stays as the target has it (%s)", tp.src.Key(), why, c.meta.SourceEnv, blocked)
			}
			if c.swap != nil {
				c.p.inWindow = append(c.p.inWindow, tp.src.Key()+": emptied and loaded in place, as "+blocked)
			}
			continue
		}
		tp.inPlace, tp.drop = false, true
		tp.swapped = notSwapped == ""
		if !tp.swapped && c.swap != nil {
			c.p.inWindow = append(c.p.inWindow, tp.src.Key()+": "+notSwapped)
		}
	}
	touched := map[string]bool{} // quoted names of tables whose FKs are re-made
	for _, tp := range plans {
		if tp.tgt != nil && !tp.made() {
			for _, col := range tp.src.Columns {
				if tc := tp.tgt.Column(col.Name); tc != nil && tc.Type != col.Type {
					tp.altered = true
				}
			}
		}
		if tp.made() || tp.inPlace || tp.altered || tp.rule.CarriesRows() {
			touched[tp.src.QualifiedName()] = true
		}
	}
	inSource := map[string]bool{}
	for i := range c.src.Tables {
		inSource[c.src.Tables[i].Key()] = true
	}
	var dropTables []*pgschema.Table
	for i := range c.tgt.Tables {
		t := &c.tgt.Tables[i]
		if !inSource[t.Key()] && c.inOnly(t.QualifiedName()) {
			if c.allow {
				c.destroy("table %s is not in %s: dropped", t.Key(), c.meta.SourceEnv)
				if len(t.Dependents) > 0 {
					c.refuse("table %s is to be dropped, but %s depends on it", t.Key(), strings.Join(t.Dependents, ", "))
				}
				for _, ch := range c.children(t.QualifiedName()) {
					if inSource[ch.Key()] {
						c.refuse("table %s is to be dropped, but table %s, which %s has, inherits from it", t.Key(), ch.Key(), c.meta.SourceEnv)
					}
				}
				dropTables = append(dropTables, t)
				touched[t.QualifiedName()] = true
				c.p.rowsChanged[t.QualifiedName()] = true
			} else {
				c.destroy("table %s is not in %s: kept (dropping it needs approval of destructive changes)", t.Key(), c.meta.SourceEnv)
			}
		}
	}
	made := map[string]bool{}
	c.scope = map[string]bool{}
	for _, tp := range plans {
		c.scope[tp.src.QualifiedName()] = true
		if tp.made() {
			made[tp.src.QualifiedName()] = true
		}
		if tp.swapped {
			c.p.swapped = append(c.p.swapped, tp.src.Key())
		}
		switch {
		case tp.new:
			c.p.created = append(c.p.created, tp.src.QualifiedName())
		case tp.drop || tp.inPlace:
			// (A column's new type is a change of definition: a revert
			// casts it back and keeps the rows written since.)
			c.p.rowsChanged[tp.tgt.QualifiedName()] = true
		case tp.rule.CarriesRows():
			if _, ok := c.data[tp.src.Key()]; ok {
				c.p.rowsChanged[tp.tgt.QualifiedName()] = true
			}
		}
	}
	srcPost, tgtPost := c.postObjects()

	// Tear down, dependents first.
	for i := len(tgtPost) - 1; i >= 0; i-- {
		c.sql("%s", tgtPost[i].drop)
	}
	c.preObjects(made)
	readd := c.dropForeignKeys(touched, plans)
	var empty []string
	for _, tp := range plans {
		if tp.inPlace {
			empty = append(empty, tp.tgt.QualifiedName())
		}
	}
	if len(empty) > 0 {
		// ONLY (which binds to each name): a parent's children keep their
		// rows unless overwritten too.
		c.sql("TRUNCATE ONLY %s", strings.Join(empty, ", ONLY "))
	}
	for i := len(c.tgt.Tables) - 1; i >= 0; i-- { // children before parents
		t := &c.tgt.Tables[i]
		if tp := byName[t.QualifiedName()]; tp != nil && tp.drop {
			for _, col := range t.Columns {
				if tp.src.Column(col.Name) == nil {
					c.destroy("column %s.%s is not in %s: dropped (overwrite)", tp.src.Key(), col.Name, c.meta.SourceEnv)
				}
			}
			c.dropTable(t, true)
		}
	}
	for i := len(dropTables) - 1; i >= 0; i-- {
		c.dropTable(dropTables[i], false)
	}

	// Build up, parents first.
	var post []func()
	for _, tp := range plans {
		if tp.swapped {
			c.swapIn(tp)
		} else if tp.made() {
			c.createSequences(tp.src)
			c.sqls(tp.src.CreateStatements(c.src.Sequence))
		} else {
			post = append(post, c.alterTable(tp))
		}
	}
	c.ownSequences(made)
	for _, tp := range plans {
		if td, ok := c.data[tp.src.Key()]; ok && tp.rule.CarriesRows() && !tp.swapped {
			l := load{table: tp.src, data: td, rule: tp.rule, fresh: tp.emptied(), target: tp.tgt}
			if !tp.made() {
				for _, tg := range tp.tgt.Triggers {
					if tg.Enabled != "D" {
						l.trigOff = append(l.trigOff, tg)
					}
				}
			}
			c.p.loads = append(c.p.loads, l)
			c.p.steps = append(c.p.steps, step{kind: stepLoad, load: &c.p.loads[len(c.p.loads)-1]})
		}
	}
	for _, tp := range plans {
		if tp.made() && !tp.swapped {
			c.sqls(tp.src.KeyStatements())
		}
	}
	for _, f := range post {
		f()
	}
	c.sqls(readd)
	c.sequences(plans)
	for _, o := range srcPost {
		c.sqls(o.create)
	}
	for _, o := range tgtPost {
		if o.inSource {
			continue
		}
		if c.allow && o.view && (c.only == nil || c.dropViews[o.key]) {
			c.destroy("%s is not in %s: dropped", o.what, c.meta.SourceEnv)
			continue
		}
		c.sqls(o.create)
	}
	for _, o := range srcPost {
		c.sqls(o.refresh)
	}
	for _, o := range tgtPost {
		if !o.inSource && !(c.allow && o.view && (c.only == nil || c.dropViews[o.key])) {
			c.sqls(o.refresh)
		}
	}
	for _, tp := range plans {
		if tp.swapped && c.swap[tp.src.Key()].Restore {
			continue // moved back with its triggers and comments
		}
		if tp.made() {
			c.triggersAndComments(tp.src, nil, false)
		} else {
			c.triggersAndComments(tp.src, tp.tgt, tp.inPlace || c.exact)
		}
	}
}

// swappable says why tp's rows cannot come from a prepared shadow
// table, or "" when they can (if the table may be made again).
func (c *compiler) swappable(tp *tablePlan) string {
	switch {
	case c.swap == nil:
		return "not prepared"
	case tp.rule != release.RuleOverwrite:
		return "its rows are merged (" + string(tp.rule) + ") into the rows the target keeps"
	case len(tp.src.Inherits) > 0:
		return "it inherits from another table"
	}
	if _, ok := c.data[tp.src.Key()]; !ok {
		return "the file holds no rows of it"
	}
	if _, ok := c.swap[tp.src.Key()]; !ok {
		return "it was not prepared"
	}
	return ""
}

// dropTable drops a target table, or with a snapshot moves it aside into
// the snapshot's schema, where it is the snapshot of its rows. Serial
// sequences of a table made again stay where they are (its new columns
// use them); the moved table loses its defaults, which would hold them.
func (c *compiler) dropTable(t *pgschema.Table, remade bool) {
	name := t.QualifiedName()
	if c.aside == "" || !c.canMoveAside(t) {
		c.sql("DROP TABLE %s", name)
		return
	}
	if remade {
		for _, s := range c.tgt.Sequences {
			if !s.Identity && s.OwnerTable == name {
				c.sql("ALTER SEQUENCE %s OWNED BY NONE", pgschema.Ident(s.Schema, s.Name))
			}
		}
	}
	for _, col := range t.Columns {
		if col.Default != "" && col.Generated == "" && !col.Inherited {
			c.sql("ALTER TABLE ONLY %s ALTER COLUMN %s DROP DEFAULT", name, pgschema.QuoteIdent(col.Name))
		}
	}
	aside := fmt.Sprintf("relbot_aside_%d", len(c.p.moved)+1)
	c.sql("ALTER TABLE %s RENAME TO %s", name, pgschema.QuoteIdent(aside))
	c.sql("ALTER TABLE %s SET SCHEMA %s", pgschema.Ident(t.Schema, aside), pgschema.QuoteIdent(c.aside))
	c.p.moved[name] = aside
}

// canMoveAside reports whether t's index names (which move with it) are
// free in the snapshot's schema.
func (c *compiler) canMoveAside(t *pgschema.Table) bool {
	if c.asideNames == nil {
		c.asideNames = map[string]bool{}
	}
	var names []string
	for _, con := range t.Constraints {
		if con.Type == "p" || con.Type == "u" || con.Type == "x" {
			names = append(names, con.Name)
		}
	}
	for _, ix := range t.Indexes {
		names = append(names, ix.Name)
	}
	for _, n := range names {
		if c.asideNames[n] {
			return false
		}
	}
	for _, n := range names {
		c.asideNames[n] = true
	}
	return true
}

// swapIn moves tp's prepared shadow table into place and gives it what
// the shadow was made without: defaults, identity, comments.
func (c *compiler) swapIn(tp *tablePlan) {
	sh := c.swap[tp.src.Key()]
	s := tp.src
	name := s.QualifiedName()
	c.sql("ALTER TABLE %s SET SCHEMA %s", pgschema.Ident(sh.Schema, sh.Name), pgschema.QuoteIdent(s.Schema))
	c.sql("ALTER TABLE %s RENAME TO %s", pgschema.Ident(s.Schema, sh.Name), pgschema.QuoteIdent(s.Name))
	c.createSequences(s)
	for i := range s.Columns {
		col := &s.Columns[i]
		if col.Default != "" && col.Generated == "" && !col.Inherited {
			c.sql("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", name, pgschema.QuoteIdent(col.Name), col.Default)
		}
		if st := col.IdentityStatement(name, c.src.Sequence(col.IdentitySequence)); st != "" && !sh.Restore {
			c.sql("%s", st)
		}
	}
	if sh.Restore {
		return // its comments came with it
	}
	if s.Comment != "" {
		c.sql("COMMENT ON TABLE %s IS %s", name, pgschema.QuoteLiteral(s.Comment))
	}
	for _, col := range s.Columns {
		if col.Comment != "" {
			c.sql("COMMENT ON COLUMN %s.%s IS %s", name, pgschema.QuoteIdent(col.Name), pgschema.QuoteLiteral(col.Comment))
		}
	}
}

// needsRemake says why a kept table cannot be brought to src's structure
// in place, or "".
func needsRemake(src, tgt *pgschema.Table) string {
	var order []string
	for _, col := range tgt.Columns {
		if src.Column(col.Name) != nil {
			order = append(order, col.Name)
		}
	}
	for _, col := range src.Columns {
		if tgt.Column(col.Name) == nil {
			order = append(order, col.Name)
		}
	}
	var want []string
	for _, col := range src.Columns {
		want = append(want, col.Name)
	}
	switch {
	case !slices.Equal(order, want):
		return "the order of its columns"
	case !slices.Equal(src.Inherits, tgt.Inherits):
		return "its parent tables"
	case src.Unlogged != tgt.Unlogged || !slices.Equal(src.Options, tgt.Options):
		return "its storage (UNLOGGED, options)"
	}
	return ""
}

// children are the target tables that inherit directly from qualified.
func (c *compiler) children(qualified string) []*pgschema.Table {
	var out []*pgschema.Table
	for i := range c.tgt.Tables {
		if slices.Contains(c.tgt.Tables[i].Inherits, qualified) {
			out = append(out, &c.tgt.Tables[i])
		}
	}
	return out
}

// preObjects creates schemas, extensions, types, functions and sequences
// the target lacks, before any table needs them.
func (c *compiler) preObjects(recreated map[string]bool) {
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	var tgtSchemas []string
	for _, ns := range c.tgt.Schemas {
		tgtSchemas = append(tgtSchemas, ns.Name)
	}
	for _, ns := range c.src.Schemas {
		if !has(tgtSchemas, ns.Name) {
			c.sql("CREATE SCHEMA IF NOT EXISTS %s", pgschema.QuoteIdent(ns.Name))
		}
	}
	var tgtExt []string
	for _, x := range c.tgt.Extensions {
		tgtExt = append(tgtExt, x.Name)
	}
	for _, x := range c.src.Extensions {
		if !has(tgtExt, x.Name) {
			c.sql("CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s", pgschema.QuoteIdent(x.Name), pgschema.QuoteIdent(x.Schema))
		}
	}
	tgtEnums := map[string][]string{}
	for _, e := range c.tgt.Enums {
		tgtEnums[pgschema.Ident(e.Schema, e.Name)] = e.Labels
	}
	for _, e := range c.src.Enums {
		name := pgschema.Ident(e.Schema, e.Name)
		have, ok := tgtEnums[name]
		if !ok {
			labels := make([]string, len(e.Labels))
			for i, l := range e.Labels {
				labels[i] = pgschema.QuoteLiteral(l)
			}
			c.sql("CREATE TYPE %s AS ENUM (%s)", name, strings.Join(labels, ", "))
			continue
		}
		for i, l := range e.Labels {
			if has(have, l) {
				continue
			}
			where := ""
			if i > 0 {
				where = " AFTER " + pgschema.QuoteLiteral(e.Labels[i-1])
			} else if len(have) > 0 {
				where = " BEFORE " + pgschema.QuoteLiteral(have[0])
			}
			c.sql("ALTER TYPE %s ADD VALUE IF NOT EXISTS %s%s", name, pgschema.QuoteLiteral(l), where)
			c.warn("enum %s gains label %q: rows using it in this same migration fail (PostgreSQL makes a new label usable only after commit)", e.Name, l)
		}
	}
	tgtDomains := map[string]string{}
	for i := range c.tgt.Domains {
		d := &c.tgt.Domains[i]
		tgtDomains[pgschema.Ident(d.Schema, d.Name)] = d.DDL()
	}
	for i := range c.src.Domains {
		d := &c.src.Domains[i]
		name := pgschema.Ident(d.Schema, d.Name)
		switch have, ok := tgtDomains[name]; {
		case !ok:
			c.sql("%s", d.DDL())
		case have != d.DDL():
			c.warn("domain %s differs from %s's and is not changed", d.Name, c.meta.SourceEnv)
		}
	}
	tgtTypes := map[string]bool{}
	for _, t := range c.tgt.Composites {
		tgtTypes[pgschema.Ident(t.Schema, t.Name)] = true
	}
	for _, t := range c.src.Composites {
		if !tgtTypes[pgschema.Ident(t.Schema, t.Name)] {
			attrs := make([]string, len(t.Attributes))
			for i, a := range t.Attributes {
				attrs[i] = pgschema.QuoteIdent(a.Name) + " " + a.Type
			}
			c.sql("CREATE TYPE %s AS (%s)", pgschema.Ident(t.Schema, t.Name), strings.Join(attrs, ", "))
		}
	}
	tgtFuncs := map[string]string{}
	for _, f := range c.tgt.Functions {
		tgtFuncs[f.Signature] = f.Def
	}
	for _, f := range c.src.Functions {
		// Functions that need relations come after them (postObjects).
		if len(f.DependsOn) == 0 && tgtFuncs[f.Signature] != f.Def {
			c.sql("%s", f.Def)
		}
	}
	tgtSeqs := map[string]bool{}
	for _, s := range c.tgt.Sequences {
		tgtSeqs[pgschema.Ident(s.Schema, s.Name)] = true
	}
	for _, s := range c.src.Sequences {
		// Identity sequences come with their column; those of a table made
		// again come with it (dropping the old table drops its own).
		if s.Identity || recreated[s.OwnerTable] || tgtSeqs[pgschema.Ident(s.Schema, s.Name)] || (s.OwnerTable != "" && !c.scope[s.OwnerTable]) {
			continue
		}
		c.sql("%s", createSequence(s, false))
	}
	c.tgtSeqs = tgtSeqs
}

func createSequence(s pgschema.Sequence, ifNotExists bool) string {
	ine := ""
	if ifNotExists {
		ine = "IF NOT EXISTS "
	}
	return fmt.Sprintf("CREATE SEQUENCE %s%s AS %s START WITH %d INCREMENT BY %d MINVALUE %d MAXVALUE %d CACHE %d",
		ine, pgschema.Ident(s.Schema, s.Name), s.Type, s.Start, s.Increment, s.Min, s.Max, s.Cache)
}

// createSequences makes the serial sequences a table being made needs for
// its column defaults. One that survived the drop (owned by nothing) is
// reused.
func (c *compiler) createSequences(t *pgschema.Table) {
	for _, s := range c.src.Sequences {
		if !s.Identity && s.OwnerTable == t.QualifiedName() {
			c.sql("%s", createSequence(s, true))
		}
	}
}

// ownSequences gives serial sequences made in this apply to their columns.
func (c *compiler) ownSequences(recreated map[string]bool) {
	for _, s := range c.src.Sequences {
		if s.Identity || s.OwnerTable == "" || !c.scope[s.OwnerTable] {
			continue
		}
		if recreated[s.OwnerTable] || !c.tgtSeqs[pgschema.Ident(s.Schema, s.Name)] {
			c.sql("ALTER SEQUENCE %s OWNED BY %s.%s", pgschema.Ident(s.Schema, s.Name), s.OwnerTable, pgschema.QuoteIdent(s.OwnerColumn))
		}
	}
}

// dropForeignKeys drops, by name, every target foreign key that involves a
// touched table (the tables it joins may be dropped in any order after)
// and returns the statements that add the right ones back: the source's
// definition for tables in scope, the target's own otherwise.
func (c *compiler) dropForeignKeys(touched map[string]bool, plans []*tablePlan) []string {
	inScope := map[string]*tablePlan{}
	for _, tp := range plans {
		inScope[tp.src.QualifiedName()] = tp
	}
	var readd []string
	added := map[string]bool{}
	add := func(table string, con pgschema.Constraint) {
		k := table + "/" + con.Name
		if !added[k] {
			added[k] = true
			readd = append(readd, con.AddStatement(table))
		}
	}
	for i := range c.tgt.Tables {
		t := &c.tgt.Tables[i]
		name := t.QualifiedName()
		tp := inScope[name]
		for _, con := range t.Constraints {
			if con.Type != "f" || con.Inherited {
				continue
			}
			var srcCon *pgschema.Constraint
			if tp != nil {
				if sc := findConstraint(tp.src, con.Name); sc != nil && sc.Type == "f" {
					srcCon = sc
				}
			}
			changed := srcCon != nil && srcCon.Def != con.Def
			// A revert takes off the foreign keys its tables did not have.
			extra := c.exact && tp != nil && srcCon == nil
			if !touched[name] && !touched[con.References] && !changed && !extra {
				continue
			}
			c.sql("%s", con.DropStatement(name))
			switch {
			case srcCon != nil:
				add(name, *srcCon)
			case tp != nil && tp.rule == release.RuleOverwrite:
				c.destroy("foreign key %s of %s is not in %s: dropped (overwrite)", con.Name, t.Key(), c.meta.SourceEnv)
			case tp != nil && !c.allow:
				add(name, con) // the target's own: kept
			case tp != nil:
				c.destroy("foreign key %s of %s is not in %s: dropped", con.Name, t.Key(), c.meta.SourceEnv)
			case !droppedTable(c, name):
				if droppedTable(c, con.References) {
					continue // it points at a table that goes
				}
				add(name, con)
			}
		}
	}
	// Foreign keys of the source the target lacks, or of tables made again.
	for _, tp := range plans {
		name := tp.src.QualifiedName()
		for _, con := range tp.src.Constraints {
			if con.Type != "f" || con.Inherited {
				continue
			}
			if tp.made() || !hasConstraint(tp.tgt, con.Name) {
				add(name, con)
			}
		}
	}
	return readd
}

func (c *compiler) inSourceQualified(qualified string) bool {
	for i := range c.src.Tables {
		if c.src.Tables[i].QualifiedName() == qualified {
			return true
		}
	}
	return false
}

func droppedTable(c *compiler, qualified string) bool {
	return c.allow && !c.inSourceQualified(qualified) && c.inOnly(qualified)
}

// inOnly reports whether the program may change target table qualified.
func (c *compiler) inOnly(qualified string) bool {
	return c.only == nil || c.only[qualified]
}

func hasConstraint(t *pgschema.Table, name string) bool {
	for _, c := range t.Constraints {
		if c.Name == name {
			return true
		}
	}
	return false
}

// alterTable brings a kept table's structure to the source's: columns now,
// and returns what adds its constraints and indexes after the rows. An
// overwritten table (tp.inPlace) loses what the source lacks; a kept one
// keeps it unless destructive changes are allowed. Changes to a parent's
// columns reach its children, as PostgreSQL makes them: the target's
// children are updated to match, so that their own turn sees them.
func (c *compiler) alterTable(tp *tablePlan) func() {
	s, t := tp.src, tp.tgt
	name := s.QualifiedName()
	hasChildren := len(c.children(name)) > 0
	for i := range s.Columns {
		col := &s.Columns[i]
		have := t.Column(col.Name)
		if have == nil {
			if col.Inherited {
				c.warn("column %s.%s comes from a parent in %s, which the target's table does not have: not added", s.Key(), col.Name, c.meta.SourceEnv)
				continue
			}
			def := col.ColumnDef()
			c.sql("ALTER TABLE %s ADD COLUMN %s", name, def)
			if st := col.IdentityStatement(name, c.src.Sequence(col.IdentitySequence)); st != "" {
				c.sql("%s", st)
			}
			if col.NotNull && col.Default == "" && col.Identity == "" && col.Generated == "" && !tp.inPlace {
				c.warn("new column %s.%s is NOT NULL without a default: the apply fails if the table has rows", s.Key(), col.Name)
			}
			c.inherit(name, func(ch *pgschema.Table) {
				if ch.Column(col.Name) == nil {
					added := *col
					added.Inherited, added.Identity, added.IdentitySequence, added.Comment = true, "", "", ""
					ch.Columns = append(slices.Clone(ch.Columns), added)
				}
			})
			continue
		}
		if have.Type != col.Type && !col.Inherited {
			// The rows of an overwritten table without children are gone
			// already: any change is safe.
			safe := lossless(have.Type, col.Type) || (tp.inPlace && !hasChildren)
			if safe || c.allow {
				if !safe {
					c.destroy("column %s.%s changes type from %s to %s, which can lose data", s.Key(), col.Name, have.Type, col.Type)
				}
				if have.Default != "" {
					c.sql("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", name, pgschema.QuoteIdent(col.Name))
					have.Default = ""
				}
				using := pgschema.QuoteIdent(col.Name) + "::" + col.Type
				if tp.inPlace && !hasChildren {
					using = "NULL::" + col.Type // no rows: no cast needed
				}
				c.sql("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s", name, pgschema.QuoteIdent(col.Name), col.Type, using)
				c.inherit(name, func(ch *pgschema.Table) {
					if cc := ch.Column(col.Name); cc != nil {
						cc.Type = col.Type
					}
				})
			} else {
				c.destroy("column %s.%s would change type from %s to %s, which can lose data: kept as it is (needs approval of destructive changes)", s.Key(), col.Name, have.Type, col.Type)
			}
		}
		// ONLY: each child has its own default, and its own turn.
		if have.Default != col.Default && col.Identity == "" && col.Generated == "" {
			if col.Default == "" {
				c.sql("ALTER TABLE ONLY %s ALTER COLUMN %s DROP DEFAULT", name, pgschema.QuoteIdent(col.Name))
			} else {
				c.sql("ALTER TABLE ONLY %s ALTER COLUMN %s SET DEFAULT %s", name, pgschema.QuoteIdent(col.Name), col.Default)
			}
		}
		if have.NotNull != col.NotNull && have.Identity == "" {
			if col.NotNull {
				c.sql("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", name, pgschema.QuoteIdent(col.Name))
				c.inherit(name, func(ch *pgschema.Table) {
					if cc := ch.Column(col.Name); cc != nil {
						cc.NotNull = true
					}
				})
			} else {
				c.sql("ALTER TABLE ONLY %s ALTER COLUMN %s DROP NOT NULL", name, pgschema.QuoteIdent(col.Name))
			}
		}
		if have.Identity != col.Identity || have.Generated != col.Generated {
			c.warn("column %s.%s: identity or generation differs from %s's and is not changed", s.Key(), col.Name, c.meta.SourceEnv)
		}
		if (tp.inPlace || c.exact) && have.Comment != col.Comment {
			c.sql("COMMENT ON COLUMN %s.%s IS %s", name, pgschema.QuoteIdent(col.Name), commentValue(col.Comment))
		}
	}
	if (tp.inPlace || c.exact) && t.Comment != s.Comment {
		c.sql("COMMENT ON TABLE %s IS %s", name, commentValue(s.Comment))
	}
	// Constraints and indexes that differ are dropped now, made again after
	// the rows; missing ones are added then. Inherited checks follow the
	// parent's. An overwritten table's keys and indexes are all built
	// after its rows, as for a new table: one sort beats a row at a time.
	var later []string
	for _, con := range s.Constraints {
		if con.Type == "f" || con.Inherited {
			continue
		}
		have := findConstraint(t, con.Name)
		if have != nil && have.Def == con.Def && !have.Inherited && !(tp.inPlace && con.Type != "c") {
			continue
		}
		if have != nil && !have.Inherited {
			c.sql("%s", have.DropStatement(name))
		}
		later = append(later, con.AddStatement(name))
	}
	for _, ix := range s.Indexes {
		have := findIndex(t.Indexes, ix.Name)
		if have != nil && have.Def == ix.Def && !tp.inPlace {
			continue
		}
		if have != nil {
			c.sql("DROP INDEX %s", pgschema.Ident(t.Schema, ix.Name))
		}
		later = append(later, ix.Def)
	}
	if tp.inPlace || c.exact {
		for _, con := range t.Constraints {
			if con.Type != "f" && !con.Inherited && findConstraint(s, con.Name) == nil {
				c.destroy("constraint %s of %s is not in %s: dropped (overwrite)", con.Name, s.Key(), c.meta.SourceEnv)
				c.sql("%s", con.DropStatement(name))
			}
		}
		for _, ix := range t.Indexes {
			if findIndex(s.Indexes, ix.Name) == nil {
				c.destroy("index %s of %s is not in %s: dropped (overwrite)", ix.Name, s.Key(), c.meta.SourceEnv)
				c.sql("DROP INDEX %s", pgschema.Ident(t.Schema, ix.Name))
			}
		}
	}
	// Columns last: dropping one drops the constraints and indexes on it.
	for _, col := range t.Columns {
		if s.Column(col.Name) != nil || col.Inherited {
			continue
		}
		switch {
		case tp.inPlace:
			c.destroy("column %s.%s is not in %s: dropped (overwrite)", s.Key(), col.Name, c.meta.SourceEnv)
		case c.allow:
			c.destroy("column %s.%s is not in %s: dropped", s.Key(), col.Name, c.meta.SourceEnv)
		default:
			c.destroy("column %s.%s is not in %s: kept (dropping it needs approval of destructive changes)", s.Key(), col.Name, c.meta.SourceEnv)
			continue
		}
		c.sql("ALTER TABLE %s DROP COLUMN %s", name, pgschema.QuoteIdent(col.Name))
		c.rowsLost(name, tp.inPlace, "its column "+col.Name+" was dropped")
		c.inherit(name, func(ch *pgschema.Table) {
			if cc := ch.Column(col.Name); cc != nil && cc.Inherited && c.parentsWith(ch, col.Name) <= 1 {
				c.rowsLost(ch.QualifiedName(), false, "its column "+col.Name+" was dropped with "+s.Key()+"'s")
				// The children's values of it go too, whatever their rule.
				c.destroy("column %s.%s goes with %s.%s, which it inherits", ch.Key(), col.Name, s.Key(), col.Name)
				ch.Columns = slices.DeleteFunc(slices.Clone(ch.Columns), func(x pgschema.Column) bool { return x.Name == col.Name })
				// and its constraints on the column with it
				ch.Constraints = slices.DeleteFunc(slices.Clone(ch.Constraints), func(x pgschema.Constraint) bool { return slices.Contains(x.Columns, col.Name) })
			}
		})
	}
	return func() { c.sqls(later) }
}

// rowsLost marks a table whose values the program drops: a release
// snapshot keeps its rows, and says why when the table's rows are
// otherwise the target's own (a revert puts all of them back as they were).
func (c *compiler) rowsLost(qualified string, replaced bool, why string) {
	c.p.rowsChanged[qualified] = true
	if !replaced {
		if c.p.rowsWhy == nil {
			c.p.rowsWhy = map[string]string{}
		}
		c.p.rowsWhy[qualified] = why
	}
}

// parentsWith counts the target parents of t that have column col.
func (c *compiler) parentsWith(t *pgschema.Table, col string) int {
	n := 0
	for _, p := range t.Inherits {
		for i := range c.tgt.Tables {
			if c.tgt.Tables[i].QualifiedName() == p && c.tgt.Tables[i].Column(col) != nil {
				n++
			}
		}
	}
	return n
}

// inherit applies a change made to parent to the target's tables that
// inherit from it, at any depth.
func (c *compiler) inherit(parent string, change func(*pgschema.Table)) {
	for _, ch := range c.children(parent) {
		change(ch)
		c.inherit(ch.QualifiedName(), change)
	}
}

func commentValue(s string) string {
	if s == "" {
		return "NULL"
	}
	return pgschema.QuoteLiteral(s)
}

func findConstraint(t *pgschema.Table, name string) *pgschema.Constraint {
	for i := range t.Constraints {
		if t.Constraints[i].Name == name {
			return &t.Constraints[i]
		}
	}
	return nil
}

func findIndex(list []pgschema.Index, name string) *pgschema.Index {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

var varcharRE = regexp.MustCompile(`^character varying\((\d+)\)$`)

// lossless reports whether every value of type from fits type to unchanged.
func lossless(from, to string) bool {
	if to == "text" && (from == "character varying" || varcharRE.MatchString(from) || strings.HasPrefix(from, "character(")) {
		return true
	}
	if to == "character varying" && varcharRE.MatchString(from) {
		return true
	}
	if a, b := varcharRE.FindStringSubmatch(from), varcharRE.FindStringSubmatch(to); a != nil && b != nil {
		return len(a[1]) < len(b[1]) || (len(a[1]) == len(b[1]) && a[1] <= b[1])
	}
	widen := map[string][]string{
		"smallint": {"integer", "bigint", "numeric"},
		"integer":  {"bigint", "numeric"},
		"bigint":   {"numeric"},
		"real":     {"double precision"},
		"json":     {"jsonb", "text"},
	}
	for _, t := range widen[from] {
		if t == to {
			return true
		}
	}
	return false
}

// sequences sets the position of every sequence of a table that receives
// rows: the source's, or the target's where it stood further.
func (c *compiler) sequences(plans []*tablePlan) {
	for _, tp := range plans {
		name := tp.src.QualifiedName()
		for _, s := range c.src.Sequences {
			if s.OwnerTable != name {
				continue
			}
			seq := pgschema.QuoteLiteral(pgschema.Ident(s.Schema, s.Name))
			if !tp.rule.CarriesRows() {
				continue
			}
			// The source's position, never behind where the target's stood
			// (read in this transaction), so that no number is handed out
			// twice, whether the table is made again or kept.
			last, called := s.LastValue, s.IsCalled
			if t := c.tgtSequence(pgschema.Ident(s.Schema, s.Name)); t != nil && !tp.new && t.IsCalled && (!called || t.LastValue > last) {
				last, called = t.LastValue, true
			}
			c.sql("SELECT pg_catalog.setval(%s, %d, %t)", seq, last, called)
		}
	}
}

func (c *compiler) tgtSequence(qualified string) *pgschema.Sequence {
	for i := range c.tgt.Sequences {
		if s := &c.tgt.Sequences[i]; pgschema.Ident(s.Schema, s.Name) == qualified {
			return s
		}
	}
	return nil
}

// triggersAndComments adds the source's triggers a table lacks (all of
// them when tgt is nil) and the comments of its constraints and indexes.
// An overwritten table loses the triggers the source lacks.
func (c *compiler) triggersAndComments(s, t *pgschema.Table, overwrite bool) {
	name := s.QualifiedName()
	if t != nil && overwrite {
		for _, tg := range t.Triggers {
			if findTrigger(s, tg.Name) == nil {
				c.destroy("trigger %s of %s is not in %s: dropped (overwrite)", tg.Name, s.Key(), c.meta.SourceEnv)
				c.sql("DROP TRIGGER %s ON %s", pgschema.QuoteIdent(tg.Name), name)
			}
		}
	}
	for _, tg := range s.Triggers {
		if t != nil {
			have := findTrigger(t, tg.Name)
			if have != nil && have.Def == tg.Def && have.Enabled == tg.Enabled {
				continue
			}
			if have != nil {
				c.sql("DROP TRIGGER %s ON %s", pgschema.QuoteIdent(tg.Name), name)
			}
		}
		c.sql("%s", tg.Def)
		switch tg.Enabled {
		case "D":
			c.sql("ALTER TABLE %s DISABLE TRIGGER %s", name, pgschema.QuoteIdent(tg.Name))
		case "R":
			c.sql("ALTER TABLE %s ENABLE REPLICA TRIGGER %s", name, pgschema.QuoteIdent(tg.Name))
		case "A":
			c.sql("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", name, pgschema.QuoteIdent(tg.Name))
		}
		if tg.Comment != "" {
			c.sql("COMMENT ON TRIGGER %s ON %s IS %s", pgschema.QuoteIdent(tg.Name), name, pgschema.QuoteLiteral(tg.Comment))
		}
	}
	if t != nil && !overwrite {
		return
	}
	// Keys and indexes of an overwritten table were built again.
	for _, con := range s.Constraints {
		if con.Comment != "" {
			c.sql("COMMENT ON CONSTRAINT %s ON %s IS %s", pgschema.QuoteIdent(con.Name), name, pgschema.QuoteLiteral(con.Comment))
		}
	}
	for _, ix := range s.Indexes {
		if ix.Comment != "" {
			c.sql("COMMENT ON INDEX %s IS %s", pgschema.Ident(s.Schema, ix.Name), pgschema.QuoteLiteral(ix.Comment))
		}
	}
}

func findTrigger(t *pgschema.Table, name string) *pgschema.Trigger {
	for i := range t.Triggers {
		if t.Triggers[i].Name == name {
			return &t.Triggers[i]
		}
	}
	return nil
}

// statements renders the program for people: data steps as a sentence.
func (p *program) statements() []string {
	out := make([]string, 0, len(p.steps))
	for _, s := range p.steps {
		if s.kind == stepLoad {
			out = append(out, s.load.describe())
			continue
		}
		out = append(out, s.sql)
	}
	return out
}

func (l *load) describe() string {
	switch {
	case l.fresh:
		return fmt.Sprintf("-- load %d rows into %s (%s)", l.data.Rows, l.table.Key(), l.rule)
	case l.rule == release.RuleUpsert:
		return fmt.Sprintf("-- upsert %d rows into %s by primary key", l.data.Rows, l.table.Key())
	default:
		return fmt.Sprintf("-- insert the %d rows whose primary key %s lacks", l.data.Rows, l.table.Key())
	}
}
