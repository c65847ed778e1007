// Package storetest is the contract every store of the bot's records must
// meet: storage/postgres and storage/memory run the same tests, so domain
// tests on the in-memory store say something about production. It holds
// error codes and messages, ID allocation, orderings, compare-and-set moves
// under concurrency, leases and holds.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Store is every record store of the bot, as storage/postgres.Store and
// storage/memory.Store implement them.
type Store interface {
	release.Store
	release.ReleaseStore
	release.MigrationStore
	release.VersionStore
	release.VariableStore
}

// Run holds a Store to the contract. newStore is called once per subtest
// and must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"NextIDConcurrent", testNextIDConcurrent},
		{"BackupRoundTrip", testBackupRoundTrip},
		{"BackupNotFound", testBackupNotFound},
		{"ListBackupsNewestFirst", testListBackupsNewestFirst},
		{"SaveBackupInvalid", testSaveBackupInvalid},
		{"ReleaseRoundTrip", testReleaseRoundTrip},
		{"CreateReleaseOneOpenPerEnvironment", testCreateReleaseOneOpenPerEnvironment},
		{"CreateReleaseApprovals", testCreateReleaseApprovals},
		{"AddApprovalConcurrent", testAddApprovalConcurrent},
		{"MoveReleaseCompareAndSet", testMoveReleaseCompareAndSet},
		{"Leases", testLeases},
		{"ExpiredLeasesOrder", testExpiredLeasesOrder},
		{"StepsChecksBackupMessage", testStepsChecksBackupMessage},
		{"ListReleases", testListReleases},
		{"Holds", testHolds},
		{"HoldConcurrentLockers", testHoldConcurrentLockers},
		{"Variables", testVariables},
		{"Versions", testVersions},
		{"VersionsOrder", testVersionsOrder},
		{"Migrations", testMigrations},
		{"ListTies", testListTies},
		{"EmptyLists", testEmptyLists},
		{"RecordsAreCopies", testRecordsAreCopies},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each subtest has a store of its own
			tc.fn(t, newStore(t))
		})
	}
}

func wantErr(t *testing.T, what string, err error, code release.Code, msg string) {
	t.Helper()
	var e *release.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, release.ErrorCode(err), code)
	}
	if msg != "" && e.Message != msg {
		t.Fatalf("%s: message %q, want %q", what, e.Message, msg)
	}
}

func newRelease(id, app, env string) *release.Release {
	return &release.Release{
		ID: id, App: app, Env: env, Kind: release.KindDeploy,
		Migration: app + "-m7", FileHash: strings.Repeat("cd", 32),
		RequestedBy: "U01ALICE", RequestedAt: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC),
		State: release.StateAwaitingApproval,
	}
}

func tp(t time.Time) *time.Time { return &t }

// normalised is what the store gives back for r: times at microsecond
// precision in UTC.
func normalised(r *release.Release) *release.Release {
	w := *r
	w.RequestedAt = w.RequestedAt.Truncate(time.Microsecond).UTC()
	w.At, w.LeaseUntil = utcMicro(w.At), utcMicro(w.LeaseUntil)
	w.Approvals = nil
	for _, a := range r.Approvals {
		w.Approvals = append(w.Approvals, release.Approval{By: a.By, At: a.At.Truncate(time.Microsecond).UTC()})
	}
	w.Steps = nil
	for _, st := range r.Steps {
		st.Started, st.Ended = utcMicro(st.Started), utcMicro(st.Ended)
		w.Steps = append(w.Steps, st)
	}
	w.Checks = append([]release.CheckResult(nil), r.Checks...)
	return &w
}

func utcMicro(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return tp(t.Truncate(time.Microsecond).UTC())
}

