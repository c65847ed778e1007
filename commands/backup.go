package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/relbot/relbot/release"
)

// BackupView is what --json prints for a backup.
type BackupView struct {
	ID         string             `json:"id"`
	App        string             `json:"app"`
	Env        string             `json:"env"`
	Kind       release.BackupKind `json:"kind"`
	CreatedBy  string             `json:"created_by"`
	CreatedAt  time.Time          `json:"created_at"`
	Size       int64              `json:"size_bytes"`
	SHA256     string             `json:"sha256"`
	VerifiedAt *time.Time         `json:"verified_at,omitempty"`
	CheckedAt  *time.Time         `json:"checked_at,omitempty"`
	Release    string             `json:"release,omitempty"`
	Manifest   ManifestView       `json:"manifest"`
	Origin     *OriginView        `json:"origin,omitempty"`
}

// OriginView is where an imported backup came from.
type OriginView struct {
	Backup     string    `json:"backup"` // its ID in the installation that made it
	Env        string    `json:"env"`
	Kind       string    `json:"kind"`
	File       string    `json:"file"`
	ImportedBy string    `json:"imported_by"`
	ImportedAt time.Time `json:"imported_at"`
}

// MarshalJSON prints the kind as JSONWord does (pre_release).
func (v BackupView) MarshalJSON() ([]byte, error) {
	type plain BackupView
	return json.Marshal(struct {
		plain
		Kind string `json:"kind"`
	}{plain(v), JSONWord(v.Kind)})
}

// ManifestView is what a backup holds. (release.BackupSummary is stored
// as it is; its duration is nanoseconds, so --json gets this copy.)
type ManifestView struct {
	ServerVersion string `json:"server_version"`
	CoreVersion   string `json:"core_version,omitempty"`
	// Plugins maps each plugin's name to its version.
	Plugins    map[string]string `json:"plugins,omitempty"`
	Tables     int               `json:"tables"`
	Rows       int64             `json:"rows"`
	Files      int               `json:"files"`
	FileBytes  int64             `json:"file_bytes"`
	DataBytes  int64             `json:"data_bytes"` // uncompressed COPY bytes
	DurationMS int64             `json:"duration_ms"`
	Encrypted  bool              `json:"encrypted"`
	Warnings   []string          `json:"warnings,omitempty"`
}

func backupView(b *release.Backup) BackupView {
	m := b.Manifest
	return BackupView{
		ID: b.ID, App: b.App, Env: b.Env, Kind: b.Kind, CreatedBy: b.CreatedBy, CreatedAt: b.CreatedAt,
		Size: b.Size, SHA256: b.SHA256, VerifiedAt: b.VerifiedAt, CheckedAt: b.CheckedAt, Release: b.ReleaseID,
		Manifest: ManifestView{ServerVersion: m.ServerVersion, CoreVersion: m.CoreVersion, Plugins: m.Plugins, Tables: m.Tables, Rows: m.Rows,
			Files: m.Files, FileBytes: m.FileBytes, DataBytes: m.DataBytes, DurationMS: m.Duration.Milliseconds(), Encrypted: m.Encrypted, Warnings: m.Warnings},
		Origin: originView(m.Origin),
	}
}

func originView(o *release.BackupOrigin) *OriginView {
	if o == nil {
		return nil
	}
	return &OriginView{Backup: o.Backup, Env: o.Env, Kind: JSONWord(o.Kind), File: o.File, ImportedBy: o.ImportedBy, ImportedAt: o.ImportedAt}
}

// origin says where an imported backup came from.
func (d *Dispatcher) origin(o *release.BackupOrigin) string {
	return fmt.Sprintf("%s, %s of %s in the installation that made it; imported %s by %s", o.File, o.Backup, o.Env, d.when(o.ImportedAt), o.ImportedBy)
}

