package release

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// VariableService keeps environments' variables and secrets. SecretKey
// seals secrets; PreviousSecretKey only opens them, during a key rotation.
// AppVariables, when set, writes a NocoBase app's own variables table.
type VariableService struct {
	*Core
	Store             VariableStore
	AppVariables      AppVariables
	SecretKey         []byte
	PreviousSecretKey []byte
}

// VariableView is one variable as users see it. A secret's Value is always
// Masked: views never carry secret values.
type VariableView struct {
	Name      string
	Secret    bool
	Value     string // plain value; Masked for a secret; empty when only the app has it
	InRelbot  bool   // in relbot's own store
	InApp     bool   // in the environment's own variables table
	UpdatedBy string
	UpdatedAt time.Time
}

// BuiltinNocoBase is the preset whose apps read variables from their own
// environmentVariables table.
const BuiltinNocoBase = "nocobase"

// usesAppTable reports whether a's variables are also written to the
// environment's own table; apps without the preset keep them in relbot only.
func (s *VariableService) usesAppTable(a *App) bool {
	return a.Builtin == BuiltinNocoBase && s.AppVariables != nil
}

// ListVariables lists an environment's variables and secrets by name:
// relbot's own and, for NocoBase apps, those of the app's table.
func (s *VariableService) ListVariables(ctx context.Context, app, env string) ([]VariableView, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	stored, err := s.Store.ListVariables(ctx, a.Name, e.Name)
	if err != nil {
		return nil, err
	}
	inApp, err := s.appNames(ctx, a, e)
	if err != nil {
		return nil, err
	}
	byName := map[string]*VariableView{}
	for _, v := range stored {
		view := &VariableView{Name: v.Name, Secret: v.Secret, Value: v.Value, InRelbot: true, UpdatedBy: v.UpdatedBy, UpdatedAt: v.UpdatedAt}
		if v.Secret {
			view.Value = Masked
		}
		byName[v.Name] = view
	}
	for name, secret := range inApp {
		view, ok := byName[name]
		if !ok {
			view = &VariableView{Name: name, Secret: secret}
			if secret {
				view.Value = Masked
			}
			byName[name] = view
		}
		view.InApp = true
	}
	out := make([]VariableView, 0, len(byName))
	for _, v := range byName {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// VariableNames maps every variable name an environment has, in relbot's
// store or in the app's table, to whether it is a secret. Release preflight
// compares a migration's references with it.
func (s *VariableService) VariableNames(ctx context.Context, app, env string) (map[string]bool, error) {
	vs, err := s.ListVariables(ctx, app, env)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(vs))
	for _, v := range vs {
		names[v.Name] = v.Secret
	}
	return names, nil
}

// appNames reads the app's table; an environment whose database has no
// such table yet has no variables there.
func (s *VariableService) appNames(ctx context.Context, a *App, e *Environment) (map[string]bool, error) {
	if !s.usesAppTable(a) {
		return nil, nil
	}
	names, err := s.AppVariables.Names(ctx, e)
	if errors.Is(err, ErrNoVariablesTable) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapUser(err, "cannot read the variables of %s %s from the app's database", a.Name, e.Name)
	}
	return names, nil
}

// existing says where a name is already set and whether it is a secret there.
type existing struct {
	inRelbot, inApp bool
	secret          bool
}

func (s *VariableService) lookupVariable(ctx context.Context, a *App, e *Environment, name string) (existing, error) {
	var x existing
	stored, err := s.Store.ListVariables(ctx, a.Name, e.Name)
	if err != nil {
		return x, err
	}
	for _, v := range stored {
		if v.Name == name {
			x.inRelbot, x.secret = true, v.Secret
		}
	}
	names, err := s.appNames(ctx, a, e)
	if err != nil {
		return x, err
	}
	if secret, ok := names[name]; ok {
		x.inApp = true
		if !x.inRelbot {
			x.secret = secret
		}
	}
	return x, nil
}

func checkVarName(name string) error {
	if !ValidVarName(name) {
		return Errorf(CodeInvalid, "%s is not a valid variable name: letters, digits and '_', starting with a letter (at most %d characters)", shortQuote(name), maxVarName)
	}
	return nil
}

// shortQuote quotes user input for a message, cut short so a message stays
// one readable line.
func shortQuote(s string) string {
	return fmt.Sprintf("%q", Cut(s, 41))
}

