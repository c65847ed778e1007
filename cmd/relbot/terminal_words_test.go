package main

import (
	"encoding/json"
	"testing"
)

// TestTerminalKeepsTheShellsWords: a description or note the shell passed
// as one word is stored byte for byte, whatever quotes, apostrophes,
// backslashes and runs of spaces it holds; an empty word stays a word.
func TestTerminalKeepsTheShellsWords(t *testing.T) {
	env := versionEnv(t)
	desc := `it's a "test" of C:\dir\ and  two  spaces, don’t “lose” 'it'`
	must(t, run(t, env, "version", "create", "crm", desc, "--as", "alice"))
	must(t, run(t, env, "version", "create", "crm", `"a"`, "", `b\`, "--as", "alice"))
	var versions []struct {
		Description string `json:"description"`
	}
	r := must(t, run(t, env, "version", "list", "crm", "--json"))
	if err := json.Unmarshal([]byte(r.out), &versions); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	if len(versions) != 2 || versions[0].Description != `"a"  b\` || versions[1].Description != desc {
		t.Fatalf("stored descriptions %q, want %q and %q", versions, `"a"  b\`, desc)
	}

	note := `--note's "value" \n 'x'`
	must(t, run(t, env, "migration", "create", "crm", "--note="+note, "--as", "alice"))
	var migrations []struct {
		Note string `json:"note"`
	}
	r = must(t, run(t, env, "migration", "list", "crm", "--json"))
	if err := json.Unmarshal([]byte(r.out), &migrations); err != nil {
		t.Fatalf("%v: %s", err, r.out)
	}
	if len(migrations) != 1 || migrations[0].Note != note {
		t.Fatalf("stored notes %q, want %q", migrations, note)
	}
}
