package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestTermSafeEscapesControls(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"plain text\n\tindented, café ✓\n": "plain text\n\tindented, café ✓\n",
		"\x1b]0;pwned\x07title":            `\u001b]0;pwned\u0007title`,
		"red \x1b[31malert\x1b[0m":         `red \u001b[31malert\u001b[0m`,
		"8-bit \u009b31m csi":              `8-bit \u009b31m csi`,
		"over\rwrite":                      `over\u000dwrite`,
		"nul\x00 del\x7f":                  `nul\u0000 del\u007f`,
		"admin\u202etxt.exe":               `admin\u202etxt.exe`,
		"latin1 caf\xe9":                   `latin1 caf\xe9`,
	}
	for in, want := range cases {
		var b bytes.Buffer
		n, err := termSafe(&b).Write([]byte(in))
		if err != nil || n != len(in) || b.String() != want {
			t.Errorf("%q: wrote %q (%d, %v), want %q", in, b.String(), n, err, want)
		}
	}
}

// Text stored in the database that came from a user (here a lock reason
// with a title-setting escape sequence and an 8-bit CSI) reaches the
// terminal escaped, in text and in --json, which stays JSON carrying the
// exact text.
func TestTerminalEscapesStoredText(t *testing.T) {
	t.Parallel()
	env := sampleEnv(t)
	must(t, run(t, env, "lock", "crm", "staging", "placeholder", "--as", "alice"), "locked")
	evil := "\x1b]0;pwned\x07incident \u009b31m42"
	conn, err := pgx.Connect(context.Background(), env["RELBOT_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "UPDATE relbot_holds SET reason = $1", evil); err != nil {
		t.Fatal(err)
	}
	r := must(t, run(t, env, "status", "crm"), `\u001b]0;pwned\u0007incident \u009b31m42`)
	if strings.ContainsAny(r.out+r.err, "\x1b\x07\u009b") {
		t.Fatalf("raw control characters printed: %q", r.out)
	}
	r = run(t, env, "status", "crm", "--json")
	if r.code != 0 || strings.ContainsAny(r.out, "\x1b\x07\u009b") {
		t.Fatalf("--json: %+v", r)
	}
	var v any
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("--json is not JSON: %v\n%s", err, r.out)
	}
	js, _ := json.Marshal(v)
	if !strings.Contains(string(js), `\u001b]0;pwned\u0007incident `+"\u009b"+`31m42`) {
		t.Fatalf("--json does not carry the exact reason: %s", js)
	}
	// Refused before it is stored when typed.
	refused(t, run(t, env, "lock", "crm", "production", "\x1b]0;x", "--as", "bob"), `the lock reason holds the control character ESC (U+001B) at byte 1`)
}

// The log handler and a release's progress notices write the terminal's
// stderr from different goroutines: each write stays whole (and -race
// sees no race on the writer).
func TestTerminalWritesFromManyGoroutinesStayWhole(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w := termSafe(&b)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				fmt.Fprintf(w, "goroutine %d says \x1b[31mhello\n", g)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	line := regexp.MustCompile(`^goroutine [0-7] says \\u001b\[31mhello$`)
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Fatalf("a line was cut or mixed: %q", l)
		}
	}
}
