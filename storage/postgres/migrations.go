package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

var _ release.MigrationStore = (*Store)(nil)

const migrationColumns = "id, app, source_env, version, note, created_by, created_at, artifact, size, sha256, summary"

// SaveMigration records a migration file; its ID is never reused.
func (s *Store) SaveMigration(ctx context.Context, m *release.Migration) error {
	summary, err := json.Marshal(m.Summary)
	if err != nil {
		return s.internal(err, "encode migration %s", m.ID)
	}
	_, err = s.pool.Exec(ctx, "INSERT INTO relbot_migrations ("+migrationColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		m.ID, m.App, m.SourceEnv, m.Version, m.Note, m.CreatedBy, m.CreatedAt.UTC().Truncate(time.Microsecond), m.Artifact, m.Size, m.SHA256, summary)
	if err != nil {
		return s.internal(err, "save migration %s", m.ID)
	}
	return nil
}

// GetMigration finds a migration by ID.
func (s *Store) GetMigration(ctx context.Context, id string) (*release.Migration, error) {
	return getByID(ctx, s, "migration", "SELECT "+migrationColumns+" FROM relbot_migrations WHERE id = $1", id, scanMigration)
}

// ListMigrations returns an app's migrations, newest first.
func (s *Store) ListMigrations(ctx context.Context, app string) ([]*release.Migration, error) {
	return listRows(ctx, s, scanMigration, "list migrations of "+app,
		"SELECT "+migrationColumns+" FROM relbot_migrations WHERE app = $1 ORDER BY created_at DESC, id DESC", app)
}

func scanMigration(row pgx.Row) (*release.Migration, error) {
	var m release.Migration
	var summary []byte
	if err := row.Scan(&m.ID, &m.App, &m.SourceEnv, &m.Version, &m.Note, &m.CreatedBy, &m.CreatedAt, &m.Artifact, &m.Size, &m.SHA256, &summary); err != nil {
		return nil, err
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if err := json.Unmarshal(summary, &m.Summary); err != nil {
		return nil, err
	}
	return &m, nil
}

// SaveMigrationRun keeps the execution log of one apply.
func (s *Store) SaveMigrationRun(ctx context.Context, r *release.MigrationRun) error {
	result, err := json.Marshal(r.Result)
	if err != nil {
		return s.internal(err, "encode run of %s", r.Migration)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO relbot_migration_runs (migration, env, by_user, started_at, ok, error, result) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.Migration, r.Env, r.By, r.StartedAt.UTC().Truncate(time.Microsecond), r.OK, r.Error, result)
	if err != nil {
		return s.internal(err, "save run of %s", r.Migration)
	}
	return nil
}

// ListMigrationRuns returns the applies of a migration, oldest first.
func (s *Store) ListMigrationRuns(ctx context.Context, id string) ([]*release.MigrationRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT migration, env, by_user, started_at, ok, error, result FROM relbot_migration_runs WHERE migration = $1 ORDER BY started_at, id`, id)
	if err != nil {
		return nil, s.internal(err, "list runs of %s", id)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*release.MigrationRun, error) {
		var r release.MigrationRun
		var result []byte
		if err := row.Scan(&r.Migration, &r.Env, &r.By, &r.StartedAt, &r.OK, &r.Error, &result); err != nil {
			return nil, err
		}
		r.StartedAt = r.StartedAt.UTC()
		if len(result) > 0 && string(result) != "null" {
			r.Result = &release.ApplyResult{}
			if err := json.Unmarshal(result, r.Result); err != nil {
				return nil, err
			}
		}
		return &r, nil
	})
	if err != nil {
		return nil, s.internal(err, "list runs of %s", id)
	}
	return out, nil
}
