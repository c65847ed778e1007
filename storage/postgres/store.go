// Package postgres keeps the bot's own records in PostgreSQL. Its schema is a
// series of embedded SQL migrations applied when the store opens.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relbot/relbot/release"
)

var _ release.Store = (*Store)(nil)

// maxConns bounds the bot's connections: its records are small and its
// transactions short.
const maxConns = 10

// Store implements release.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to dsn, brings the schema up to date and returns a Store.
// Replicas may Open at the same time; schema changes are serialised.
//
// maxConns, when given and positive, bounds the pool instead of the default
// (a terminal command needs a few connections, a server more).
func Open(ctx context.Context, dsn string, log *slog.Logger, maxConnsOpt ...int32) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The cause may quote the DSN and its password: keep it for the log.
		return nil, &release.Error{Code: release.CodeInvalid, Message: "the bot's database URL is not a valid PostgreSQL DSN", Err: err}
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, fmt.Errorf("load schema migrations: %w", err)
	}
	cfg.MaxConns = maxConns
	if len(maxConnsOpt) > 0 && maxConnsOpt[0] > 0 {
		cfg.MaxConns = maxConnsOpt[0]
	}
	// Connections are opened on demand, so this does not touch the server:
	// the first Acquire below does.
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the bot's database: %w", err)
	}
	err = p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return migrate(ctx, c.Conn(), ms, log) })
	if err != nil {
		p.Close()
		var relErr *release.Error
		if errors.As(err, &relErr) {
			return nil, err
		}
		if isConnectError(err) {
			return nil, &release.Error{Code: release.CodeUnavailable,
				Message: fmt.Sprintf("cannot connect to the bot's database at %s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port), Err: err}
		}
		return nil, fmt.Errorf("open the bot's database: %w", err)
	}
	return &Store{pool: p}, nil
}

// Close rejects new calls, closes idle connections and waits until the calls
// in flight have returned theirs. It may be called more than once.
func (s *Store) Close() { s.pool.Close() }

// NextID allocates the next ID of kind for app. One upsert both creates the
// counter and increments it, so concurrent callers never get the same number.
func (s *Store) NextID(ctx context.Context, app, kind string) (string, error) {
	if app == "" || kind == "" {
		return "", release.Errorf(release.CodeInvalid, "an ID needs an app and a kind")
	}
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO relbot_ids (app, kind, last) VALUES ($1, $2, 1)
		ON CONFLICT (app, kind) DO UPDATE SET last = relbot_ids.last + 1
		RETURNING last`, app, kind).Scan(&n)
	if err != nil {
		return "", s.internal(err, "allocate %s ID for %s", kind, app)
	}
	return fmt.Sprintf("%s-%s%d", app, kind, n), nil
}

// SaveBackup inserts the backup, or replaces the record with the same ID.
// Times are stored at PostgreSQL's microsecond precision.
func (s *Store) SaveBackup(ctx context.Context, b *release.Backup) error {
	if b == nil || b.ID == "" || b.App == "" || b.Env == "" || b.Kind == "" {
		return release.Errorf(release.CodeInvalid, "a backup needs an ID, an app, an environment and a kind")
	}
	if b.CreatedAt.IsZero() {
		return release.Errorf(release.CodeInvalid, "backup %s has no creation time", b.ID)
	}
	manifest, err := json.Marshal(b.Manifest)
	if err != nil {
		return fmt.Errorf("backup %s: encode manifest: %w", b.ID, err)
	}
	micro := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		v := t.Truncate(time.Microsecond)
		return &v
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO relbot_backups
		(id, app, env, kind, created_by, created_at, artifact, size, sha256, manifest, verified_at, release_id, checked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULLIF($12, ''), $13)
		ON CONFLICT (id) DO UPDATE SET
			app = excluded.app, env = excluded.env, kind = excluded.kind,
			created_by = excluded.created_by, created_at = excluded.created_at,
			artifact = excluded.artifact, size = excluded.size, sha256 = excluded.sha256,
			manifest = excluded.manifest, verified_at = excluded.verified_at,
			release_id = excluded.release_id, checked_at = excluded.checked_at`,
		b.ID, b.App, b.Env, string(b.Kind), b.CreatedBy, b.CreatedAt.Truncate(time.Microsecond),
		b.Artifact, b.Size, b.SHA256, manifest, micro(b.VerifiedAt), b.ReleaseID, micro(b.CheckedAt))
	if err != nil {
		return s.internal(err, "save backup %s", b.ID)
	}
	return nil
}

