package commands

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/memory"
)

// The App Home of each user: what waits for their approval is judged as
// the approval would be (the role, not their own release, not twice);
// their own open releases; every environment's open and last release and
// lock.
func TestHomeOfEachUser(t *testing.T) {
	ctx := context.Background()
	app := &release.App{Name: "crm", Environments: []*release.Environment{
		{Name: "staging"},
		{Name: "production", Approvals: release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}}},
	}}
	store := memory.NewStore()
	core := release.NewCore([]*release.App{app}, store, memory.NewLocker(), nil)
	svc := &release.ReleaseService{Core: core, Store: store}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	add := func(id, env, by string, state release.State, approvals ...string) {
		r := &release.Release{ID: id, App: "crm", Env: env, Kind: release.KindDeploy, Migration: "crm-m1", RequestedBy: by, RequestedAt: at, State: state}
		for _, a := range approvals {
			r.Approvals = append(r.Approvals, release.Approval{By: a, At: at})
		}
		if err := store.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Minute)
	}
	add("crm-r1", "production", "U01AAA", release.StateSucceeded)
	add("crm-r2", "production", "U01AAA", release.StateAwaitingApproval, "U02BBB")
	add("crm-r3", "staging", "U04ALICE", release.StateFailed)
	if _, err := svc.Lock(ctx, "U04ALICE", "crm", "staging", "incident 42"); err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{Services: Services{Core: core, Releases: svc}}

	ids := func(rs []*release.Release) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, c := range []struct {
		user            string
		toApprove, mine []string
	}{
		{"U03CCC", []string{"crm-r2"}, nil},
		{"U01AAA", nil, []string{"crm-r2"}}, // their own: not theirs to approve
		{"U02BBB", nil, nil},                // approved already
		{"U09MALLORY", nil, nil},            // no approve role
	} {
		h, err := d.Home(ctx, c.user)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(h.ToApprove); !slices.Equal(got, c.toApprove) {
			t.Errorf("%s: to approve %v, want %v", c.user, got, c.toApprove)
		}
		if got := ids(h.Mine); !slices.Equal(got, c.mine) {
			t.Errorf("%s: mine %v, want %v", c.user, got, c.mine)
		}
	}
	h, err := d.Home(ctx, "U03CCC")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Apps) != 1 || len(h.Apps[0].Envs) != 2 {
		t.Fatalf("apps: %+v", h.Apps)
	}
	stg, prod := h.Apps[0].Envs[0], h.Apps[0].Envs[1]
	switch {
	case stg.Env != "staging" || stg.Open != nil || stg.Last == nil || stg.Last.ID != "crm-r3" || stg.Hold == nil || stg.Hold.Reason != "incident 42":
		t.Errorf("staging: %+v", stg)
	case prod.Env != "production" || prod.Open == nil || prod.Open.ID != "crm-r2" || prod.Last == nil || prod.Last.ID != "crm-r1" || prod.Hold != nil:
		t.Errorf("production: %+v", prod)
	}
}
