package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/internal/testenv"
)

var (
	// snakeKey is the one style of --json keys: lowercase words joined by '_'.
	snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	// goDuration is time.Duration's String form ("1.5s", "2m0s", "300ms").
	goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)
	// durationWord names a duration, whose key must carry its unit.
	durationWord = regexp.MustCompile(`(^|_)(duration|took|timeout|elapsed|interval|wait|expire|expiry|ttl|seconds|ms|ns)(_|$)`)
	timeKey      = regexp.MustCompile(`(^|_)(at|since|until|time|started|ended)$`)
	// sizeKey is a size without its unit ("size", "file_size"): sizes are
	// size_bytes.
	sizeKey = regexp.MustCompile(`(^|_)size$`)
	// recordedEmpty are the empty objects that say something: a migration
	// file's summary records its source's layout, {} for NocoBase's
	// default, and has none when an older relbot made the file.
	recordedEmpty = regexp.MustCompile(`\.summary\.layout$`)
	// enumKey holds a value programs compare (a state, a kind, an error
	// code): one snake_case word.
	enumKey = regexp.MustCompile(`^(state|kind|code)$`)
	// endedState is a release state after which no step runs any more.
	endedState = regexp.MustCompile(`^(succeeded|failed|rolled_back|rejected|cancelled|expired)$`)
	// dataKeyed are the objects whose keys are names from the data (a
	// plugin's, an environment's), not field names.
	dataKeyed = regexp.MustCompile(`\.(plugins|variables_only_in)$`)
)

// jsonStyle returns what in v breaks --json's one naming style: keys not
// in snake_case, durations without their unit in the key or given as Go
// duration strings or nanoseconds, times not in RFC 3339.
func jsonStyle(path string, v any) []string {
	var bad []string
	switch x := v.(type) {
	case map[string]any:
		if st, _ := x["state"].(string); endedState.MatchString(st) {
			steps, _ := x["steps"].([]any)
			for i, step := range steps {
				if m, _ := step.(map[string]any); m["state"] == "pending" {
					bad = append(bad, fmt.Sprintf("%s.steps[%d]: pending in a release that is %s (a step that never ran is not_run)", path, i, st))
				}
			}
		}
		for k, val := range x {
			p := path + "." + k
			if dataKeyed.MatchString(path) {
				bad = append(bad, jsonStyle(p, val)...)
				continue
			}
			if !snakeKey.MatchString(k) {
				bad = append(bad, fmt.Sprintf("%s: key is not snake_case", p))
			}
			if durationWord.MatchString(k) {
				if !strings.HasSuffix(k, "_ms") && !strings.HasSuffix(k, "_seconds") || k == "_ms" || k == "_seconds" {
					bad = append(bad, fmt.Sprintf("%s: a duration's key must end in _ms or _seconds", p))
				}
				if _, ok := val.(float64); !ok && val != nil {
					bad = append(bad, fmt.Sprintf("%s: a duration must be a number, got %v", p, val))
				}
			}
			if m, ok := val.(map[string]any); ok && len(m) == 0 && !recordedEmpty.MatchString(p) {
				bad = append(bad, fmt.Sprintf("%s: an empty object says nothing; leave it out", p))
			}
			if sv, ok := val.(string); ok && enumKey.MatchString(k) && !snakeKey.MatchString(sv) {
				bad = append(bad, fmt.Sprintf("%s: %q is not one snake_case word", p, sv))
			}
			if sizeKey.MatchString(k) {
				bad = append(bad, fmt.Sprintf("%s: a size's key must say its unit (size_bytes)", p))
			}
			if s, ok := val.(string); ok && timeKey.MatchString(k) {
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					bad = append(bad, fmt.Sprintf("%s: %q is not an RFC 3339 time", p, s))
				}
			}
			bad = append(bad, jsonStyle(p, val)...)
		}
	case []any:
		for i, val := range x {
			bad = append(bad, jsonStyle(fmt.Sprintf("%s[%d]", path, i), val)...)
		}
	case string:
		if goDuration.MatchString(x) {
			bad = append(bad, fmt.Sprintf("%s: %q is a Go duration string", path, x))
		}
	}
	return bad
}

