package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// MigrationService makes migration files, plans and applies them, and
// reads environments' NocoBase layouts (layout.go). A file may be made from
// a saved version, and never carries a secret's value in clear.
type MigrationService struct {
	*Core
	Store        MigrationStore
	Engine       MigrationEngine
	Artifacts    Artifacts
	LayoutReader LayoutReader
	Versions     *VersionService
	Variables    *VariableService
}

// CreateMigration writes a migration file from the app's source
// environment. Every secret relbot knows is scanned for: a file whose rows
// hold one in clear is refused.
func (s *MigrationService) CreateMigration(ctx context.Context, actor, app, version, note string) (*Migration, error) {
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
		env, drop, err := s.Versions.versionSource(ctx, a, version)
		if err != nil {
			return nil, err
		}
		defer drop()
		source = env
	}
	var secrets []string
	if secrets, err = s.Variables.SecretValues(ctx); err != nil {
		return nil, err
	}
	id, err := s.IDs.NextID(ctx, a.Name, "m")
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
	sum, err := s.Engine.Create(ctx, MigrationInput{App: a, Source: source, ID: id, By: actor, Note: note, Version: version, CreatedAt: now, Secrets: secrets}, hw)
	if err != nil {
		_ = w.Abort()
		return nil, wrapUser(err, "migration create for %s failed", a.Name)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("store migration %s: %w", id, err)
	}
	m := &Migration{ID: id, App: a.Name, SourceEnv: a.Source().Name, Version: version, Note: note, CreatedBy: actor, CreatedAt: now,
		Artifact: artifact, Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil)), Summary: *sum}
	if err := s.Store.SaveMigration(ctx, m); err != nil {
		_ = s.Artifacts.Remove(context.Background(), artifact)
		return nil, err
	}
	s.Log.Info("migration created", "app", a.Name, "migration", id, "by", actor, "variables", len(sum.Variables))
	return m, nil
}

// ListMigrations lists an app's migrations, newest first.
func (s *MigrationService) ListMigrations(ctx context.Context, app string) ([]*Migration, error) {
	if _, err := s.App(app); err != nil {
		return nil, err
	}
	return s.Store.ListMigrations(ctx, app)
}

