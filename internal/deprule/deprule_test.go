package deprule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// module is the module path; every package path below is relative to it.
const module = "github.com/relbot/relbot"

// Third-party modules the rule names, by module path (any subpackage and any
// major version under it matches).
const (
	slackGo = "github.com/slack-go/slack"
	goRedis = "github.com/redis/go-redis"
	pgx     = "github.com/jackc/pgx"
)

// pkg is the part of `go list -json` output the rules need.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string // every package it depends on, directly or not
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// graph is every package of the module and everything they depend on.
type graph struct {
	pkgs  map[string]*pkg
	local []string // the module's own packages, sorted
}

// loadGraph runs `go list -e -deps -json ./...` at the module root. -e keeps
// a package that does not build yet (another change in progress) from hiding
// the others; its errors are logged, and go build / go vet report them.
func loadGraph(t *testing.T) *graph {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatalf("go env GOMOD = %q: not inside the module", gomod)
	}
	cmd := exec.Command(goBin, "list", "-e", "-deps", "-json", "./...")
	cmd.Dir = filepath.Dir(gomod)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps -json ./... in %s: %v\n%s", cmd.Dir, err, stderr.Bytes())
	}
	g := &graph{pkgs: map[string]*pkg{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		g.pkgs[p.ImportPath] = p
		if under(p.ImportPath, module) {
			g.local = append(g.local, p.ImportPath)
			if p.Error != nil {
				t.Logf("note: %s does not load cleanly, its imports may be incomplete: %s", p.ImportPath, p.Error.Err)
			}
		}
	}
	sort.Strings(g.local)
	if len(g.local) == 0 {
		t.Fatalf("go list found no packages of %s in %s", module, cmd.Dir)
	}
	return g
}

// under reports whether path is prefix or one of its subpackages.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// selectLocal returns the module's packages matching pattern, a path relative
// to the module, optionally ending in "/..." for the package and its subtree.
func (g *graph) selectLocal(pattern string) []string {
	tree := strings.HasSuffix(pattern, "/...")
	full := module + "/" + strings.TrimSuffix(pattern, "/...")
	var out []string
	for _, p := range g.local {
		if p == full || (tree && under(p, full)) {
			out = append(out, p)
		}
	}
	return out
}

// path returns one import chain from -> ... -> to, for the failure message.
func (g *graph) path(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := cur; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		if p := g.pkgs[cur]; p != nil {
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{from, "…", to}
}

// rule forbids the packages matching subject to depend, directly or through
// others, on any package accepted by banned (asked for each package pkg of
// the subject and each of its dependencies dep).
type rule struct {
	name    string
	subject string // relative pattern: "release" or "release/..."
	banned  func(pkg, dep string, g *graph) bool
	// allow exempts packages of the subject set (used by the slack-go rule).
	allow func(pkg string) bool
}

func bans(prefixes ...string) func(string, string, *graph) bool {
	return func(_, dep string, _ *graph) bool {
		for _, p := range prefixes {
			if under(dep, p) {
				return true
			}
		}
		return false
	}
}

func local(rel ...string) []string {
	out := make([]string, len(rel))
	for i, r := range rel {
		out[i] = module + "/" + r
	}
	return out
}

var rules = []rule{
	{
		name:    "release imports the standard library only",
		subject: "release",
		banned:  func(_, dep string, g *graph) bool { p := g.pkgs[dep]; return p == nil || !p.Standard },
	},
	{
		name:    "release/... knows neither Slack, Redis nor the outer layers",
		subject: "release/...",
		banned:  bans(append([]string{slackGo, goRedis}, local("bot", "commands", "storage", "cmd", "config")...)...),
	},
	{
		name:    "release's engines do not import each other, only the lower shared packages",
		subject: "release/...",
		banned:  siblingEngine,
	},
	{
		name:    "commands knows neither Slack, the databases nor the outer layers",
		subject: "commands",
		banned:  bans(append([]string{slackGo, pgx, goRedis}, local("bot", "storage", "cmd")...)...),
	},
	{
		name:    "storage/... does not reach up to the transports",
		subject: "storage/...",
		banned:  bans(append([]string{slackGo}, local("bot", "commands", "cmd")...)...),
	},
	{
		name:    "bot does not touch storage",
		subject: "bot/...",
		banned:  bans(append([]string{pgx, goRedis}, local("storage")...)...),
	},
	{
		name:    "only bot and cmd import slack-go",
		subject: "...",
		banned:  bans(slackGo),
		allow: func(p string) bool {
			return under(p, module+"/bot") || under(p, module+"/cmd")
		},
	},
}

// lowerShared are the packages under release/ that the engines share:
// every package under release/ may import them, and they import only one
// another (and release). Everything else directly under release/ is an
// engine (pgsnap, migrate, versions, checks, hooks, scheduler, ...), which
// must not reach another engine, directly or through others; what two
// engines need goes down into one of these.
var lowerShared = map[string]bool{
	"appdb":    true, // connections, scratch databases, table rules, COPY and row checksums
	"httpspec": true, // the "METHOD URL" form of http hooks and checks
	"pgschema": true, // schema inspection and DDL
	"archive":  true, // the archive format
	"nocobase": true, // NocoBase's layouts, versions and variables table
}

// engineOf returns the first path element under release/ of p ("migrate"
// for release/migrate/x), or "" for release itself and packages outside it.
func engineOf(p string) string {
	rest, ok := strings.CutPrefix(p, module+"/release/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	return first
}

// siblingEngine bans, for a package under release/, every package of
// another engine under release/.
func siblingEngine(pkg, dep string, _ *graph) bool {
	own, other := engineOf(pkg), engineOf(dep)
	return own != "" && other != "" && other != own && !lowerShared[other]
}

// subjects returns the packages a rule applies to, and how many there are
// before the rule's exemptions (zero: the rule's packages do not exist yet).
func (g *graph) subjects(r rule) (checked []string, matched int) {
	all := g.local
	if r.subject != "..." {
		all = g.selectLocal(r.subject)
	}
	for _, s := range all {
		if r.allow == nil || !r.allow(s) {
			checked = append(checked, s)
		}
	}
	return checked, len(all)
}

// violations lists, for each package of the rule, the banned packages it
// depends on, with one import chain that brings each in.
func (g *graph) violations(r rule, subjects []string) []string {
	var out []string
	for _, s := range subjects {
		for _, dep := range g.pkgs[s].Deps {
			if r.banned(s, dep, g) {
				out = append(out, fmt.Sprintf("%s must not depend on %s (%s)",
					s, dep, strings.Join(g.path(s, dep), " -> ")))
			}
		}
	}
	return out
}

// TestDependencyRule holds DESIGN.md's arrows on the non-test code of every
// package (test files may import fakes from anywhere). A rule whose packages
// do not exist yet is skipped with a note, not failed.
func TestDependencyRule(t *testing.T) {
	g := loadGraph(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			subjects, matched := g.subjects(r)
			if matched == 0 {
				t.Skipf("skipped: no package %s/%s exists yet", module, r.subject)
			}
			for _, v := range g.violations(r, subjects) {
				t.Error(v)
			}
			for _, s := range subjects {
				if p := g.pkgs[s]; p.Error != nil || len(p.DepsErrors) > 0 {
					t.Logf("note: %s has load errors; checked what go list could see", s)
				}
			}
			t.Logf("checked %d package(s)", len(subjects))
		})
	}
}

