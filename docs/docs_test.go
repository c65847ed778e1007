// Package docs_test keeps docs/ in step with the code: every command and
// flag the grammar accepts, every key apps.yaml accepts (read from the
// decoder's own tables), every package, and every test a promise cites must
// appear in the documentation, and every relative link must resolve.
package docs_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
)

// root is the repository: tests run in their package's directory.
const root = ".."

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var usageHeading = regexp.MustCompile("(?m)^#{2,4} `([^`]+)`$")

func TestCommandsDocCoversTheGrammar(t *testing.T) {
	doc := read(t, "docs/commands.md")
	documented := map[string]bool{}
	for _, name := range commands.Names() {
		u := commands.Usage(name)
		documented[u] = true
		if !strings.Contains(doc, "### `"+u+"`") {
			t.Errorf("docs/commands.md has no heading \"### `%s`\" for the command %q", u, name)
		}
	}
	for _, p := range commands.ProcessCommands() {
		u := "relbot " + p.Usage
		documented[u] = true
		if !strings.Contains(doc, "### `"+u+"`") {
			t.Errorf("docs/commands.md has no heading \"### `%s`\" for the command %q", u, p.Name)
		}
		for _, f := range p.Flags {
			if !strings.Contains(doc, "--"+f) {
				t.Errorf("docs/commands.md does not mention --%s of %s", f, p.Name)
			}
		}
	}
	// The terminal's own flags.
	for _, f := range []string{"`--as USER`", "`--json`", "`--help`"} {
		if !strings.Contains(doc, f) {
			t.Errorf("docs/commands.md does not describe the terminal flag %s", f)
		}
	}
	// And nothing documented that the code no longer has.
	for _, m := range usageHeading.FindAllStringSubmatch(doc, -1) {
		if !documented[m[1]] {
			t.Errorf("docs/commands.md documents %q, which is no command's usage", m[1])
		}
	}
}

// acceptedKeys is every key apps.yaml takes: the decoder's own struct
// tags (config.Keys), and the names hooks and roles are keyed by.
func acceptedKeys() []string {
	keys := append(config.Keys(), release.HookNames...)
	keys = append(keys, roleNames()...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func roleNames() []string {
	out := make([]string, len(release.RoleNames))
	for i, r := range release.RoleNames {
		out[i] = string(r)
	}
	return out
}

func TestAppsYAMLDocCoversEveryKey(t *testing.T) {
	doc := read(t, "docs/apps-yaml.md")
	keys := acceptedKeys()
	// The test must not pass by reading nothing: these are certainly
	// accepted.
	for _, k := range []string{"apps", "time_zone", "version_tables", "keep", "storage_exclude", "timeout", "table_prefix", "terminal_users", "restart", "act_as"} {
		if !slices.Contains(keys, k) {
			t.Errorf("acceptedKeys did not find %q; found %v", k, keys)
		}
	}
	for _, k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/apps-yaml.md does not document the apps.yaml key `%s`", k)
		}
	}
}

func TestPromisesCiteTestsThatExist(t *testing.T) {
	doc := read(t, "docs/promises.md")
	cited := regexp.MustCompile(`\bTest[A-Z]\w*`).FindAllString(doc, -1)
	if len(cited) < 10 {
		t.Fatalf("docs/promises.md cites %d tests; each promise names the tests that hold it", len(cited))
	}
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (Test[A-Z]\w*)\(`)
	walkGo(t, func(path string, isTest bool) {
		if !isTest {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range funcRE.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
	})
	for _, name := range cited {
		if !defined[name] {
			t.Errorf("docs/promises.md cites %s, which no test file defines", name)
		}
	}
}

func TestArchitectureNamesEveryPackage(t *testing.T) {
	doc := read(t, "docs/architecture.md")
	dirs := map[string]bool{}
	walkGo(t, func(path string, isTest bool) {
		if !isTest {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			dirs[filepath.ToSlash(rel)] = true
		}
	})
	if len(dirs) < 10 {
		t.Fatalf("found %d packages; the walk is broken", len(dirs))
	}
	for d := range dirs {
		if !strings.Contains(doc, "`"+d+"/`") {
			t.Errorf("docs/architecture.md does not describe the package `%s/`", d)
		}
	}
}

// walkGo calls fn for every Go file of the repository.
func walkGo(t *testing.T, fn func(path string, isTest bool)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			fn(path, strings.HasSuffix(path, "_test.go"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	linkRE    = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.+?)\s*#*$`)
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// stripCode drops fenced blocks and inline code, where brackets are not links.
func stripCode(text string) string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, regexp.MustCompile("`[^`]*`").ReplaceAllString(line, ""))
		}
	}
	return strings.Join(out, "\n")
}

func TestLinksResolveInsideTheRepository(t *testing.T) {
	files := []string{"README.md"}
	mds, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, m := range mds {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	if len(files) < 5 {
		t.Fatalf("found %v: README.md and the four docs/ pages", files)
	}
	absRoot, _ := filepath.Abs(root)
	links := 0
	for _, file := range files {
		text := read(t, file)
		for _, m := range linkRE.FindAllStringSubmatch(stripCode(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
			}
			abs, _ := filepath.Abs(filepath.Join(root, dest))
			if abs != absRoot && !strings.HasPrefix(abs, absRoot+string(filepath.Separator)) {
				t.Errorf("%s: link %s leaves the repository (a clone would not have it)", file, target)
				continue
			}
			info, err := os.Stat(abs)
			if err != nil {
				t.Errorf("%s: link %s: %v", file, target, err)
				continue
			}
			if anchor != "" && !info.IsDir() && strings.HasSuffix(abs, ".md") {
				if !anchors(read(t, dest))[anchor] {
					t.Errorf("%s: link %s: %s has no heading with the anchor #%s", file, target, dest, anchor)
				}
			}
		}
	}
	if links < 10 {
		t.Errorf("found only %d relative links; the link pattern is broken", links)
	}
}

// The README's builds (go build ./cmd/relbot, go build -o bin/relbot) must
// not end up in git: a tracked binary bloats every clone.
func TestBuiltBinariesStayOutOfGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not found")
	}
	if out, err := exec.Command(git, "-C", root, "rev-parse", "--is-inside-work-tree").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Skip("not a git checkout")
	}
	for _, p := range []string{"relbot", "bin/relbot"} {
		if err := exec.Command(git, "-C", root, "check-ignore", "-q", "--no-index", p).Run(); err != nil {
			t.Errorf(".gitignore does not cover %s (git check-ignore: %v)", p, err)
		}
	}
	out, err := exec.Command(git, "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if info, err := os.Stat(filepath.Join(root, f)); err == nil && info.Size() > 5<<20 {
			t.Errorf("%s is tracked and %d MiB: built files stay out of git", f, info.Size()>>20)
		}
	}
}

// TestCommandsDocListsEveryErrorCode: the codes --json can print are the
// ones docs/commands.md names.
func TestCommandsDocListsEveryErrorCode(t *testing.T) {
	doc := read(t, "docs/commands.md")
	_, rest, ok := strings.Cut(doc, "<!-- codes -->")
	listed, _, ok2 := strings.Cut(rest, "<!-- /codes -->")
	if !ok || !ok2 {
		t.Fatal("docs/commands.md has no <!-- codes --> list")
	}
	var want []string
	for _, c := range release.Codes {
		want = append(want, "`"+string(c)+"`")
	}
	if got := strings.Fields(strings.ReplaceAll(listed, ",", "")); !slices.Equal(got, want) {
		t.Errorf("docs/commands.md lists the codes %v; release.Codes is %v", got, want)
	}
}