func sampleBackup(id, env string, created time.Time) *release.Backup {
	return &release.Backup{
		ID: id, App: "crm", Env: env, Kind: release.BackupManual,
		CreatedBy: "U01AAA", CreatedAt: created,
		Artifact: "crm/backups/" + id + ".relbot", Size: 123456789, SHA256: strings.Repeat("ab", 32),
		Manifest: release.BackupSummary{
			ServerVersion: "15.4", CoreVersion: "1.2.3",
			Plugins: map[string]string{"acl": "1.0.0", "workflow": "2.1.0"},
			Tables:  42, Rows: 1 << 40, Files: 7, FileBytes: 1 << 33, DataBytes: 1 << 34,
			Duration: 1500 * time.Millisecond, Encrypted: true, Warnings: []string{"table x has no primary key"},
		},
	}
}

func testNextIDConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	const n = 50
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = s.NextID(ctx, "crm", "b") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
	}
	for i := 1; i <= n; i++ {
		if id := fmt.Sprintf("crm-b%d", i); !got[id] {
			t.Errorf("missing %s", id)
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct IDs, want %d", len(got), n)
	}
	// Counters are per app and per kind.
	for _, c := range []struct{ app, kind, want string }{
		{"crm", "r", "crm-r1"}, {"tickets", "b", "tickets-b1"}, {"crm", "b", "crm-b51"},
	} {
		id, err := s.NextID(ctx, c.app, c.kind)
		if err != nil || id != c.want {
			t.Errorf("NextID(%s, %s) = %q, %v; want %q", c.app, c.kind, id, err, c.want)
		}
	}
	if _, err := s.NextID(ctx, "", "b"); release.ErrorCode(err) != release.CodeInvalid {
		t.Errorf("NextID without app: %v, want invalid", err)
	}
}

func testBackupRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	// A zone other than UTC and nanoseconds PostgreSQL cannot keep.
	created := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
	verified := created.Add(time.Hour)
	b := sampleBackup("crm-b1", "production", created)
	b.Kind = release.BackupPreRelease
	b.ReleaseID = "crm-r5"
	b.VerifiedAt = &verified
	checked := created.Add(time.Minute)
	b.CheckedAt = &checked
	if err := s.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	want := *b
	want.CreatedAt = created.Truncate(time.Microsecond).UTC()
	v := verified.Truncate(time.Microsecond).UTC()
	want.VerifiedAt = &v
	c := checked.Truncate(time.Microsecond).UTC()
	want.CheckedAt = &c
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}

	// Saving again replaces the record.
	b.Size = 1
	b.VerifiedAt, b.CheckedAt = nil, nil
	b.ReleaseID = ""
	if err := s.SaveBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 1 || got.VerifiedAt != nil || got.CheckedAt != nil || got.ReleaseID != "" {
		t.Fatalf("after update: %+v", got)
	}

	// Verified.
	at := time.Date(2025, 3, 5, 0, 0, 0, 999, time.UTC)
	if err := s.MarkBackupVerified(ctx, "crm-b1", at); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetBackup(ctx, "crm-b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.VerifiedAt == nil || !got.VerifiedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("VerifiedAt = %v, want %v", got.VerifiedAt, at)
	}

	// Delete.
	if err := s.DeleteBackup(ctx, "crm-b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBackup(ctx, "crm-b1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("after delete: %v, want not found", err)
	}
}

func testBackupNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["get"] = s.GetBackup(ctx, "crm-b404")
	checks["delete"] = s.DeleteBackup(ctx, "crm-b404")
	checks["verified"] = s.MarkBackupVerified(ctx, "crm-b404", time.Now())
	for what, err := range checks {
		var e *release.Error
		if !errors.As(err, &e) || e.Code != release.CodeNotFound {
			t.Errorf("%s: %v, want a not found *release.Error", what, err)
			continue
		}
		if e.Message != "no backup crm-b404" {
			t.Errorf("%s: message %q", what, e.Message)
		}
	}
}

