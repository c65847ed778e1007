package nocobase

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/relbot/relbot/release"
)

// Summarize lists what changes between two sides of a NocoBase app's
// configuration, in the words its users know: pages and menu entries and
// what each page holds, collections and fields, workflows and their nodes, roles with their
// permissions and menu access, plugins; in no set order: release.SortChanges
// orders them for showing, with the lines a caller adds.
func Summarize(before, after *Config) []release.Change {
	var out []release.Change
	out = append(out, routeChanges(before, after, release.ChangePage, "desktopRoutes", "rolesDesktopRoutes", "desktopRouteId")...)
	out = append(out, routeChanges(before, after, release.ChangeMobilePage, "mobileRoutes", "rolesMobileRoutes", "mobileRouteId")...)
	out = append(out, pageContentChanges(before, after)...)
	out = append(out, collectionChanges(before, after)...)
	out = append(out, workflowChanges(before, after)...)
	out = append(out, roleChanges(before, after)...)
	out = append(out, pluginChanges(before, after)...)
	return out
}

func quote(s string) string { return "“" + s + "”" }

// byKey indexes a table's rows by their key.
func byKey(c *Config, table string) (*summaryTable, map[string]configRow, []string) {
	t, rows := c.rowsOf(table)
	m := make(map[string]configRow, len(rows))
	var keys []string
	for _, r := range rows {
		k := t.keyOf(r)
		if _, dup := m[k]; !dup {
			keys = append(keys, k)
		}
		m[k] = r
	}
	return t, m, keys
}

// differing names the columns whose values differ, JSON compared by value.
func differing(t *summaryTable, a, b configRow, cols ...string) []string {
	var out []string
	for _, c := range cols {
		va, vb := a.ptr(t, c), b.ptr(t, c)
		switch {
		case va == nil && vb == nil:
		case va == nil || vb == nil:
			out = append(out, c)
		case *va != *vb && canonicalJSON(*va) != canonicalJSON(*vb):
			out = append(out, c)
		}
	}
	return out
}

