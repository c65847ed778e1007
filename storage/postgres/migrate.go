package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey serialises schema changes between replicas starting at the
// same time. It is an arbitrary constant ("relbot" in ASCII) that other users
// of a shared database are unlikely to pick.
const migrationLockKey int64 = 0x72656c626f74

type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the embedded files in version order. A malformed or
// duplicate file name is a programming error caught by the tests.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must look like 0001_init.sql", base)
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("migration file %s: versions start at 1", base)
		}
		if other, ok := seen[v]; ok {
			return nil, fmt.Errorf("migration files %s and %s share version %d", other, base, v)
		}
		seen[v] = base
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration the database lacks, each in its own
// transaction that first takes the advisory lock: a replica that loses the
// race waits, then sees the version recorded and skips it.
func migrate(ctx context.Context, conn *pgx.Conn, ms []migration, log *slog.Logger) error {
	known := 0
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	for _, m := range ms {
		applied := false
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			// Created under the lock: concurrent CREATE TABLE IF NOT EXISTS
			// can still fail on the catalog's unique index.
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS relbot_schema_migrations (
				version    int         PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
				return fmt.Errorf("create relbot_schema_migrations: %w", err)
			}
			var newest int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM relbot_schema_migrations").Scan(&newest); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if newest > known {
				return &release.Error{
					Code: release.CodeIncompatible,
					Message: fmt.Sprintf("the bot's database has schema version %d but this relbot knows only up to %d: "+
						"run a newer relbot (downgrades are not supported)", newest, known),
				}
			}
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM relbot_schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if done {
				return nil
			}
			// No arguments: pgx uses the simple protocol, so a file may hold
			// several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO relbot_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record: %w", err)
			}
			applied = true
			return nil
		})
		if err != nil {
			if release.ErrorCode(err) == release.CodeIncompatible {
				return err
			}
			return fmt.Errorf("schema migration %04d_%s: %w", m.version, m.name, err)
		}
		if applied {
			log.Info("applied schema migration", "version", m.version, "name", m.name)
		}
	}
	return nil
}