func testListBackupsNewestFirst(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Saved out of order, two environments.
	for i, h := range []int{5, 1, 3, 2, 4} {
		if err := s.SaveBackup(ctx, sampleBackup(fmt.Sprintf("crm-b%d", i+1), "production", base.Add(time.Duration(h)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveBackup(ctx, sampleBackup("crm-b9", "staging", base)); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListBackups(ctx, "crm", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 5 {
		t.Fatalf("%d backups, want 5", len(list))
	}
	if !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].CreatedAt.After(list[j].CreatedAt) }) {
		t.Errorf("not newest first")
	}
	if list[0].ID != "crm-b1" || list[4].ID != "crm-b2" {
		t.Errorf("order %s ... %s", list[0].ID, list[4].ID)
	}
	for _, b := range list {
		if b.Env != "production" {
			t.Errorf("%s of %s listed", b.ID, b.Env)
		}
	}
	none, err := s.ListBackups(ctx, "tickets", "production")
	if err != nil || len(none) != 0 {
		t.Fatalf("other app: %v, %v", none, err)
	}
}

func testSaveBackupInvalid(t *testing.T, s Store) {
	b := sampleBackup("", "production", time.Now())
	if err := s.SaveBackup(context.Background(), b); release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("no ID: %v, want invalid", err)
	}
}

func testReleaseRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	cet := time.FixedZone("CET", 3600)
	base := time.Date(2025, 3, 4, 5, 6, 7, 123456789, cet)
	r := &release.Release{
		ID: "crm-r5", App: "crm", Env: "production", Kind: release.KindRollback,
		Migration: "crm-m7", FileHash: strings.Repeat("ab", 32), Backup: "crm-b12", Snapshot: "crm-r4", RollbackOf: "crm-r4", AllowNewPlugins: true, NoAnalyze: true,
		RequestedBy: "U01ALICE", RequestedAt: base, At: tp(base.Add(time.Hour)),
		State: release.StateScheduled, Reason: "because",
		// Out of time order: read back ordered by time.
		Approvals: []release.Approval{{By: "U03CAROL", At: base.Add(2 * time.Minute)}, {By: "U02BOB", At: base.Add(time.Minute)}},
		Steps: []release.Step{
			{Name: release.StepPreflight, State: release.StepDone, Started: tp(base.Add(time.Second)), Ended: tp(base.Add(2 * time.Second)), Log: "ok\nline two"},
			{Name: release.StepBackup, State: release.StepRunning, Started: tp(base.Add(3 * time.Second))},
			{Name: release.StepApply, State: release.StepPending},
		},
		Checks: []release.CheckResult{
			{Name: "users table", OK: true, Duration: 1234567891 * time.Nanosecond, Detail: "1 row"},
			{Name: "health", OK: false, Duration: 3 * time.Nanosecond, Detail: "HTTP 503"},
		},
		LeaseOwner: "host-1/1234", LeaseUntil: tp(base.Add(30 * time.Second)),
		Channel: "C0123", MessageTS: "1712345678.000100",
		Changes: &release.Changes{Against: "production", Items: []release.Change{
			{Kind: release.ChangePage, Action: "added", Name: "“Contracts”", Detail: "in “CRM”"},
			{Kind: release.ChangeRole, Action: "permissions", Name: "“Sales” (sales)", Detail: "granted contracts: view"}},
			Partial: []string{"uiSchemas"}},
	}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.UpdatedAt.IsZero() || r.UpdatedAt.Location() != time.UTC {
		t.Fatalf("CreateRelease set UpdatedAt %v", r.UpdatedAt)
	}
	got, err := s.GetRelease(ctx, "crm-r5")
	if err != nil {
		t.Fatal(err)
	}
	want := normalised(r)
	want.Approvals[0], want.Approvals[1] = want.Approvals[1], want.Approvals[0]
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if got.RequestedAt.Location() != time.UTC || got.Steps[0].Started.Location() != time.UTC {
		t.Errorf("times not in UTC")
	}

	// Optional fields left empty come back empty, not as NULL surprises.
	min := newRelease("crm-r6", "crm", "staging")
	if err := s.CreateRelease(ctx, min); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetRelease(ctx, "crm-r6")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, normalised(min)) {
		t.Fatalf("minimal round trip:\n got %+v\nwant %+v", got, normalised(min))
	}

	wantErr(t, "duplicate ID", s.CreateRelease(ctx, newRelease("crm-r6", "tickets", "staging")), release.CodeConflict, "release crm-r6 already exists")
	wantErr(t, "no app", s.CreateRelease(ctx, newRelease("crm-r7", "", "staging")), release.CodeInvalid, "")
	_, err = s.GetRelease(ctx, "crm-r404")
	wantErr(t, "get missing", err, release.CodeNotFound, "no release crm-r404")
}

