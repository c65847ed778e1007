package release

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// versionLockKey serialises an app's version writes: a retention pass
// never removes a blob that a version being created counts on.
// VersionService saves, lists, compares and restores versions of an app's
// source configuration, and compares environments (drift_service.go).
type VersionService struct {
	*Core
	Store     VersionStore
	Engine    VersionEngine
	Artifacts Artifacts
	// Variables tells drift which variable names only one side has.
	Variables *VariableService
}

func versionLockKey(app string) string { return "versions:" + app }

// versionBlobs keeps an app's blobs in the artifact store under
// <app>/versions/blobs/<sha256>.zst.
type versionBlobs struct {
	arts Artifacts
	app  string
}

var blobHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (b versionBlobs) name(hash string) (string, error) {
	if !blobHash.MatchString(hash) {
		return "", Errorf(CodeDamaged, "version blob name %q is not a sha256", hash)
	}
	return b.app + "/versions/blobs/" + hash + ".zst", nil
}

func (b versionBlobs) Has(ctx context.Context, hash string) (bool, error) {
	name, err := b.name(hash)
	if err != nil {
		return false, err
	}
	a, err := b.arts.Open(ctx, name)
	if ErrorCode(err) == CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, a.Close()
}

func (b versionBlobs) Create(ctx context.Context, hash string) (ArtifactWriter, error) {
	name, err := b.name(hash)
	if err != nil {
		return nil, err
	}
	return b.arts.Create(ctx, name)
}

func (b versionBlobs) Open(ctx context.Context, hash string) (Artifact, error) {
	name, err := b.name(hash)
	if err != nil {
		return nil, err
	}
	return b.arts.Open(ctx, name)
}

func (b versionBlobs) remove(ctx context.Context, hash string) error {
	name, err := b.name(hash)
	if err != nil {
		return err
	}
	if err := b.arts.Remove(ctx, name); err != nil && ErrorCode(err) != CodeNotFound {
		return err
	}
	return nil
}

// newBlobs records the blobs a snapshot stored that were not there before,
// so that a version that fails to be made takes them away again.
type newBlobs struct {
	versionBlobs
	mu      sync.Mutex
	created []string
}

func (b *newBlobs) Create(ctx context.Context, hash string) (ArtifactWriter, error) {
	w, err := b.versionBlobs.Create(ctx, hash)
	if err != nil {
		return nil, err
	}
	return &recordedWriter{ArtifactWriter: w, commit: func() {
		b.mu.Lock()
		b.created = append(b.created, hash)
		b.mu.Unlock()
	}}, nil
}

// drop removes the recorded blobs. Callers hold the app's version lock, so
// no other version can have come to count on them meanwhile.
func (b *newBlobs) drop(ctx context.Context, log *slog.Logger) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.created {
		if err := b.remove(ctx, h); err != nil {
			log.Error("remove a blob of a failed version", "blob", h, "err", err)
		}
	}
	if len(b.created) > 0 {
		log.Info("removed the blobs of a failed version", "blobs", len(b.created))
	}
	b.created = nil
}

type recordedWriter struct {
	ArtifactWriter
	commit func()
}

func (w *recordedWriter) Commit() error {
	if err := w.ArtifactWriter.Commit(); err != nil {
		return err
	}
	w.commit()
	return nil
}

