package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

var _ release.VersionStore = (*Store)(nil)

const versionColumns = "id, app, env, description, created_by, created_at, auto, core_version, plugins, tables"

// SaveVersion records a version; its ID is never reused.
func (s *Store) SaveVersion(ctx context.Context, v *release.Version) error {
	tables, err := json.Marshal(v.Tables)
	if err != nil {
		return s.internal(err, "encode version %s", v.ID)
	}
	plugins, err := json.Marshal(v.Plugins)
	if err != nil {
		return s.internal(err, "encode version %s", v.ID)
	}
	_, err = s.pool.Exec(ctx, "INSERT INTO relbot_versions ("+versionColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		v.ID, v.App, v.Env, v.Description, v.CreatedBy, v.CreatedAt.UTC().Truncate(time.Microsecond), v.Auto, v.CoreVersion, plugins, tables)
	if err != nil {
		return s.internal(err, "save version %s", v.ID)
	}
	return nil
}

// GetVersion finds a version by ID.
func (s *Store) GetVersion(ctx context.Context, id string) (*release.Version, error) {
	return getByID(ctx, s, "version", "SELECT "+versionColumns+" FROM relbot_versions WHERE id = $1", id, scanVersion)
}

// ListVersions returns an app's versions, newest first.
func (s *Store) ListVersions(ctx context.Context, app string) ([]*release.Version, error) {
	return listRows(ctx, s, scanVersion, "list versions of "+app,
		"SELECT "+versionColumns+" FROM relbot_versions WHERE app = $1 ORDER BY created_at DESC, length(id) DESC, id DESC", app)
}

// DeleteVersion removes a version's record (its blobs are the caller's).
func (s *Store) DeleteVersion(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM relbot_versions WHERE id = $1", id)
	if err != nil {
		return s.internal(err, "delete version %s", id)
	}
	if tag.RowsAffected() == 0 {
		return release.Errorf(release.CodeNotFound, "no version %s", id)
	}
	return nil
}

func scanVersion(row pgx.Row) (*release.Version, error) {
	var v release.Version
	var plugins, tables []byte
	if err := row.Scan(&v.ID, &v.App, &v.Env, &v.Description, &v.CreatedBy, &v.CreatedAt, &v.Auto, &v.CoreVersion, &plugins, &tables); err != nil {
		return nil, err
	}
	v.CreatedAt = v.CreatedAt.UTC()
	if len(plugins) > 0 {
		if err := json.Unmarshal(plugins, &v.Plugins); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(tables, &v.Tables); err != nil {
		return nil, err
	}
	return &v, nil
}