// TestRulesCatchAViolation makes sure the rules are not vacuous: in a made-up
// graph where release imports pgx, commands reaches slack-go through bot and
// the versions engine reaches the migrate engine through its subpackage,
// the matching rules fire and the others stay quiet. Engines importing the
// lower shared packages (versions -> appdb, checks -> httpspec) is allowed.
func TestRulesCatchAViolation(t *testing.T) {
	rel := func(p string) string { return module + "/release/" + p }
	g := &graph{pkgs: map[string]*pkg{
		module + "/release":  {ImportPath: module + "/release", Imports: []string{"fmt", pgx + "/v5"}, Deps: []string{"fmt", pgx + "/v5"}},
		module + "/commands": {ImportPath: module + "/commands", Imports: []string{module + "/bot"}, Deps: []string{module + "/bot", slackGo}},
		module + "/bot":      {ImportPath: module + "/bot", Imports: []string{slackGo}, Deps: []string{slackGo}},
		rel("versions"): {ImportPath: rel("versions"), Imports: []string{rel("appdb"), rel("migrate/plan")},
			Deps: []string{rel("appdb"), rel("pgschema"), rel("migrate/plan"), module + "/release"}},
		rel("migrate/plan"): {ImportPath: rel("migrate/plan"), Imports: []string{rel("pgschema")}, Deps: []string{rel("pgschema")}},
		rel("appdb"):        {ImportPath: rel("appdb"), Imports: []string{rel("pgschema")}, Deps: []string{rel("pgschema")}},
		rel("pgschema"):     {ImportPath: rel("pgschema")},
		rel("checks"):       {ImportPath: rel("checks"), Imports: []string{rel("httpspec")}, Deps: []string{rel("httpspec")}},
		rel("httpspec"):     {ImportPath: rel("httpspec")},
		"fmt":               {ImportPath: "fmt", Standard: true},
		pgx + "/v5":         {ImportPath: pgx + "/v5"},
		slackGo:             {ImportPath: slackGo},
	}}
	g.local = []string{module + "/bot", module + "/commands", module + "/release", rel("appdb"), rel("checks"), rel("httpspec"),
		rel("migrate/plan"), rel("pgschema"), rel("versions")}

	fire := map[string]bool{
		"release imports the standard library only":                                  true,
		"release's engines do not import each other, only the lower shared packages": true,
		"commands knows neither Slack, the databases nor the outer layers":           true,
		"only bot and cmd import slack-go":                                           true,
	}
	for _, r := range rules {
		subjects, _ := g.subjects(r)
		v := g.violations(r, subjects)
		if fire[r.name] && len(v) == 0 {
			t.Errorf("rule %q found nothing in a graph that breaks it", r.name)
		}
		if !fire[r.name] && len(v) != 0 {
			t.Errorf("rule %q flagged %v, want nothing", r.name, v)
		}
	}
	for _, r := range rules {
		if r.banned == nil || r.name != "release's engines do not import each other, only the lower shared packages" {
			continue
		}
		subjects, _ := g.subjects(r)
		v := g.violations(r, subjects)
		if len(v) != 1 || !strings.HasPrefix(v[0], rel("versions")+" must not depend on "+rel("migrate/plan")) {
			t.Errorf("sibling rule: %q, want only versions -> migrate/plan", v)
		}
	}
	want := module + "/commands -> " + module + "/bot -> " + slackGo
	if chain := strings.Join(g.path(module+"/commands", slackGo), " -> "); chain != want {
		t.Errorf("path = %s, want %s", chain, want)
	}
}