func TestJSONStyleCheck(t *testing.T) {
	var v any
	json.Unmarshal([]byte(`{"Required": 1, "okKey": 2, "took": "1.5s", "duration": 1500000000, "wait_ms": 3, "at": "yesterday",
		"list": [{"Name": "x"}], "since": "2026-12-01T22:00:00Z", "timeout_seconds": 30, "seconds": 2, "expire": 3600000000000,
		"manifest": {"plugins": {"api-keys": "1.0"}}, "size": 10, "size_bytes": 10,
		"release": {"state": "rejected", "kind": "switch traffic", "steps": [{"state": "pending"}, {"state": "not_run"}]},
		"open": {"state": "awaiting approval", "steps": [{"state": "pending"}]}, "error": {"code": "not_found"}, "layout": {}, "summary": {"layout": {}}}`), &v)
	got := strings.Join(jsonStyle("", v), "\n")
	for _, want := range []string{".Required: key", ".okKey: key", ".took: a duration's key", `.took: "1.5s" is a Go duration`, ".duration: a duration's key",
		`.at: "yesterday" is not`, ".list[0].Name: key", ".seconds: a duration's key", ".expire: a duration's key", ".size: a size's key",
		`.release.kind: "switch traffic" is not`, ".release.steps[0]: pending in a release that is rejected", `.open.state: "awaiting approval" is not`, ".layout: an empty object"} {
		if !strings.Contains(got, want) {
			t.Errorf("the style check misses %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "wait_ms") || strings.Contains(got, "since") || strings.Contains(got, "timeout_seconds") || strings.Contains(got, "api-keys") || strings.Contains(got, ".size_bytes:") ||
		strings.Contains(got, "steps[1]") || strings.Contains(got, ".open.steps") || strings.Contains(got, "not_found") || strings.Contains(got, "summary") {
		t.Errorf("the style check refuses good keys:\n%s", got)
	}
}

// TestEveryJSONOutputHasOneStyle runs every command of the grammar with
// --json, in an order that gives each something to show, and checks the
// style of all it prints (errors included).
func TestEveryJSONOutputHasOneStyle(t *testing.T) {
	env := releaseEnv(t)
	ran := map[string]bool{}
	var bad []string
	do := func(stdin string, words ...string) map[string]any {
		t.Helper()
		cmdWords, _, _, err := terminalFlags(words)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := commands.ParseWords(cmdWords)
		if err != nil {
			t.Fatalf("%q: %v", words, err)
		}
		ran[cmd.Name()] = true
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		args := append(append([]string{}, words...), "--json")
		code := Run(ctx, args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb}, func(k string) string { return env[k] })
		var v any
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatalf("%q: exit %d, not JSON: %v\n%s\n%s", words, code, err, out.String(), errb.String())
		}
		bad = append(bad, jsonStyle(strings.Join(words[:min(2, len(words))], " "), v)...)
		if m, ok := v.(map[string]any); ok {
			return m
		}
		return nil
	}
	do("", "help")
	do("", "help", "deploy")
	do("", "help", "backup")
	do("", "help", "version")
	if v := do("", "version"); v["module"] != "github.com/relbot/relbot" {
		t.Errorf("version --json: %v", v)
	}
	do("", "--version")
	do("", "version", "create", "crm", "before", "--as", "alice")
	dev := testenv.Connect(t, env["CRM_DEV_DATABASE_URL"])
	if _, err := dev.Exec(context.Background(), `UPDATE "uiSchemas" SET "name" = 'renamed' WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`); err != nil {
		t.Fatal(err)
	}
	do("", "version", "create", "crm", "after", "--as", "alice")
	do("", "version", "list", "crm")
	do("", "version", "diff", "crm", "crm-v1")
	do("", "version", "diff", "crm", "crm-v1", "crm-v2")
	do("", "version", "restore", "crm", "crm-v2", "--as", "alice")
	do("", "var", "set", "crm", "staging", "PLAIN=1", "--as", "alice")
	do("a secret value\n", "secret", "set", "crm", "staging", "TOKEN", "--as", "alice")
	do("", "var", "list", "crm", "staging")
	do("", "var", "unset", "crm", "staging", "PLAIN", "--as", "alice")
	do("", "secret", "unset", "crm", "staging", "TOKEN", "--as", "alice")
	do("", "restart", "crm", "production", "--as", "U01AAA")
	m := do("", "migration", "create", "crm", "--note", "contracts", "--as", "alice")["id"].(string)
	do("", "migration", "list", "crm")
	do("", "migration", "show", m)
	do("", "migration", "plan", m, "staging")
	do("", "deploy", m, "staging", "--allow-new-plugins", "--as", "alice")    // crm-r1, runs
	do("", "migration", "plan", m, "staging")                                 // applied already
	do("", "deploy", m, "production", "--allow-new-plugins", "--as", "alice") // crm-r2
	do("", "approve", "crm-r2", "--as", "U01AAA")                             // awaiting the second
	do("", "approve", "crm-r2", "--as", "U02BBB")                             // runs
	do("", "resume", "crm-r2", "--as", "alice")                               // refused: not interrupted
	do("", "rollback", "crm-r2", "--into", "recovery", "--as", "U01AAA")      // crm-r3
	do("", "approve", "crm-r3", "--as", "U02BBB")
	do("", "approve", "crm-r3", "--as", "U03CCC")
	do("", "switch", "crm-r3", "--as", "alice") // crm-r4
	do("", "reject", "crm-r4", "not", "now", "--as", "U01AAA")
	do("", "deploy", m, "production", "--at", "23:59", "--allow-new-plugins", "--as", "alice") // refused: applied already
	do("", "backup", "create", "crm", "staging", "--as", "alice")
	do("", "backup", "list", "crm", "staging")
	b := do("", "backup", "list", "crm", "production")
	_ = b
	do("", "backup", "verify", "crm-b1", "--as", "alice")
	do("", "backup", "show", "crm-b1")
	do("", "backup", "download", "crm-b1", "--as", "U01AAA") // refused: no pages here
	env["RELBOT_PUBLIC_URL"] = "http://relbot.test"
	if v := do("", "backup", "download", "crm-b1", "--as", "U01AAA"); !strings.HasPrefix(fmt.Sprint(v["link"]), "http://relbot.test/backups/crm-b1/file?") {
		t.Errorf("backup download --json: %v", v)
	}
	delete(env, "RELBOT_PUBLIC_URL")
	// crm-b1 is staging's: production takes its file in as another
	// installation's would be; staging refuses it as its own.
	file := filepath.Join(env["RELBOT_ARTIFACT_DIR"], "crm", "backups", "crm-b1.relbot")
	if v := do("", "backup", "import", "crm", "production", file, "--as", "U01AAA"); v["kind"] != "imported" || v["origin"] == nil {
		t.Errorf("backup import --json: %v", v)
	}
	do("", "backup", "import", "crm", "staging", file, "--as", "alice")                               // refused: crm-b1 already
	do("", "backup", "import", "crm", "staging", filepath.Join(t.TempDir(), "none"), "--as", "alice") // refused: no such file
	do("", "backup", "delete", "crm-b1", "--as", "U01AAA")                                            // refused: the newest verified
	do("", "backup", "restore", "crm-b1", "--into", "recovery", "--as", "U03CCC")                     // runs
	do("", "cancel", "crm-r1", "--as", "alice")                                                       // refused: ran already
	do("", "release", "list", "crm")
	do("", "release", "show", "crm-r2")
	do("", "release", "show", "crm-r2", "--step", "validation checks")
	do("", "drift", "crm", "staging", "production")
	do("", "lock", "crm", "staging", "incident", "--as", "alice")
	do("", "status", "crm")
	do("", "apps")
	do("", "unlock", "crm", "staging", "--as", "alice")
	do("", "status", "nosuchapp") // an error

	var missing []string
	for _, name := range commands.Names() {
		if !ran[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("commands not run with --json: %v", missing)
	}
	sort.Strings(bad)
	bad = compact(bad)
	if len(bad) > 0 {
		t.Fatalf("%d --json values break the style:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// compact drops repeats (one message per path is enough).
func compact(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