// SetVariable sets a plain variable of an environment.
func (s *VariableService) SetVariable(ctx context.Context, actor, app, env, name, value string) (*VariableView, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActVarSet, a, e); err != nil {
		return nil, err
	}
	if err := checkVarName(name); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, Errorf(CodeInvalid, "var set needs NAME=VALUE: %s has no value (nothing was changed; to remove it: var unset %s %s %s)", name, a.Name, e.Name, name)
	}
	if len(value) > maxVarValue {
		return nil, Errorf(CodeInvalid, "the value of %s is too long: %d bytes, at most %d (nothing was changed)", name, len(value), maxVarValue)
	}
	if name == AppKeySecret {
		return nil, Errorf(CodeInvalid, "%s is the app's encryption key and can only be a secret: secret set %s %s %s", name, a.Name, e.Name, name)
	}
	x, err := s.lookupVariable(ctx, a, e, name)
	if err != nil {
		return nil, err
	}
	if x.secret && (x.inRelbot || x.inApp) {
		// Turning a secret into a plain variable would show its next value.
		return nil, Errorf(CodeConflict, "%s is a secret of %s %s and stays one: set it with secret set, or remove it first with secret unset %s %s %s",
			name, a.Name, e.Name, a.Name, e.Name, name)
	}
	v := StoredVariable{App: a.Name, Env: e.Name, Name: name, Value: value, UpdatedBy: actor, UpdatedAt: s.Now().UTC()}
	return s.putVariable(ctx, a, e, v, value)
}

// SetSecret sets a secret of an environment. The value is encrypted before
// it is stored and never appears in errors or logs.
func (s *VariableService) SetSecret(ctx context.Context, actor, app, env, name, value string) (*VariableView, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActSecretSet, a, e); err != nil {
		return nil, err
	}
	if err := checkVarName(name); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, Errorf(CodeInvalid, "secret set needs a value: none was given for %s (nothing was stored)", name)
	}
	if len(value) > maxVarValue {
		return nil, Errorf(CodeInvalid, "the value of secret %s is too long: %d bytes, at most %d (nothing was stored)", name, len(value), maxVarValue)
	}
	if name == AppKeySecret {
		if k, err := hex.DecodeString(value); err != nil || len(k) != 32 {
			return nil, Errorf(CodeInvalid, "%s must be the app's 32-byte key as 64 hex characters (nothing was stored)", name)
		}
	}
	key, err := s.secretKey()
	if err != nil {
		return nil, err
	}
	// Refuse to mix keys: a secret sealed now with a key that cannot open
	// the others would leave the store readable by no single key.
	all, err := s.Store.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkKeyIDs(all); err != nil {
		return nil, err
	}
	sealed, err := sealSecret(key, a.Name, e.Name, name, value)
	if err != nil {
		return nil, fmt.Errorf("encrypt secret %s of %s %s: %w", name, a.Name, e.Name, err)
	}
	v := StoredVariable{App: a.Name, Env: e.Name, Name: name, Secret: true, Ciphertext: sealed, KeyID: KeyID(key),
		UpdatedBy: actor, UpdatedAt: s.Now().UTC()}
	return s.putVariable(ctx, a, e, v, value)
}

// putVariable writes the app's table first: when the app cannot take the
// value (no key, database down), relbot's store is left as it was.
func (s *VariableService) putVariable(ctx context.Context, a *App, e *Environment, v StoredVariable, value string) (*VariableView, error) {
	kind := kindOf(v.Secret)
	log := s.Log.With("app", a.Name, "env", e.Name, "name", v.Name, "kind", kind)
	inApp := false
	if s.usesAppTable(a) && v.Name != AppKeySecret {
		err := s.AppVariables.Put(ctx, e, v.Name, v.Secret, value)
		switch {
		case errors.Is(err, ErrNoVariablesTable):
			log.Warn("variable kept in relbot only: the app's database has no environmentVariables table")
		case err != nil:
			log.Error("write variable to the app's table", "err", err)
			return nil, wrapUser(err, "cannot write %s %s to %s %s's own variables table (nothing was changed)", kind, v.Name, a.Name, e.Name)
		default:
			inApp = true
		}
	}
	if err := s.Store.PutVariable(ctx, v); err != nil {
		log.Error("store variable", "err", err)
		return nil, wrapUser(err, "cannot store %s %s of %s %s", kind, v.Name, a.Name, e.Name)
	}
	log.Info("variable set", "by", v.UpdatedBy, "in_app", inApp)
	view := &VariableView{Name: v.Name, Secret: v.Secret, Value: v.Value, InRelbot: true, InApp: inApp, UpdatedBy: v.UpdatedBy, UpdatedAt: v.UpdatedAt}
	if v.Secret {
		view.Value = Masked
	}
	return view, nil
}

