package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fetch GETs a link (its path and query) on the test server with headers.
func fetch(t *testing.T, f *fixture, link string, header ...string) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+u.RequestURI(), nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// links are a page's links by their text, unescaped as a browser would.
func links(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`<a href="([^"]+)"[^>]*>([^<]+)</a>`).FindAllStringSubmatch(page, -1) {
		out[m[2]] = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A backup downloads as stored, byte for byte (its sha256 is the
// record's), as an attachment, in ranges too; its link opens nothing else.
func TestBackupDownload(t *testing.T) {
	f := newFixture(t)
	link := f.pages.Signer.BackupFileLink("crm-b3")
	resp, body := fetch(t, f, link)
	if resp.StatusCode != 200 || sha(body) != sha(f.backup) || int64(len(body)) != int64(len(f.backup)) {
		t.Fatalf("download: %d, %d bytes, sha256 %s", resp.StatusCode, len(body), sha(body))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=crm-b3.relbot` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if resp.Header.Get("Content-Length") != "3145745" || resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Cache-Control") != "private, no-store" {
		t.Errorf("headers %v", resp.Header)
	}
	resp, part := fetch(t, f, link, "Range", "bytes=1048570-1048589")
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(f.backup[1048570:1048590]) ||
		resp.Header.Get("Content-Range") != "bytes 1048570-1048589/3145745" {
		t.Errorf("range: %d %q %v", resp.StatusCode, part, resp.Header)
	}
	// A download cut off resumes where it stopped.
	resp, rest := fetch(t, f, link, "Range", "bytes=3000000-")
	if resp.StatusCode != http.StatusPartialContent || sha(append(append([]byte{}, f.backup[:3000000]...), rest...)) != sha(f.backup) {
		t.Errorf("resume: %d, %d bytes", resp.StatusCode, len(rest))
	}

	u, _ := url.Parse(link)
	for name, l := range map[string]string{
		"unsigned":            "/backups/crm-b3/file",
		"another backup":      "/backups/crm-b4/file?" + u.RawQuery,
		"the release's page":  "/releases/crm-r5?" + u.RawQuery,
		"signed for the page": "/backups/crm-b3/file?" + mustQuery(t, f.pages.Signer.ReleaseLink("crm-r5")),
	} {
		if resp, body := fetch(t, f, l); resp.StatusCode != 403 || strings.Contains(string(body), string(f.backup[:64])) {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	if resp, _ := fetch(t, f, f.pages.Signer.BackupFileLink("crm-b404")); resp.StatusCode != 404 {
		t.Errorf("unknown backup: %d", resp.StatusCode)
	}
	*f.now = f.now.Add(time.Hour + time.Second)
	if resp, body := fetch(t, f, link); resp.StatusCode != 403 || !strings.Contains(string(body), "has expired") {
		t.Errorf("expired: %d", resp.StatusCode)
	}
}

func mustQuery(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RawQuery
}

// The release page links its artifacts: the execution log (every step's
// whole log), the SQL the apply executed and the migration file, each as
// stored; the links expire with the page's own.
func TestReleasePageDownloads(t *testing.T) {
	f := newFixture(t)
	link := f.pages.Signer.ReleaseLink("crm-r5")
	pageExp := mustQuery(t, link)
	*f.now = f.now.Add(10 * time.Minute) // the page is opened later: its links keep the link's expiry
	resp, page := fetch(t, f, link)
	if resp.StatusCode != 200 {
		t.Fatalf("page: %d", resp.StatusCode)
	}
	ls := links(t, string(page))
	for _, name := range []string{"Execution log", "SQL executed", "Migration file", "App crm"} {
		l, ok := ls[name]
		if !ok {
			t.Fatalf("the page lacks a link %q: %v", name, ls)
		}
		if got, want := mustValues(t, l).Get("exp"), mustValues(t, "?"+pageExp).Get("exp"); got != want {
			t.Errorf("%s expires at %s, the page at %s", name, got, want)
		}
	}
	_, log := fetch(t, f, ls["Execution log"])
	for _, want := range []string{"crm-r5: deploy crm production, requested by U04ALICE", "approved by U01AAA at 2026-12-02T09:10:00Z",
		"== apply migration: done", "37 statements\n<script>alert(1)</script>", "== validation checks: failed", "FAIL health"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the execution log lacks %q:\n%s", want, log)
		}
	}
	resp, sql := fetch(t, f, ls["SQL executed"])
	if string(sql) != f.sql || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/sql") {
		t.Errorf("SQL: %q %v", sql, resp.Header)
	}
	_, file := fetch(t, f, ls["Migration file"])
	if string(file) != "a signed migration file" {
		t.Errorf("migration file: %q", file)
	}
}

func mustValues(t *testing.T, link string) url.Values {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// The app page shows what status says (escaped), drift's refusal as such,
// the releases linked to their pages, and each environment's backups page.
func TestAppAndBackupPages(t *testing.T) {
	f := newFixture(t)
	resp, page := fetch(t, f, f.pages.Signer.AppLink("crm"))
	if resp.StatusCode != 200 {
		t.Fatalf("app page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"<h1>App crm</h1>", "<th>Last backup</th>", "crm-b3 manual, 2h ago &lt;b&gt;", "Users of crm production are on recovery.",
		"not known now: cannot connect to crm staging", ">crm-r5</a>", "deploy crm-m7 to crm production"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the app page lacks %q", want)
		}
	}
	if got := f.pages.Commands.(*fakeCommands).asked; strings.Join(got, ",") != "relbot pages: status,relbot pages: drift" {
		t.Errorf("commands run: %q", got)
	}
	ls := links(t, string(page))
	if resp, rel := fetch(t, f, ls["crm-r5"]); resp.StatusCode != 200 || !strings.Contains(string(rel), "<h1>crm-r5</h1>") {
		t.Errorf("release link: %d", resp.StatusCode)
	}
	resp, backups := fetch(t, f, ls["Backups of production"])
	if resp.StatusCode != 200 || !strings.Contains(string(backups), "1 backup of crm production") || !strings.Contains(string(backups), "<td>crm-b3</td>") {
		t.Errorf("backups page: %d\n%s", resp.StatusCode, backups)
	}
	if strings.Contains(string(backups), "/file?") {
		t.Error("the backups page links a download: only backup download hands those out")
	}
	for name, l := range map[string]string{
		"unknown app":         f.pages.Signer.AppLink("nowhere"),
		"unknown environment": f.pages.Signer.BackupsLink("crm", "qa"),
	} {
		if resp, body := fetch(t, f, l); resp.StatusCode != 404 || !strings.Contains(string(body), "no ") {
			t.Errorf("%s: %d\n%s", name, resp.StatusCode, body)
		}
	}
	if resp, _ := fetch(t, f, "/apps/crm"); resp.StatusCode != 403 {
		t.Errorf("unsigned app page: %d", resp.StatusCode)
	}
}