func testCreateReleaseOneOpenPerEnvironment(t *testing.T, s Store) {
	ctx := context.Background()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateRelease(ctx, newRelease(fmt.Sprintf("crm-r%d", i+1), "crm", "production")) })
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		if err == nil {
			if winner != "" {
				t.Fatalf("both %s and crm-r%d created", winner, i+1)
			}
			winner = fmt.Sprintf("crm-r%d", i+1)
		}
	}
	if winner == "" {
		t.Fatalf("no release created: %v", errs)
	}
	msg := "production already has an open release " + winner + " (awaiting approval): approve, cancel or finish it first"
	for i, err := range errs {
		if err != nil {
			wantErr(t, fmt.Sprintf("crm-r%d", i+1), err, release.CodeConflict, msg)
		}
	}
	list, err := s.ListReleases(ctx, "crm", "production")
	if err != nil || len(list) != 1 || list[0].ID != winner {
		t.Fatalf("list after the race: %v, %v", list, err)
	}

	// Other environments and other apps are independent.
	for _, r := range []*release.Release{newRelease("crm-r30", "crm", "staging"), newRelease("tickets-r1", "tickets", "production")} {
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
	}
	// Every open state holds the environment; a closed one frees it.
	var closing release.State
	for _, to := range release.Transitions[release.StateInterrupted] {
		if !to.Open() {
			closing = to
			break
		}
	}
	steps := []struct {
		from, to release.State
		open     bool
	}{
		{release.StateAwaitingApproval, release.StateScheduled, true},
		{release.StateScheduled, release.StateRunning, true},
		{release.StateRunning, release.StateInterrupted, true},
		{release.StateInterrupted, closing, false},
	}
	for i, st := range steps {
		if err := s.MoveRelease(ctx, winner, st.from, st.to, ""); err != nil {
			t.Fatal(err)
		}
		err := s.CreateRelease(ctx, newRelease(fmt.Sprintf("crm-r%d", 40+i), "crm", "production"))
		if st.open {
			wantErr(t, "while "+string(st.to), err, release.CodeConflict,
				fmt.Sprintf("production already has an open release %s (%s): approve, cancel or finish it first", winner, st.to))
		} else if err != nil {
			t.Fatalf("after %s: %v", st.to, err)
		}
	}
}

func testAddApprovalConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateRelease(ctx, newRelease("crm-r1", "crm", "production")); err != nil {
		t.Fatal(err)
	}
	const n = 20
	results := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.AddApproval(ctx, "crm-r1", release.Approval{By: fmt.Sprintf("U%d", i%5), At: time.Now()})
		})
	}
	wg.Wait()
	trues := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i] {
			trues[fmt.Sprintf("U%d", i%5)]++
		}
	}
	if len(trues) != 5 {
		t.Fatalf("inserted per approver: %v, want each of 5 once", trues)
	}
	for who, c := range trues {
		if c != 1 {
			t.Errorf("%s counted %d times", who, c)
		}
	}
	r, err := s.GetRelease(ctx, "crm-r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Approvals) != 5 {
		t.Fatalf("%d approvals stored, want 5: %+v", len(r.Approvals), r.Approvals)
	}
	for i := 1; i < len(r.Approvals); i++ {
		if r.Approvals[i].At.Before(r.Approvals[i-1].At) {
			t.Errorf("approvals not in time order: %+v", r.Approvals)
		}
	}

	// A zero time is the database's now.
	before := time.Now().Add(-time.Minute)
	if ok, err := s.AddApproval(ctx, "crm-r1", release.Approval{By: "U9"}); !ok || err != nil {
		t.Fatalf("zero time: %v %v", ok, err)
	}
	r, _ = s.GetRelease(ctx, "crm-r1")
	if last := r.Approvals[len(r.Approvals)-1]; last.By != "U9" || last.At.Before(before) {
		t.Errorf("zero-time approval stored as %+v", last)
	}
	_, err = s.AddApproval(ctx, "crm-r404", release.Approval{By: "U1"})
	wantErr(t, "missing release", err, release.CodeNotFound, "no release crm-r404")
	_, err = s.AddApproval(ctx, "crm-r1", release.Approval{})
	wantErr(t, "no approver", err, release.CodeInvalid, "")
}

