package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/memory"
)

// fixture is what the pages' tests read: a memory store holding a failed
// release with its migration file and SQL, and a backup, with their
// artifacts in a directory.
type fixture struct {
	pages  *Pages
	srv    *httptest.Server
	now    *time.Time
	arts   *artifacts.Dir
	backup []byte // crm-b3's archive
	sql    string
}

func testPages(t *testing.T) (*Pages, *httptest.Server, *time.Time) {
	f := newFixture(t)
	return f.pages, f.srv, f.now
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	signer, err := NewSigner([]byte(strings.Repeat("k", 32)), "https://relbot.example.com", time.Hour)
	if err != nil || signer == nil {
		t.Fatalf("signer: %v", err)
	}
	signer.Now = func() time.Time { return now }
	store := memory.NewStore()
	arts, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{now: &now, arts: arts, sql: "-- relbot: apply of crm-m7\nALTER TABLE public.deals ADD COLUMN stage text;\nROLLBACK;\n"}
	// An archive bigger than one read, with every byte value.
	f.backup = make([]byte, 3<<20+17)
	for i := range f.backup {
		f.backup[i] = byte(i*7 + i>>11)
	}
	put := func(name string, b []byte) string {
		w, err := arts.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	b := &release.Backup{ID: "crm-b3", App: "crm", Env: "production", Kind: release.BackupManual, CreatedAt: now.Add(-2 * time.Hour),
		Artifact: "crm/backups/crm-b3.relbot", Size: int64(len(f.backup)), SHA256: put("crm/backups/crm-b3.relbot", f.backup)}
	m := &release.Migration{ID: "crm-m7", App: "crm", SourceEnv: "staging", CreatedAt: now.Add(-3 * time.Hour), Artifact: "crm/migrations/crm-m7.relbot"}
	m.SHA256 = put(m.Artifact, []byte("a signed migration file"))
	put(release.SQLArtifact("crm", "crm-r5"), []byte(f.sql))
	if err := store.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveMigration(ctx, m); err != nil {
		t.Fatal(err)
	}
	started, ended := now.Add(-time.Minute), now.Add(-30*time.Second)
	r := &release.Release{ID: "crm-r5", App: "crm", Env: "production", Kind: release.KindDeploy, Migration: "crm-m7", FileHash: m.SHA256,
		RequestedBy: "U04ALICE", RequestedAt: now.Add(-time.Hour), State: release.StateFailed, Reason: "validation checks failed: <health>",
		Approvals: []release.Approval{{By: "U01AAA", At: now.Add(-50 * time.Minute)}, {By: "U02BBB", At: now.Add(-40 * time.Minute)}},
		Steps: []release.Step{{Name: release.StepApply, State: release.StepDone, Started: &started, Ended: &ended, Log: "37 statements\n<script>alert(1)</script>"},
			{Name: release.StepChecks, State: release.StepFailed, Started: &ended, Ended: &ended, Log: "FAIL health"}},
		Checks:  []release.CheckResult{{Name: "health", OK: false, Duration: 80 * time.Millisecond, Detail: "status 502"}},
		Changes: &release.Changes{Against: "production", Items: []release.Change{{Kind: release.ChangePage, Action: "added", Name: "“Contracts”", Detail: "in “CRM”"}}},
	}
	if err := store.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	f.pages = &Pages{Signer: signer, Releases: store, Backups: store, Migrations: store, Artifacts: arts, Commands: &fakeCommands{}, Now: func() time.Time { return now }}
	f.srv = httptest.NewServer(f.pages.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// fakeCommands answers the app and backup pages' commands as the
// dispatcher would shape them; the commands themselves are tested in
// commands and end to end in cmd/relbot.
type fakeCommands struct{ asked []string }

func (c *fakeCommands) Run(_ context.Context, req commands.Request, cmd commands.Command) (commands.Reply, error) {
	c.asked = append(c.asked, req.User+": "+cmd.Name())
	switch cmd := cmd.(type) {
	case commands.Status:
		if cmd.App != "crm" {
			return commands.Reply{}, release.Errorf(release.CodeNotFound, "no app %q", cmd.App)
		}
		return commands.Reply{Title: "Status of crm", Table: &commands.Table{Columns: []string{"Environment", "Last backup"},
			Rows: [][]string{{"staging", "none"}, {"production", "crm-b3 manual, 2h ago <b>"}}}, Notes: []string{"", "Users of crm production are on recovery."},
			Data: []commands.EnvStatus{{Env: "staging"}, {Env: "production"}}}, nil
	case commands.Drift:
		return commands.Reply{}, release.Errorf(release.CodeUnavailable, "cannot connect to crm staging")
	case commands.BackupList:
		if cmd.Env != "production" {
			return commands.Reply{}, release.Errorf(release.CodeNotFound, "crm has no environment %q", cmd.Env)
		}
		return commands.Reply{Title: "1 backup of crm production, newest first", Table: &commands.Table{Columns: []string{"ID", "Verified"}, Rows: [][]string{{"crm-b3", "never"}}}}, nil
	}
	return commands.Reply{}, release.Errorf(release.CodeInternal, "unexpected %s", cmd.Name())
}

func get(t *testing.T, srv *httptest.Server, link string) (int, string, http.Header) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + u.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// A signed link shows the release: steps with their whole logs,
// approvals with who and when, validation, the change summary; what came
// from users and databases is escaped.
func TestReleasePage(t *testing.T) {
	p, srv, _ := testPages(t)
	link := p.Signer.ReleaseLink("crm-r5")
	if !strings.HasPrefix(link, "https://relbot.example.com/releases/crm-r5?exp=") || !strings.Contains(link, "&sig=") {
		t.Fatalf("link %s", link)
	}
	code, body, h := get(t, srv, link)
	if code != 200 {
		t.Fatalf("signed link: %d\n%s", code, body)
	}
	for _, want := range []string{"<h1>crm-r5</h1>", "deploy crm-m7 to crm production", "failed", "validation checks failed: &lt;health&gt;",
		"U01AAA", "2026-12-02 09:10:00 UTC", "U02BBB", "apply migration", "30s", "37 statements\n&lt;script&gt;alert(1)&lt;/script&gt;",
		"<details open><summary>log of validation checks", "status 502", `class="fail">FAIL`, "page added: “Contracts” — in “CRM”",
		"this link opens the page until 2026-12-02 11:00 UTC"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("a log's markup reached the page unescaped")
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || h.Get("Cache-Control") != "private, no-store" {
		t.Errorf("headers: %v", h)
	}
	if code, css, _ := get(t, srv, "/style.css"); code != 200 || !strings.Contains(css, "body{") {
		t.Errorf("style.css: %d", code)
	}
}

// A link without a signature, with a wrong one, one signed for another
// page, or expired gets 403 and a page that says why; an unknown release
// 404.
func TestReleasePageRefusals(t *testing.T) {
	p, srv, now := testPages(t)
	good := p.Signer.ReleaseLink("crm-r5")
	other := p.Signer.ReleaseLink("crm-r6")
	u, _ := url.Parse(other)
	forged := "/releases/crm-r5?" + u.RawQuery
	tampered := strings.Replace(good, "exp=", "exp=9", 1)
	foreign, _ := NewSigner([]byte(strings.Repeat("z", 32)), "https://relbot.example.com", time.Hour)
	for _, c := range []struct {
		name, link string
		code       int
		says       string
	}{
		{"unsigned", "/releases/crm-r5", 403, "has no signature"},
		{"signed for another page", forged, 403, "signature does not match"},
		{"expiry changed", tampered, 403, "signature does not match"},
		{"another relbot's", foreign.ReleaseLink("crm-r5"), 403, "signature does not match"},
		{"unknown release", p.Signer.ReleaseLink("crm-r404"), 404, "there is no release crm-r404"},
	} {
		code, body, _ := get(t, srv, c.link)
		if code != c.code || !strings.Contains(body, c.says) || strings.Contains(body, "U01AAA") {
			t.Errorf("%s: %d, want %d saying %q\n%s", c.name, code, c.code, c.says, body)
		}
	}
	*now = now.Add(time.Hour + time.Second)
	if code, body, _ := get(t, srv, good); code != 403 || !strings.Contains(body, "has expired") {
		t.Errorf("expired: %d\n%s", code, body)
	}
}

func TestSignerSettings(t *testing.T) {
	if s, err := NewSigner(nil, "https://x.example", 0); s != nil || err != nil {
		t.Errorf("no key: %v %v", s, err)
	}
	if s, err := NewSigner([]byte("k"), "", 0); s != nil || err != nil {
		t.Errorf("no address: %v %v", s, err)
	}
	if _, err := NewSigner([]byte("k"), "relbot.example.com", 0); err == nil {
		t.Error("an address without a scheme was taken")
	}
	s, err := NewSigner([]byte("k"), "https://x.example/relbot/", 0)
	if err != nil || s.TTL != DefaultLinkTTL || !strings.HasPrefix(s.ReleaseLink("crm-r1"), "https://x.example/relbot/releases/crm-r1?") {
		t.Errorf("%v %+v", err, s)
	}
}
