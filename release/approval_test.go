package release_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/memory"
)

// These tests run the domain's approval and expiry rules on the in-memory
// store (held to storage/postgres's behaviour by storage/internal/storetest),
// so they need no database and take milliseconds.

var requestedAt = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)

// events records what the service announced.
type events struct {
	mu   sync.Mutex
	list []release.Event
}

func (e *events) ReleaseChanged(_ context.Context, _ *release.Release, ev release.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) kinds() []release.EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []release.EventKind
	for _, ev := range e.list {
		out = append(out, ev.Kind)
	}
	return out
}

// domain is a ReleaseService over one app whose production needs policy, on a
// fresh in-memory store, with a clock the test sets.
type domain struct {
	svc    *release.ReleaseService
	store  *memory.Store
	events *events
	now    time.Time
}

func newDomain(t *testing.T, policy release.ApprovalPolicy) *domain {
	t.Helper()
	app := &release.App{Name: "crm", Environments: []*release.Environment{
		{Name: "staging"},
		{Name: "production", Approvals: policy},
	}}
	d := &domain{store: memory.NewStore(), events: &events{}, now: requestedAt}
	d.svc = &release.ReleaseService{Core: release.NewCore([]*release.App{app}, d.store, nil, nil), Store: d.store, Notifier: d.events}
	d.svc.Now = func() time.Time { return d.now }
	return d
}