// routeChanges compares the menu: pages, groups and links by id, with
// their titles, places and settings; a page's tabs are told as changes to
// their page; each role's menu access is compared too.
func routeChanges(before, after *Config, kind release.ChangeKind, table, access, accessCol string) []release.Change {
	if !before.Has(table) && !after.Has(table) {
		return nil
	}
	t, b, bKeys := byKey(before, table)
	_, a, aKeys := byKey(after, table)
	title := func(side map[string]configRow, id string) string {
		r, ok := side[id]
		if !ok {
			return "#" + id
		}
		if s := r.get(t, "title"); s != "" {
			return s
		}
		return "untitled " + orWord(r.get(t, "type"), "entry") + " #" + id
	}
	where := func(side map[string]configRow, id string) string {
		var path []string
		seen := map[string]bool{}
		for p := side[id].get(t, "parentId"); p != "" && !seen[p]; p = side[p].get(t, "parentId") {
			seen[p] = true
			if _, ok := side[p]; !ok {
				break
			}
			path = append([]string{title(side, p)}, path...)
		}
		if len(path) == 0 {
			return "at the top of the menu"
		}
		return "in " + quote(strings.Join(path, " › "))
	}
	isTab := func(r configRow) bool { return r.get(t, "type") == "tabs" }
	name := func(side map[string]configRow, id string) string {
		s := quote(title(side, id))
		if typ := side[id].get(t, "type"); typ != "" && typ != "page" && typ != "flowPage" {
			s += " (" + typ + ")"
		}
		return s
	}
	var out []release.Change
	tabs := map[string][]string{} // page id -> what happened to its tabs
	tabChange := func(side map[string]configRow, id, what string) {
		parent := side[id].get(t, "parentId")
		label := "a tab"
		if s := side[id].get(t, "title"); s != "" {
			label = "tab " + quote(s)
		}
		tabs[parent] = append(tabs[parent], label+" "+what)
	}
	for _, id := range aKeys {
		r := a[id]
		old, had := b[id]
		switch {
		case !had && isTab(r):
			if _, parentHad := b[r.get(t, "parentId")]; parentHad {
				tabChange(a, id, "added")
			}
		case !had:
			out = append(out, release.Change{Kind: kind, Action: "added", Name: name(a, id), Detail: where(a, id)})
		case isTab(r):
			if d := differing(t, old, r, "title", "hidden", "icon", "options"); len(d) > 0 {
				tabChange(a, id, "changed ("+strings.Join(d, ", ")+")")
			}
		default:
			if ot, nt := title(b, id), title(a, id); ot != nt {
				out = append(out, release.Change{Kind: kind, Action: "renamed", Name: quote(ot) + " → " + quote(nt), Detail: where(a, id)})
			}
			if old.get(t, "parentId") != r.get(t, "parentId") {
				out = append(out, release.Change{Kind: kind, Action: "moved", Name: name(a, id),
					Detail: "from " + strings.TrimPrefix(where(b, id), "in ") + " to " + strings.TrimPrefix(where(a, id), "in ")})
			}
			if d := differing(t, old, r, "type", "icon", "schemaUid", "hidden", "hideInMenu", "enableTabs", "options"); len(d) > 0 {
				out = append(out, release.Change{Kind: kind, Action: "changed", Name: name(a, id), Detail: strings.Join(d, ", ")})
			}
		}
	}
	for _, id := range bKeys {
		r := b[id]
		if _, kept := a[id]; kept {
			continue
		}
		if isTab(r) {
			if _, parentKept := a[r.get(t, "parentId")]; parentKept {
				tabChange(b, id, "removed")
			}
			continue
		}
		out = append(out, release.Change{Kind: kind, Action: "removed", Name: name(b, id), Detail: where(b, id)})
	}
	for _, page := range slices.Sorted(maps.Keys(tabs)) {
		out = append(out, release.Change{Kind: kind, Action: "changed", Name: name(a, page), Detail: strings.Join(tabs[page], "; ")})
	}
	// Menu access: which of the menu's entries (tabs follow their page)
	// each role sees.
	if before.Has(access) || after.Has(access) {
		seen := func(c *Config, side map[string]configRow) map[string][]string {
			at, rows := c.rowsOf(access)
			m := map[string][]string{}
			for _, r := range rows {
				id := r.get(at, accessCol)
				if rr, ok := side[id]; ok && isTab(rr) {
					continue
				}
				m[r.get(at, "roleName")] = append(m[r.get(at, "roleName")], id)
			}
			return m
		}
		bs, as := seen(before, b), seen(after, a)
		titles := func(side map[string]configRow, ids []string) []string {
			out := make([]string, len(ids))
			for i, id := range ids {
				out[i] = quote(title(side, id))
			}
			slices.Sort(out)
			return out
		}
		what := "menu access"
		if kind == release.ChangeMobilePage {
			what = "mobile menu access"
		}
		for _, role := range slices.Sorted(maps.Keys(union(bs, as))) {
			gained, lost := setDiff(as[role], bs[role]), setDiff(bs[role], as[role])
			var parts []string
			if len(gained) > 0 {
				parts = append(parts, "now sees "+strings.Join(titles(a, gained), ", "))
			}
			if len(lost) > 0 {
				parts = append(parts, "no longer sees "+strings.Join(titles(b, lost), ", "))
			}
			if len(parts) > 0 {
				out = append(out, release.Change{Kind: release.ChangeRole, Action: what, Name: roleTitle(before, after, role), Detail: strings.Join(parts, "; ")})
			}
		}
	}
	return out
}

