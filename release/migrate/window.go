package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// A preparation is the part of an apply done ahead, while users work: the
// file's rows of the tables the apply makes again, loaded into shadow
// tables (schema relbot_prep_<key>) built from the source's definitions
// with their keys and indexes. The apply moves them into place in its
// transaction (a rename, not a load) when the target's definitions of
// those tables are still those the preparation was planned against.
const prepTable = `"relbot"."preparations"`

var prepDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS "relbot"`,
	`CREATE TABLE IF NOT EXISTS ` + prepTable + ` (
    key text PRIMARY KEY,
    schema_name text NOT NULL,
    hash text NOT NULL,
    fingerprint text NOT NULL,
    tables jsonb NOT NULL,
    prepared_at timestamptz NOT NULL DEFAULT now()
)`,
}

func prepSchema(key string) string { return ownSchema(appdb.PrepareSchemaPrefix, key) }

// Prepare loads the file's rows of every table the apply can make again
// into shadow tables, in its own transaction, committed.
func (e *Engine) Prepare(ctx context.Context, a release.ArchiveReader, app *release.App, target *release.Environment, opts release.PrepareOptions) (*release.Preparation, error) {
	start := time.Now()
	if err := checkName("preparation", opts.Key); err != nil {
		return nil, err
	}
	f, tx, end, err := e.openOn(ctx, a, app, target, opts.KnownVariables)
	if err != nil {
		return nil, err
	}
	defer end()
	prep := &release.Preparation{Key: opts.Key, Tables: []string{}, Steps: []release.ExecutedStep{}}
	res := &release.ApplyResult{}
	logStep := logTo(res)
	if done, err := f.applied(ctx, tx, false); err != nil || done != nil {
		// Applied already: the apply will change nothing.
		return prep, err
	}
	tgt, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, err
	}
	if _, err := f.checkLayout(tgt, target); err != nil {
		return nil, err
	}
	schema := prepSchema(opts.Key)
	all := map[string]shadow{}
	for i, td := range f.Meta.Tables {
		if appdb.RuleOf(f.Meta.Rules, td.Key) == release.RuleOverwrite {
			all[td.Key] = shadow{Schema: schema, Name: fmt.Sprintf("relbot_shadow_%d", i+1), Rows: td.Rows}
		}
	}
	prog := compileWindow(f.Meta, tgt, opts.AllowDestructive, "", all)
	if len(prog.refusals) > 0 {
		return nil, release.Errorf(release.CodeConflict, "migration %s cannot be applied to %s: %s; nothing was prepared", f.Meta.ID, target.Name, strings.Join(prog.refusals, "; "))
	}
	if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return nil, err
	}
	t0 := time.Now()
	for _, s := range prepDDL {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, applyError(s, err)
		}
	}
	if err := unprepareIn(ctx, tx, opts.Key); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgschema.QuoteIdent(schema)); err != nil {
		return nil, applyError("CREATE SCHEMA "+schema, err)
	}
	logStep.add("preparation schema "+schema, 0, t0)
	prepared := map[string]shadow{}
	inWindow := append([]string{}, prog.inWindow...)
	data := map[string]TableData{}
	for _, td := range f.Meta.Tables {
		data[td.Key] = td
	}
	for _, key := range prog.swapped {
		sh, src := all[key], f.Meta.Schema.Table(key)
		create, keys, ok := shadowStatements(src, sh)
		if !ok {
			inWindow = append(inWindow, key+": its index definitions name the table in a way relbot cannot move to a shadow table")
			continue
		}
		t0 := time.Now()
		n, err := prepareShadow(ctx, tx, f, data[key], sh, create, keys)
		if err != nil {
			var re *release.Error
			if errors.As(err, &re) && re.Code == release.CodeDamaged {
				return nil, err
			}
			// A type or function the apply makes first, say: the apply
			// does this one in the window, as without preparation.
			inWindow = append(inWindow, key+": its shadow table could not be made ahead ("+pgErrorText(err)+")")
			continue
		}
		logStep.add(fmt.Sprintf("prepare %s: %d rows, keys and indexes", key, n), n, t0)
		prepared[key] = sh
		prep.Tables = append(prep.Tables, key)
	}
	tables, _ := json.Marshal(prepared)
	if _, err := tx.Exec(ctx, `INSERT INTO `+prepTable+` (key, schema_name, hash, fingerprint, tables) VALUES ($1, $2, $3, $4, $5)`,
		opts.Key, schema, f.SHA256, fingerprint(f, tgt, prepared), tables); err != nil {
		return nil, applyError("record the preparation", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, applyError("COMMIT", err)
	}
	sort.Strings(inWindow)
	prep.InWindow, prep.Steps, prep.Duration = inWindow, res.Steps, time.Since(start)
	return prep, nil
}

// prepareShadow makes one shadow table and loads it, in a savepoint: a
// table that cannot be made ahead leaves nothing behind.
func prepareShadow(ctx context.Context, tx pgx.Tx, f *File, td TableData, sh shadow, create, keys []string) (int64, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer sp.Rollback(context.Background())
	for _, s := range create {
		if _, err := sp.Exec(ctx, s); err != nil {
			return 0, err
		}
	}
	rows, err := f.Rows(td)
	if err != nil {
		return 0, err
	}
	shName := pgschema.Ident(sh.Schema, sh.Name)
	tag, err := sp.Conn().PgConn().CopyFrom(ctx, rows, "COPY "+shName+" ("+pgschema.ColumnList(td.Columns)+") FROM STDIN (FREEZE)")
	if err != nil {
		return 0, err
	}
	if tag.RowsAffected() != td.Rows {
		return 0, release.Errorf(release.CodeDamaged, "%s: %d rows loaded, the file says %d", td.Key, tag.RowsAffected(), td.Rows)
	}
	for _, s := range append(keys, "ANALYZE "+shName) {
		if _, err := sp.Exec(ctx, s); err != nil {
			return 0, err
		}
	}
	return tag.RowsAffected(), sp.Commit(ctx)
}

// shadowStatements make src's shadow table sh: its columns (generated
// ones included: COPY computes them) without defaults or identity, which
// the apply adds once it is in place, then after the rows its keys, checks
// and indexes, named as src's (so that in place they are). Foreign keys,
// triggers and comments come in the apply.
func shadowStatements(src *pgschema.Table, sh shadow) (create, keys []string, ok bool) {
	t := *src
	t.Schema, t.Name = sh.Schema, sh.Name
	t.Comment, t.Inherits, t.Triggers = "", nil, nil
	t.Columns = slices.Clone(src.Columns)
	for i := range t.Columns {
		c := &t.Columns[i]
		if c.Generated == "" {
			c.Default = ""
		}
		c.Identity, c.IdentitySequence, c.Comment = "", "", ""
	}
	t.Constraints = nil
	for _, c := range src.Constraints {
		if c.Type != "f" && !c.Inherited {
			c.Comment = ""
			t.Constraints = append(t.Constraints, c)
		}
	}
	t.Indexes = nil
	for _, ix := range src.Indexes {
		def, ok := onShadow(ix.Def, src, t.QualifiedName())
		if !ok {
			return nil, nil, false
		}
		t.Indexes = append(t.Indexes, pgschema.Index{Name: ix.Name, Def: def})
	}
	return t.CreateStatements(func(string) *pgschema.Sequence { return nil }), t.KeyStatements(), true
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// onShadow points an index definition (pg_get_indexdef's) at the shadow.
func onShadow(def string, src *pgschema.Table, to string) (string, bool) {
	forms := func(s string) []string {
		out := []string{pgschema.QuoteIdent(s)}
		if plainIdent.MatchString(s) {
			out = append(out, s)
		}
		return out
	}
	for _, sc := range forms(src.Schema) {
		for _, n := range forms(src.Name) {
			for _, on := range []string{" ON ", " ON ONLY "} {
				old := on + sc + "." + n + " "
				if strings.Count(def, old) == 1 {
					return strings.Replace(def, old, " ON "+to+" ", 1), true
				}
			}
		}
	}
	return "", false
}

// fingerprint is what a preparation depends on in the target: the
// definitions of the tables it makes again, what hangs on them, and the
// file.
func fingerprint(f *File, tgt *pgschema.Schema, prepared map[string]shadow) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", f.SHA256)
	keys := make([]string, 0, len(prepared))
	for k := range prepared {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := withoutMarker(tgt)
	for _, k := range keys {
		t := s.Table(k)
		if t == nil {
			fmt.Fprintf(h, "%s absent\n", k)
			continue
		}
		var children []string
		for i := range s.Tables {
			if slices.Contains(s.Tables[i].Inherits, t.QualifiedName()) {
				children = append(children, s.Tables[i].Key())
			}
		}
		fmt.Fprintf(h, "%s %s %q %q %q\n", k, definition(t), t.Dependents, t.Attached, children)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// usePreparation reads preparation key in the apply's transaction: the
// shadow tables to swap in, or none, with a warning, when it is missing,
// of another file or stale (the target changed since).
func usePreparation(ctx context.Context, tx pgx.Tx, key string, f *File, tgt *pgschema.Schema) (map[string]shadow, []string, error) {
	redo := func(why string) (map[string]shadow, []string, error) {
		return nil, []string{fmt.Sprintf("preparation %s %s: its work was redone in the window", key, why)}, nil
	}
	ok, err := hasTable(ctx, tx, prepTable)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return redo("is not in the target")
	}
	var hash, fp string
	var tables []byte
	err = tx.QueryRow(ctx, `SELECT hash, fingerprint, tables FROM `+prepTable+` WHERE key = $1`, key).Scan(&hash, &fp, &tables)
	if errors.Is(err, pgx.ErrNoRows) {
		return redo("is not in the target")
	}
	if err != nil {
		return nil, nil, err
	}
	if hash != f.SHA256 {
		return redo("was made for another migration file")
	}
	var swap map[string]shadow
	if err := json.Unmarshal(tables, &swap); err != nil {
		return nil, nil, release.Errorf(release.CodeDamaged, "preparation %s cannot be read: %v", key, err)
	}
	if fingerprint(f, tgt, swap) != fp {
		var changed []string
		for k := range swap {
			changed = append(changed, k)
		}
		sort.Strings(changed)
		return redo("was stale (the target's definitions of " + strings.Join(changed, ", ") + " or what depends on them changed since it was made)")
	}
	for k, sh := range swap {
		if ok, err := hasTable(ctx, tx, pgschema.Ident(sh.Schema, sh.Name)); err != nil {
			return nil, nil, err
		} else if !ok {
			return redo("lacks its table for " + k + " (used by an earlier apply, or dropped)")
		}
	}
	return swap, nil, nil
}

// unused warns of prepared tables the apply loaded in the window anyway.
func unused(key string, swap map[string]shadow, prog *program) []string {
	var out []string
	for k := range swap {
		if !slices.Contains(prog.swapped, k) {
			why := "it can no longer be made again"
			for _, w := range prog.inWindow {
				if strings.HasPrefix(w, k+": ") {
					why = strings.TrimPrefix(w, k+": ")
				}
			}
			out = append(out, fmt.Sprintf("preparation %s: %s was loaded in the window, not swapped in (%s)", key, k, why))
		}
	}
	sort.Strings(out)
	return out
}

// Unprepare drops what Prepare left under key.
func (e *Engine) Unprepare(ctx context.Context, app *release.App, target *release.Environment, key string) error {
	if err := checkName("preparation", key); err != nil {
		return err
	}
	tx, end, err := begin(ctx, target)
	if err != nil {
		return err
	}
	defer end()
	if err := unprepareIn(ctx, tx, key); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func unprepareIn(ctx context.Context, tx pgx.Tx, key string) error {
	if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgschema.QuoteIdent(prepSchema(key))+" CASCADE"); err != nil {
		return err
	}
	if ok, err := hasTable(ctx, tx, prepTable); err != nil || !ok {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM `+prepTable+` WHERE key = $1`, key)
	return err
}