const backupColumns = `id, app, env, kind, created_by, created_at, artifact, size, sha256,
	manifest, verified_at, coalesce(release_id, ''), checked_at`

func scanBackup(row pgx.Row) (*release.Backup, error) {
	var (
		b        release.Backup
		kind     string
		manifest []byte
	)
	err := row.Scan(&b.ID, &b.App, &b.Env, &kind, &b.CreatedBy, &b.CreatedAt, &b.Artifact,
		&b.Size, &b.SHA256, &manifest, &b.VerifiedAt, &b.ReleaseID, &b.CheckedAt)
	if err != nil {
		return nil, err
	}
	b.Kind = release.BackupKind(kind)
	// pgx returns timestamptz in the local zone; records are UTC everywhere.
	b.CreatedAt = b.CreatedAt.UTC()
	for _, t := range []**time.Time{&b.VerifiedAt, &b.CheckedAt} {
		if *t != nil {
			v := (*t).UTC()
			*t = &v
		}
	}
	if err := json.Unmarshal(manifest, &b.Manifest); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return &b, nil
}

// GetBackup returns one backup, or CodeNotFound.
func (s *Store) GetBackup(ctx context.Context, id string) (*release.Backup, error) {
	return getByID(ctx, s, "backup", "SELECT "+backupColumns+" FROM relbot_backups WHERE id = $1", id, scanBackup)
}

// ListBackups returns an environment's backups, newest first.
func (s *Store) ListBackups(ctx context.Context, app, env string) ([]*release.Backup, error) {
	return listRows(ctx, s, scanBackup, fmt.Sprintf("list backups of %s %s", app, env),
		"SELECT "+backupColumns+" FROM relbot_backups WHERE app = $1 AND env = $2 ORDER BY created_at DESC, id DESC", app, env)
}

// getByID scans the row sql finds for id; no row is CodeNotFound naming
// what ("no backup crm-b3").
func getByID[T any](ctx context.Context, s *Store, what, sql, id string, scan func(pgx.Row) (T, error)) (T, error) {
	v, err := scan(s.pool.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		var none T
		return none, release.Errorf(release.CodeNotFound, "no %s %s", what, id)
	}
	if err != nil {
		var none T
		return none, s.internal(err, "get %s %s", what, id)
	}
	return v, nil
}

// listRows scans every row sql finds; doing names the work in errors.
func listRows[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), doing, sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.internal(err, "%s", doing)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, s.internal(err, "%s", doing)
	}
	return out, nil
}

// DeleteBackup removes the record (not the archive), or returns CodeNotFound.
func (s *Store) DeleteBackup(ctx context.Context, id string) error {
	return s.updateBackup(ctx, id, "delete", "DELETE FROM relbot_backups WHERE id = $1", id)
}

// MarkBackupVerified records a verify that passed at at.
func (s *Store) MarkBackupVerified(ctx context.Context, id string, at time.Time) error {
	return s.updateBackup(ctx, id, "mark verified", "UPDATE relbot_backups SET verified_at = $2 WHERE id = $1",
		id, at.Truncate(time.Microsecond))
}

// updateBackup runs a statement that must touch exactly the row id.
func (s *Store) updateBackup(ctx context.Context, id, what, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return s.internal(err, "%s backup %s", what, id)
	}
	if tag.RowsAffected() == 0 {
		return release.Errorf(release.CodeNotFound, "no backup %s", id)
	}
	return nil
}

// internal wraps a database failure for the log. The user sees the generic
// internal message, or "not available" when the database cannot be reached.
func (s *Store) internal(err error, format string, args ...any) error {
	err = fmt.Errorf(format+": %w", append(args, err)...)
	if isConnectError(err) {
		return &release.Error{Code: release.CodeUnavailable, Message: "the bot's database is not available", Err: err}
	}
	return err
}

// isConnectError reports whether err means the server could not be reached,
// as opposed to a query it refused.
func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// Ping says whether the bot's database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
