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

// Releases reads the release a page shows (release.ReleaseStore has it).
type Releases interface {
	GetRelease(ctx context.Context, id string) (*release.Release, error)
}

// Pages serves the pages behind signed links.
type Pages struct {
	Signer   *Signer
	Releases Releases
	Log      *slog.Logger
}

// Handler serves /releases/{id} and /style.css.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		b, _ := files.ReadFile("style.css")
		w.Write(b)
	})
	mux.HandleFunc("GET /releases/{id}", p.release)
	return mux
}

type view struct {
	Title   string
	Refused string // why the page is not shown
	R       *release.Release
	What    string
	State   string
	Changes []string
	Expires string
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

func (p *Pages) release(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := p.Signer.Check("/releases/"+id, r.URL.Query()); err != nil {
		p.render(w, http.StatusForbidden, view{Title: "Link refused", Refused: err.Error()})
		return
	}
	rel, err := p.Releases.GetRelease(r.Context(), id)
	if err != nil {
		code := http.StatusInternalServerError
		msg := "relbot cannot read this release now; try again in a minute"
		if release.ErrorCode(err) == release.CodeNotFound {
			code, msg = http.StatusNotFound, "there is no release "+id
		} else if p.Log != nil {
			p.Log.Error("page: read release", "release", id, "err", err)
		}
		p.render(w, code, view{Title: "Not shown", Refused: msg})
		return
	}
	v := view{Title: rel.ID, R: rel, What: commands.What(rel), State: commands.StateWords(rel.State, rel.At, time.Now()),
		Expires: time.Unix(expiry(r), 0).UTC().Format("2006-01-02 15:04 UTC")}
	if rel.Changes != nil {
		v.Changes = rel.Changes.Lines(0)
	}
	p.render(w, http.StatusOK, v)
}

// expiry is a checked link's expiry.
func expiry(r *http.Request) int64 {
	n, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	return n
}