// collectionChanges compares collections by name and their fields by
// collection and name; the fields of an added or removed collection are
// counted with it.
func collectionChanges(before, after *Config) []release.Change {
	if !before.Has("collections") && !after.Has("collections") && !before.Has("fields") && !after.Has("fields") {
		return nil
	}
	ct, bc := indexedBy(before, "collections", "name")
	_, ac := indexedBy(after, "collections", "name")
	ft, bf := indexedBy(before, "fields", "collectionName", "name")
	_, af := indexedBy(after, "fields", "collectionName", "name")
	fieldCount := func(fields map[string]configRow, coll string) int {
		n := 0
		for k := range fields {
			if strings.HasPrefix(k, coll+"\x00") {
				n++
			}
		}
		return n
	}
	collName := func(coll string) string {
		r, ok := ac[coll]
		if !ok {
			r = bc[coll]
		}
		if s := uiTitle(r.get(ct, "title")); s != "" && s != coll {
			return quote(s) + " (" + coll + ")"
		}
		return coll
	}
	var out []release.Change
	for _, name := range slices.Sorted(maps.Keys(ac)) {
		r := ac[name]
		old, had := bc[name]
		if !had {
			detail := release.Count(fieldCount(af, name), "field")
			if tmpl := jsonPath(r.get(ct, "options"), "template"); tmpl != "" && tmpl != "general" {
				detail = tmpl + " collection, " + detail
			}
			out = append(out, release.Change{Kind: release.ChangeCollection, Action: "added", Name: collName(name), Detail: detail})
			continue
		}
		if ot, nt := uiTitle(old.get(ct, "title")), uiTitle(r.get(ct, "title")); ot != nt {
			out = append(out, release.Change{Kind: release.ChangeCollection, Action: "renamed", Name: quote(ot) + " → " + quote(nt) + " (" + name + ")"})
		}
		d := differing(ct, old, r, "hidden", "inherit", "description")
		if keys := jsonKeysDiffering(old.get(ct, "options"), r.get(ct, "options")); len(keys) > 0 {
			d = append(d, "options: "+strings.Join(keys, ", "))
		}
		if len(d) > 0 {
			out = append(out, release.Change{Kind: release.ChangeCollection, Action: "changed", Name: collName(name), Detail: strings.Join(d, "; ")})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bc)) {
		if _, kept := ac[name]; !kept {
			out = append(out, release.Change{Kind: release.ChangeCollection, Action: "removed", Name: collName(name), Detail: release.Count(fieldCount(bf, name), "field")})
		}
	}
	fieldName := func(side map[string]configRow, k string) string {
		coll, name, _ := strings.Cut(k, "\x00")
		r := side[k]
		s := collName(coll) + " › "
		if title := uiTitle(jsonPath(r.get(ft, "options"), "uiSchema", "title")); title != "" && title != name {
			return s + quote(title) + " (" + name + ")"
		}
		return s + name
	}
	collOf := func(k string) string { c, _, _ := strings.Cut(k, "\x00"); return c }
	for _, k := range slices.Sorted(maps.Keys(af)) {
		r := af[k]
		old, had := bf[k]
		if _, collHad := bc[collOf(k)]; !collHad && !had {
			continue // told with its new collection
		}
		if !had {
			out = append(out, release.Change{Kind: release.ChangeField, Action: "added", Name: fieldName(af, k), Detail: fieldKind(ft, r)})
			continue
		}
		d := differing(ft, old, r, "type", "interface", "description")
		ot, nt := uiTitle(jsonPath(old.get(ft, "options"), "uiSchema", "title")), uiTitle(jsonPath(r.get(ft, "options"), "uiSchema", "title"))
		if ot != nt {
			out = append(out, release.Change{Kind: release.ChangeField, Action: "renamed", Name: fieldName(af, k), Detail: "was " + quote(ot)})
		}
		if keys := jsonKeysDiffering(old.get(ft, "options"), r.get(ft, "options")); len(keys) > 0 {
			if ot != nt && len(keys) == 1 && keys[0] == "uiSchema" && len(jsonKeysDiffering(jsonRaw(old.get(ft, "options"), "uiSchema"), jsonRaw(r.get(ft, "options"), "uiSchema"))) == 1 {
				keys = nil // the title alone, told above
			}
			if len(keys) > 0 {
				d = append(d, "options: "+strings.Join(keys, ", "))
			}
		}
		if len(d) > 0 {
			out = append(out, release.Change{Kind: release.ChangeField, Action: "changed", Name: fieldName(af, k), Detail: strings.Join(d, "; ")})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bf)) {
		if _, kept := af[k]; kept {
			continue
		}
		if _, collKept := ac[collOf(k)]; !collKept {
			continue // told with its removed collection
		}
		out = append(out, release.Change{Kind: release.ChangeField, Action: "removed", Name: fieldName(bf, k), Detail: fieldKind(ft, bf[k])})
	}
	return out
}