// VerifyView is what --json prints for a backup verify.
type VerifyView struct {
	Backup     BackupView `json:"backup"`
	OK         bool       `json:"ok"`
	Tables     int        `json:"tables"`
	Rows       int64      `json:"rows"`
	Files      int        `json:"files"`
	Problems   []string   `json:"problems"`
	DurationMS int64      `json:"duration_ms"`
}

func (d *Dispatcher) backupCreate(ctx context.Context, req Request, c BackupCreate) (Reply, error) {
	b, err := d.Backups.CreateBackup(ctx, req.User, c.App, c.Env, release.BackupManual)
	if err != nil {
		return Reply{}, err
	}
	if b == nil {
		return Reply{}, release.Errorf(release.CodeInternal, "backup of %s %s: no record returned", c.App, c.Env)
	}
	m := b.Manifest
	fields := []Field{
		{"Backup", b.ID},
		{"Environment", b.App + " " + b.Env},
		{"Size", release.Bytes(b.Size)},
		{"Database", release.Count(m.Tables, "table") + ", " + release.Count(m.Rows, "row")},
		{"Storage", release.Count(m.Files, "file") + ", " + release.Bytes(m.FileBytes)},
		{"Took", humanDuration(m.Duration)},
		{"SHA-256", b.SHA256},
	}
	r := newReply(fmt.Sprintf("Backup %s of %s %s created", b.ID, b.App, b.Env), fields, nil, backupView(b),
		append(warningLines(m.Warnings), "", fmt.Sprintf("Check it can be restored: backup verify %s", b.ID))...)
	r.Public = true
	return r, nil
}

func (d *Dispatcher) backupList(ctx context.Context, _ Request, c BackupList) (Reply, error) {
	bs, err := d.Backups.ListBackups(ctx, c.App, c.Env)
	if err != nil {
		return Reply{}, err
	}
	views := make([]BackupView, 0, len(bs))
	table := &Table{Columns: []string{"ID", "Kind", "Created", "By", "Size", "Tables", "Rows", "Files", "Verified"}}
	now := d.now()
	for _, b := range bs {
		if b == nil {
			continue
		}
		views = append(views, backupView(b))
		verified := verification(b, now)
		kind := string(b.Kind)
		if b.ReleaseID != "" {
			kind += " (" + b.ReleaseID + ")"
		}
		table.Rows = append(table.Rows, []string{
			b.ID, kind, d.when(b.CreatedAt), b.CreatedBy, release.Bytes(b.Size),
			count(b.Manifest.Tables), count(b.Manifest.Rows), count(b.Manifest.Files), verified,
		})
	}
	if len(views) == 0 {
		return newReply(fmt.Sprintf("No backups of %s %s yet.", c.App, c.Env), nil, nil, views,
			fmt.Sprintf("Take one with: backup create %s %s", c.App, c.Env)), nil
	}
	title := fmt.Sprintf("%s of %s %s, newest first", release.Count(len(views), "backup"), c.App, c.Env)
	var page []string
	if d.Links != nil {
		page = []string{"", "Page: " + d.Links.BackupsLink(c.App, c.Env)}
	}
	return newReply(title, nil, table, views, page...), nil
}

