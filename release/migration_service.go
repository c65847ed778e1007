package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

func (s *Service) migrationsReady() error {
	if s.Migrations == nil || s.Migrator == nil {
		return Errorf(CodeUnavailable, "migrations are not available: relbot was started without them")
	}
	return nil
}

// CreateMigration writes a migration file from the app's source
// environment. Every secret relbot knows is scanned for: a file whose rows
// hold one in clear is refused.
func (s *Service) CreateMigration(ctx context.Context, actor, app, version, note string) (*Migration, error) {
	if err := s.migrationsReady(); err != nil {
		return nil, err
	}
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActMigrationCreate, a, a.Source()); err != nil {
		return nil, err
	}
	// From a saved version, the engine reads a scratch database holding
	// the source's schema and the version's rows, dropped afterwards.
	source := a.Source()
	if version != "" {
		env, drop, err := s.versionSource(ctx, a, version)
		if err != nil {
			return nil, err
		}
		defer drop()
		source = env
	}
	var secrets []string
	if s.Variables != nil {
		if secrets, err = s.SecretValues(ctx); err != nil {
			return nil, err
		}
	}
	id, err := s.Store.NextID(ctx, a.Name, "m")
	if err != nil {
		return nil, err
	}
	artifact := a.Name + "/migrations/" + id + ".relbot"
	w, err := s.Artifacts.Create(ctx, artifact)
	if err != nil {
		return nil, err
	}
	hw := &hashingWriter{w: w, h: sha256.New()}
	now := s.Now().UTC()
	sum, err := s.Migrator.Create(ctx, MigrationInput{App: a, Source: source, ID: id, By: actor, Note: note, Version: version, CreatedAt: now, Secrets: secrets}, hw)
	if err != nil {
		_ = w.Abort()
		return nil, wrapUser(err, "migration create for %s failed", a.Name)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("store migration %s: %w", id, err)
	}
	m := &Migration{ID: id, App: a.Name, SourceEnv: a.Source().Name, Version: version, Note: note, CreatedBy: actor, CreatedAt: now,
		Artifact: artifact, Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil)), Summary: *sum}
	if err := s.Migrations.SaveMigration(ctx, m); err != nil {
		_ = s.Artifacts.Remove(context.Background(), artifact)
		return nil, err
	}
	s.Log.Info("migration created", "app", a.Name, "migration", id, "by", actor, "variables", len(sum.Variables))
	return m, nil
}

// ListMigrations lists an app's migrations, newest first.
func (s *Service) ListMigrations(ctx context.Context, app string) ([]*Migration, error) {
	if err := s.migrationsReady(); err != nil {
		return nil, err
	}
	if _, err := s.App(app); err != nil {
		return nil, err
	}
	return s.Migrations.ListMigrations(ctx, app)
}

// ShowMigration returns a migration with its applies so far.
func (s *Service) ShowMigration(ctx context.Context, id string) (*Migration, []*MigrationRun, error) {
	if err := s.migrationsReady(); err != nil {
		return nil, nil, err
	}
	m, err := s.Migrations.GetMigration(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	runs, err := s.Migrations.ListMigrationRuns(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return m, runs, nil
}

// PlanMigration says what applying a migration to env would do.
func (s *Service) PlanMigration(ctx context.Context, id, env string) (*Migration, *MigrationPlan, error) {
	m, a, e, err := s.migrationTarget(ctx, id, env)
	if err != nil {
		return nil, nil, err
	}
	known, err := s.knownVariables(ctx, a, e)
	if err != nil {
		return nil, nil, err
	}
	art, err := s.Artifacts.Open(ctx, m.Artifact)
	if err != nil {
		return nil, nil, err
	}
	defer art.Close()
	plan, err := s.Migrator.Plan(ctx, art, a, e, known)
	if err != nil {
		return nil, nil, wrapUser(err, "plan of %s for %s failed", id, env)
	}
	return m, plan, nil
}

// ApplyMigration applies a migration to env in one transaction and keeps
// its execution log. Releases call it inside their run; it takes the
// environment's lock only when the caller does not hold it.
func (s *Service) ApplyMigration(ctx context.Context, actor, id, env string, opts ApplyOptions) (*ApplyResult, error) {
	m, a, e, err := s.migrationTarget(ctx, id, env)
	if err != nil {
		return nil, err
	}
	if opts.KnownVariables == nil {
		if opts.KnownVariables, err = s.knownVariables(ctx, a, e); err != nil {
			return nil, err
		}
	}
	opts.By = actor
	art, err := s.Artifacts.Open(ctx, m.Artifact)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	start := s.Now().UTC()
	res, err := s.Migrator.Apply(ctx, art, a, e, opts)
	run := &MigrationRun{Migration: id, Env: e.Name, By: actor, StartedAt: start, OK: err == nil, Result: res}
	if err != nil {
		run.Error = ErrorMessage(err)
	}
	if serr := s.Migrations.SaveMigrationRun(ctx, run); serr != nil {
		s.Log.Error("save migration run", "migration", id, "env", e.Name, "err", serr)
	}
	if err != nil {
		return nil, wrapUser(err, "apply of %s to %s failed", id, env)
	}
	return res, nil
}

func (s *Service) migrationTarget(ctx context.Context, id, env string) (*Migration, *App, *Environment, error) {
	if err := s.migrationsReady(); err != nil {
		return nil, nil, nil, err
	}
	m, err := s.Migrations.GetMigration(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := s.App(m.App)
	if err != nil {
		return nil, nil, nil, err
	}
	e, err := a.Env(env)
	if err != nil {
		return nil, nil, nil, err
	}
	if e == a.Source() {
		return nil, nil, nil, Errorf(CodeInvalid, "%s is where migrations are made from; choose one of the environments after it", e.Name)
	}
	return m, a, e, nil
}

// knownVariables are the variable names env has, or nil when relbot does
// not manage variables (then no check is made).
func (s *Service) knownVariables(ctx context.Context, a *App, e *Environment) (map[string]bool, error) {
	if s.Variables == nil {
		return nil, nil
	}
	return s.VariableNames(ctx, a.Name, e.Name)
}
