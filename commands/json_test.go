package commands

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

var (
	snakeName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	// sizeName is a size without its unit ("size", "file_size").
	sizeName = regexp.MustCompile(`(^|_)size$`)
)

// jsonTypeStyle returns what in type t would print outside --json's one
// style: a field without a snake_case json name (Go would print its Go
// name, "Required"), or a duration (Go prints nanoseconds; views give
// duration_ms or *_seconds numbers instead).
func jsonTypeStyle(t reflect.Type, path string, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t == reflect.TypeOf(time.Duration(0)) || (t.Name() == "Duration" && t.Kind() == reflect.Int64) {
		return []string{path + ": a duration (" + t.String() + ")"}
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) || seen[t] {
		return nil
	}
	seen[t] = true
	var bad []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			bad = append(bad, jsonTypeStyle(f.Type, path, seen)...)
			continue
		}
		p := path + "." + t.Name() + "." + f.Name
		if !snakeName.MatchString(name) {
			bad = append(bad, p+": json name "+`"`+name+`"`+" is not snake_case")
		}
		if strings.Contains(name, "duration") && !strings.HasSuffix(name, "_ms") && !strings.HasSuffix(name, "_seconds") {
			bad = append(bad, p+": a duration's json name must end in _ms or _seconds")
		}
		if sizeName.MatchString(name) {
			bad = append(bad, p+": a size's json name must say its unit (size_bytes)")
		}
		bad = append(bad, jsonTypeStyle(f.Type, p, seen)...)
	}
	return bad
}

// TestJSONTypesHaveOneStyle checks the Go types of what --json prints for
// every command of the grammar (the fake's answers), including fields an
// answer leaves empty; cmd/relbot's TestEveryJSONOutputHasOneStyle checks
// the printed JSON of a real run.
func TestJSONTypesHaveOneStyle(t *testing.T) {
	seen := map[reflect.Type]bool{}
	covered := map[string]bool{}
	var bad []string
	check := func(data any, what string) {
		if data != nil {
			bad = append(bad, jsonTypeStyle(reflect.TypeOf(data), what, seen)...)
		}
	}
	for _, tc := range parseCases {
		if tc.want == nil {
			continue
		}
		f := newFake()
		f.verify = &release.VerifyReport{}
		r, err := newDispatcher(f).Handle(context.Background(), Request{User: "alice", Text: tc.in})
		check(r.Data, tc.in)
		if err != nil {
			check(ErrorReply(err).Data, tc.in)
		}
		covered[tc.want.Name()] = true
	}
	// Views a fake's answer may not reach.
	for _, v := range []any{ReleaseView{}, StepLogView{}, EnvStatus{}, AppView{}, BackupView{}, VerifyView{}, MigrationView{}, VersionRestoreView{},
		RestartView{}, HoldView{}, ErrorData{}, release.MigrationPlan{}, release.VersionDiff{}, release.Drift{}} {
		check(v, reflect.TypeOf(v).Name())
	}
	for _, name := range Names() {
		if !covered[name] {
			t.Errorf("no parse case runs %s", name)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("--json types outside the style:\n%s", strings.Join(bad, "\n"))
	}
}

// TestJSONStatesAreSnakeCase: every release state and kind, step state and
// backup kind prints as one snake_case token in --json, while the Go value
// (and so the text) keeps its words.
func TestJSONStatesAreSnakeCase(t *testing.T) {
	states := map[release.State]bool{}
	for from, tos := range release.Transitions {
		states[from] = true
		for _, to := range tos {
			states[to] = true
		}
	}
	if len(states) != 10 || !states[release.StateAwaitingApproval] || !states[release.StateRolledBack] {
		t.Fatalf("states from Transitions: %v", states)
	}
	var words []string
	check := func(v any, key, want string) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got, _ := m[key].(string)
		if got != want || !snakeName.MatchString(got) {
			t.Errorf("%T %s: %q in %s, want snake_case %q", v, key, got, b, want)
		}
		words = append(words, got)
	}
	for st := range states {
		check(ReleaseView{State: st, Kind: release.KindDeploy}, "state", strings.ReplaceAll(string(st), " ", "_"))
	}
	for _, k := range []release.ReleaseKind{release.KindDeploy, release.KindRollback, release.KindRestore, release.KindSwitch} {
		check(ReleaseView{State: release.StateRunning, Kind: k}, "kind", strings.ReplaceAll(string(k), " ", "_"))
	}
	for _, s := range []release.StepState{release.StepPending, release.StepRunning, release.StepDone, release.StepFailed, release.StepSkipped, StepNotRun} {
		check(StepView{State: s}, "state", strings.ReplaceAll(string(s), " ", "_"))
		check(StepLogView{Release: "crm-r1", StepView: StepView{State: s}}, "state", strings.ReplaceAll(string(s), " ", "_"))
	}
	for _, k := range []release.BackupKind{release.BackupManual, release.BackupPreRelease, release.BackupScheduled} {
		check(BackupView{Kind: k}, "kind", strings.ReplaceAll(string(k), "-", "_"))
	}
	for _, w := range []string{"awaiting_approval", "rolled_back", "switch_traffic", "not_run", "pre_release"} {
		if !slices.Contains(words, w) {
			t.Errorf("no view printed %q: %v", w, words)
		}
	}
	// The rest of a view is all there: the method only renames values.
	b, _ := json.Marshal(StepLogView{Release: "crm-r1", StepView: StepView{Name: "apply migration", State: release.StepDone, Log: "ok"}})
	if string(b) != `{"release":"crm-r1","name":"apply migration","log":"ok","state":"done"}` {
		t.Errorf("step log view: %s", b)
	}
}
