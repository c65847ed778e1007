package nocobase

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/relbot/relbot/release"
)

// pageTree is one side's page contents: each node of the UI schema and
// flow model trees with a digest of what it is and where it sits.
type pageTree struct {
	node   map[string]string // uid -> digest of its JSON, parent and place
	parent map[string]string // uid -> parent uid
}

func pageTreeOf(c *Config) *pageTree {
	t := &pageTree{node: map[string]string{}, parent: map[string]string{}}
	for _, tree := range []struct{ nodes, paths, uid, content string }{
		{"uiSchemas", "uiSchemaTreePath", "x-uid", "schema"},
		{"flowModels", "flowModelTreePath", "uid", "options"},
	} {
		pt, links := c.rowsOf(tree.paths)
		sort := map[string]string{}
		for _, r := range links {
			child := r.get(pt, "descendant")
			t.parent[child] = r.get(pt, "ancestor")
			sort[child] = r.get(pt, "sort")
		}
		nt, nodes := c.rowsOf(tree.nodes)
		for _, r := range nodes {
			uid := r.get(nt, tree.uid)
			t.node[uid] = r.get(nt, tree.content) + "|" + t.parent[uid] + "|" + sort[uid]
		}
	}
	return t
}

// owner is the route whose page holds uid: the nearest ancestor (or uid
// itself) that is a route's schemaUid; "" when none is.
func (t *pageTree) owner(uid string, routeOf map[string]string) string {
	seen := map[string]bool{}
	for u := uid; u != "" && !seen[u]; u = t.parent[u] {
		seen[u] = true
		if id, ok := routeOf[u]; ok {
			return id
		}
	}
	return ""
}

// pageContentChanges tells, per page on both sides of the menu, how many
// of its interface elements (blocks, fields, actions: the nodes of its
// UI schema or flow model tree) were added, removed or changed; elements
// of no page (pop-ups and templates saved apart) are counted together.
// Pages added or removed are told by routeChanges with all they hold.
func pageContentChanges(before, after *Config) []release.Change {
	if !before.Has("uiSchemas") && !after.Has("uiSchemas") && !before.Has("flowModels") && !after.Has("flowModels") {
		return nil
	}
	bt, at := pageTreeOf(before), pageTreeOf(after)
	type counts struct{ added, removed, changed int }
	per := map[string]*counts{} // "kind\x00route id", or "" for no page
	routes := map[string]struct {
		kind   release.ChangeKind
		before map[string]configRow
		after  map[string]configRow
		t      *summaryTable
	}{}
	bRouteOf, aRouteOf := map[string]string{}, map[string]string{}
	for _, r := range []struct {
		kind  release.ChangeKind
		table string
	}{{release.ChangePage, "desktopRoutes"}, {release.ChangeMobilePage, "mobileRoutes"}} {
		t, b, _ := byKey(before, r.table)
		_, a, _ := byKey(after, r.table)
		routes[string(r.kind)] = struct {
			kind   release.ChangeKind
			before map[string]configRow
			after  map[string]configRow
			t      *summaryTable
		}{r.kind, b, a, t}
		index := func(side map[string]configRow, into map[string]string) {
			for id, row := range side {
				uid := row.get(t, "schemaUid")
				if uid == "" {
					continue
				}
				page := id
				if row.get(t, "type") == "tabs" { // a tab's elements are its page's
					page = row.get(t, "parentId")
				}
				into[uid] = string(r.kind) + "\x00" + page
			}
		}
		index(b, bRouteOf)
		index(a, aRouteOf)
	}
	count := func(page string) *counts {
		if per[page] == nil {
			per[page] = &counts{}
		}
		return per[page]
	}
	for _, uid := range slices.Sorted(maps.Keys(union(bt.node, at.node))) {
		bv, had := bt.node[uid]
		av, has := at.node[uid]
		switch {
		case had && has && bv != av:
			count(at.owner(uid, aRouteOf)).changed++
		case has && !had:
			count(at.owner(uid, aRouteOf)).added++
		case had && !has:
			count(bt.owner(uid, bRouteOf)).removed++
		}
	}
	var out []release.Change
	for _, key := range slices.Sorted(maps.Keys(per)) {
		c := per[key]
		var parts []string
		for _, p := range []struct {
			n    int
			what string
		}{{c.added, "added"}, {c.removed, "removed"}, {c.changed, "changed"}} {
			switch {
			case p.n > 0 && len(parts) == 0:
				parts = append(parts, fmt.Sprintf("%s %s", release.Count(p.n, "element"), p.what))
			case p.n > 0:
				parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
			}
		}
		detail := strings.Join(parts, ", ")
		if key == "" {
			out = append(out, release.Change{Kind: release.ChangePage, Action: "content changed", Name: "elements outside the menu's pages", Detail: detail + " (pop-ups, saved templates)"})
			continue
		}
		kind, id, _ := strings.Cut(key, "\x00")
		r := routes[kind]
		bRow, inBefore := r.before[id]
		aRow, inAfter := r.after[id]
		if !inBefore || !inAfter {
			continue // an added or removed page is told whole
		}
		title := aRow.get(r.t, "title")
		if title == "" {
			title = bRow.get(r.t, "title")
		}
		if title == "" {
			title = "untitled page #" + id
		}
		out = append(out, release.Change{Kind: r.kind, Action: "content changed", Name: quote(title), Detail: detail})
	}
	return out
}
