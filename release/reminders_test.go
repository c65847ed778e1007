package release_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

type groupsOf map[string][]string

func (g groupsOf) GroupMembers(_ context.Context, group string) ([]string, error) {
	m, ok := g[group]
	if !ok {
		return nil, errors.New("slack: no such group")
	}
	return m, nil
}

// Half way through its approval window a release names whom to remind:
// the approve role's holders, groups resolved, less its requester and
// those who approved; before half way, once expired, or where anyone may
// approve, nobody.
func TestDueReminders(t *testing.T) {
	ctx := context.Background()
	d := newDomain(t, release.ApprovalPolicy{Required: 3, Expire: 4 * time.Hour,
		Approvers: []string{"U01AAA", "U02BBB", "U03CCC", "@release-managers", "@gone"}})
	d.svc.Groups = groupsOf{"@release-managers": {"U05EEE", "U03CCC"}}
	id := d.requested(t, "U01AAA")
	if _, _, err := d.svc.Approve(ctx, "U02BBB", id); err != nil {
		t.Fatal(err)
	}
	due := func(after time.Duration) []release.Reminder {
		t.Helper()
		d.now = requestedAt.Add(after)
		rs, err := d.svc.DueReminders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if rs := due(2*time.Hour - time.Minute); len(rs) != 0 {
		t.Fatalf("before half the window: %+v", rs)
	}
	rs := due(2 * time.Hour)
	if len(rs) != 1 || rs[0].Release.ID != id || !slices.Equal(rs[0].Approvers, []string{"U03CCC", "U05EEE"}) || !rs[0].ExpiresAt.Equal(requestedAt.Add(4*time.Hour)) || rs[0].Missing != 2 {
		t.Fatalf("half way: %+v", rs)
	}
	if rs := due(4 * time.Hour); len(rs) != 0 || d.stored(t, id).State != release.StateExpired {
		t.Fatalf("expired: %+v, state %s", rs, d.stored(t, id).State)
	}

	open := newDomain(t, release.ApprovalPolicy{Required: 1, Expire: time.Hour})
	open.requested(t, "U01AAA")
	open.now = requestedAt.Add(40 * time.Minute)
	if rs, err := open.svc.DueReminders(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("anyone may approve: %+v %v", rs, err)
	}
}
