package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

//go:embed page.html.tmpl style.css
var files embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"took": func(s release.Step) string {
		if s.Started == nil || s.Ended == nil {
			return ""
		}
		return s.Ended.Sub(*s.Started).Round(time.Millisecond).String()
	},
	"ms": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}).ParseFS(files, "page.html.tmpl"))

// The records the pages read (release's stores have them).
type (
	Releases interface {
		GetRelease(ctx context.Context, id string) (*release.Release, error)
		ListReleases(ctx context.Context, app, env string) ([]*release.Release, error)
	}
	Backups interface {
		GetBackup(ctx context.Context, id string) (*release.Backup, error)
	}
	Migrations interface {
		GetMigration(ctx context.Context, id string) (*release.Migration, error)
	}
)

// Commands runs the read-only commands whose replies the app and backup
// pages show (commands.Dispatcher): a page says what the terminal says.
type Commands interface {
	Run(ctx context.Context, req commands.Request, cmd commands.Command) (commands.Reply, error)
}

// Pages serves the pages and downloads behind signed links.
type Pages struct {
	Signer     *Signer
	Releases   Releases
	Backups    Backups
	Migrations Migrations
	Commands   Commands
	Artifacts  release.Artifacts
	Log        *slog.Logger
	// Now is for "x ago" words; nil is time.Now.
	Now func() time.Time
}

// pageUser is who the pages' commands run as: they only read.
const pageUser = "relbot pages"

// driftTimeout bounds the app page's drift check (it reads every
// environment's schema): a slow database costs the page that part only.
const driftTimeout = 10 * time.Second

// Handler serves the pages, the downloads and /style.css.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		b, _ := files.ReadFile("style.css")
		w.Write(b)
	})
	mux.HandleFunc("GET /releases/{id}", p.signed(p.release))
	mux.HandleFunc("GET /releases/{id}/log", p.signed(p.releaseLog))
	mux.HandleFunc("GET /releases/{id}/sql", p.signed(p.releaseSQL))
	mux.HandleFunc("GET /apps/{app}", p.signed(p.app))
	mux.HandleFunc("GET /apps/{app}/{env}/backups", p.signed(p.backups))
	mux.HandleFunc("GET /backups/{id}/file", p.signed(p.backupFile))
	mux.HandleFunc("GET /migrations/{id}/file", p.signed(p.migrationFile))
	return mux
}

// signed lets a request through when its link is signed for its path and
// not expired; others get 403 and a page that says why.
func (p *Pages) signed(h func(w http.ResponseWriter, r *http.Request, exp int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := p.Signer.Check(r.URL.EscapedPath(), r.URL.Query()); err != nil {
			p.render(w, http.StatusForbidden, view{Title: "Link refused", Refused: err.Error()})
			return
		}
		exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
		h(w, r, exp)
	}
}

type view struct {
	Title   string
	Refused string // why the page is not shown
	Expires string

	// A release's page.
	R       *release.Release
	What    string
	State   string
	Changes []string
	Files   []fileLink

	// An app's or a backup list's page: command replies, one per section.
	Sections []section
	Releases []releaseRow
	Links    []fileLink
}

type fileLink struct{ Name, URL, About string }

type section struct {
	Heading string
	Reply   commands.Reply
	Error   string
}

type releaseRow struct {
	ID, URL, Env, What, State, When string
}

func (p *Pages) render(w http.ResponseWriter, code int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page is the link's reader's alone: no caching on the way, no
	// embedding elsewhere, no scripts.
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	if err := page.Execute(w, v); err != nil && p.Log != nil {
		p.Log.Warn("page not rendered", "err", err)
	}
}

// notFound answers a lookup's error: 404 for what does not exist, else 500
// with the cause in the log only.
func (p *Pages) notFound(w http.ResponseWriter, err error, what, id string) {
	code, msg := http.StatusInternalServerError, "relbot cannot read this "+what+" now; try again in a minute"
	if release.ErrorCode(err) == release.CodeNotFound {
		code, msg = http.StatusNotFound, "there is no "+what+" "+id
	} else if p.Log != nil {
		p.Log.Error("page: read "+what, what, id, "err", err)
	}
	p.render(w, code, view{Title: "Not shown", Refused: msg})
}

func (p *Pages) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func expiresText(exp int64) string { return time.Unix(exp, 0).UTC().Format("2006-01-02 15:04 UTC") }

