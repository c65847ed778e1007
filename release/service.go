package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"sort"
	"time"
)

// Service is the domain's front door: every transport calls it, and it
// calls out only through the interfaces it declares.
type Service struct {
	apps      []*App
	byName    map[string]*App
	Store     Store
	Artifacts Artifacts
	Backups   BackupEngine
	Locker    Locker
	Log       *slog.Logger
	Now       func() time.Time
	// Owner names this process in locks, so a conflict can say who holds one.
	Owner string

	// Migration files (migration_service.go).
	Migrations MigrationStore
	Migrator   MigrationEngine

	// Versions of the source's configuration (version_service.go) and
	// drift between environments (drift_service.go).
	Versions  VersionStore
	Versioner VersionEngine

	// Releases (release_service.go, release_run.go).
	ReleaseParts

	// Variables and secrets (variables_service.go). SecretKey seals
	// secrets; PreviousSecretKey only opens them, during a key rotation.
	Variables         VariableStore
	AppVariables      AppVariables
	SecretKey         []byte
	PreviousSecretKey []byte

	// Groups reads Slack user groups named in roles (permissions.go).
	Groups GroupMembers
	// LayoutReader reads environments' NocoBase layouts (layout.go).
	LayoutReader LayoutReader
}

// NewService builds a Service over the configured apps.
func NewService(apps []*App, store Store, artifacts Artifacts, backups BackupEngine, locker Locker, log *slog.Logger) *Service {
	s := &Service{apps: apps, byName: map[string]*App{}, Store: store, Artifacts: artifacts, Backups: backups, Locker: locker, Log: log, Now: time.Now}
	for _, a := range apps {
		s.byName[a.Name] = a
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	s.Owner = fmt.Sprintf("relbot on %s (pid %d)", host, os.Getpid())
	return s
}

// Apps lists the configured apps in the order apps.yaml gives them.
func (s *Service) Apps() []*App { return s.apps }

// App finds an app by name.
func (s *Service) App(name string) (*App, error) {
	if a, ok := s.byName[name]; ok {
		return a, nil
	}
	names := make([]string, 0, len(s.apps))
	for _, a := range s.apps {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return nil, Errorf(CodeNotFound, "no app %q (configured: %s)", name, List(names))
}

func (s *Service) appEnv(app, env string) (*App, *Environment, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, nil, err
	}
	e, err := a.Env(env)
	if err != nil {
		return nil, nil, err
	}
	return a, e, nil
}

// envLockKey is the lock every change of an environment's database holds:
// releases, restores and rollbacks of one environment never overlap.
func envLockKey(app, env string) string { return "env:" + app + "/" + env }

// lockTTL is how long a lock outlives a process that died holding it; a
// live holder refreshes it well before.
const lockTTL = 2 * time.Minute

// withLock runs fn while holding key, refreshing it as fn runs.
func (s *Service) withLock(ctx context.Context, key string, fn func(context.Context) error) error {
	return s.holding(ctx, key, s.Owner, lockTTL, nil, fn)
}

// holding runs fn while owner holds key. Every ttl/4 the lock is refreshed
// and renew, when set, is called too (a release renews its lease there);
// if either fails, fn's context is cancelled so it stops at its next
// boundary.
func (s *Service) holding(ctx context.Context, key, owner string, ttl time.Duration, renew func(context.Context) error, fn func(context.Context) error) error {
	lock, err := s.Locker.TryLock(ctx, key, owner, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				err := lock.Refresh(ctx, ttl)
				if err == nil && renew != nil {
					err = renew(ctx)
				}
				if err != nil && ctx.Err() == nil {
					s.Log.Error("lock or lease lost: stopping", "key", key, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	err = fn(ctx)
	cancel()
	<-done
	if uerr := lock.Unlock(context.Background()); uerr != nil {
		s.Log.Warn("unlock", "key", key, "err", uerr)
	}
	return err
}

// CreateBackup takes a backup of an environment now.
func (s *Service) CreateBackup(ctx context.Context, actor, app, env string, kind BackupKind) (*Backup, error) {
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
func (s *Service) backup(ctx context.Context, actor string, a *App, e *Environment, kind BackupKind, releaseID string) (*Backup, error) {
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
	sum, err := s.Backups.Create(ctx, e, h, hw)
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
func (s *Service) applyRetention(ctx context.Context, a *App, e *Environment) error {
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
		if inUse, err := s.backupInUse(ctx, b); err != nil || inUse {
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

// backupInUse reports whether an unfinished release may still roll back to
// b. Until releases exist, a pre-release backup is never deleted by
// retention.
func (s *Service) backupInUse(_ context.Context, b *Backup) (bool, error) {
	return b.Kind == BackupPreRelease, nil
}

// ListBackups lists an environment's backups, newest first.
func (s *Service) ListBackups(ctx context.Context, app, env string) ([]*Backup, error) {
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
func (s *Service) VerifyBackup(ctx context.Context, actor, id string) (*Backup, *VerifyReport, error) {
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
	rep, err := s.Backups.Verify(ctx, art, a.Name, on)
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

func (s *Service) backupOf(ctx context.Context, id string) (*Backup, *App, error) {
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

// RestoreBackup requests a restore of a backup: into its own environment,
// or into (any environment of the app, or "recovery"). Every restore is a
// release of its target — recorded, run under the environment's lock with
// its hooks and checks, approved as a release there when the environment
// asks for approvals — so that users may be switched to recovery only
// after its checks passed, and no environment is overwritten without a
// trace.
func (s *Service) RestoreBackup(ctx context.Context, actor, id, into string) (*Release, error) {
	if err := s.releasesReady(); err != nil {
		return nil, err
	}
	b, a, err := s.backupOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if into == "" {
		into = b.Env
	}
	target, err := a.Env(into)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeRestore(ctx, actor, ActRestore, a, target, b.Env); err != nil {
		return nil, err
	}
	if err := s.preflightWindow(ctx, a, target, nil); err != nil {
		return nil, err
	}
	return s.request(ctx, &Release{App: a.Name, Env: target.Name, Kind: KindRestore, Backup: b.ID, RequestedBy: actor}, a, target)
}
