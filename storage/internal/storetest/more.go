package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Approvals given with a new release: one per person (the first), read
// back by time then approver, a zero time being the store's now.
func testCreateReleaseApprovals(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	r := newRelease("crm-r1", "crm", "production")
	r.Approvals = []release.Approval{
		{By: "U2", At: base.Add(time.Minute)}, {By: "U1", At: base.Add(time.Minute)},
		{By: "U2", At: base.Add(5 * time.Minute)}, {By: "U3"},
	}
	before := time.Now().Add(-time.Minute)
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRelease(ctx, "crm-r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Approvals) != 3 {
		t.Fatalf("approvals %+v, want U1, U2, U3 once each", got.Approvals)
	}
	a := got.Approvals
	if a[0].By != "U1" || a[1].By != "U2" || !a[1].At.Equal(base.Add(time.Minute)) || a[2].By != "U3" || a[2].At.Before(before) {
		t.Fatalf("approvals %+v, want U1 and U2 at %v (the first U2 kept), then U3 now", a, base.Add(time.Minute))
	}
}

// Restart recovery lists runs whose lease ended strictly before now, the
// oldest lease first, ties by ID.
func testExpiredLeasesOrder(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	leases := []struct {
		id, env string
		until   time.Duration
	}{
		{"crm-r1", "a", 3 * time.Minute}, {"crm-r2", "b", time.Minute}, {"crm-r10", "c", time.Minute},
		{"crm-r3", "d", 2 * time.Minute}, {"crm-r4", "e", 10 * time.Minute},
	}
	for _, l := range leases {
		r := newRelease(l.id, "crm", l.env)
		r.State = release.StateScheduled
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.TakeLease(ctx, l.id, release.StateScheduled, "p", base.Add(l.until)); err != nil {
			t.Fatal(err)
		}
	}
	// Scheduled, never run: no lease to expire.
	idle := newRelease("crm-r5", "crm", "f")
	idle.State = release.StateScheduled
	if err := s.CreateRelease(ctx, idle); err != nil {
		t.Fatal(err)
	}
	ids := func(now time.Time) string {
		t.Helper()
		rs, err := s.ExpiredLeases(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return strings.Join(out, " ")
	}
	if got, want := ids(base.Add(5*time.Minute)), "crm-r10 crm-r2 crm-r3 crm-r1"; got != want {
		t.Errorf("expired at +5m: %q, want %q", got, want)
	}
	// A lease ending exactly now has not run out yet.
	if got, want := ids(base.Add(2*time.Minute)), "crm-r10 crm-r2"; got != want {
		t.Errorf("expired at +2m: %q, want %q", got, want)
	}
	if got := ids(base); got != "" {
		t.Errorf("expired at the start: %q, want none", got)
	}
}

// Versions made at one time list the higher number first (crm-v10 before
// crm-v9, which text order would not give).
func testVersionsOrder(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, v := range []struct {
		id  string
		age time.Duration
	}{{"crm-v9", 0}, {"crm-v1", time.Hour}, {"crm-v11", 0}, {"crm-v10", 0}, {"shop-v1", 0}} {
		app, _, _ := strings.Cut(v.id, "-")
		if err := s.SaveVersion(ctx, &release.Version{ID: v.id, App: app, Env: "development", Description: v.id, CreatedBy: "alice",
			CreatedAt: at.Add(-v.age), Tables: []release.VersionTable{}}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListVersions(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range list {
		ids = append(ids, v.ID)
	}
	if got, want := strings.Join(ids, " "), "crm-v11 crm-v10 crm-v9 crm-v1"; got != want {
		t.Fatalf("versions %q, want %q", got, want)
	}
}

func testMigrations(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	m := func(id, app string, created time.Time) *release.Migration {
		return &release.Migration{ID: id, App: app, SourceEnv: "development", Version: "crm-v3", Note: "new form", CreatedBy: "U01AAA",
			CreatedAt: created, Artifact: "crm/migrations/" + id + ".relbot", Size: 4096, SHA256: strings.Repeat("ef", 32),
			Summary: release.MigrationSummary{CoreVersion: "1.2.3", Plugins: map[string]string{"acl": "1.0.0"},
				Tables:    []release.TableSummary{{Table: "uiSchemas", Rule: release.Rule("overwrite"), Reason: "configuration", Rows: 12, Carried: true}},
				Variables: []string{"API_URL"}, Warnings: []string{"w"}}}
	}
	m1 := m("crm-m1", "crm", at)
	for _, x := range []*release.Migration{m1, m("crm-m2", "crm", at.Add(time.Hour)), m("crm-m3", "crm", at.Add(time.Hour)), m("shop-m1", "shop", at.Add(2*time.Hour))} {
		if err := s.SaveMigration(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetMigration(ctx, "crm-m1")
	if err != nil {
		t.Fatal(err)
	}
	want := *m1
	want.CreatedAt = at.Truncate(time.Microsecond).UTC()
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	// An ID is never reused: a second save is refused and the first stays.
	again := m("crm-m1", "crm", at.Add(time.Minute))
	again.Note = "overwritten"
	if err := s.SaveMigration(ctx, again); err == nil {
		t.Fatal("saving an ID twice succeeded")
	}
	if got, _ := s.GetMigration(ctx, "crm-m1"); got == nil || got.Note != "new form" {
		t.Fatalf("after the refused save: %+v", got)
	}
	_, err = s.GetMigration(ctx, "crm-m404")
	wantErr(t, "get missing", err, release.CodeNotFound, "no migration crm-m404")

	list, err := s.ListMigrations(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if got, want := strings.Join(ids, " "), "crm-m3 crm-m2 crm-m1"; got != want {
		t.Fatalf("migrations %q, want %q", got, want)
	}

	// Runs: oldest first; two started at one moment stay in the order saved.
	res := &release.ApplyResult{Steps: []release.ExecutedStep{{What: "copy uiSchemas", Rows: 12, Duration: time.Second}}, Duration: 2 * time.Second}
	runs := []*release.MigrationRun{
		{Migration: "crm-m1", Env: "production", By: "U1", StartedAt: at.Add(2 * time.Minute), OK: true, Result: res},
		{Migration: "crm-m1", Env: "staging", By: "U2", StartedAt: at.Add(time.Minute), OK: false, Error: "boom"},
		{Migration: "crm-m1", Env: "staging", By: "U3", StartedAt: at.Add(time.Minute), OK: true},
		{Migration: "crm-m2", Env: "staging", By: "U4", StartedAt: at},
	}
	for _, r := range runs {
		if err := s.SaveMigrationRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveMigrationRun(ctx, &release.MigrationRun{Migration: "crm-m404", Env: "staging", By: "U1", StartedAt: at}); err == nil {
		t.Error("a run of a migration that does not exist was saved")
	}
	got1, err := s.ListMigrationRuns(ctx, "crm-m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got1) != 3 || got1[0].By != "U2" || got1[1].By != "U3" || got1[2].By != "U1" {
		t.Fatalf("runs %+v, want U2, U3, U1", got1)
	}
	if got1[0].Result != nil || got1[0].Error != "boom" || got1[0].OK {
		t.Errorf("failed run: %+v", got1[0])
	}
	if !reflect.DeepEqual(got1[2].Result, res) || !got1[2].StartedAt.Equal(at.Add(2*time.Minute).Truncate(time.Microsecond)) ||
		got1[2].StartedAt.Location() != time.UTC {
		t.Errorf("run with a result: %+v (%+v)", got1[2], got1[2].Result)
	}
}

// Lists of nothing are empty, not nil: callers may encode them.
func testEmptyLists(t *testing.T, s Store) {
	ctx := context.Background()
	lists := map[string]func() (any, error){
		"backups":        func() (any, error) { return s.ListBackups(ctx, "crm", "production") },
		"releases":       func() (any, error) { return s.ListReleases(ctx, "crm", "") },
		"expired leases": func() (any, error) { return s.ExpiredLeases(ctx, time.Now()) },
		"holds":          func() (any, error) { return s.ListHolds(ctx) },
		"migrations":     func() (any, error) { return s.ListMigrations(ctx, "crm") },
		"runs":           func() (any, error) { return s.ListMigrationRuns(ctx, "crm-m1") },
		"versions":       func() (any, error) { return s.ListVersions(ctx, "crm") },
		"variables":      func() (any, error) { return s.ListVariables(ctx, "crm", "production") },
		"secrets":        func() (any, error) { return s.AllSecrets(ctx) },
	}
	for what, list := range lists {
		got, err := list()
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if v := reflect.ValueOf(got); v.IsNil() || v.Len() != 0 {
			t.Errorf("%s: %#v, want an empty non-nil list", what, got)
		}
	}
}

// What a caller gives or gets is its own: changing it afterwards does not
// change the record.
func testRecordsAreCopies(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	r := newRelease("crm-r1", "crm", "production")
	r.Steps = []release.Step{{Name: release.StepApply, State: release.StepPending, Started: tp(t0)}}
	r.Approvals = []release.Approval{{By: "U1", At: t0}}
	r.Checks = []release.CheckResult{{Name: "health", OK: true}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Steps[0].Name, *r.Steps[0].Started, r.Approvals[0].By, r.Checks[0].OK = "changed", t0.Add(time.Hour), "U9", false
	got, _ := s.GetRelease(ctx, "crm-r1")
	got.Steps[0].State, got.Approvals[0].By = release.StepFailed, "U8"
	again, err := s.GetRelease(ctx, "crm-r1")
	if err != nil {
		t.Fatal(err)
	}
	if st := again.Steps[0]; st.Name != release.StepApply || st.State != release.StepPending || !st.Started.Equal(t0) ||
		again.Approvals[0].By != "U1" || !again.Checks[0].OK {
		t.Errorf("release changed through a caller's copy: %+v", again)
	}

	b := sampleBackup("crm-b1", "production", t0)
	if err := s.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Manifest.Plugins["acl"] = "9.9.9"
	gb, _ := s.GetBackup(ctx, "crm-b1")
	gb.Manifest.Warnings[0] = "changed"
	if gb, _ := s.GetBackup(ctx, "crm-b1"); gb.Manifest.Plugins["acl"] != "1.0.0" || gb.Manifest.Warnings[0] != "table x has no primary key" {
		t.Errorf("backup changed through a caller's copy: %+v", gb.Manifest)
	}

	v := release.StoredVariable{App: "crm", Env: "staging", Name: "TOKEN", Secret: true, Ciphertext: []byte{1, 2, 3}, KeyID: "abcd1234", UpdatedBy: "bob", UpdatedAt: t0}
	if err := s.PutVariable(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.Ciphertext[0] = 9
	vs, _ := s.ListVariables(ctx, "crm", "staging")
	vs[0].Ciphertext[1] = 9
	if vs, _ := s.ListVariables(ctx, "crm", "staging"); fmt.Sprint(vs[0].Ciphertext) != "[1 2 3]" {
		t.Errorf("secret changed through a caller's copy: %v", vs[0].Ciphertext)
	}
}

// Records made at one moment list by ID, highest first (the text order of
// storage/postgres's C collation).
func testListTies(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"crm-b2", "crm-b3", "crm-b1"} {
		if err := s.SaveBackup(ctx, sampleBackup(id, "qa", at)); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.ListBackups(ctx, "crm", "qa")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	for i, id := range []string{"crm-r2", "crm-r3", "crm-r1"} {
		r := newRelease(id, "crm", fmt.Sprint("env", i))
		r.RequestedAt = at
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.ListReleases(ctx, "crm", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, " "), "crm-b3 crm-b2 crm-b1 crm-r3 crm-r2 crm-r1"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}