func testMoveReleaseCompareAndSet(t *testing.T, s Store) {
	ctx := context.Background()
	for round := range 5 {
		id := fmt.Sprintf("crm-r%d", round+1)
		if err := s.CreateRelease(ctx, newRelease(id, "crm", "production")); err != nil {
			t.Fatal(err)
		}
		// Approve and cancel race from the same state.
		targets := []release.State{release.StateScheduled, release.StateCancelled}
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, to := range targets {
			wg.Go(func() { errs[i] = s.MoveRelease(ctx, id, release.StateAwaitingApproval, to, "by "+string(to)) })
		}
		wg.Wait()
		switch {
		case errs[0] == nil && errs[1] != nil:
			wantErr(t, "loser", errs[1], release.CodeConflict, id+" is scheduled, not awaiting approval")
		case errs[1] == nil && errs[0] != nil:
			wantErr(t, "loser", errs[0], release.CodeConflict, id+" is cancelled, not awaiting approval")
		default:
			t.Fatalf("round %d: both or neither won: %v", round, errs)
		}
		r, err := s.GetRelease(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Reason != "by "+string(r.State) {
			t.Fatalf("state %s with reason %q", r.State, r.Reason)
		}
		if r.State == release.StateScheduled {
			if err := s.MoveRelease(ctx, id, release.StateScheduled, release.StateCancelled, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantErr(t, "disallowed move", s.MoveRelease(ctx, "crm-r1", release.StateCancelled, release.StateRunning, ""),
		release.CodeInvalid, "a release cannot go from cancelled to running")
	wantErr(t, "missing", s.MoveRelease(ctx, "crm-r404", release.StateScheduled, release.StateRunning, ""),
		release.CodeNotFound, "no release crm-r404")

	// UpdatedAt moves with the state.
	r1, _ := s.GetRelease(ctx, "crm-r1")
	time.Sleep(5 * time.Millisecond)
	if err := s.MoveRelease(ctx, "crm-r1", release.StateCancelled, release.StateRolledBack, ""); release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("cancelled -> rolled back: %v", err)
	}
	if err := s.CreateRelease(ctx, newRelease("crm-r9", "crm", "production")); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveRelease(ctx, "crm-r9", release.StateAwaitingApproval, release.StateRejected, "no"); err != nil {
		t.Fatal(err)
	}
	r9, _ := s.GetRelease(ctx, "crm-r9")
	if !r9.UpdatedAt.After(r1.UpdatedAt) {
		t.Errorf("UpdatedAt %v not after %v", r9.UpdatedAt, r1.UpdatedAt)
	}
}

func testLeases(t *testing.T, s Store) {
	ctx := context.Background()
	r := newRelease("crm-r1", "crm", "production")
	r.State = release.StateScheduled
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	other := newRelease("tickets-r1", "tickets", "production")
	other.State = release.StateScheduled
	if err := s.CreateRelease(ctx, other); err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	// Ten processes try to run it: one does.
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.TakeLease(ctx, "crm-r1", release.StateScheduled, fmt.Sprintf("p%d", i), now.Add(time.Minute))
		})
	}
	wg.Wait()
	owner := ""
	for i, err := range errs {
		if err == nil {
			if owner != "" {
				t.Fatalf("two runners: %s and p%d", owner, i)
			}
			owner = fmt.Sprintf("p%d", i)
		}
	}
	if owner == "" {
		t.Fatalf("nobody took the lease: %v", errs)
	}
	for _, err := range errs {
		if err != nil {
			var e *release.Error
			if !errors.As(err, &e) || e.Code != release.CodeConflict ||
				!strings.HasPrefix(e.Message, "crm-r1 is running (run by "+owner+" until ") || !strings.HasSuffix(e.Message, "), not scheduled") {
				t.Fatalf("loser: %v", err)
			}
		}
	}
	got, _ := s.GetRelease(ctx, "crm-r1")
	if got.State != release.StateRunning || got.LeaseOwner != owner || !got.LeaseUntil.Equal(now.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("after TakeLease: %+v", got)
	}

	// Renewal by the owner; anyone else has lost it.
	if err := s.RenewLease(ctx, "crm-r1", owner, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "renew by another", s.RenewLease(ctx, "crm-r1", "intruder", now.Add(time.Hour)), release.CodeConflict, "lease of crm-r1 lost")
	wantErr(t, "renew missing", s.RenewLease(ctx, "crm-r404", owner, now), release.CodeNotFound, "no release crm-r404")

	// The lease now ran out (renewed into the past): restart recovery finds it.
	if err := s.TakeLease(ctx, "tickets-r1", release.StateScheduled, "q", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	expired, err := s.ExpiredLeases(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(expired) != 1 || expired[0].ID != "crm-r1" || expired[0].LeaseOwner != owner {
		t.Fatalf("expired leases: %+v", expired)
	}
	if err := s.SaveSteps(ctx, "crm-r1", []release.Step{{Name: release.StepApply, State: release.StepRunning, Started: &now}}); err != nil {
		t.Fatal(err)
	}
	expired, _ = s.ExpiredLeases(ctx, now)
	if len(expired) != 1 || len(expired[0].Steps) != 1 || expired[0].Steps[0].Name != release.StepApply {
		t.Fatalf("expired lease without its steps: %+v", expired)
	}
	if later, _ := s.ExpiredLeases(ctx, now.Add(2*time.Hour)); len(later) != 2 {
		t.Fatalf("two hours on: %d expired, want 2", len(later))
	}

	// Interrupted, then resumed by another process: the first one lost it.
	if err := s.MoveRelease(ctx, "crm-r1", release.StateRunning, release.StateInterrupted, "runner died during apply migration"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "renew after interrupt", s.RenewLease(ctx, "crm-r1", owner, now.Add(time.Hour)), release.CodeConflict, "lease of crm-r1 lost")
	if expired, _ := s.ExpiredLeases(ctx, now); len(expired) != 0 {
		t.Fatalf("interrupted release listed as expired: %+v", expired)
	}
	if err := s.TakeLease(ctx, "crm-r1", release.StateInterrupted, "p-new", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetRelease(ctx, "crm-r1")
	if got.State != release.StateRunning || got.LeaseOwner != "p-new" || got.Reason != "" {
		t.Fatalf("resumed: %+v", got)
	}
	wantErr(t, "old owner", s.RenewLease(ctx, "crm-r1", owner, now.Add(time.Hour)), release.CodeConflict, "lease of crm-r1 lost")
	if err := s.RenewLease(ctx, "crm-r1", "p-new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "take from succeeded", s.TakeLease(ctx, "crm-r1", release.StateSucceeded, "x", now), release.CodeInvalid, "")
	wantErr(t, "take missing", s.TakeLease(ctx, "crm-r404", release.StateScheduled, "x", now), release.CodeNotFound, "no release crm-r404")
}

func testStepsChecksBackupMessage(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateRelease(ctx, newRelease("crm-r1", "crm", "production")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	long := []release.Step{{Name: "a", State: release.StepDone, Started: &t0, Ended: &t0}, {Name: "b", State: release.StepFailed, Log: "boom"}, {Name: "c", State: release.StepSkipped}}
	if err := s.SaveSteps(ctx, "crm-r1", long); err != nil {
		t.Fatal(err)
	}
	short := []release.Step{{Name: "x", State: release.StepPending}}
	if err := s.SaveSteps(ctx, "crm-r1", short); err != nil {
		t.Fatal(err)
	}
	checks := []release.CheckResult{{Name: "c1", OK: true, Duration: time.Millisecond}}
	if err := s.SaveChecks(ctx, "crm-r1", checks); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveChecks(ctx, "crm-r1", checks); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBackup(ctx, "crm-r1", "crm-b3"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSnapshot(ctx, "crm-r1", "crm-r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMessage(ctx, "crm-r1", "C1", "1.2"); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRelease(ctx, "crm-r1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Steps, short) || !reflect.DeepEqual(r.Checks, checks) || r.Backup != "crm-b3" || r.Snapshot != "crm-r1" || r.Channel != "C1" || r.MessageTS != "1.2" {
		t.Fatalf("after saves: %+v", r)
	}
	// Concurrent replacements of one release serialise instead of colliding.
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { errs[i] = s.SaveSteps(ctx, "crm-r1", long) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSteps(ctx, "crm-r1", nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.GetRelease(ctx, "crm-r1"); r.Steps != nil {
		t.Fatalf("steps after clearing: %+v", r.Steps)
	}
	for what, err := range map[string]error{
		"steps":    s.SaveSteps(ctx, "crm-r404", short),
		"checks":   s.SaveChecks(ctx, "crm-r404", checks),
		"backup":   s.SetBackup(ctx, "crm-r404", "b"),
		"snapshot": s.SetSnapshot(ctx, "crm-r404", "s"),
		"message":  s.SetMessage(ctx, "crm-r404", "C", "1"),
	} {
		wantErr(t, what, err, release.CodeNotFound, "no release crm-r404")
	}
}

func testListReleases(t *testing.T, s Store) {
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, h := range []int{3, 1, 2} {
		r := newRelease(fmt.Sprintf("crm-r%d", i+1), "crm", "production")
		r.RequestedAt = base.Add(time.Duration(h) * time.Hour)
		r.State = release.StateSucceeded
		r.Approvals = []release.Approval{{By: "U1", At: base}, {By: fmt.Sprintf("U%d", i+2), At: base.Add(time.Minute)}}
		r.Steps = []release.Step{{Name: release.StepApply, State: release.StepDone}}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	st := newRelease("crm-r4", "crm", "staging")
	st.RequestedAt = base
	if err := s.CreateRelease(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRelease(ctx, newRelease("tickets-r1", "tickets", "production")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListReleases(ctx, "crm", "production")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
		if len(r.Approvals) != 2 || r.Approvals[0].By != "U1" || len(r.Steps) != 1 {
			t.Errorf("%s loaded with %+v %+v", r.ID, r.Approvals, r.Steps)
		}
	}
	if strings.Join(ids, " ") != "crm-r1 crm-r3 crm-r2" {
		t.Fatalf("production order %v", ids)
	}
	all, err := s.ListReleases(ctx, "crm", "")
	if err != nil || len(all) != 4 || all[3].ID != "crm-r4" || all[3].Approvals != nil {
		t.Fatalf("all envs: %+v %v", all, err)
	}
	none, err := s.ListReleases(ctx, "nobody", "")
	if err != nil || len(none) != 0 {
		t.Fatalf("unknown app: %v %v", none, err)
	}
}

func testHolds(t *testing.T, s Store) {
	ctx := context.Background()
	if h, err := s.GetHold(ctx, "crm", "production"); h != nil || err != nil {
		t.Fatalf("no hold: %v %v", h, err)
	}
	at := time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.FixedZone("X", -7200))
	h := release.Hold{App: "crm", Env: "production", Reason: "incident 42", By: "U01ALICE", At: at}
	if err := s.PutHold(ctx, h); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetHold(ctx, "crm", "production")
	if err != nil {
		t.Fatal(err)
	}
	want := h
	want.At = at.Truncate(time.Microsecond).UTC()
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("hold: %+v, want %+v", *got, want)
	}
	// A second hold is refused, naming the first, which stays.
	h.Reason, h.By = "incident 43", "U02BOB"
	wantErr(t, "second hold", s.PutHold(ctx, h), release.CodeConflict, "crm production is locked already, by U01ALICE since 2025-06-01 12:00 UTC: incident 42; unlock crm production first to lock it again")
	if err := s.DeleteHold(ctx, "crm", "production"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHold(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHold(ctx, release.Hold{App: "crm", Env: "staging", Reason: "tests", By: "U3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHold(ctx, release.Hold{App: "billing", Env: "production", Reason: "r", By: "U3", At: at}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListHolds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].App != "billing" || list[1].Env != "production" || list[1].Reason != "incident 43" || list[1].By != "U02BOB" ||
		list[2].Env != "staging" || list[2].At.IsZero() {
		t.Fatalf("holds: %+v", list)
	}
	if err := s.DeleteHold(ctx, "crm", "production"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete twice", s.DeleteHold(ctx, "crm", "production"), release.CodeNotFound, "crm production is not locked")
	if h, err := s.GetHold(ctx, "crm", "production"); h != nil || err != nil {
		t.Fatalf("after delete: %v %v", h, err)
	}
	wantErr(t, "no by", s.PutHold(ctx, release.Hold{App: "crm", Env: "x"}), release.CodeInvalid, "")
}

// Users locking one environment at once: exactly one is told it is
// locked, every other is refused naming that one, and the hold is the
// winner's.
func testHoldConcurrentLockers(t *testing.T, s Store) {
	ctx := context.Background()
	const lockers = 12
	for trial := range 5 {
		env := fmt.Sprintf("env%d", trial)
		errs := make([]error, lockers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range lockers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.PutHold(ctx, release.Hold{App: "crm", Env: env, Reason: fmt.Sprintf("reason %d", i), By: fmt.Sprintf("U%02d", i)})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("trial %d: U%02d and U%02d were both told locked", trial, winner, i)
			case err == nil:
				winner = i
			case release.ErrorCode(err) != release.CodeConflict:
				t.Fatalf("trial %d: U%02d: %v", trial, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("trial %d: nobody locked: %v", trial, errs)
		}
		for i, err := range errs {
			if i != winner && !strings.Contains(release.ErrorMessage(err), fmt.Sprintf("by U%02d since", winner)) {
				t.Fatalf("trial %d: refusal of U%02d does not name the holder U%02d: %v", trial, i, winner, err)
			}
		}
		h, err := s.GetHold(ctx, "crm", env)
		if err != nil || h == nil || h.By != fmt.Sprintf("U%02d", winner) || h.Reason != fmt.Sprintf("reason %d", winner) {
			t.Fatalf("trial %d: hold %+v (%v), want the winner's", trial, h, err)
		}
	}
}

func testVariables(t *testing.T, s Store) {
	ctx := context.Background()
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

func testVersions(t *testing.T, s Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	v1 := &release.Version{ID: "crm-v1", App: "crm", Env: "development", Description: "first", CreatedBy: "alice", CreatedAt: at,
		CoreVersion: "2.2.15", Plugins: map[string]string{"acl": "2.2.15"},
		Tables: []release.VersionTable{{Table: "uiSchemas", Rule: "overwrite", Blob: "ab", Rows: 3, Checksum: "cd", Columns: []string{"x-uid"}, Schema: json.RawMessage(`{"name": "uiSchemas"}`)}}}
	v2 := &release.Version{ID: "crm-v2", App: "crm", Env: "development", Description: "before restore of crm-v1", CreatedBy: "bob", CreatedAt: at.Add(time.Minute), Auto: true,
		Tables: []release.VersionTable{}}
	other := &release.Version{ID: "shop-v1", App: "shop", Env: "development", Description: "x", CreatedBy: "c", CreatedAt: at, Tables: []release.VersionTable{}}
	for _, v := range []*release.Version{v1, v2, other} {
		if err := s.SaveVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveVersion(ctx, v1); err == nil {
		t.Fatalf("saving an ID twice: %v", err)
	}
	got, err := s.GetVersion(ctx, "crm-v1")
	if err != nil || !reflect.DeepEqual(got, v1) {
		t.Fatalf("get: %v\n%+v\n%+v", err, got, v1)
	}
	list, err := s.ListVersions(ctx, "crm")
	if err != nil || len(list) != 2 || list[0].ID != "crm-v2" || !list[0].Auto {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := s.DeleteVersion(ctx, "crm-v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVersion(ctx, "crm-v1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("deleted: %v", err)
	}
	if err := s.DeleteVersion(ctx, "crm-v1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("delete twice: %v", err)
	}
}