// indexedBy keys a table's rows by columns that name them for people
// (a collection's name; a field's collection and name: its key is a random
// uid, the same in both sides only when it was migrated).
func indexedBy(c *Config, table string, cols ...string) (*summaryTable, map[string]configRow) {
	t, rows := c.rowsOf(table)
	m := map[string]configRow{}
	for _, r := range rows {
		parts := make([]string, len(cols))
		for i, col := range cols {
			parts[i] = r.get(t, col)
		}
		m[strings.Join(parts, "\x00")] = r
	}
	return t, m
}

func fieldKind(t *summaryTable, r configRow) string {
	if itf := r.get(t, "interface"); itf != "" {
		return itf
	}
	return r.get(t, "type")
}

// workflowChanges compares workflows by key, the identity their versions
// share: a key whose current version changed is a new version, with its
// nodes compared by node key against the version it replaces.
func workflowChanges(before, after *Config) []release.Change {
	if !before.Has("workflows") && !after.Has("workflows") {
		return nil
	}
	wt, bw := currentWorkflows(before)
	_, aw := currentWorkflows(after)
	title := func(r configRow) string { return quote(orWord(r.get(wt, "title"), "untitled "+r.get(wt, "key"))) }
	state := func(r configRow) string {
		if r.get(wt, "enabled") == "t" {
			return "enabled"
		}
		return "disabled"
	}
	var out []release.Change
	for _, key := range slices.Sorted(maps.Keys(aw)) {
		r := aw[key]
		old, had := bw[key]
		nodes := nodeChanges(before, after, old, r, wt)
		switch {
		case !had:
			detail := orWord(r.get(wt, "type"), "no") + " trigger, " + release.Count(len(nodesOf(after, r.get(wt, "id"))), "node") + ", " + state(r)
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: "added", Name: title(r), Detail: detail})
			continue
		case old.get(wt, "id") != r.get(wt, "id"):
			var detail []string
			if state(old) != state(r) {
				detail = append(detail, "was "+state(old)+", now "+state(r))
			}
			if d := differing(wt, old, r, "type", "config", "sync"); len(d) > 0 {
				detail = append(detail, "trigger: "+strings.Join(d, ", "))
			}
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: "new version", Name: title(r), Detail: strings.Join(append(detail, nodes...), "; ")})
			continue
		}
		if ot, nt := old.get(wt, "title"), r.get(wt, "title"); ot != nt {
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: "renamed", Name: quote(ot) + " → " + quote(nt)})
		}
		if state(old) != state(r) {
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: state(r), Name: title(r)})
		}
		d := differing(wt, old, r, "type", "config", "sync", "options", "description")
		if len(d) > 0 || len(nodes) > 0 {
			if len(d) > 0 {
				nodes = append([]string{strings.Join(d, ", ")}, nodes...)
			}
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: "changed", Name: title(r), Detail: strings.Join(nodes, "; ")})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(bw)) {
		if _, kept := aw[key]; !kept {
			out = append(out, release.Change{Kind: release.ChangeWorkflow, Action: "removed", Name: title(bw[key]), Detail: "was " + state(bw[key])})
		}
	}
	return out
}

// currentWorkflows picks each key's current version (the flagged one; the
// newest id when none is flagged).
func currentWorkflows(c *Config) (*summaryTable, map[string]configRow) {
	t, rows := c.rowsOf("workflows")
	m := map[string]configRow{}
	for _, r := range rows {
		k := r.get(t, "key")
		old, ok := m[k]
		switch {
		case !ok:
			m[k] = r
		case old.get(t, "current") == "t":
		case r.get(t, "current") == "t" || numLess(old.get(t, "id"), r.get(t, "id")):
			m[k] = r
		}
	}
	return t, m
}

func numLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func nodesOf(c *Config, workflowID string) map[string]configRow {
	t, rows := c.rowsOf("flow_nodes")
	m := map[string]configRow{}
	for _, r := range rows {
		if r.get(t, "workflowId") == workflowID {
			k := r.get(t, "key")
			if k == "" {
				k = "#" + r.get(t, "id")
			}
			m[k] = r
		}
	}
	return m
}

// nodeChanges compares two versions' nodes by node key (a new version
// copies its nodes with their keys): "nodes added: …", "changed: …".
func nodeChanges(before, after *Config, old, cur configRow, wt *summaryTable) []string {
	if old == nil || cur == nil {
		return nil
	}
	nt := findSummaryTable("flow_nodes")
	bn, an := nodesOf(before, old.get(wt, "id")), nodesOf(after, cur.get(wt, "id"))
	name := func(r configRow) string { return quote(orWord(r.get(nt, "title"), r.get(nt, "type")+" node")) }
	var added, removed, changed []string
	for _, k := range slices.Sorted(maps.Keys(an)) {
		o, had := bn[k]
		switch {
		case !had:
			added = append(added, name(an[k]))
		case len(differing(nt, o, an[k], "title", "type", "config", "branchIndex")) > 0 || linkMoved(nt, bn, an, o, an[k]):
			changed = append(changed, name(an[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(bn)) {
		if _, kept := an[k]; !kept {
			removed = append(removed, name(bn[k]))
		}
	}
	var out []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", added}, {"changed", changed}, {"removed", removed}} {
		if len(p.names) > 0 {
			out = append(out, "nodes "+p.what+": "+strings.Join(p.names, ", "))
		}
	}
	return out
}

// linkMoved reports whether a node's upstream node is another one (ids
// differ between versions, keys do not).
func linkMoved(t *summaryTable, bn, an map[string]configRow, o, n configRow) bool {
	keyOfID := func(side map[string]configRow, id string) string {
		for k, r := range side {
			if r.get(t, "id") == id {
				return k
			}
		}
		return ""
	}
	return keyOfID(bn, o.get(t, "upstreamId")) != keyOfID(an, n.get(t, "upstreamId"))
}

// roleChanges compares roles by name: added, removed, renamed, their
// general permissions (strategy), snippets and flags, and the actions
// each grants on each collection (rolesResources and the data-source
// tables NocoBase 2 uses).
func roleChanges(before, after *Config) []release.Change {
	if !before.Has("roles") && !after.Has("roles") {
		return nil
	}
	rt, br, _ := byKey(before, "roles")
	_, ar, _ := byKey(after, "roles")
	var out []release.Change
	for _, name := range slices.Sorted(maps.Keys(ar)) {
		r := ar[name]
		old, had := br[name]
		if !had {
			out = append(out, release.Change{Kind: release.ChangeRole, Action: "added", Name: roleTitle(before, after, name),
				Detail: "general permissions: " + orWord(strings.Join(strategyActions(r.get(rt, "strategy")), ", "), "none")})
			continue
		}
		if ot, nt := uiTitle(old.get(rt, "title")), uiTitle(r.get(rt, "title")); ot != nt {
			out = append(out, release.Change{Kind: release.ChangeRole, Action: "renamed", Name: quote(ot) + " → " + quote(nt) + " (" + name + ")"})
		}
		var parts []string
		if g, w := grantDiff(strategyActions(old.get(rt, "strategy")), strategyActions(r.get(rt, "strategy"))); g != "" || w != "" {
			parts = append(parts, "general permissions:"+g+w)
		}
		if g, w := grantDiff(jsonStrings(old.get(rt, "snippets")), jsonStrings(r.get(rt, "snippets"))); g != "" || w != "" {
			parts = append(parts, "snippets:"+g+w)
		}
		if d := differing(rt, old, r, "allowConfigure", "allowNewMenu", "default", "hidden", "description"); len(d) > 0 {
			parts = append(parts, strings.Join(d, ", ")+" changed")
		}
		if len(parts) > 0 {
			out = append(out, release.Change{Kind: release.ChangeRole, Action: "changed", Name: roleTitle(before, after, name), Detail: strings.Join(parts, "; ")})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(br)) {
		if _, kept := ar[name]; !kept {
			out = append(out, release.Change{Kind: release.ChangeRole, Action: "removed", Name: roleTitle(before, after, name)})
		}
	}
	bp, ap := permissions(before), permissions(after)
	for _, role := range slices.Sorted(maps.Keys(union(bp, ap))) {
		if _, kept := ar[role]; !kept && br[role] != nil {
			continue // told as removed
		}
		var parts []string
		for _, res := range slices.Sorted(maps.Keys(union(bp[role], ap[role]))) {
			o, n := bp[role][res], ap[role][res]
			var granted, withdrawn, changed []string
			for _, act := range slices.Sorted(maps.Keys(union(o, n))) {
				ov, had := o[act]
				nv, has := n[act]
				switch {
				case has && !had:
					granted = append(granted, act)
				case had && !has:
					withdrawn = append(withdrawn, act)
				case ov != nv:
					changed = append(changed, act)
				}
			}
			if len(granted) > 0 {
				parts = append(parts, "granted "+res+": "+strings.Join(granted, ", "))
			}
			if len(withdrawn) > 0 {
				parts = append(parts, "withdrawn "+res+": "+strings.Join(withdrawn, ", "))
			}
			if len(changed) > 0 {
				parts = append(parts, "fields or scope changed "+res+": "+strings.Join(changed, ", "))
			}
		}
		if len(parts) > 0 {
			out = append(out, release.Change{Kind: release.ChangeRole, Action: "permissions", Name: roleTitle(before, after, role), Detail: strings.Join(parts, "; ")})
		}
	}
	return out
}

// permissions maps role -> collection -> action -> its fields and scope,
// for the collections where the role uses its own action settings.
func permissions(c *Config) map[string]map[string]map[string]string {
	out := map[string]map[string]map[string]string{}
	for _, pair := range [][2]string{{"rolesResources", "rolesResourcesActions"}, {"dataSourcesRolesResources", "dataSourcesRolesResourcesActions"}} {
		rt, rows := c.rowsOf(pair[0])
		res := map[string][2]string{} // id -> role, resource
		for _, r := range rows {
			if r.get(rt, "usingActionsConfig") == "f" {
				continue
			}
			name := r.get(rt, "name")
			if ds := r.get(rt, "dataSourceKey"); ds != "" && ds != "main" {
				name = ds + ":" + name
			}
			res[r.get(rt, "id")] = [2]string{r.get(rt, "roleName"), name}
			if out[r.get(rt, "roleName")] == nil {
				out[r.get(rt, "roleName")] = map[string]map[string]string{}
			}
			if out[r.get(rt, "roleName")][name] == nil {
				out[r.get(rt, "roleName")][name] = map[string]string{}
			}
		}
		at, acts := c.rowsOf(pair[1])
		for _, a := range acts {
			rr, ok := res[a.get(at, "rolesResourceId")]
			if !ok {
				continue
			}
			out[rr[0]][rr[1]][a.get(at, "name")] = canonicalJSON(a.get(at, "fields")) + "\x00" + a.get(at, "scopeId")
		}
	}
	return out
}

func roleTitle(before, after *Config, name string) string {
	for _, c := range []*Config{after, before} {
		t, rows := c.rowsOf("roles")
		for _, r := range rows {
			if r.get(t, "name") == name {
				if s := uiTitle(r.get(t, "title")); s != "" && s != name {
					return quote(s) + " (" + name + ")"
				}
			}
		}
	}
	return name
}

// strategyActions are a role's general permissions: strategy.actions,
// such as "view", "create", "update:own".
func strategyActions(s string) []string {
	var v struct {
		Actions []string `json:"actions"`
	}
	json.Unmarshal([]byte(s), &v)
	return v.Actions
}

// grantDiff renders what a list gained and lost: " granted a, b;
// withdrawn c".
func grantDiff(before, after []string) (granted, withdrawn string) {
	if g := setDiff(after, before); len(g) > 0 {
		granted = " granted " + strings.Join(g, ", ")
	}
	if w := setDiff(before, after); len(w) > 0 {
		withdrawn = " withdrawn " + strings.Join(w, ", ")
		if granted != "" {
			withdrawn = ";" + withdrawn
		}
	}
	return granted, withdrawn
}

// pluginChanges compares the plugin registry by name. Upgrades moving
// between the same two versions are told together: a core upgrade moves
// most plugins at once.
func pluginChanges(before, after *Config) []release.Change {
	if !before.Has("applicationPlugins") && !after.Has("applicationPlugins") {
		return nil
	}
	pt, bp := indexedBy(before, "applicationPlugins", "name")
	_, ap := indexedBy(after, "applicationPlugins", "name")
	state := func(r configRow) string {
		switch {
		case r.get(pt, "enabled") == "t":
			return "enabled"
		case r.get(pt, "installed") == "t":
			return "installed, disabled"
		}
		return "not installed"
	}
	var out []release.Change
	upgrades := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(ap)) {
		r := ap[name]
		old, had := bp[name]
		if !had {
			out = append(out, release.Change{Kind: release.ChangePlugin, Action: "added", Name: name + " " + r.get(pt, "version"), Detail: state(r)})
			continue
		}
		if ov, nv := old.get(pt, "version"), r.get(pt, "version"); ov != nv {
			upgrades[orWord(ov, "none")+" → "+orWord(nv, "none")] = append(upgrades[orWord(ov, "none")+" → "+orWord(nv, "none")], name)
		}
		if state(old) != state(r) {
			action := "disabled"
			if r.get(pt, "enabled") == "t" {
				action = "enabled"
			}
			out = append(out, release.Change{Kind: release.ChangePlugin, Action: action, Name: name, Detail: "was " + state(old)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bp)) {
		if _, kept := ap[name]; !kept {
			out = append(out, release.Change{Kind: release.ChangePlugin, Action: "removed", Name: name + " " + bp[name].get(pt, "version")})
		}
	}
	for _, change := range slices.Sorted(maps.Keys(upgrades)) {
		names := upgrades[change]
		label := strings.Join(names, ", ")
		if len(names) > 4 {
			label = strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
		}
		out = append(out, release.Change{Kind: release.ChangePlugin, Action: "upgraded", Name: label, Detail: change})
	}
	return out
}

// uiTitle shows NocoBase's translated titles as people read them:
// {{t("Users")}} is Users.
func uiTitle(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{{") && strings.HasSuffix(s, "}}") {
		inner := strings.TrimSpace(s[2 : len(s)-2])
		if strings.HasPrefix(inner, "t(") && strings.HasSuffix(inner, ")") {
			arg := strings.TrimSpace(inner[2 : len(inner)-1])
			if first, _, _ := strings.Cut(arg, ","); len(first) >= 2 && (first[0] == '"' || first[0] == '\'') {
				if unq := strings.Trim(first, `"'`); unq != "" {
					return unq
				}
			}
		}
	}
	return s
}

func jsonRaw(s string, key string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &m) != nil {
		return ""
	}
	return string(m[key])
}

// jsonPath reads a string at a path of object keys; "" when absent.
func jsonPath(s string, path ...string) string {
	for _, k := range path {
		s = jsonRaw(s, k)
	}
	var out string
	if json.Unmarshal([]byte(s), &out) != nil {
		return ""
	}
	return out
}

func jsonStrings(s string) []string {
	var out []string
	json.Unmarshal([]byte(s), &out)
	return out
}

func orWord(s, instead string) string {
	if s == "" {
		return instead
	}
	return s
}

func union[V any](a, b map[string]V) map[string]V {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, b)
	return out
}

// setDiff lists what a has and b lacks, sorted, once each.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