// ShowMigration returns a migration with its applies so far.
func (s *MigrationService) ShowMigration(ctx context.Context, id string) (*Migration, []*MigrationRun, error) {
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	runs, err := s.Store.ListMigrationRuns(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return m, runs, nil
}

// NextChanges is the change summary of a migration against the first
// environment after its source that has not had it applied, as that
// environment is now; nil when every one has. The summary says so when
// the environment cannot be read.
func (s *MigrationService) NextChanges(ctx context.Context, m *Migration, runs []*MigrationRun) *Changes {
	a, err := s.App(m.App)
	if err != nil {
		return nil
	}
	applied := map[string]bool{}
	for _, r := range runs {
		if r.OK {
			applied[r.Env] = true
		}
	}
	for _, e := range a.Environments {
		if e == a.Source() || applied[e.Name] {
			continue
		}
		c, err := s.checkFile(ctx, m, a, e)
		switch {
		case err != nil:
			s.Log.Warn("change summary failed", "app", a.Name, "env", e.Name, "migration", m.ID, "err", err)
			return &Changes{Against: e.Name, Items: []Change{}, Partial: []string{ErrorMessage(wrapUser(err, "cannot read %s %s to summarize %s", a.Name, e.Name, m.ID))}}
		case c.AlreadyApplied != nil:
			continue // applied there outside relbot's records
		}
		return c.Changes
	}
	return nil
}

func (s *MigrationService) checkFile(ctx context.Context, m *Migration, a *App, e *Environment) (*TargetCheck, error) {
	art, err := s.Artifacts.Open(ctx, m.Artifact)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	return s.Engine.Check(ctx, art, a, e)
}

// PlanMigration says what applying a migration to env would do.
func (s *MigrationService) PlanMigration(ctx context.Context, id, env string) (*Migration, *MigrationPlan, error) {
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
	plan, err := s.Engine.Plan(ctx, art, a, e, known)
	if err != nil {
		return nil, nil, wrapUser(err, "plan of %s for %s failed", id, env)
	}
	return m, plan, nil
}

// ApplyMigration applies a migration to env in one transaction and keeps
// its execution log. Releases call it inside their run; it takes the
// environment's lock only when the caller does not hold it.
func (s *MigrationService) ApplyMigration(ctx context.Context, actor, id, env string, opts ApplyOptions) (*ApplyResult, error) {
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
	var sqlLog *sqlLog
	if opts.SQLArtifact != "" {
		if sqlLog, err = s.createSQLLog(ctx, opts.SQLArtifact); err != nil {
			return nil, err
		}
		opts.SQL = sqlLog
	}
	start := s.Now().UTC()
	res, err := s.Engine.Apply(ctx, art, a, e, opts)
	if sqlLog != nil {
		if lerr := sqlLog.finish(res, err); lerr != nil {
			// The apply's outcome stands; only its transcript is missing.
			s.Log.Error("keep the SQL of an apply", "migration", id, "env", e.Name, "artifact", opts.SQLArtifact, "err", lerr)
			if res != nil {
				res.Warnings = append(res.Warnings, "the SQL it executed could not be kept ("+ErrorMessage(lerr)+")")
			}
		}
	}
	run := &MigrationRun{Migration: id, Env: e.Name, By: actor, StartedAt: start, OK: err == nil, Result: res}
	if err != nil {
		run.Error = ErrorMessage(err)
	}
	if serr := s.Store.SaveMigrationRun(ctx, run); serr != nil {
		s.Log.Error("save migration run", "migration", id, "env", e.Name, "err", serr)
	}
	if err != nil {
		return nil, wrapUser(err, "apply of %s to %s failed", id, env)
	}
	return res, nil
}

// PrepareMigration prepares, ahead of a release's window and without
// changing what users see, the apply of migration id to env with the
// options the apply will use (the target's variables, nothing
// destructive allowed).
func (s *MigrationService) PrepareMigration(ctx context.Context, id, env string, opts PrepareOptions) (*Preparation, error) {
	m, a, e, err := s.migrationTarget(ctx, id, env)
	if err != nil {
		return nil, err
	}
	if opts.KnownVariables == nil {
		if opts.KnownVariables, err = s.knownVariables(ctx, a, e); err != nil {
			return nil, err
		}
	}
	art, err := s.Artifacts.Open(ctx, m.Artifact)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	p, err := s.Engine.Prepare(ctx, art, a, e, opts)
	if err != nil {
		return nil, wrapUser(err, "preparing %s for %s failed", id, env)
	}
	return p, nil
}

func (s *MigrationService) migrationTarget(ctx context.Context, id, env string) (*Migration, *App, *Environment, error) {
	m, err := s.Store.GetMigration(ctx, id)
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

// knownVariables are the variable names env has: a migration needing one
// it lacks is refused.
func (s *MigrationService) knownVariables(ctx context.Context, a *App, e *Environment) (map[string]bool, error) {
	return s.Variables.VariableNames(ctx, a.Name, e.Name)
}

// EnvSnapshots are the release snapshots one environment keeps.
type EnvSnapshots struct {
	Env       string         `json:"env"`
	Snapshots []SnapshotInfo `json:"snapshots"`
	// Error says why they could not be listed.
	Error string `json:"error,omitempty"`
}

// Snapshots lists, per environment migrations are applied to (every one
// but the source, recovery last), the release snapshots it keeps, newest
// first; an environment that cannot be read says why instead of failing
// the others.
func (s *MigrationService) Snapshots(ctx context.Context, app string) ([]EnvSnapshots, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, err
	}
	var envs []*Environment
	for _, e := range a.Environments {
		if e != a.Source() {
			envs = append(envs, e)
		}
	}
	if a.Recovery != nil {
		envs = append(envs, a.Recovery)
	}
	out := make([]EnvSnapshots, 0, len(envs))
	for _, e := range envs {
		es := EnvSnapshots{Env: e.Name, Snapshots: []SnapshotInfo{}}
		// A database that does not answer must not hold up a listing.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		snaps, err := s.Engine.Snapshots(lctx, a, e)
		cancel()
		if err != nil {
			es.Error = ErrorMessage(err)
		} else if snaps != nil {
			es.Snapshots = snaps
		}
		out = append(out, es)
	}
	return out, nil
}

// SQLArtifact is where the SQL a release's apply executed is kept.
func SQLArtifact(app, releaseID string) string { return app + "/releases/" + releaseID + ".sql" }

// sqlLog writes an apply's SQL to an artifact; a write that fails is
// kept and reported at the end, never failing the apply itself.
type sqlLog struct {
	w   ArtifactWriter
	err error
}

// createSQLLog starts name. An apply run again (a release resumed after an
// interruption) replaces what its earlier attempt wrote: the transcript is
// of the attempt whose outcome the release reports.
func (s *MigrationService) createSQLLog(ctx context.Context, name string) (*sqlLog, error) {
	w, err := s.Artifacts.Create(ctx, name)
	if ErrorCode(err) == CodeConflict {
		if err = s.Artifacts.Remove(ctx, name); err == nil {
			w, err = s.Artifacts.Create(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	return &sqlLog{w: w}, nil
}

func (l *sqlLog) Write(p []byte) (int, error) {
	if l.err != nil {
		return len(p), nil
	}
	if _, err := l.w.Write(p); err != nil {
		l.err = err
	}
	return len(p), nil
}

// finish ends the transcript with the apply's outcome and commits it.
func (l *sqlLog) finish(res *ApplyResult, applyErr error) error {
	switch {
	case applyErr != nil:
		fmt.Fprintf(l, "ROLLBACK;\n-- the apply failed, nothing was changed: %s\n", oneLine(ErrorMessage(applyErr)))
	case res != nil && res.AlreadyApplied != nil:
		fmt.Fprintf(l, "-- already applied by %s at %s: nothing ran\n", res.AlreadyApplied.By, res.AlreadyApplied.At.UTC().Format(time.RFC3339))
	}
	if l.err != nil {
		_ = l.w.Abort()
		return l.err
	}
	return l.w.Commit()
}