// CreateVersion saves a checkpoint of the app's source environment.
func (s *VersionService) CreateVersion(ctx context.Context, actor, app, description string) (*Version, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActVersionCreate, a, a.Source()); err != nil {
		return nil, err
	}
	description = strings.TrimSpace(description)
	if description == "" {
		return nil, Errorf(CodeInvalid, "a version needs a description of what it holds")
	}
	if n := utf8.RuneCountInString(description); n > MaxVersionDescription {
		return nil, Errorf(CodeInvalid, "the description is %d characters long; a version takes at most %d", n, MaxVersionDescription)
	}
	var v *Version
	err = s.withLock(ctx, versionLockKey(a.Name), func(ctx context.Context) error {
		if v, err = s.createVersion(ctx, actor, a, description, false); err != nil {
			return err
		}
		s.versionRetention(ctx, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// createVersion snapshots and records a version; callers hold the app's
// version lock.
func (s *VersionService) createVersion(ctx context.Context, actor string, a *App, description string, auto bool) (*Version, error) {
	id, err := s.IDs.NextID(ctx, a.Name, "v")
	if err != nil {
		return nil, err
	}
	src := a.Source()
	log := s.Log.With("app", a.Name, "env", src.Name, "version", id)
	now := s.Now().UTC()
	blobs := &newBlobs{versionBlobs: versionBlobs{s.Artifacts, a.Name}}
	// The blobs of a failed version go, unless the context ended: the
	// version lock may be lost then, and another replica may already count
	// on them (orphans cost only space).
	snap, err := s.Engine.Snapshot(ctx, a, src, blobs)
	if err != nil {
		log.Error("version failed", "err", err)
		if ctx.Err() == nil {
			blobs.drop(ctx, log)
		}
		return nil, wrapUser(err, "version of %s %s failed", a.Name, src.Name)
	}
	v := &Version{ID: id, App: a.Name, Env: src.Name, Description: description, CreatedBy: actor, CreatedAt: now, Auto: auto,
		CoreVersion: snap.CoreVersion, Plugins: snap.Plugins, Tables: snap.Tables}
	if err := s.Store.SaveVersion(ctx, v); err != nil {
		// A save that failed may still have committed: keep the blobs of
		// a version that exists.
		if _, gerr := s.Store.GetVersion(ctx, id); ctx.Err() == nil && ErrorCode(gerr) == CodeNotFound {
			blobs.drop(ctx, log)
		}
		return nil, err
	}
	log.Info("version created", "by", actor, "tables", len(v.Tables), "rows", v.Rows(), "new_blobs", snap.NewBlobs, "new_bytes", snap.NewBytes)
	return v, nil
}

// versionRetention deletes the oldest versions beyond the app's keep, then
// the blobs no remaining version refers to. Records go first, so a failure
// half way leaves unreferenced blobs, never a version without its rows.
// (A failed create removes the blobs it added itself: newBlobs.)
func (s *VersionService) versionRetention(ctx context.Context, a *App) {
	keep := a.VersionKeep
	if keep <= 0 {
		keep = DefaultVersionKeep
	}
	all, err := s.Store.ListVersions(ctx, a.Name) // newest first
	if err != nil || len(all) <= keep {
		if err != nil {
			s.Log.Error("version retention", "app", a.Name, "err", err)
		}
		return
	}
	used := map[string]bool{}
	for _, v := range all[:keep] {
		for _, t := range v.Tables {
			used[t.Blob] = true
		}
	}
	blobs := versionBlobs{s.Artifacts, a.Name}
	for _, v := range all[keep:] {
		if err := s.Store.DeleteVersion(ctx, v.ID); err != nil {
			s.Log.Error("version retention", "app", a.Name, "version", v.ID, "err", err)
			return
		}
		for _, t := range v.Tables {
			if used[t.Blob] {
				continue
			}
			used[t.Blob] = true // removed once
			if err := blobs.remove(ctx, t.Blob); err != nil {
				s.Log.Error("version retention", "app", a.Name, "blob", t.Blob, "err", err)
			}
		}
		s.Log.Info("version deleted by retention", "app", a.Name, "version", v.ID, "keep", keep)
	}
}

// ListVersions lists an app's versions, newest first.
func (s *VersionService) ListVersions(ctx context.Context, app string) ([]*Version, error) {
	if _, err := s.App(app); err != nil {
		return nil, err
	}
	return s.Store.ListVersions(ctx, app)
}

// versionOf finds a version of app a; one of another app is refused.
func (s *VersionService) versionOf(ctx context.Context, a *App, id string) (*Version, error) {
	v, err := s.Store.GetVersion(ctx, id)
	if err != nil {
		return nil, err
	}
	if v.App != a.Name {
		return nil, Errorf(CodeInvalid, "version %s is of app %s, not %s", id, v.App, a.Name)
	}
	return v, nil
}

// DiffVersion compares version from with version to, or with the live
// source database when to is empty.
func (s *VersionService) DiffVersion(ctx context.Context, app, from, to string) (*VersionDiff, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	fv, err := s.versionOf(ctx, a, from)
	if err != nil {
		return nil, err
	}
	var tv *Version
	if to != "" {
		if tv, err = s.versionOf(ctx, a, to); err != nil {
			return nil, err
		}
	}
	d, err := s.Engine.Diff(ctx, a, a.Source(), fv, tv, versionBlobs{s.Artifacts, a.Name})
	if err != nil {
		return nil, wrapUser(err, "diff of %s failed", from)
	}
	return d, nil
}

// RestoreVersion makes the source's versioned tables exactly the version,
// in one transaction. A version of the current state is saved first, so
// the restore can itself be undone; it is returned with the report.
func (s *VersionService) RestoreVersion(ctx context.Context, actor, app, id string) (restored, before *Version, rep *VersionRestoreReport, err error) {
	a, err := s.App(app)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.authorize(ctx, actor, ActVersionRestore, a, a.Source()); err != nil {
		return nil, nil, nil, err
	}
	v, err := s.versionOf(ctx, a, id)
	if err != nil {
		return nil, nil, nil, err
	}
	src := a.Source()
	err = s.withLock(ctx, versionLockKey(a.Name), func(ctx context.Context) error {
		return s.withLock(ctx, envLockKey(a.Name, src.Name), func(ctx context.Context) error {
			if before, err = s.createVersion(ctx, actor, a, "before restore of "+id, true); err != nil {
				return err
			}
			s.Log.Info("version restore started", "app", a.Name, "env", src.Name, "version", id, "by", actor, "before", before.ID)
			if rep, err = s.Engine.Restore(ctx, a, src, v, versionBlobs{s.Artifacts, a.Name}); err != nil {
				return wrapUser(err, "restore of %s failed", id)
			}
			s.versionRetention(ctx, a)
			return nil
		})
	})
	if err != nil {
		return nil, before, nil, err
	}
	s.Log.Info("version restore done", "app", a.Name, "version", id, "tables", rep.Tables, "rows", rep.Rows, "duration", rep.Duration)
	return v, before, rep, nil
}

// versionSource stands a saved version up as a scratch database shaped
// like the source, for the migration engine to read; drop removes it.
func (s *VersionService) versionSource(ctx context.Context, a *App, id string) (*Environment, func(), error) {
	v, err := s.versionOf(ctx, a, id)
	if err != nil {
		return nil, nil, err
	}
	env, drop, err := s.Engine.Materialize(ctx, a, a.Source(), v, versionBlobs{s.Artifacts, a.Name})
	if err != nil {
		return nil, nil, wrapUser(err, "cannot rebuild %s for a migration", id)
	}
	return env, drop, nil
}