func kindOf(secret bool) string {
	if secret {
		return "secret"
	}
	return "variable"
}

// UnsetVariable removes a plain variable from relbot's store and the app's table.
func (s *VariableService) UnsetVariable(ctx context.Context, actor, app, env, name string) error {
	return s.unset(ctx, actor, app, env, name, false)
}

// UnsetSecret removes a secret from relbot's store and the app's table.
func (s *VariableService) UnsetSecret(ctx context.Context, actor, app, env, name string) error {
	return s.unset(ctx, actor, app, env, name, true)
}

func (s *VariableService) unset(ctx context.Context, actor, app, env, name string, secret bool) error {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return err
	}
	act := ActVarUnset
	if secret {
		act = ActSecretUnset
	}
	if err := s.authorize(ctx, actor, act, a, e); err != nil {
		return err
	}
	if err := checkVarName(name); err != nil {
		return err
	}
	kind := kindOf(secret)
	x, err := s.lookupVariable(ctx, a, e, name)
	if err != nil {
		return err
	}
	if !x.inRelbot && !x.inApp {
		return Errorf(CodeNotFound, "%s %s has no %s %s", a.Name, e.Name, kind, name)
	}
	if x.secret != secret {
		other := "var unset"
		if x.secret {
			other = "secret unset"
		}
		return Errorf(CodeInvalid, "%s of %s %s is a %s, not a %s: use %s %s %s %s", name, a.Name, e.Name, kindOf(x.secret), kind, other, a.Name, e.Name, name)
	}
	log := s.Log.With("app", a.Name, "env", e.Name, "name", name, "kind", kind)
	if x.inApp {
		if err := s.AppVariables.Delete(ctx, e, name); err != nil && !errors.Is(err, ErrNoVariablesTable) {
			log.Error("delete variable from the app's table", "err", err)
			return wrapUser(err, "cannot remove %s %s from %s %s's own variables table (nothing was changed)", kind, name, a.Name, e.Name)
		}
	}
	if x.inRelbot {
		if err := s.Store.DeleteVariable(ctx, a.Name, e.Name, name); err != nil && ErrorCode(err) != CodeNotFound {
			log.Error("delete variable", "err", err)
			return wrapUser(err, "cannot remove %s %s of %s %s", kind, name, a.Name, e.Name)
		}
	}
	log.Info("variable unset", "by", actor, "in_app", x.inApp)
	return nil
}

// secretKey is RELBOT_SECRET_KEY, needed only when a secret is read or written.
func (s *VariableService) secretKey() ([]byte, error) {
	if len(s.SecretKey) == 0 {
		return nil, Errorf(CodeUnavailable, "RELBOT_SECRET_KEY is not set: secrets cannot be stored or read without it (32 random bytes as 64 hex characters: openssl rand -hex 32)")
	}
	if len(s.SecretKey) != 32 {
		return nil, Errorf(CodeInvalid, "RELBOT_SECRET_KEY must be 32 bytes (got %d)", len(s.SecretKey))
	}
	return s.SecretKey, nil
}

// keyFor returns the key, current or previous, whose id is id, or nil.
func (s *VariableService) keyFor(id string) []byte {
	if len(s.SecretKey) > 0 && id == KeyID(s.SecretKey) {
		return s.SecretKey
	}
	if len(s.PreviousSecretKey) > 0 && id == KeyID(s.PreviousSecretKey) {
		return s.PreviousSecretKey
	}
	return nil
}

// checkKeyIDs fails with one clear error when any secret was sealed with a
// key relbot does not have; callers check before decrypting anything.
func (s *VariableService) checkKeyIDs(vs []StoredVariable) error {
	for _, v := range vs {
		if s.keyFor(v.KeyID) == nil {
			return Errorf(CodeIncompatible, "secrets were encrypted with another RELBOT_SECRET_KEY (key id %s); set the right key", v.KeyID)
		}
	}
	return nil
}

