package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is the Chromium the pages are read with: RELBOT_TEST_BROWSER, or
// Debian's chromium (.ci/run installs it).
func browser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RELBOT_TEST_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the page test reads relbot's pages in headless Chromium, and none is installed: apt-get install chromium (or set RELBOT_TEST_BROWSER to a Chrome or Chromium)")
	return ""
}

// readReleasePage opens, in headless Chromium, the page a release's Slack
// message links to, as an approver would, and checks what it shows: the
// state, the approvals, each step, the validation table and the download
// links, which then download what they name. The page is kept as a
// screenshot in the test's output directory (go test -artifacts).
func readReleasePage(t *testing.T, addr, blocks, id string) {
	t.Helper()
	link := pageLink(t, blocks, id)
	// RELBOT_PUBLIC_URL names a host no DNS knows: the browser reaches it
	// through serve as its HTTP proxy, so it opens the links as posted.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser(t)),
		chromedp.WindowSize(1280, 1600), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.ProxyServer("http://"+addr))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox to root (CI)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#steps"))); err != nil {
		t.Fatalf("opening %s's page in Chromium: %v", id, err)
	}
	text := func(css string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("the page's %s in Chromium: %v", css, err)
		}
		return s
	}
	for what, c := range map[string]struct {
		css  string
		want []string
	}{
		"title":     {"h1", []string{id}},
		"state":     {".state", []string{"succeeded"}},
		"approvals": {"#approvals + table", []string{"U01AAA", "U02BBB", "UTC"}},
		"steps":     {"#steps + table", []string{"pre-release backup", "apply migration", "validation checks", "done", "log of apply migration"}},
		"checks":    {"#checks + table", []string{"pages exist", "pass"}},
	} {
		got := text(c.css)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("the page's %s, as Chromium shows it, lacks %q:\n%s", what, w, got)
			}
		}
	}
	// A step's log opens at a click on its summary.
	if err := chromedp.Do(ctx, chromedp.Click(`//summary[text()="log of apply migration"]`)); err != nil {
		t.Fatalf("opening the apply's log: %v", err)
	}
	if got := text("#steps + table"); !strings.Contains(got, "statements and loads in one transaction") {
		t.Errorf("the apply's log, opened, does not show:\n%s", got)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saved := filepath.Join(t.ArtifactDir(), "release-page.png")
	if err := os.WriteFile(saved, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("the release page as Chromium showed it: %s (%d bytes)", saved, len(shot))

	// Each download link downloads what it names.
	type anchor struct{ Text, Href string }
	anchors, err := chromedp.Run(ctx, chromedp.Evaluate[[]anchor](`Array.from(document.querySelectorAll("#files + ul a")).map(a => ({Text: a.textContent, Href: a.href}))`))
	if err != nil {
		t.Fatal(err)
	}
	byText := map[string]string{}
	for _, a := range anchors {
		byText[a.Text] = a.Href
	}
	get := func(name string) (string, []byte) {
		href, ok := byText[name]
		if !ok {
			t.Fatalf("the page has no %q download (it has %v)", name, byText)
		}
		h, err := url.Parse(href)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + addr + h.RequestURI())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, resp.Header)
		}
		return resp.Header.Get("Content-Type"), b
	}
	if _, log := get("Execution log"); !strings.Contains(string(log), "== apply migration: done") || !strings.Contains(string(log), "approved by U02BBB") {
		t.Errorf("the execution log:\n%s", log)
	}
	if _, sql := get("SQL executed"); !regexp.MustCompile(`(?s)^-- relbot: apply of crm-m\d+ .*CREATE TABLE .*INSERT INTO "relbot"."applied_migrations" .*\nCOMMIT;\n`).Match(sql) {
		t.Errorf("the SQL executed:\n%s", sql)
	}
	if _, file := get("Migration file"); len(file) == 0 {
		t.Error("the migration file downloaded empty")
	}

	// A person follows the page's link to the app's page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("nav a"))); err != nil {
		t.Fatalf("following the app link in Chromium: %v", err)
	}
	wait, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	if err := chromedp.Do(wait, chromedp.WaitVisible(chromedp.CSS("#releases"))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("the app page, reached by its link, does not show its releases (%v):\n%s", err, body)
	}
	if title, envs := text("h1"), text("table"); title != "App crm" || !strings.Contains(envs, "production") || !strings.Contains(envs, "Last backup") {
		t.Errorf("the app page: %q\n%s", title, envs)
	}
}

// pageLink is the release page link in a release's Slack message.
func pageLink(t *testing.T, blocks, id string) string {
	t.Helper()
	re := regexp.MustCompile(`<(http://relbot\.test/releases/` + id + `\?[^|>]+)\|Release page>`)
	for _, line := range blocksText(blocks, nil) {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	t.Fatalf("the message of %s has no page link:\n%s", id, blocks)
	return ""
}

// downloadBackup asks for the pre-release backup of release's download
// link as an approver (a requester is refused) and downloads it through
// the serve at addr: the bytes are the backup's, by its sha256. It returns
// the backup's ID.
func downloadBackup(t *testing.T, env map[string]string, addr, release string) string {
	t.Helper()
	var shown struct {
		Backup string `json:"backup"`
	}
	if err := json.Unmarshal([]byte(must(t, run(t, env, "release", "show", release, "--json")).out), &shown); err != nil || shown.Backup == "" {
		t.Fatalf("release show %s --json: no backup (%v)", release, err)
	}
	refused(t, run(t, env, "backup", "download", shown.Backup, "--as", "U04ALICE"), "U04ALICE may not download backups of crm production")
	var dl struct {
		Link   string `json:"link"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size_bytes"`
	}
	if err := json.Unmarshal([]byte(must(t, run(t, env, "backup", "download", shown.Backup, "--as", "U01AAA", "--json")).out), &dl); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dl.Link)
	if err != nil || u.Host != "relbot.test" {
		t.Fatalf("link %q: %v", dl.Link, err)
	}
	resp, err := http.Get("http://" + addr + u.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != 200 || n != dl.Size || hex.EncodeToString(h.Sum(nil)) != dl.SHA256 {
		t.Fatalf("download of %s: %d, %d bytes of %d, sha256 %x (the backup's %s), %v", shown.Backup, resp.StatusCode, n, dl.Size, h.Sum(nil), dl.SHA256, err)
	}
	return shown.Backup
}
