package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// BackupOrigin is where an imported backup came from, as the archive
// records it: the installation that wrote it had these.
type BackupOrigin struct {
	Backup     string     `json:"backup"` // its ID there
	Env        string     `json:"env"`    // the environment it was taken of
	Kind       BackupKind `json:"kind"`
	File       string     `json:"file"` // the imported file's name
	ImportedBy string     `json:"imported_by"`
	ImportedAt time.Time  `json:"imported_at"`
}

// ImportBackup takes in an archive written by another relbot installation
// (or this one) as a backup of app's env. It is listed only once every
// checksum matched and a restore into a scratch database agreed with its
// manifest; anything less removes what was copied and says why in one line.
// The backup keeps the time it was taken; its secrets count as those of
// the environment it was taken of (restores elsewhere keep the target's).
func (s *BackupService) ImportBackup(ctx context.Context, actor, app, env, name string, file io.Reader) (*Backup, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActBackupImport, a, e); err != nil {
		return nil, err
	}
	var b *Backup
	err = s.withLock(ctx, "backup:"+a.Name+"/"+e.Name, func(ctx context.Context) error {
		b, err = s.importBackup(ctx, actor, a, e, name, file)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (s *BackupService) importBackup(ctx context.Context, actor string, a *App, e *Environment, name string, file io.Reader) (*Backup, error) {
	id, err := s.Store.NextID(ctx, a.Name, "b")
	if err != nil {
		return nil, err
	}
	log := s.Log.With("app", a.Name, "env", e.Name, "backup", id, "file", name)
	artifact := a.Name + "/backups/" + id + ".relbot"
	w, err := s.Artifacts.Create(ctx, artifact)
	if err != nil {
		return nil, err
	}
	hw := &hashingWriter{w: w, h: sha256.New()}
	if _, err := io.Copy(hw, file); err != nil {
		_ = w.Abort()
		return nil, Errorf(CodeInvalid, "cannot import %s: reading it failed: %v", name, err)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("store imported backup %s: %w", id, err)
	}
	listed := false
	defer func() {
		if !listed {
			if err := s.Artifacts.Remove(context.Background(), artifact); err != nil && ErrorCode(err) != CodeNotFound {
				log.Error("remove the refused import", "err", err)
			}
		}
	}()
	sum := hex.EncodeToString(hw.h.Sum(nil))
	all, err := s.Store.ListBackups(ctx, a.Name, e.Name)
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.SHA256 == sum {
			return nil, Errorf(CodeConflict, "%s is backup %s of %s %s already: nothing imported", name, o.ID, a.Name, e.Name)
		}
	}

	art, err := s.Artifacts.Open(ctx, artifact)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	log.Info("backup import started", "by", actor, "bytes", hw.n)
	h, manifest, err := s.Engine.Check(ctx, art, a.Name)
	if err != nil {
		return nil, importRefused(name, err)
	}
	on := a.Recovery
	if on == nil {
		on = e
	}
	rep, err := s.Engine.Verify(ctx, art, a.Name, on)
	if err != nil {
		return nil, importRefused(name, err)
	}
	if !rep.OK() {
		return nil, Errorf(CodeDamaged, "cannot import %s: its restore into a scratch database does not match its manifest: %s", name, strings.Join(rep.Problems, "; "))
	}
	now := s.Now().UTC()
	manifest.Origin = &BackupOrigin{Backup: h.ID, Env: h.Env, Kind: h.Kind, File: name, ImportedBy: actor, ImportedAt: now}
	b := &Backup{
		ID: id, App: a.Name, Env: e.Name, Kind: BackupImported, CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt.UTC(),
		Artifact: artifact, Size: hw.n, SHA256: sum, Manifest: *manifest, VerifiedAt: &now, CheckedAt: &now,
	}
	if err := s.Store.SaveBackup(ctx, b); err != nil {
		return nil, fmt.Errorf("record imported backup %s: %w", id, err)
	}
	listed = true
	log.Info("backup imported", "origin", h.ID, "origin_env", h.Env, "bytes", b.Size, "tables", manifest.Tables, "rows", manifest.Rows, "files", manifest.Files)
	return b, nil
}

// importRefused names the file in the engine's one-line refusal.
func importRefused(name string, err error) error {
	if ErrorCode(err) == CodeInternal {
		return wrapUser(err, "cannot import %s", name)
	}
	return &Error{Code: ErrorCode(err), Message: "cannot import " + name + ": " + ErrorMessage(err), Err: err}
}

// sourceEnv is the environment whose data (and secrets) a backup holds.
func (b *Backup) sourceEnv() string {
	if o := b.Manifest.Origin; o != nil {
		return o.Env
	}
	return b.Env
}
