package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// BackupService takes, lists and verifies backups (restores are releases:
// ReleaseService.RestoreBackup).
type BackupService struct {
	*Core
	Store     Store
	Artifacts Artifacts
	Engine    BackupEngine
	// Releases tells which pre-release backups a release may still need;
	// without it every pre-release backup is kept.
	Releases ReleaseStore
}

// CreateBackup takes a backup of an environment now.
func (s *BackupService) CreateBackup(ctx context.Context, actor, app, env string, kind BackupKind) (*Backup, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActBackupCreate, a, e); err != nil {
		return nil, err
	}
	var b *Backup
	err = s.withLock(ctx, "backup:"+app+"/"+e.Name, func(ctx context.Context) error {
		b, err = s.backup(ctx, actor, a, e, kind, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.applyRetention(ctx, a, e); err != nil {
		s.Log.Error("backup retention", "app", app, "env", env, "err", err)
	}
	return b, nil
}

// backup writes one archive and records it. Callers hold what locks they need.
func (s *BackupService) backup(ctx context.Context, actor string, a *App, e *Environment, kind BackupKind, releaseID string) (*Backup, error) {
	id, err := s.Store.NextID(ctx, a.Name, "b")
	if err != nil {
		return nil, err
	}
	log := s.Log.With("app", a.Name, "env", e.Name, "backup", id)
	artifact := a.Name + "/backups/" + id + ".relbot"
	w, err := s.Artifacts.Create(ctx, artifact)
	if err != nil {
		return nil, err
	}
	hw := &hashingWriter{w: w, h: sha256.New()}
	now := s.Now().UTC()
	h := ArchiveHeader{ID: id, App: a.Name, Env: e.Name, Kind: kind, CreatedBy: actor, CreatedAt: now}
	log.Info("backup started", "kind", kind)
	sum, err := s.Engine.Create(ctx, e, h, hw)
	if err != nil {
		_ = w.Abort()
		log.Error("backup failed", "err", err)
		return nil, wrapUser(err, "backup of %s %s failed", a.Name, e.Name)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("store backup %s: %w", id, err)
	}
	b := &Backup{
		ID: id, App: a.Name, Env: e.Name, Kind: kind, CreatedBy: actor, CreatedAt: now,
		Artifact: artifact, Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil)), Manifest: *sum, ReleaseID: releaseID,
	}
	if err := s.Store.SaveBackup(ctx, b); err != nil {
		_ = s.Artifacts.Remove(context.Background(), artifact)
		return nil, fmt.Errorf("record backup %s: %w", id, err)
	}
	log.Info("backup done", "bytes", b.Size, "tables", sum.Tables, "rows", sum.Rows, "files", sum.Files, "duration", sum.Duration)
	return b, nil
}

// wrapUser keeps a user-facing *Error as it is, and gives anything else a
// user-facing message with the cause kept for the log.
func wrapUser(err error, format string, args ...any) error {
	if ErrorCode(err) != CodeInternal {
		return err
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf(format, args...) + " (see the bot's log)", Err: err}
}

type hashingWriter struct {
	w interface{ Write([]byte) (int, error) }
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// applyRetention deletes the oldest backups beyond the environment's keep,
// but never the newest verified one nor one an unfinished release needs.
func (s *BackupService) applyRetention(ctx context.Context, a *App, e *Environment) error {
	keep := e.Backup.Keep
	if keep <= 0 {
		return nil
	}
	all, err := s.Store.ListBackups(ctx, a.Name, e.Name) // newest first
	if err != nil {
		return err
	}
	newestVerified := ""
	for _, b := range all {
		if b.VerifiedAt != nil {
			newestVerified = b.ID
			break
		}
	}
	for i, b := range all {
		if i < keep || b.ID == newestVerified {
			continue
		}
		if why, err := s.backupInUse(ctx, b); err != nil || why != "" {
			continue
		}
		if err := s.Artifacts.Remove(ctx, b.Artifact); err != nil && ErrorCode(err) != CodeNotFound {
			return err
		}
		if err := s.Store.DeleteBackup(ctx, b.ID); err != nil {
			return err
		}
		s.Log.Info("backup deleted by retention", "app", a.Name, "env", e.Name, "backup", b.ID, "keep", keep)
	}
	return nil
}

// backupInUse reports why a release may still need b, or "": a
// pre-release backup is what a full rollback of its release restores, so
// it is kept while that release is open or is its environment's latest
// deploy (the one a rollback would take back). Older ones count as any
// other backup.
func (s *BackupService) backupInUse(ctx context.Context, b *Backup) (string, error) {
	if b.Kind != BackupPreRelease {
		return "", nil
	}
	if s.Releases == nil || b.ReleaseID == "" {
		return "it is a pre-release backup", nil
	}
	rs, err := s.Releases.ListReleases(ctx, b.App, b.Env) // newest first
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if r.ID == b.ReleaseID && r.State.Open() {
			return fmt.Sprintf("its release %s is %s", r.ID, r.State), nil
		}
	}
	for _, r := range rs {
		if r.Kind != KindDeploy || r.State.Open() {
			continue
		}
		if r.ID == b.ReleaseID {
			return fmt.Sprintf("it is the pre-release backup of %s, the latest deploy of %s %s, which a rollback restores", r.ID, b.App, b.Env), nil
		}
		break
	}
	return "", nil
}

