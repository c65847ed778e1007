package web

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// serveArtifact streams an artifact with http.ServeContent: ranges and
// conditional requests work, and nothing is read ahead into memory.
func (p *Pages) serveArtifact(w http.ResponseWriter, r *http.Request, name, filename, contentType string, modified time.Time) {
	a, err := p.Artifacts.Open(r.Context(), name)
	if err != nil {
		p.notFound(w, err, "file", filename)
		return
	}
	defer a.Close()
	download(w, filename, contentType)
	http.ServeContent(w, r, filename, modified, io.NewSectionReader(a, 0, a.Size()))
}

// download sets the headers of a file to save, not to show.
func download(w http.ResponseWriter, filename, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (p *Pages) backupFile(w http.ResponseWriter, r *http.Request, _ int64) {
	id := r.PathValue("id")
	b, err := p.Backups.GetBackup(r.Context(), id)
	if err != nil {
		p.notFound(w, err, "backup", id)
		return
	}
	p.serveArtifact(w, r, b.Artifact, b.ID+".relbot", "application/octet-stream", b.CreatedAt)
}

func (p *Pages) migrationFile(w http.ResponseWriter, r *http.Request, _ int64) {
	id := r.PathValue("id")
	m, err := p.Migrations.GetMigration(r.Context(), id)
	if err != nil {
		p.notFound(w, err, "migration", id)
		return
	}
	p.serveArtifact(w, r, m.Artifact, m.ID+".relbot", "application/octet-stream", m.CreatedAt)
}

func (p *Pages) releaseSQL(w http.ResponseWriter, r *http.Request, _ int64) {
	id := r.PathValue("id")
	rel, err := p.Releases.GetRelease(r.Context(), id)
	if err != nil {
		p.notFound(w, err, "release", id)
		return
	}
	p.serveArtifact(w, r, release.SQLArtifact(rel.App, rel.ID), rel.ID+".sql", "application/sql; charset=utf-8", rel.UpdatedAt)
}

// releaseLog is a release's execution log as text: what it was, then every
// step with its times and its whole log.
func (p *Pages) releaseLog(w http.ResponseWriter, r *http.Request, _ int64) {
	id := r.PathValue("id")
	rel, err := p.Releases.GetRelease(r.Context(), id)
	if err != nil {
		p.notFound(w, err, "release", id)
		return
	}
	var b bytes.Buffer // a release's record, already in memory
	fmt.Fprintf(&b, "%s: %s %s %s, requested by %s at %s\nstate: %s\n", rel.ID, rel.Kind, rel.App, rel.Env, rel.RequestedBy, stamp(&rel.RequestedAt), rel.State)
	if rel.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", rel.Reason)
	}
	for _, a := range rel.Approvals {
		fmt.Fprintf(&b, "approved by %s at %s\n", a.By, stamp(&a.At))
	}
	for _, s := range rel.Steps {
		fmt.Fprintf(&b, "\n== %s: %s (started %s, ended %s)\n", s.Name, s.State, stamp(s.Started), stamp(s.Ended))
		if s.Log != "" {
			b.WriteString(strings.TrimRight(s.Log, "\n") + "\n")
		}
	}
	download(w, rel.ID+".log", "text/plain; charset=utf-8")
	http.ServeContent(w, r, rel.ID+".log", rel.UpdatedAt, bytes.NewReader(b.Bytes()))
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
