package postgres

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

func TestVariables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	at := time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC)
	plain := release.StoredVariable{App: "crm", Env: "staging", Name: "API_URL", Value: "https://x.example", UpdatedBy: "alice", UpdatedAt: at}
	secret := release.StoredVariable{App: "crm", Env: "staging", Name: "TOKEN", Secret: true, Ciphertext: []byte{1, 2, 3}, KeyID: "abcd1234", UpdatedBy: "bob", UpdatedAt: at}
	other := release.StoredVariable{App: "crm", Env: "production", Name: "TOKEN", Secret: true, Ciphertext: []byte{4}, KeyID: "abcd1234", UpdatedBy: "bob", UpdatedAt: at}
	for _, v := range []release.StoredVariable{secret, plain, other} {
		if err := s.PutVariable(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.ListVariables(ctx, "crm", "staging")
	if err != nil || len(vs) != 2 {
		t.Fatalf("list: %v %v", vs, err)
	}
	if vs[0].Name != "API_URL" || vs[0].Value != plain.Value || vs[0].Secret || vs[0].Ciphertext != nil || !vs[0].UpdatedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("plain: %+v", vs[0])
	}
	if vs[1].Name != "TOKEN" || !vs[1].Secret || vs[1].Value != "" || !bytes.Equal(vs[1].Ciphertext, []byte{1, 2, 3}) || vs[1].KeyID != "abcd1234" || vs[1].UpdatedBy != "bob" {
		t.Fatalf("secret: %+v", vs[1])
	}

	// Replacing turns a plain variable into a secret and back.
	plain.Secret, plain.Ciphertext, plain.KeyID = true, []byte{9}, "ffff0000"
	if err := s.PutVariable(ctx, plain); err != nil {
		t.Fatal(err)
	}
	all, err := s.AllSecrets(ctx)
	if err != nil || len(all) != 3 || all[0].Env != "production" || all[1].Name != "API_URL" || all[1].KeyID != "ffff0000" {
		t.Fatalf("all secrets: %+v %v", all, err)
	}

	if err := s.PutVariable(ctx, release.StoredVariable{App: "crm", Env: "staging", Name: "X", Secret: true}); release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("secret without ciphertext: %v", err)
	}
	if err := s.DeleteVariable(ctx, "crm", "staging", "TOKEN"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVariable(ctx, "crm", "staging", "TOKEN"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if vs, _ := s.ListVariables(ctx, "crm", "staging"); len(vs) != 1 {
		t.Fatalf("after delete: %+v", vs)
	}
}
