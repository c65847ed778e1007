package release

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
)

// memVars is an in-memory VariableStore.
type memVars struct{ m map[string]StoredVariable }

func (s *memVars) PutVariable(_ context.Context, v StoredVariable) error {
	s.m[v.App+"/"+v.Env+"/"+v.Name] = v
	return nil
}

func (s *memVars) DeleteVariable(_ context.Context, app, env, name string) error {
	k := app + "/" + env + "/" + name
	if _, ok := s.m[k]; !ok {
		return Errorf(CodeNotFound, "no %s", name)
	}
	delete(s.m, k)
	return nil
}

func (s *memVars) ListVariables(_ context.Context, app, env string) ([]StoredVariable, error) {
	var out []StoredVariable
	for _, v := range s.m {
		if v.App == app && v.Env == env {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *memVars) AllSecrets(context.Context) ([]StoredVariable, error) {
	var out []StoredVariable
	for _, v := range s.m {
		if v.Secret {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func newVarService(t *testing.T, builtin string) (*VariableService, *memVars) {
	t.Helper()
	app := &App{Name: "crm", Builtin: builtin, Environments: []*Environment{{Name: "development"}, {Name: "production"}}}
	store := &memVars{m: map[string]StoredVariable{}}
	s := &VariableService{Core: NewCore([]*App{app}, nil, nil, nil), Store: store, SecretKey: bytes.Repeat([]byte{1}, 32)}
	return s, store
}

func TestSecretsSealedAndMasked(t *testing.T) {
	ctx := context.Background()
	s, store := newVarService(t, "")
	if _, err := s.SetSecret(ctx, "alice", "crm", "production", "TOKEN", "canary-1"); err != nil {
		t.Fatal(err)
	}
	v := store.m["crm/production/TOKEN"]
	if !v.Secret || v.Value != "" || bytes.Contains(v.Ciphertext, []byte("canary-1")) || v.KeyID != KeyID(s.SecretKey) {
		t.Fatalf("stored %+v", v)
	}
	views, err := s.ListVariables(ctx, "crm", "production")
	if err != nil || len(views) != 1 || views[0].Value != Masked || !views[0].InRelbot || views[0].InApp {
		t.Fatalf("views %+v %v", views, err)
	}
	vals, err := s.SecretValues(ctx)
	if err != nil || len(vals) != 1 || vals[0] != "canary-1" {
		t.Fatalf("SecretValues %v %v", vals, err)
	}
	// A sealed value moved to another name does not open: damage, told as such.
	moved := v
	moved.Name = "OTHER"
	store.m["crm/production/OTHER"] = moved
	if _, err := s.SecretValues(ctx); ErrorCode(err) != CodeDamaged || strings.Contains(err.Error(), "canary") {
		t.Fatalf("moved ciphertext: %v", err)
	}
}

func TestWrongKeyDecryptsNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newVarService(t, "")
	for _, n := range []string{"A", "B"} {
		if _, err := s.SetSecret(ctx, "alice", "crm", "development", n, "v-"+n); err != nil {
			t.Fatal(err)
		}
	}
	old := s.SecretKey
	s.SecretKey = bytes.Repeat([]byte{2}, 32)
	vals, err := s.SecretValues(ctx)
	want := "secrets were encrypted with another RELBOT_SECRET_KEY (key id " + KeyID(old) + "); set the right key"
	if vals != nil || ErrorCode(err) != CodeIncompatible || ErrorMessage(err) != want {
		t.Fatalf("got %v, %v", vals, err)
	}
	if _, err := s.SetSecret(ctx, "alice", "crm", "development", "C", "x"); ErrorMessage(err) != want {
		t.Fatalf("set with a wrong key: %v", err)
	}
	// Rotation.
	s.PreviousSecretKey = old
	if n, total, err := s.RekeySecrets(ctx); err != nil || n != 2 || total != 2 {
		t.Fatalf("rekey: %d/%d %v", n, total, err)
	}
	s.PreviousSecretKey = nil
	if vals, err := s.SecretValues(ctx); err != nil || len(vals) != 2 || vals[0] != "v-A" {
		t.Fatalf("after rekey: %v %v", vals, err)
	}
}

func TestVariableInputRefused(t *testing.T) {
	ctx := context.Background()
	s, store := newVarService(t, "")
	for _, tc := range []struct {
		name, value, want string
	}{
		{"1BAD", "x", "not a valid variable name"},
		{"has-dash", "x", "not a valid variable name"},
		{"EMPTY", "", "var set needs NAME=VALUE"},
		{AppKeySecret, "x", "can only be a secret"},
	} {
		_, err := s.SetVariable(ctx, "alice", "crm", "production", tc.name, tc.value)
		if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), tc.want) {
			t.Errorf("%s=%q: %v", tc.name, tc.value, err)
		}
	}
	if _, err := s.SetSecret(ctx, "alice", "crm", "production", "S", ""); !strings.Contains(ErrorMessage(err), "needs a value") {
		t.Errorf("empty secret: %v", err)
	}
	if _, err := s.SetVariable(ctx, "alice", "crm", "nowhere", "A", "1"); ErrorCode(err) != CodeNotFound {
		t.Errorf("unknown env: %v", err)
	}
	s.SecretKey = nil
	if _, err := s.SetSecret(ctx, "alice", "crm", "production", "S", "v"); !strings.Contains(ErrorMessage(err), "RELBOT_SECRET_KEY is not set") {
		t.Errorf("no key: %v", err)
	}
	if len(store.m) != 0 {
		t.Fatalf("refused input was stored: %v", store.m)
	}
}

// fakeApp records what reaches the app's own table.
type fakeApp struct {
	rows    map[string]string
	noTable bool
}

func (f *fakeApp) Put(_ context.Context, _ *Environment, name string, secret bool, value string) error {
	if f.noTable {
		return ErrNoVariablesTable
	}
	f.rows[name] = map[bool]string{true: "secret", false: "default"}[secret]
	return nil
}

func (f *fakeApp) Delete(_ context.Context, _ *Environment, name string) error {
	delete(f.rows, name)
	return nil
}

func (f *fakeApp) Names(context.Context, *Environment) (map[string]bool, error) {
	if f.noTable {
		return nil, ErrNoVariablesTable
	}
	out := map[string]bool{}
	for k, v := range f.rows {
		out[k] = v == "secret"
	}
	return out, nil
}

func TestNocoBaseAppsAlsoWriteTheirTable(t *testing.T) {
	ctx := context.Background()
	s, _ := newVarService(t, BuiltinNocoBase)
	app := &fakeApp{rows: map[string]string{"LEGACY": "secret"}}
	s.AppVariables = app
	if _, err := s.SetVariable(ctx, "alice", "crm", "development", "URL", "https://x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSecret(ctx, "alice", "crm", "development", AppKeySecret, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	if app.rows["URL"] != "default" || app.rows[AppKeySecret] != "" {
		t.Fatalf("app rows %v", app.rows)
	}
	if _, err := s.SetVariable(ctx, "alice", "crm", "development", "LEGACY", "x"); ErrorCode(err) != CodeConflict {
		t.Fatalf("secret turned plain: %v", err)
	}
	names, err := s.VariableNames(ctx, "crm", "development")
	if err != nil || len(names) != 3 || !names["LEGACY"] || names["URL"] || !names[AppKeySecret] {
		t.Fatalf("names %v %v", names, err)
	}
	if err := s.UnsetSecret(ctx, "alice", "crm", "development", "LEGACY"); err != nil || app.rows["LEGACY"] != "" {
		t.Fatalf("unset app-only secret: %v %v", err, app.rows)
	}
	// No table yet (empty recovery database): kept by relbot only.
	app.noTable = true
	v, err := s.SetSecret(ctx, "alice", "crm", "production", "T", "v")
	if err != nil || v.InApp || !v.InRelbot {
		t.Fatalf("no table: %+v %v", v, err)
	}
}