// requested stores a deploy of production that by asked for at
// requestedAt, awaiting approval, as RequestDeploy leaves it.
func (d *domain) requested(t *testing.T, by string) string {
	t.Helper()
	ctx := context.Background()
	id, err := d.store.NextID(ctx, "crm", "r")
	if err != nil {
		t.Fatal(err)
	}
	err = d.store.CreateRelease(ctx, &release.Release{ID: id, App: "crm", Env: "production", Kind: release.KindDeploy,
		Migration: "crm-m1", RequestedBy: by, RequestedAt: requestedAt, State: release.StateAwaitingApproval,
		Steps: []release.Step{{Name: release.StepPreflight, State: release.StepPending}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// requestErr tries to store another awaiting request of production.
func (d *domain) requestErr(t *testing.T, by string) error {
	t.Helper()
	ctx := context.Background()
	id, err := d.store.NextID(ctx, "crm", "r")
	if err != nil {
		t.Fatal(err)
	}
	return d.store.CreateRelease(ctx, &release.Release{ID: id, App: "crm", Env: "production", Kind: release.KindDeploy,
		Migration: "crm-m1", RequestedBy: by, RequestedAt: d.now, State: release.StateAwaitingApproval})
}

func (d *domain) stored(t *testing.T, id string) *release.Release {
	t.Helper()
	r, err := d.store.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func approvers(r *release.Release) string {
	var by []string
	for _, a := range r.Approvals {
		by = append(by, a.By)
	}
	return strings.Join(by, " ")
}

var threeApprovers = []string{"U01AAA", "U02BBB", "U03CCC"}

func TestApprovals(t *testing.T) {
	type approval struct {
		by       string
		code     release.Code // "" when it is accepted
		msg      string       // part of the refusal
		runnable bool
	}
	tests := []struct {
		name      string
		policy    release.ApprovalPolicy
		requester string
		approvals []approval
		state     release.State // afterwards
		approved  string        // who is on record
		reason    string
	}{
		{
			name:      "the requester's own approval is refused",
			policy:    release.ApprovalPolicy{Required: 1, Approvers: threeApprovers},
			requester: "U01AAA",
			approvals: []approval{{by: "U01AAA", code: release.CodeForbidden, msg: "U01AAA requested crm-r1 and may not approve it too: someone else must"}},
			state:     release.StateAwaitingApproval,
		},
		{
			name:      "allow_self lets the requester count",
			policy:    release.ApprovalPolicy{Required: 1, Approvers: threeApprovers, AllowSelf: true},
			requester: "U01AAA",
			approvals: []approval{{by: "U01AAA", runnable: true}},
			state:     release.StateScheduled, approved: "U01AAA", reason: "approved by U01AAA",
		},
		{
			name:      "only an approver may approve",
			policy:    release.ApprovalPolicy{Required: 1, Approvers: threeApprovers},
			requester: "U07DEV",
			approvals: []approval{{by: "U09MALLORY", code: release.CodeForbidden, msg: "U09MALLORY may not approve"}},
			state:     release.StateAwaitingApproval,
		},
		{
			name:      "scheduled once the count is reached, not before",
			policy:    release.ApprovalPolicy{Required: 2, Approvers: threeApprovers},
			requester: "U07DEV",
			approvals: []approval{{by: "U02BBB"}, {by: "U03CCC", runnable: true}},
			state:     release.StateScheduled, approved: "U02BBB U03CCC", reason: "approved by U02BBB and U03CCC",
		},
		{
			name:      "a second approval by the same person does not count",
			policy:    release.ApprovalPolicy{Required: 2, Approvers: threeApprovers},
			requester: "U07DEV",
			approvals: []approval{{by: "U02BBB"}, {by: "U02BBB", code: release.CodeConflict, msg: "U02BBB already approved crm-r1"}},
			state:     release.StateAwaitingApproval, approved: "U02BBB",
		},
		{
			name:      "no approval once scheduled",
			policy:    release.ApprovalPolicy{Required: 1, Approvers: threeApprovers},
			requester: "U07DEV",
			approvals: []approval{{by: "U02BBB", runnable: true}, {by: "U03CCC", code: release.CodeConflict, msg: "crm-r1 is scheduled, not awaiting approval"}},
			state:     release.StateScheduled, approved: "U02BBB", reason: "approved by U02BBB",
		},
		{
			name:      "anyone, when the environment names no approvers",
			policy:    release.ApprovalPolicy{Required: 1},
			requester: "U07DEV",
			approvals: []approval{{by: "U09MALLORY", runnable: true}},
			state:     release.StateScheduled, approved: "U09MALLORY", reason: "approved by U09MALLORY",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDomain(t, tc.policy)
			id := d.requested(t, tc.requester)
			for _, a := range tc.approvals {
				d.now = d.now.Add(time.Minute)
				r, runnable, err := d.svc.Approve(context.Background(), a.by, id)
				if a.code != "" {
					if release.ErrorCode(err) != a.code || !strings.Contains(release.ErrorMessage(err), a.msg) {
						t.Fatalf("%s approves: %v (code %q), want %s %q", a.by, err, release.ErrorCode(err), a.code, a.msg)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s approves: %v", a.by, err)
				}
				if runnable != a.runnable {
					t.Errorf("%s approves: runnable %v, want %v", a.by, runnable, a.runnable)
				}
				if r == nil || !slices.ContainsFunc(r.Approvals, func(x release.Approval) bool { return x.By == a.by }) {
					t.Errorf("%s approves: the release returned does not list the approval: %+v", a.by, r)
				}
			}
			r := d.stored(t, id)
			if r.State != tc.state || approvers(r) != tc.approved || r.Reason != tc.reason {
				t.Errorf("afterwards: %s by %q (%q), want %s by %q (%q)", r.State, approvers(r), r.Reason, tc.state, tc.approved, tc.reason)
			}
		})
	}
}

// Two approvers at once on a release that needs one: both are recorded,
// and exactly one of them is told it is theirs to run.
func TestApprovalsRaceToRunnable(t *testing.T) {
	d := newDomain(t, release.ApprovalPolicy{Required: 1, Approvers: threeApprovers})
	id := d.requested(t, "U07DEV")
	var wg sync.WaitGroup
	runnable := make([]bool, 2)
	errs := make([]error, 2)
	for i, by := range []string{"U02BBB", "U03CCC"} {
		wg.Go(func() { _, runnable[i], errs[i] = d.svc.Approve(context.Background(), by, id) })
	}
	wg.Wait()
	ok := 0
	for i := range errs {
		// The later one may find it scheduled already: a conflict, not a second run.
		if errs[i] != nil && release.ErrorCode(errs[i]) != release.CodeConflict {
			t.Fatalf("approval %d: %v", i, errs[i])
		}
		if runnable[i] {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d callers told to run it, want 1 (%v)", ok, errs)
	}
	if r := d.stored(t, id); r.State != release.StateScheduled {
		t.Fatalf("state %s, want scheduled", r.State)
	}
}
