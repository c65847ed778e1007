package migrate

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// changes summarizes what applying the file would change in the target,
// read from rows rather than SQL. For a NocoBase app: its pages, menu
// access, collections, workflows, roles and plugins (release/nocobase),
// the variables it newly references, and the other carried tables whose
// rows differ in one line. For any other app: each carried table that is
// new or whose rows differ, with its rule. Each of the target's carried
// tables is read once, as a stream.
func (f *File) changes(ctx context.Context, tx pgx.Tx, tgt *pgschema.Schema, env string, known map[string]bool) (*release.Changes, error) {
	out := &release.Changes{Against: env, Items: []release.Change{}}
	layout := f.Meta.Layout
	var before, file *nocobase.Config
	summarized := map[string]bool{}
	if layout != nil {
		before, file = nocobase.NewConfig(*layout), nocobase.NewConfig(*layout)
		for _, k := range nocobase.SummaryTables(*layout) {
			summarized[k] = true
		}
	}
	refs := map[string]bool{}
	var differ []string // tables outside the NocoBase summary whose rows differ
	for _, td := range f.Meta.Tables {
		rule := appdb.RuleOf(f.Meta.Rules, td.Key)
		t := tgt.Table(td.Key)
		if t == nil {
			out.Items = append(out.Items, release.Change{Kind: release.ChangeTable, Action: "added", Name: td.Key,
				Detail: fmt.Sprintf("%s, %s", rule, release.Count(td.Rows, "row"))})
			if file != nil {
				if err := f.readInto(file, td); err != nil {
					return nil, err
				}
			}
			continue
		}
		// The target's rows in the file's columns, so equal rows hash
		// alike; a column the target lacks is a difference by itself.
		cols, same := td.Columns, len(td.Columns) > 0
		for _, c := range cols {
			if t.Column(c) == nil {
				same = false
			}
		}
		q := appdb.CopyOutSQL(t)
		if same {
			q = "COPY " + t.QualifiedName() + " (" + pgschema.ColumnList(cols) + ") TO STDOUT"
		} else {
			cols = t.CopyColumns()
		}
		var sum appdb.RowChecksum
		sinks := []io.Writer{&sum, &rowScanner{table: t, refs: refs}}
		var targetSide io.WriteCloser
		if file != nil && summarized[td.Key] {
			targetSide = before.Writer(td.Key, cols)
			sinks = append(sinks, targetSide)
		}
		if _, err := tx.Conn().PgConn().CopyTo(ctx, io.MultiWriter(sinks...), q); err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", td.Key, env, err)
		}
		if targetSide != nil {
			if err := targetSide.Close(); err != nil {
				return nil, err
			}
		}
		if targetSide != nil {
			if err := f.readInto(file, td); err != nil {
				return nil, err
			}
		}
		if same && sum.Sum() == td.Checksum {
			continue
		}
		if summarized[td.Key] {
			continue
		}
		detail := fmt.Sprintf("%s, %s in the file, %s in %s", rule, release.Number(td.Rows), release.Number(sum.Rows), env)
		if !same {
			detail = fmt.Sprintf("%s, %s in the file; columns differ", rule, release.Count(td.Rows, "row"))
		}
		if layout != nil {
			differ = append(differ, td.Key)
			continue
		}
		out.Items = append(out.Items, release.Change{Kind: release.ChangeTable, Action: "rows differ", Name: td.Key, Detail: detail})
	}
	if layout != nil {
		out.Items = append(out.Items, nocobase.Summarize(before, nocobase.After(before, file, func(key string) release.Rule {
			return appdb.RuleOf(f.Meta.Rules, key)
		}))...)
		if len(differ) > 0 {
			out.Items = append(out.Items, release.Change{Kind: release.ChangeTable, Action: "rows differ", Name: strings.Join(readable(differ), ", "), Detail: "other carried tables"})
		}
	}
	for _, v := range f.Meta.Variables {
		if refs[v] {
			continue
		}
		detail := ""
		if known != nil {
			detail = "defined in " + env
			if !known[v] {
				detail = "not defined in " + env + " yet"
			}
		}
		out.Items = append(out.Items, release.Change{Kind: release.ChangeVariable, Action: "newly referenced", Name: v, Detail: detail})
	}
	release.SortChanges(out.Items)
	return out, nil
}

// readInto streams one carried table of the file into a side of the
// NocoBase summary.
func (f *File) readInto(c *nocobase.Config, td TableData) error {
	w := c.Writer(td.Key, td.Columns)
	if w == nil {
		return nil
	}
	rows, err := f.Rows(td)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, rows); err != nil {
		return fmt.Errorf("read %s of the migration file: %w", td.Key, err)
	}
	if err := w.Close(); err != nil {
		return release.Errorf(release.CodeDamaged, "migration file: %v", err)
	}
	return nil
}
