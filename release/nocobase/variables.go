// Package nocobase is relbot's engine for what is particular to NocoBase
// apps. Variables writes an environment's own environmentVariables table in
// the form a running NocoBase reads it.
package nocobase

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

var _ release.AppVariables = (*Variables)(nil)

// KeyFile is where NocoBase keeps its key for secret variables, relative to
// the storage directory ("main" is the name of NocoBase's own app).
const KeyFile = "apps/main/aes_key.dat"

// Variables implements release.AppVariables on NocoBase's
// environmentVariables(name PK, type 'default'|'secret', value, createdAt,
// updatedAt). Secrets are AES-256-CBC (PKCS#7) with the app's 32-byte key,
// stored as hex(IV) followed by hex(ciphertext), as NocoBase's AesEncryptor
// writes them.
type Variables struct {
	// KeyFor returns the app's key when relbot holds it (secret
	// APP_AES_SECRET_KEY), or nil to read the storage directory's KeyFile.
	KeyFor func(ctx context.Context, env *release.Environment) ([]byte, error)
	// Now stamps createdAt/updatedAt; nil means time.Now.
	Now func() time.Time
}

// Put inserts or updates one variable; an update keeps createdAt.
func (v *Variables) Put(ctx context.Context, env *release.Environment, name string, secret bool, value string) error {
	conn, err := v.open(ctx, env)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	kind, stored := "default", value
	if secret {
		key, err := v.key(ctx, env)
		if err != nil {
			return err
		}
		kind = "secret"
		if stored, err = Encrypt(key, value); err != nil {
			return fmt.Errorf("encrypt secret %s: %w", name, err)
		}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	_, err = conn.Exec(ctx, `INSERT INTO "environmentVariables" ("name", "type", "value", "createdAt", "updatedAt")
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT ("name") DO UPDATE SET "type" = excluded."type", "value" = excluded."value", "updatedAt" = excluded."updatedAt"`,
		name, kind, stored, now().UTC())
	if err != nil {
		// PostgreSQL's messages name columns, not parameter values.
		return fmt.Errorf("write %s to environmentVariables of %s: %w", name, env.Name, err)
	}
	return nil
}

// Delete removes one variable; a missing one is not an error.
func (v *Variables) Delete(ctx context.Context, env *release.Environment, name string) error {
	conn, err := v.open(ctx, env)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DELETE FROM "environmentVariables" WHERE "name" = $1`, name); err != nil {
		return fmt.Errorf("delete %s from environmentVariables of %s: %w", name, env.Name, err)
	}
	return nil
}

// Names maps every variable name of the table to whether it is a secret.
func (v *Variables) Names(ctx context.Context, env *release.Environment) (map[string]bool, error) {
	conn, err := v.open(ctx, env)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT "name", "type" = 'secret' FROM "environmentVariables"`)
	if err != nil {
		return nil, fmt.Errorf("read environmentVariables of %s: %w", env.Name, err)
	}
	names := map[string]bool{}
	for rows.Next() {
		var (
			name   string
			secret bool
		)
		if err := rows.Scan(&name, &secret); err != nil {
			return nil, err
		}
		names[name] = secret
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read environmentVariables of %s: %w", env.Name, err)
	}
	return names, nil
}

// open connects to the environment's database and checks that the table is
// there: an empty database (a recovery environment before its first
// restore) wraps release.ErrNoVariablesTable.
func (v *Variables) open(ctx context.Context, env *release.Environment) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(env.Database)
	if err != nil {
		// The cause may quote the DSN and its password: logs only.
		return nil, &release.Error{Code: release.CodeInvalid, Message: fmt.Sprintf("the database URL of %s is not a valid PostgreSQL DSN", env.Name), Err: err}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, release.Errorf(release.CodeUnavailable, "cannot connect to database %s of %s: %w", cfg.Database, env.Name, err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('"environmentVariables"') IS NOT NULL`).Scan(&exists); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("look for environmentVariables in %s: %w", env.Name, err)
	}
	if !exists {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%s: %w", env.Name, release.ErrNoVariablesTable)
	}
	return conn, nil
}

// key is the app's key: relbot's copy if it holds one, else the key file in
// the environment's storage directory.
func (v *Variables) key(ctx context.Context, env *release.Environment) ([]byte, error) {
	if v.KeyFor != nil {
		key, err := v.KeyFor(ctx, env)
		if err != nil {
			return nil, err
		}
		if key != nil {
			return key, nil
		}
	}
	hint := fmt.Sprintf("or set the key as secret %s of %s (64 hex characters)", release.AppKeySecret, env.Name)
	if env.Storage == "" {
		return nil, release.Errorf(release.CodeUnavailable, "%s has no storage directory to read the app's key (%s) from: configure its storage, %s", env.Name, KeyFile, hint)
	}
	key, err := os.ReadFile(filepath.Join(env.Storage, filepath.FromSlash(KeyFile)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, release.Errorf(release.CodeUnavailable, "the app's key file %s is missing from the storage directory of %s: start the app once so it makes one, %s", KeyFile, env.Name, hint)
	}
	if err != nil {
		return nil, release.Errorf(release.CodeUnavailable, "cannot read the app's key file %s of %s: %w", KeyFile, env.Name, err)
	}
	if len(key) != 32 {
		return nil, release.Errorf(release.CodeInvalid, "the app's key file %s of %s holds %d bytes, not 32", KeyFile, env.Name, len(key))
	}
	return key, nil
}

// Encrypt seals value the way NocoBase's AesEncryptor does: AES-256-CBC
// with PKCS#7 padding under a random IV, as hex(IV) + hex(ciphertext).
func Encrypt(key []byte, value string) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	if len(key) != 32 {
		return "", errors.New("the app's key must be 32 bytes")
	}
	n := aes.BlockSize - len(value)%aes.BlockSize
	plain := make([]byte, len(value)+n)
	copy(plain, value)
	for i := len(value); i < len(plain); i++ {
		plain[i] = byte(n)
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return hex.EncodeToString(iv) + hex.EncodeToString(out), nil
}
