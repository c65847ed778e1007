// Package nocobase is relbot's engine for what is particular to NocoBase
// apps: the layout of an installation's tables (layout.go), its versions,
// and its own environmentVariables table, written in the form a running
// NocoBase reads it.
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
	"github.com/relbot/relbot/release/pgschema"
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
	c := conn.cols
	_, err = conn.Exec(ctx, `INSERT INTO `+conn.table+` (`+c.name+`, `+c.kind+`, `+c.value+`, `+c.created+`, `+c.updated+`)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (`+c.name+`) DO UPDATE SET `+c.kind+` = excluded.`+c.kind+`, `+c.value+` = excluded.`+c.value+`, `+c.updated+` = excluded.`+c.updated,
		name, kind, stored, now().UTC())
	if err != nil {
		// PostgreSQL's messages name columns, not parameter values.
		return fmt.Errorf("write %s to %s of %s: %w", name, conn.key, env.Name, err)
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
	if _, err := conn.Exec(ctx, `DELETE FROM `+conn.table+` WHERE `+conn.cols.name+` = $1`, name); err != nil {
		return fmt.Errorf("delete %s from %s of %s: %w", name, conn.key, env.Name, err)
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
	rows, err := conn.Query(ctx, `SELECT `+conn.cols.name+`, `+conn.cols.kind+` = 'secret' FROM `+conn.table)
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", conn.key, env.Name, err)
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
		return nil, fmt.Errorf("read %s of %s: %w", conn.key, env.Name, err)
	}
	return names, nil
}

// varConn is a connection to an environment's database with where its
// variables table is: environmentVariables(name, type, value, createdAt,
// updatedAt) under the environment's layout (nocobase.nb_environment_variables
// with created_at, updated_at when prefixed, underscored and in a schema).
type varConn struct {
	*pgx.Conn
	table string // qualified and quoted
	key   string // as users read it
	cols  struct{ name, kind, value, created, updated string }
}

// VariablesTable is the plain name of NocoBase's variables table.
const VariablesTable = "environmentVariables"

// open connects to the environment's database, resolves its layout and
// checks that the variables table is there: an empty database (a recovery
// environment before its first restore) wraps release.ErrNoVariablesTable.
func (v *Variables) open(ctx context.Context, env *release.Environment) (*varConn, error) {
	conn, err := connectEnv(ctx, env)
	if err != nil {
		return nil, err
	}
	rep, err := ReadLayout(ctx, conn, env)
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	l := rep.Layout
	vc := &varConn{Conn: conn, table: pgschema.Ident(l.SchemaName(), l.Table(VariablesTable)), key: l.Key(VariablesTable)}
	vc.cols.name = pgschema.QuoteIdent(l.Column("name"))
	vc.cols.kind = pgschema.QuoteIdent(l.Column("type"))
	vc.cols.value = pgschema.QuoteIdent(l.Column("value"))
	vc.cols.created = pgschema.QuoteIdent(l.Column("createdAt"))
	vc.cols.updated = pgschema.QuoteIdent(l.Column("updatedAt"))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, vc.table).Scan(&exists); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("look for %s in %s: %w", vc.key, env.Name, err)
	}
	if !exists {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%s (no %s under the layout %s): %w", env.Name, vc.key, l, release.ErrNoVariablesTable)
	}
	return vc, nil
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