// ShowBackup returns one backup's record: its manifest and verification.
func (s *BackupService) ShowBackup(ctx context.Context, id string) (*Backup, error) {
	b, _, err := s.backupOf(ctx, id)
	return b, err
}

// DownloadBackup returns backup id for actor to download, when actor may
// take its environment's data away.
func (s *BackupService) DownloadBackup(ctx context.Context, actor, id string) (*Backup, error) {
	b, a, err := s.backupOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeOn(ctx, actor, ActBackupDownload, a, b.Env); err != nil {
		return nil, err
	}
	return b, nil
}

// DeleteBackup removes a backup's archive and record. It is refused for
// the newest verified backup of its environment (the one to restore from)
// and for a pre-release backup a release may still need.
func (s *BackupService) DeleteBackup(ctx context.Context, actor, id string) (*Backup, error) {
	b, a, err := s.backupOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeOn(ctx, actor, ActBackupDelete, a, b.Env); err != nil {
		return nil, err
	}
	err = s.withLock(ctx, "backup:"+a.Name+"/"+b.Env, func(ctx context.Context) error {
		all, err := s.Store.ListBackups(ctx, a.Name, b.Env)
		if err != nil {
			return err
		}
		for _, o := range all { // newest first
			if o.VerifiedAt != nil {
				if o.ID == b.ID {
					return Errorf(CodeConflict, "%s is the newest verified backup of %s %s, the one to restore from: verify a newer one first (backup verify), then delete it", b.ID, a.Name, b.Env)
				}
				break
			}
		}
		why, err := s.backupInUse(ctx, b)
		if err != nil {
			return err
		}
		if why != "" {
			return Errorf(CodeConflict, "%s is kept: %s", b.ID, why)
		}
		if err := s.Artifacts.Remove(ctx, b.Artifact); err != nil && ErrorCode(err) != CodeNotFound {
			return err
		}
		return s.Store.DeleteBackup(ctx, b.ID)
	})
	if err != nil {
		return nil, err
	}
	s.Log.Info("backup deleted", "app", a.Name, "env", b.Env, "backup", b.ID, "by", actor)
	return b, nil
}

// ListBackups lists an environment's backups, newest first.
func (s *BackupService) ListBackups(ctx context.Context, app, env string) ([]*Backup, error) {
	_, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	return s.Store.ListBackups(ctx, app, e.Name)
}

// VerifyBackup restores a backup into a scratch database and compares it
// with its manifest. The scratch database is made on the recovery
// environment's server when the app has one, so production's server does
// not carry the load.
func (s *BackupService) VerifyBackup(ctx context.Context, actor, id string) (*Backup, *VerifyReport, error) {
	b, a, err := s.backupOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.authorizeOn(ctx, actor, ActBackupVerify, a, b.Env); err != nil {
		return nil, nil, err
	}
	on := a.Recovery
	if on == nil {
		if on, err = a.Env(b.Env); err != nil {
			return nil, nil, err
		}
	}
	art, err := s.Artifacts.Open(ctx, b.Artifact)
	if err != nil {
		return nil, nil, err
	}
	defer art.Close()
	s.Log.Info("backup verify started", "app", a.Name, "backup", id, "by", actor)
	rep, err := s.Engine.Verify(ctx, art, a.Name, on)
	if err != nil {
		return nil, nil, wrapUser(err, "verify of %s failed", id)
	}
	if rep.OK() {
		now := s.Now().UTC()
		if err := s.Store.MarkBackupVerified(ctx, id, now); err != nil {
			return nil, nil, err
		}
		b.VerifiedAt = &now
	}
	return b, rep, nil
}

func (s *BackupService) backupOf(ctx context.Context, id string) (*Backup, *App, error) {
	b, err := s.Store.GetBackup(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.App(b.App)
	if err != nil {
		return nil, nil, err
	}
	return b, a, nil
}