func (d *Dispatcher) backupVerify(ctx context.Context, req Request, c BackupVerify) (Reply, error) {
	b, rep, err := d.Backups.VerifyBackup(ctx, req.User, c.Backup)
	if err != nil {
		return Reply{}, err
	}
	if b == nil || rep == nil {
		return Reply{}, release.Errorf(release.CodeInternal, "verify of %s: no report returned", c.Backup)
	}
	view := VerifyView{Backup: backupView(b), OK: rep.OK(), Tables: rep.Tables, Rows: rep.Rows, Files: rep.Files,
		Problems: append([]string{}, rep.Problems...), DurationMS: rep.Duration.Milliseconds()}
	fields := []Field{
		{"Backup", fmt.Sprintf("%s (%s %s, %s, %s)", b.ID, b.App, b.Env, b.Kind, d.when(b.CreatedAt))},
		{"Restored", release.Count(rep.Tables, "table") + ", " + release.Count(rep.Rows, "row") + ", " + release.Count(rep.Files, "file")},
		{"Took", humanDuration(rep.Duration)},
	}
	if rep.OK() {
		return newReply(fmt.Sprintf("Backup %s verified: it restores and matches its manifest", b.ID), fields, nil, view), nil
	}
	lines := []string{"", release.Count(len(rep.Problems), "problem") + ":"}
	for _, p := range rep.Problems {
		lines = append(lines, "  - "+p)
	}
	r := newReply(fmt.Sprintf("Backup %s FAILED verification", b.ID), fields, nil, view, lines...)
	r.Public = true // a damaged backup concerns everyone who may need it
	return r, release.Errorf(release.CodeDamaged, "backup %s failed verification: %s",
		b.ID, release.Count(len(rep.Problems), "problem"))
}

func (d *Dispatcher) backupRestore(ctx context.Context, req Request, c BackupRestore) (Reply, error) {
	rel, err := d.Releases.RestoreBackup(ctx, req.User, c.Backup, c.Into, c.NoAnalyze)
	if err != nil {
		return Reply{}, err
	}
	return d.runIfRunnable(ctx, rel, fmt.Sprintf("Restore %s requested: %s", rel.ID, What(rel)))
}

// verification says how far a backup was checked: restored by a verify,
// or its checksums read back (a pre-release backup, before its apply).
func verification(b *release.Backup, now time.Time) string {
	switch {
	case b.VerifiedAt != nil:
		return ago(*b.VerifiedAt, now)
	case b.CheckedAt != nil:
		return "checksums, " + ago(*b.CheckedAt, now)
	}
	return "never"
}

func (d *Dispatcher) backupShow(ctx context.Context, _ Request, c BackupShow) (Reply, error) {
	b, err := d.Backups.ShowBackup(ctx, c.Backup)
	if err != nil {
		return Reply{}, err
	}
	m := b.Manifest
	now := d.now()
	fields := []Field{
		{"Backup", fmt.Sprintf("%s (%s %s, %s)", b.ID, b.App, b.Env, b.Kind)},
		{"Created", fmt.Sprintf("%s by %s", d.when(b.CreatedAt), b.CreatedBy)},
	}
	if b.ReleaseID != "" {
		fields = append(fields, Field{"Release", b.ReleaseID})
	}
	if o := m.Origin; o != nil {
		fields = append(fields, Field{"Imported", d.origin(o)})
	}
	fields = append(fields,
		Field{"Size", release.Bytes(b.Size)},
		Field{"SHA-256", b.SHA256},
		Field{"PostgreSQL", orDash(m.ServerVersion)},
	)
	if m.CoreVersion != "" {
		fields = append(fields, Field{"NocoBase", fmt.Sprintf("%s, %s", m.CoreVersion, release.Count(len(m.Plugins), "plugin"))})
	}
	fields = append(fields,
		Field{"Database", fmt.Sprintf("%s, %s (%s of COPY data)", release.Count(m.Tables, "table"), release.Count(m.Rows, "row"), release.Bytes(m.DataBytes))},
		Field{"Storage", release.Count(m.Files, "file") + ", " + release.Bytes(m.FileBytes)},
		Field{"Took", humanDuration(m.Duration)},
		Field{"Encrypted", map[bool]string{true: "yes", false: "no"}[m.Encrypted]},
		Field{"Verified", verification(b, now)},
	)
	extra := warningLines(m.Warnings)
	if b.VerifiedAt == nil {
		extra = append(extra, "", fmt.Sprintf("Check it restores: backup verify %s", b.ID))
	}
	return newReply(fmt.Sprintf("Backup %s", b.ID), fields, nil, backupView(b), extra...), nil
}

