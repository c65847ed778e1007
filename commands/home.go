package commands

import (
	"context"
	"slices"

	"github.com/relbot/relbot/release"
)

// Home is what one user's Slack App Home shows: the releases waiting for
// their approval, their own open releases, and each app at a glance.
type Home struct {
	User      string
	ToApprove []*release.Release // awaiting approval, that they may approve and have not
	Mine      []*release.Release // open releases they asked for
	Apps      []HomeApp
}

// HomeApp is one app's environments at a glance.
type HomeApp struct {
	App  string
	Envs []HomeEnv
}

// HomeEnv is one environment: what is in flight, the last release, a lock.
type HomeEnv struct {
	Env        string
	Open, Last *release.Release
	Hold       *release.Hold
}

// Home gathers user's App Home. Who may approve is judged as the approval
// itself is: the approve role, the requester's own release refused unless
// allowed, an approval given once.
func (d *Dispatcher) Home(ctx context.Context, user string) (*Home, error) {
	holds, err := d.Releases.Holds(ctx)
	if err != nil {
		return nil, err
	}
	h := &Home{User: user}
	for _, a := range d.Core.Apps() {
		rs, err := d.Releases.ListReleases(ctx, a.Name, "") // newest first
		if err != nil {
			return nil, err
		}
		app := HomeApp{App: a.Name}
		envs := append([]*release.Environment{}, a.Environments...)
		if a.Recovery != nil {
			envs = append(envs, a.Recovery)
		}
		for _, e := range envs {
			name := e.Name
			if e == a.Recovery {
				name = release.RecoveryEnv
			}
			he := HomeEnv{Env: name}
			for _, r := range rs {
				if r.Env != name {
					continue
				}
				if r.State.Open() && he.Open == nil {
					he.Open = r
				}
				if !r.State.Open() && he.Last == nil {
					he.Last = r
				}
			}
			for i := range holds {
				if holds[i].App == a.Name && holds[i].Env == name {
					he.Hold = &holds[i]
				}
			}
			app.Envs = append(app.Envs, he)
		}
		h.Apps = append(h.Apps, app)
		for _, r := range rs {
			if !r.State.Open() {
				continue
			}
			if r.RequestedBy == user {
				h.Mine = append(h.Mine, r)
			}
			if r.State == release.StateAwaitingApproval && d.userMayApprove(ctx, user, a, r) {
				h.ToApprove = append(h.ToApprove, r)
			}
		}
	}
	return h, nil
}

func (d *Dispatcher) userMayApprove(ctx context.Context, user string, a *release.App, r *release.Release) bool {
	e, err := a.Env(r.Env)
	if err != nil || e.Approvals.Required == 0 {
		return false
	}
	if r.RequestedBy == user && !e.Approvals.AllowSelf {
		return false
	}
	if slices.ContainsFunc(r.Approvals, func(ap release.Approval) bool { return ap.By == user }) {
		return false
	}
	return d.Core.Permit(ctx, user, release.ActApprove, a.Name, r.Env) == nil
}
