package release_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// A request not approved within approvals.expire expires when next read
// (GetRelease, ListReleases, Approve all read it first), and frees its
// environment.
func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		expire  time.Duration
		after   time.Duration // since the request
		state   release.State
		reason  string
		read    func(ctx context.Context, s *release.ReleaseService, id string) error
		readErr release.Code // what the read itself returns
	}{
		{name: "just before the window ends", expire: time.Hour, after: time.Hour - time.Second,
			state: release.StateAwaitingApproval, read: getRelease},
		{name: "when the window ends", expire: time.Hour, after: time.Hour,
			state: release.StateExpired, reason: "not approved within 1h0m0s", read: getRelease},
		{name: "listed after the window", expire: 30 * time.Minute, after: 2 * time.Hour,
			state: release.StateExpired, reason: "not approved within 30m0s", read: listReleases},
		{name: "approved too late", expire: time.Hour, after: 90 * time.Minute,
			state: release.StateExpired, reason: "not approved within 1h0m0s", read: approve, readErr: release.CodeConflict},
		{name: "approved in time", expire: time.Hour, after: 59 * time.Minute,
			state: release.StateScheduled, reason: "approved by U02BBB", read: approve},
		{name: "no window: never expires", expire: 0, after: 30 * 24 * time.Hour,
			state: release.StateAwaitingApproval, read: getRelease},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDomain(t, release.ApprovalPolicy{Required: 1, Approvers: threeApprovers, Expire: tc.expire})
			id := d.requested(t, "U07DEV")
			d.now = requestedAt.Add(tc.after)
			err := tc.read(context.Background(), d.svc, id)
			if release.ErrorCode(err) != tc.readErr && (err != nil || tc.readErr != "") {
				t.Fatalf("read: %v (code %q), want code %q", err, release.ErrorCode(err), tc.readErr)
			}
			r := d.stored(t, id)
			if r.State != tc.state || r.Reason != tc.reason {
				t.Fatalf("stored: %s (%q), want %s (%q)", r.State, r.Reason, tc.state, tc.reason)
			}
			expired := slices.Contains(d.events.kinds(), release.EventExpired)
			if expired != (tc.state == release.StateExpired) {
				t.Errorf("expired event sent: %v, want %v (%v)", expired, tc.state == release.StateExpired, d.events.kinds())
			}
			// An expired request no longer holds production.
			next := d.requestErr(t, "U07DEV")
			if free := next == nil; free != !tc.state.Open() {
				t.Errorf("a new request after %s: %v, want free=%v", tc.state, next, !tc.state.Open())
			}
		})
	}
}

// Reading an expired request again does not expire it twice.
func TestExpiryOnce(t *testing.T) {
	d := newDomain(t, release.ApprovalPolicy{Required: 1, Approvers: threeApprovers, Expire: time.Hour})
	id := d.requested(t, "U07DEV")
	d.now = requestedAt.Add(2 * time.Hour)
	for range 3 {
		r, err := d.svc.GetRelease(context.Background(), id)
		if err != nil || r.State != release.StateExpired {
			t.Fatalf("GetRelease: %+v, %v", r, err)
		}
	}
	n := 0
	for _, k := range d.events.kinds() {
		if k == release.EventExpired {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d expired events, want 1: %v", n, d.events.kinds())
	}
}

func getRelease(ctx context.Context, s *release.ReleaseService, id string) error {
	_, err := s.GetRelease(ctx, id)
	return err
}

func listReleases(ctx context.Context, s *release.ReleaseService, _ string) error {
	_, err := s.ListReleases(ctx, "crm", "production")
	return err
}

func approve(ctx context.Context, s *release.ReleaseService, id string) error {
	_, _, err := s.Approve(ctx, "U02BBB", id)
	return err
}
