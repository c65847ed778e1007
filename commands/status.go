package commands

import (
	"context"
	"fmt"

	"github.com/relbot/relbot/release"
)

// EnvStatus is what --json prints for one environment in status.
type EnvStatus struct {
	Env         string                 `json:"env"`
	OpenRelease *ReleaseView           `json:"open_release,omitempty"`
	LastRelease *ReleaseView           `json:"last_release,omitempty"`
	LastBackup  *BackupView            `json:"last_backup,omitempty"`
	Lock        *release.Hold          `json:"lock,omitempty"`
	Frozen      []string               `json:"freeze,omitempty"`
	Approvals   release.ApprovalPolicy `json:"approvals"`
	Layout      *release.LayoutReport  `json:"layout,omitempty"`
}

func (d *Dispatcher) status(ctx context.Context, _ Request, c Status) (Reply, error) {
	a, err := d.Service.App(c.App)
	if err != nil {
		return Reply{}, err
	}
	holds, err := d.Service.Holds(ctx)
	if err != nil {
		return Reply{}, err
	}
	rs, err := d.Service.ListReleases(ctx, a.Name, "")
	if err != nil {
		return Reply{}, err
	}
	envs := append([]*release.Environment{}, a.Environments...)
	if a.Recovery != nil {
		envs = append(envs, a.Recovery)
	}
	now := d.now()
	layouts, err := d.Service.Layouts(ctx, a.Name)
	if err != nil {
		return Reply{}, err
	}
	table := &Table{Columns: []string{"Environment", "Release in progress", "Last release", "Last backup", "Lock", "NocoBase layout"}}
	var views []EnvStatus
	for _, e := range envs {
		name := e.Name
		if e == a.Recovery {
			name = release.RecoveryEnv
		}
		v := EnvStatus{Env: name, Approvals: e.Approvals}
		for _, f := range e.Freeze {
			v.Frozen = append(v.Frozen, f.Text)
		}
		open, last := "-", "-"
		for _, r := range rs { // newest first
			if r.Env != name {
				continue
			}
			rv := releaseView(r)
			if r.State.Open() && v.OpenRelease == nil {
				v.OpenRelease = &rv
				open = fmt.Sprintf("%s %s (%s)", r.ID, r.State, what(r))
			}
			if !r.State.Open() && v.LastRelease == nil {
				v.LastRelease = &rv
				last = fmt.Sprintf("%s %s, %s", r.ID, r.State, ago(r.RequestedAt, now))
			}
		}
		backup := "none"
		if bs, err := d.Service.ListBackups(ctx, a.Name, name); err == nil && len(bs) > 0 {
			bv := backupView(bs[0])
			v.LastBackup = &bv
			backup = fmt.Sprintf("%s %s, %s", bs[0].ID, bs[0].Kind, ago(bs[0].CreatedAt, now))
			if bs[0].VerifiedAt != nil {
				backup += ", verified"
			}
		}
		lock := "-"
		for _, h := range holds {
			if h.App == a.Name && h.Env == name {
				hv := h
				v.Lock = &hv
				lock = fmt.Sprintf("locked by %s: %s", h.By, h.Reason)
			}
		}
		layout := "-"
		for i := range layouts {
			if layouts[i].Env == name {
				v.Layout = &layouts[i]
				layout = layouts[i].Text()
			}
		}
		views = append(views, v)
		table.Rows = append(table.Rows, []string{name, open, last, backup, lock, layout})
	}
	return newReply(fmt.Sprintf("Status of %s", a.Name), nil, table, views), nil
}
