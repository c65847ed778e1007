package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relbot/relbot/release"
)

var _ release.VariableStore = (*Store)(nil)

// PutVariable inserts or replaces one variable or secret. Errors name the
// variable, never its value.
func (s *Store) PutVariable(ctx context.Context, v release.StoredVariable) error {
	if v.App == "" || v.Env == "" || v.Name == "" {
		return release.Errorf(release.CodeInvalid, "a variable needs an app, an environment and a name")
	}
	if v.Secret && (len(v.Ciphertext) == 0 || v.KeyID == "") {
		return release.Errorf(release.CodeInvalid, "secret %s has no ciphertext or key id", v.Name)
	}
	var (
		value      *string
		ciphertext []byte
		keyID      *string
	)
	if v.Secret {
		ciphertext, keyID = v.Ciphertext, &v.KeyID
	} else {
		value = &v.Value
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO relbot_variables
		(app, env, name, secret, value, ciphertext, key_id, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (app, env, name) DO UPDATE SET
			secret = excluded.secret, value = excluded.value, ciphertext = excluded.ciphertext,
			key_id = excluded.key_id, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		v.App, v.Env, v.Name, v.Secret, value, ciphertext, keyID, v.UpdatedBy, v.UpdatedAt.Truncate(time.Microsecond))
	if err != nil {
		return s.internal(err, "save variable %s of %s %s", v.Name, v.App, v.Env)
	}
	return nil
}

// DeleteVariable removes one variable, or returns CodeNotFound.
func (s *Store) DeleteVariable(ctx context.Context, app, env, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM relbot_variables WHERE app = $1 AND env = $2 AND name = $3", app, env, name)
	if err != nil {
		return s.internal(err, "delete variable %s of %s %s", name, app, env)
	}
	if tag.RowsAffected() == 0 {
		return release.Errorf(release.CodeNotFound, "%s %s has no variable %s", app, env, name)
	}
	return nil
}

// ListVariables returns an environment's variables ordered by name.
func (s *Store) ListVariables(ctx context.Context, app, env string) ([]release.StoredVariable, error) {
	out, err := s.queryVariables(ctx, "WHERE app = $1 AND env = $2 ORDER BY name", app, env)
	if err != nil {
		return nil, s.internal(err, "list variables of %s %s", app, env)
	}
	return out, nil
}

// AllSecrets returns every secret, ordered by app, environment and name.
func (s *Store) AllSecrets(ctx context.Context) ([]release.StoredVariable, error) {
	out, err := s.queryVariables(ctx, "WHERE secret ORDER BY app, env, name")
	if err != nil {
		return nil, s.internal(err, "list secrets")
	}
	return out, nil
}

func (s *Store) queryVariables(ctx context.Context, where string, args ...any) ([]release.StoredVariable, error) {
	var out []release.StoredVariable
	err := s.pool.AcquireFunc(ctx, func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT app, env, name, secret, coalesce(value, ''), ciphertext,
			coalesce(key_id, ''), updated_by, updated_at FROM relbot_variables `+where, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (release.StoredVariable, error) {
			var v release.StoredVariable
			err := row.Scan(&v.App, &v.Env, &v.Name, &v.Secret, &v.Value, &v.Ciphertext, &v.KeyID, &v.UpdatedBy, &v.UpdatedAt)
			v.UpdatedAt = v.UpdatedAt.UTC()
			return v, err
		})
		return err
	})
	return out, err
}
