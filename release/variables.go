package release

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"time"
)

// varNameRE is the rule for variable and secret names: the same names work
// as environment variables and in NocoBase's {{$env.NAME}} references.
var varNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// maxVarName and maxVarValue bound what is stored; NocoBase's name column
// is varchar(255).
const (
	maxVarName  = 255
	maxVarValue = 64 << 10
)

// ValidVarName reports whether name may name a variable or secret.
func ValidVarName(name string) bool {
	return len(name) <= maxVarName && varNameRE.MatchString(name)
}

// AppKeySecret is the relbot secret that, when set in an environment, holds
// the app's own 32-byte key (64 hex characters) for its secret variables.
// It is relbot's only: it is never written to the app's variables table.
const AppKeySecret = "APP_AES_SECRET_KEY"

// Masked is what every view shows in place of a secret's value.
const Masked = "********"

// StoredVariable is one variable or secret in relbot's own store. A secret
// has Ciphertext and KeyID and no Value; a plain variable only Value.
type StoredVariable struct {
	App, Env, Name string
	Secret         bool
	Value          string // plain variables only
	Ciphertext     []byte // secrets: nonce || AES-256-GCM sealed value
	KeyID          string // secrets: KeyID of the key that sealed it
	UpdatedBy      string
	UpdatedAt      time.Time
}

// VariableStore keeps variables and secrets in relbot's own database.
// Implementations never log values.
type VariableStore interface {
	// PutVariable inserts or replaces the variable (App, Env, Name).
	PutVariable(ctx context.Context, v StoredVariable) error
	// DeleteVariable removes it, or returns CodeNotFound.
	DeleteVariable(ctx context.Context, app, env, name string) error
	// ListVariables returns an environment's variables ordered by name.
	ListVariables(ctx context.Context, app, env string) ([]StoredVariable, error)
	// AllSecrets returns every secret of every app and environment.
	AllSecrets(ctx context.Context) ([]StoredVariable, error)
}

// ErrNoVariablesTable is wrapped by AppVariables when the environment's
// database has no variables table yet (an empty recovery database): relbot
// then keeps the variable in its own store only.
var ErrNoVariablesTable = errors.New("the app's database has no environmentVariables table")

// AppVariables is the environment's own variables table, where the running
// app reads them (NocoBase's environmentVariables).
type AppVariables interface {
	// Put inserts or updates one variable; a secret is stored in the form
	// the app decrypts.
	Put(ctx context.Context, env *Environment, name string, secret bool, value string) error
	// Delete removes one variable; a missing one is not an error.
	Delete(ctx context.Context, env *Environment, name string) error
	// Names maps every variable's name to whether it is a secret.
	Names(ctx context.Context, env *Environment) (map[string]bool, error)
}

// KeyID names a key without revealing it: the first 8 hex characters of
// its SHA-256. Stored with each secret, it tells a wrong key from damage.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:8]
}

// secretAAD binds a ciphertext to its place, so a sealed value copied to
// another app, environment or name does not open there.
func secretAAD(app, env, name string) []byte {
	return []byte("relbot secret\x00" + app + "\x00" + env + "\x00" + name)
}

// sealSecret encrypts value with AES-256-GCM under key.
func sealSecret(key []byte, app, env, name, value string) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, []byte(value), secretAAD(app, env, name)), nil
}

// openSecret decrypts what sealSecret made. Its error never holds the value.
func openSecret(key []byte, v StoredVariable) (string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return "", err
	}
	if len(v.Ciphertext) < gcm.NonceSize()+gcm.Overhead() {
		return "", errors.New("ciphertext too short")
	}
	n := gcm.NonceSize()
	plain, err := gcm.Open(nil, v.Ciphertext[:n], v.Ciphertext[n:], secretAAD(v.App, v.Env, v.Name))
	if err != nil {
		return "", errors.New("authentication failed")
	}
	return string(plain), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("the secret key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