func (d *Dispatcher) backupImport(ctx context.Context, req Request, c BackupImport) (Reply, error) {
	if req.OpenFile == nil {
		return Reply{}, release.Errorf(release.CodeUnavailable, "backup import reads a file on relbot's host: run relbot backup import %s %s FILE in a terminal there", c.App, c.Env)
	}
	f, err := req.OpenFile(c.File)
	if err != nil {
		why, code := err.Error(), release.CodeInvalid
		var pe *fs.PathError
		if errors.As(err, &pe) {
			why = pe.Err.Error()
		}
		if errors.Is(err, fs.ErrNotExist) {
			code = release.CodeNotFound
		}
		return Reply{}, release.Errorf(code, "cannot open %s: %s", c.File, why)
	}
	defer f.Close()
	b, err := d.Backups.ImportBackup(ctx, req.User, c.App, c.Env, filepath.Base(c.File), f)
	if err != nil {
		return Reply{}, err
	}
	m := b.Manifest
	fields := []Field{
		{"Backup", fmt.Sprintf("%s (%s %s, imported)", b.ID, b.App, b.Env)},
		{"Taken", fmt.Sprintf("%s by %s", d.when(b.CreatedAt), b.CreatedBy)},
		{"Size", release.Bytes(b.Size)},
		{"Database", release.Count(m.Tables, "table") + ", " + release.Count(m.Rows, "row")},
		{"Storage", release.Count(m.Files, "file") + ", " + release.Bytes(m.FileBytes)},
		{"SHA-256", b.SHA256},
	}
	if m.Origin != nil {
		fields = append(fields, Field{"From", fmt.Sprintf("%s of %s (%s)", m.Origin.Backup, m.Origin.Env, m.Origin.File)})
	}
	r := newReply(fmt.Sprintf("Backup %s imported into %s %s: every checksum matched and it restores", b.ID, b.App, b.Env), fields, nil, backupView(b),
		warningLines(m.Warnings)...)
	r.Public = true // a new restore point concerns everyone who may restore it
	return r, nil
}

func (d *Dispatcher) backupDownload(ctx context.Context, req Request, c BackupDownload) (Reply, error) {
	if d.Links == nil {
		return Reply{}, release.Errorf(release.CodeUnavailable, "backup download hands out a link to relbot serve's pages, and they are off here: set RELBOT_PUBLIC_URL (and RELBOT_SECRET_KEY)")
	}
	b, err := d.Backups.DownloadBackup(ctx, req.User, c.Backup)
	if err != nil {
		return Reply{}, err
	}
	link := d.Links.BackupFileLink(b.ID)
	fields := []Field{
		{"Link", link},
		{"Size", release.Bytes(b.Size)},
		{"SHA-256", b.SHA256},
		{"Encrypted", map[bool]string{true: "yes: it downloads as stored, and restores with this environment's key", false: "no"}[b.Manifest.Encrypted]},
	}
	data := map[string]any{"backup": b.ID, "link": link, "size_bytes": b.Size, "sha256": b.SHA256}
	return newReply(fmt.Sprintf("Download of backup %s (%s %s)", b.ID, b.App, b.Env), fields, nil, data,
		"", "The link is yours: it holds "+b.Env+"'s data. Check the file with sha256sum after the download."), nil
}

func (d *Dispatcher) backupDelete(ctx context.Context, req Request, c BackupDelete) (Reply, error) {
	b, err := d.Backups.DeleteBackup(ctx, req.User, c.Backup)
	if err != nil {
		return Reply{}, err
	}
	r := newReply(fmt.Sprintf("Backup %s of %s %s deleted (%s, taken %s)", b.ID, b.App, b.Env, release.Bytes(b.Size), d.when(b.CreatedAt)), nil, nil, backupView(b))
	r.Public = true // others may have counted on it
	return r, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func warningLines(ws []string) []string {
	if len(ws) == 0 {
		return nil
	}
	lines := []string{"", release.Count(len(ws), "warning") + ":"}
	for _, w := range ws {
		lines = append(lines, "  - "+w)
	}
	return lines
}