// openAll decrypts every secret, or none: a wrong key is told before any
// decryption, and a secret that does not open with its own key is damage.
func (s *VariableService) openAll(vs []StoredVariable) ([]string, error) {
	if _, err := s.secretKey(); err != nil {
		return nil, err
	}
	if err := s.checkKeyIDs(vs); err != nil {
		return nil, err
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		plain, err := openSecret(s.keyFor(v.KeyID), v)
		if err != nil {
			return nil, Errorf(CodeDamaged, "secret %s of %s %s does not decrypt although its key (id %s) is set: the stored value is damaged; set it again with secret set", v.Name, v.App, v.Env, v.KeyID)
		}
		out[i] = plain
	}
	return out, nil
}

// SecretValues returns the clear value of every secret relbot holds, so the
// migration engine can refuse a file that carries one. Never log them.
func (s *VariableService) SecretValues(ctx context.Context) ([]string, error) {
	all, err := s.Store.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, nil
	}
	return s.openAll(all)
}

// minSecretMatch is the shortest secret looked for in free text: shorter
// values would match ordinary words.
const minSecretMatch = 6

// RefuseSecretIn refuses free text someone typed (a description, a reason)
// that holds the clear value of a secret relbot knows; what names the text.
// commands checks every free-text field with it.
func (s *VariableService) RefuseSecretIn(ctx context.Context, what, text string) error {
	secrets, err := s.SecretValues(ctx)
	if err != nil {
		return err
	}
	for _, v := range secrets {
		if len(v) >= minSecretMatch && strings.Contains(text, v) {
			return Errorf(CodeForbidden, "%s holds the value of a secret; write it without", what)
		}
	}
	return nil
}

// AppAESKey returns the app key held as relbot secret APP_AES_SECRET_KEY of
// env, or nil when it is not set (the app's engine then reads its own key
// file). env is matched by identity among the configured environments: the
// AppVariables interface passes only the environment.
func (s *VariableService) AppAESKey(ctx context.Context, env *Environment) ([]byte, error) {
	if env == nil {
		return nil, nil
	}
	var app *App
	for _, a := range s.apps {
		for _, e := range append(append([]*Environment{}, a.Environments...), a.Recovery) {
			if e == env {
				app = a
			}
		}
	}
	if app == nil {
		return nil, nil
	}
	stored, err := s.Store.ListVariables(ctx, app.Name, env.Name)
	if err != nil {
		return nil, err
	}
	for _, v := range stored {
		if v.Name != AppKeySecret || !v.Secret {
			continue
		}
		plain, err := s.openAll([]StoredVariable{v})
		if err != nil {
			return nil, err
		}
		key, err := hex.DecodeString(plain[0])
		if err != nil || len(key) != 32 {
			return nil, Errorf(CodeInvalid, "secret %s of %s %s is not 64 hex characters; set it again", AppKeySecret, app.Name, env.Name)
		}
		return key, nil
	}
	return nil, nil
}

// RekeySecrets re-encrypts every secret not sealed with RELBOT_SECRET_KEY,
// opening it with RELBOT_SECRET_KEY_PREVIOUS. Every secret is decrypted
// before any is written, so a missing key changes nothing; a run cut short
// can be repeated. It returns how many were re-encrypted, of how many.
func (s *VariableService) RekeySecrets(ctx context.Context) (rekeyed, total int, err error) {
	key, err := s.secretKey()
	if err != nil {
		return 0, 0, err
	}
	all, err := s.Store.AllSecrets(ctx)
	if err != nil {
		return 0, 0, err
	}
	plain, err := s.openAll(all)
	if err != nil {
		return 0, 0, err
	}
	current := KeyID(key)
	for i, v := range all {
		if v.KeyID == current {
			continue
		}
		sealed, err := sealSecret(key, v.App, v.Env, v.Name, plain[i])
		if err != nil {
			return rekeyed, len(all), fmt.Errorf("encrypt secret %s of %s %s: %w", v.Name, v.App, v.Env, err)
		}
		v.Ciphertext, v.KeyID = sealed, current // who and when stay: the value did not change
		if err := s.Store.PutVariable(ctx, v); err != nil {
			return rekeyed, len(all), wrapUser(err, "re-encrypting stopped after %d of %d secrets; run it again", rekeyed, len(all))
		}
		rekeyed++
		s.Log.Info("secret re-encrypted", "app", v.App, "env", v.Env, "name", v.Name, "key_id", current)
	}
	return rekeyed, len(all), nil
}
