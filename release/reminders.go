package release

import (
	"context"
	"slices"
	"time"
)

// Reminder is a release that has waited half its approval window or more,
// with the approvers who may still give it the approvals it lacks.
type Reminder struct {
	Release   *Release
	Approvers []string // user IDs: groups resolved, the requester and those who approved left out
	ExpiresAt time.Time
	Missing   int // approvals still needed
}

// DueReminders lists the releases awaiting approval, in every app, that
// have waited half their environment's approval expiry (and are not
// expired), each with whom to remind. A group whose members cannot be read
// is left out and logged: the others are still reminded.
func (s *ReleaseService) DueReminders(ctx context.Context) ([]Reminder, error) {
	now := s.Now()
	var out []Reminder
	for _, a := range s.Apps() {
		rs, err := s.ListReleases(ctx, a.Name, "")
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.State != StateAwaitingApproval {
				continue
			}
			e, err := a.Env(r.Env)
			if err != nil || e.Approvals.Expire <= 0 || now.Before(r.RequestedAt.Add(e.Approvals.Expire/2)) {
				continue
			}
			approvers := s.mayApprove(ctx, a, e, r)
			if len(approvers) > 0 {
				out = append(out, Reminder{Release: r, Approvers: approvers, ExpiresAt: r.RequestedAt.Add(e.Approvals.Expire),
					Missing: max(e.Approvals.Required-len(r.Approvals), 0)})
			}
		}
	}
	return out, nil
}

// mayApprove is who holds the approve role on e, by name (anyone-may
// environments have nobody to remind), less those the approval would
// refuse: the requester (unless self-approval is allowed) and those who
// approved already.
func (s *ReleaseService) mayApprove(ctx context.Context, a *App, e *Environment, r *Release) []string {
	members, restricted, _ := a.Holders(e, ActApprove)
	if !restricted {
		return nil
	}
	var users []string
	for _, m := range members {
		if !IsGroup(m) {
			users = append(users, m)
			continue
		}
		if s.Groups == nil {
			continue
		}
		in, err := s.Groups.GroupMembers(ctx, m)
		if err != nil {
			s.Log.Warn("approval reminder: group members not read", "group", m, "release", r.ID, "err", err)
			continue
		}
		users = append(users, in...)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	return slices.DeleteFunc(users, func(u string) bool {
		if u == Anyone || (u == r.RequestedBy && !e.Approvals.AllowSelf) {
			return true
		}
		return slices.ContainsFunc(r.Approvals, func(ap Approval) bool { return ap.By == u })
	})
}
