package release

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Change is one thing a migration changes, in the app's own terms (a
// page, a collection, a workflow, a role) rather than in SQL, so that an
// approver can judge it.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Action string     `json:"action"` // added, removed, renamed, moved, changed, enabled, new version, …
	Name   string     `json:"name"`   // as people know it: a title, with the technical name where it helps
	Detail string     `json:"detail,omitempty"`
}

// ChangeKind is what a change is to.
type ChangeKind string

const (
	ChangePage       ChangeKind = "page"
	ChangeMobilePage ChangeKind = "mobile page"
	ChangeCollection ChangeKind = "collection"
	ChangeField      ChangeKind = "field"
	ChangeWorkflow   ChangeKind = "workflow"
	ChangeRole       ChangeKind = "role"
	ChangePlugin     ChangeKind = "plugin"
	ChangeVariable   ChangeKind = "variable"
	ChangeTable      ChangeKind = "table"
)

func (c Change) String() string {
	s := fmt.Sprintf("%s %s: %s", c.Kind, c.Action, c.Name)
	if c.Detail != "" {
		s += " — " + c.Detail
	}
	return s
}

// Changes is a migration's change summary against one environment.
type Changes struct {
	// Against is the environment compared with: what it has now is the
	// "before".
	Against string   `json:"against"`
	Items   []Change `json:"items"`
	// Partial names what could not be read, so a short list is never
	// taken for the whole story.
	Partial []string `json:"partial,omitempty"`
}

// Lines renders at most limit changes (all when limit <= 0), then one
// line counting the rest, then what could not be summarized.
func (c *Changes) Lines(limit int) []string {
	if c == nil {
		return nil
	}
	var out []string
	for i, ch := range c.Items {
		if limit > 0 && i == limit {
			out = append(out, fmt.Sprintf("… and %d more", len(c.Items)-limit))
			break
		}
		out = append(out, ch.String())
	}
	for _, p := range c.Partial {
		out = append(out, "not summarized: "+p)
	}
	return out
}

// Headline counts the changes by kind for a one-line view ("2 pages, 1
// workflow, 3 roles").
func (c *Changes) Headline() string {
	if c == nil {
		return ""
	}
	if len(c.Items) == 0 {
		return "no configuration changes"
	}
	var order []ChangeKind
	n := map[ChangeKind]int{}
	for _, ch := range c.Items {
		if n[ch.Kind] == 0 {
			order = append(order, ch.Kind)
		}
		n[ch.Kind]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = Count(n[k], string(k))
	}
	return strings.Join(parts, ", ")
}

// Since lists how now differs from c, the summary shown earlier: lines
// only one of them has, marked + (new) or - (gone). Nothing when either
// is missing (a release requested before summaries were kept).
func (c *Changes) Since(now *Changes) []string {
	if c == nil || now == nil {
		return nil
	}
	was := map[string]bool{}
	for _, ch := range c.Items {
		was[ch.String()] = true
	}
	is := map[string]bool{}
	var out []string
	for _, ch := range now.Items {
		is[ch.String()] = true
		if !was[ch.String()] {
			out = append(out, "+ "+ch.String())
		}
	}
	for _, ch := range c.Items {
		if !is[ch.String()] {
			out = append(out, "- "+ch.String())
		}
	}
	return out
}

// changeKinds orders a summary's kinds as an approver reads them; what
// happened orders changes within a kind (added first, removed last),
// then their names.
var (
	changeKinds = []ChangeKind{ChangePage, ChangeMobilePage, ChangeCollection, ChangeField, ChangeWorkflow, ChangeRole, ChangePlugin,
		ChangeTable, ChangeVariable}
	changeActions = map[string]int{"added": 0, "new version": 1, "renamed": 2, "moved": 3, "changed": 4, "content changed": 4, "upgraded": 4, "rows differ": 4,
		"enabled": 5, "disabled": 5, "permissions": 6, "menu access": 7, "mobile menu access": 7, "removed": 8}
)

// SortChanges puts changes in the order summaries show them, the same
// each time.
func SortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		if ki, kj := slices.Index(changeKinds, cs[i].Kind), slices.Index(changeKinds, cs[j].Kind); ki != kj {
			return ki < kj
		}
		if ai, aj := changeActions[cs[i].Action], changeActions[cs[j].Action]; ai != aj {
			return ai < aj
		}
		return cs[i].Name < cs[j].Name
	})
}