func (p *Pages) release(w http.ResponseWriter, r *http.Request, exp int64) {
	id := r.PathValue("id")
	rel, err := p.Releases.GetRelease(r.Context(), id)
	if err != nil {
		p.notFound(w, err, "release", id)
		return
	}
	v := view{Title: rel.ID, R: rel, What: commands.What(rel), State: commands.StateWords(rel.State, rel.At, p.now()), Expires: expiresText(exp)}
	if rel.Changes != nil {
		v.Changes = rel.Changes.Lines(0)
	}
	v.Files = append(v.Files, fileLink{"Execution log", p.Signer.linkUntil(releaseLogPath(rel.ID), exp), "every step's log, as text"})
	if p.hasArtifact(r.Context(), release.SQLArtifact(rel.App, rel.ID)) {
		v.Files = append(v.Files, fileLink{"SQL executed", p.Signer.linkUntil(releaseSQLPath(rel.ID), exp), "every statement the apply ran, in order"})
	}
	if rel.Migration != "" {
		v.Files = append(v.Files, fileLink{"Migration file", p.Signer.linkUntil(migrationFilePath(rel.Migration), exp), rel.Migration + ", as signed"})
	}
	v.Links = []fileLink{{"App " + rel.App, p.Signer.linkUntil(appPath(rel.App), exp), "every environment's state"}}
	p.render(w, http.StatusOK, v)
}

func (p *Pages) hasArtifact(ctx context.Context, name string) bool {
	a, err := p.Artifacts.Open(ctx, name)
	if err != nil {
		return false
	}
	a.Close()
	return true
}

// app shows what status says of every environment, the drift between
// them, and the app's releases, each linked to its page.
func (p *Pages) app(w http.ResponseWriter, r *http.Request, exp int64) {
	name := r.PathValue("app")
	req := commands.Request{User: pageUser}
	status, err := p.Commands.Run(r.Context(), req, commands.Status{App: name})
	if err != nil {
		p.commandError(w, err, "app", name)
		return
	}
	v := view{Title: "App " + name, Expires: expiresText(exp), Sections: []section{{Heading: "Environments", Reply: status}}}
	ctx, cancel := context.WithTimeout(r.Context(), driftTimeout)
	defer cancel()
	drift, err := p.Commands.Run(ctx, req, commands.Drift{App: name})
	s := section{Heading: "Drift", Reply: drift}
	if err != nil {
		s.Error = "not known now: " + release.ErrorMessage(err)
	}
	v.Sections = append(v.Sections, s)
	if views, ok := status.Data.([]commands.EnvStatus); ok {
		for _, e := range views {
			v.Links = append(v.Links, fileLink{"Backups of " + e.Env, p.Signer.linkUntil(backupsPath(name, e.Env), exp), ""})
		}
	}
	rs, err := p.Releases.ListReleases(r.Context(), name, "")
	if err != nil {
		p.notFound(w, err, "app", name)
		return
	}
	now := p.now()
	for i, rel := range rs {
		if i == maxReleaseRows {
			break
		}
		v.Releases = append(v.Releases, releaseRow{ID: rel.ID, URL: p.Signer.linkUntil(releasePath(rel.ID), exp), Env: rel.Env,
			What: commands.What(rel), State: commands.StateWords(rel.State, rel.At, now), When: rel.RequestedAt.UTC().Format("2006-01-02 15:04 UTC")})
	}
	p.render(w, http.StatusOK, v)
}

// maxReleaseRows keeps an app's page readable: the newest releases.
const maxReleaseRows = 50

func (p *Pages) backups(w http.ResponseWriter, r *http.Request, exp int64) {
	app, env := r.PathValue("app"), r.PathValue("env")
	list, err := p.Commands.Run(r.Context(), commands.Request{User: pageUser}, commands.BackupList{App: app, Env: env})
	if err != nil {
		p.commandError(w, err, "environment", app+" "+env)
		return
	}
	v := view{Title: "Backups of " + app + " " + env, Expires: expiresText(exp), Sections: []section{{Reply: list}},
		Links: []fileLink{{"App " + app, p.Signer.linkUntil(appPath(app), exp), ""}}}
	p.render(w, http.StatusOK, v)
}

// commandError answers a command that did not run: an unknown app or
// environment is 404 with relbot's own words.
func (p *Pages) commandError(w http.ResponseWriter, err error, what, id string) {
	if release.ErrorCode(err) == release.CodeNotFound || release.ErrorCode(err) == release.CodeInvalid {
		p.render(w, http.StatusNotFound, view{Title: "Not shown", Refused: release.ErrorMessage(err)})
		return
	}
	p.notFound(w, err, what, id)
}
