package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// EnvStatus is what --json prints for one environment in status.
type EnvStatus struct {
	Env         string                `json:"env"`
	OpenRelease *ReleaseView          `json:"open_release,omitempty"`
	LastRelease *ReleaseView          `json:"last_release,omitempty"`
	LastBackup  *BackupView           `json:"last_backup,omitempty"`
	Lock        *HoldView             `json:"lock,omitempty"`
	Frozen      []string              `json:"freeze,omitempty"`
	Approvals   ApprovalPolicyView    `json:"approvals"`
	Layout      *release.LayoutReport `json:"layout,omitempty"`
	// Snapshots are the release snapshots the environment keeps, newest
	// first (a targeted rollback puts one back); nil for the source.
	Snapshots      []release.SnapshotInfo `json:"snapshots,omitempty"`
	SnapshotsError string                 `json:"snapshots_error,omitempty"`
	// Users says which environment serves this environment's users: itself
	// unless a switch moved them to recovery. For recovery it is set only
	// while it serves the users of another environment.
	Users *UsersView `json:"users,omitempty"`
}

// ApprovalPolicyView is an environment's approval policy.
type ApprovalPolicyView struct {
	Required  int      `json:"required"`
	Approvers []string `json:"approvers,omitempty"`
	AllowSelf bool     `json:"allow_self"`
	// ExpireSeconds: a release not approved this long after its request
	// expires; 0 means never.
	ExpireSeconds int64 `json:"expire_seconds"`
}

func approvalPolicyView(p release.ApprovalPolicy) ApprovalPolicyView {
	return ApprovalPolicyView{Required: p.Required, Approvers: p.Approvers, AllowSelf: p.AllowSelf, ExpireSeconds: int64(p.Expire.Seconds())}
}

// UsersView is where an environment's users are, and since which switch.
type UsersView struct {
	ServedBy string `json:"served_by"`
	// UsersOf, on recovery, is the environment whose users it serves.
	UsersOf string `json:"users_of,omitempty"`
	// Switch is the switch release that moved them; Restore the rollback
	// or restore into recovery it moved them to; Since when it finished.
	Switch  string     `json:"switch,omitempty"`
	Restore string     `json:"restore,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

// switchedAway returns, per environment whose users a switch moved to
// recovery, the newest switch release that succeeded. relbot has no switch
// back (that is done by hand), so from then on users are on recovery.
func switchedAway(rs []*release.Release) map[string]*release.Release {
	out := map[string]*release.Release{}
	for _, r := range rs { // newest first
		if r.Kind == release.KindSwitch && r.State == release.StateSucceeded && out[r.Env] == nil {
			out[r.Env] = r
		}
	}
	return out
}

// switchedAt is when switch release r moved the users: the end of its
// switch step, else its last change.
func switchedAt(r *release.Release) time.Time {
	for _, s := range r.Steps {
		if s.Name == release.StepSwitch && s.Ended != nil {
			return *s.Ended
		}
	}
	return r.UpdatedAt
}

func (d *Dispatcher) status(ctx context.Context, _ Request, c Status) (Reply, error) {
	a, err := d.Core.App(c.App)
	if err != nil {
		return Reply{}, err
	}
	holds, err := d.Releases.Holds(ctx)
	if err != nil {
		return Reply{}, err
	}
	rs, err := d.Releases.ListReleases(ctx, a.Name, "")
	if err != nil {
		return Reply{}, err
	}
	envs := append([]*release.Environment{}, a.Environments...)
	if a.Recovery != nil {
		envs = append(envs, a.Recovery)
	}
	now := d.now()
	layouts, err := d.Migrations.Layouts(ctx, a.Name)
	if err != nil {
		return Reply{}, err
	}
	snaps, err := d.Migrations.Snapshots(ctx, a.Name)
	if err != nil {
		return Reply{}, err
	}
	table := &Table{Columns: []string{"Environment", "Release in progress", "Last release", "Last backup", "Release snapshots", "Lock", "NocoBase layout"}}
	var views []EnvStatus
	switched := switchedAway(rs)
	var moved []string // sentences under the table
	for _, e := range envs {
		name := e.Name
		if e == a.Recovery {
			name = release.RecoveryEnv
		}
		v := EnvStatus{Env: name, Approvals: approvalPolicyView(e.Approvals)}
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
				open = fmt.Sprintf("%s %s (%s)", r.ID, r.State, What(r))
			}
			if !r.State.Open() && v.LastRelease == nil {
				v.LastRelease = &rv
				last = fmt.Sprintf("%s %s, %s", r.ID, r.State, ago(r.RequestedAt, now))
			}
		}
		backup := "none"
		if bs, err := d.Backups.ListBackups(ctx, a.Name, name); err == nil && len(bs) > 0 {
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
				hv := holdView(h)
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
		kept := "-" // the source: nothing is applied there
		for _, es := range snaps {
			if es.Env == name {
				v.Snapshots, v.SnapshotsError, kept = es.Snapshots, es.Error, snapshotsText(es)
			}
		}
		if e == a.Recovery {
			for _, from := range envs {
				sw := switched[from.Name]
				if sw == nil || from == a.Recovery {
					continue
				}
				// Should two environments have been switched, the newest
				// switch is named here; each has its own sentence below.
				if at := switchedAt(sw); v.Users == nil || at.After(*v.Users.Since) {
					v.Users = &UsersView{ServedBy: name, UsersOf: from.Name, Switch: sw.ID, Restore: sw.SwitchTo, Since: &at}
				}
			}
		} else if sw := switched[name]; sw != nil {
			at := switchedAt(sw)
			v.Users = &UsersView{ServedBy: release.RecoveryEnv, Switch: sw.ID, Restore: sw.SwitchTo, Since: &at}
			moved = append(moved, fmt.Sprintf("Users of %s %s are on %s since %s switched them (to what %s restored), %s; %s no longer serves them.",
				a.Name, name, release.RecoveryEnv, sw.ID, sw.SwitchTo, d.when(at), name))
		} else {
			v.Users = &UsersView{ServedBy: name}
		}
		views = append(views, v)
		table.Rows = append(table.Rows, []string{name, open, last, backup, kept, lock, layout})
	}
	if len(moved) > 0 {
		moved = append([]string{""}, moved...)
	}
	if d.Links != nil {
		moved = append(moved, "", "Page: "+d.Links.AppLink(a.Name))
	}
	return newReply(fmt.Sprintf("Status of %s", a.Name), nil, table, views, moved...), nil
}

// snapshotsText is the status cell of an environment's release snapshots.
func snapshotsText(es release.EnvSnapshots) string {
	if es.Error != "" {
		return "unknown: " + es.Error
	}
	if len(es.Snapshots) == 0 {
		return "none"
	}
	var parts []string
	for _, sn := range es.Snapshots {
		p := fmt.Sprintf("%s (%s, %s, %s", sn.Name, sn.Migration, release.Count(sn.Tables, "table"), release.Bytes(sn.Bytes))
		if sn.Reverted {
			p += ", put back"
		}
		parts = append(parts, p+")")
	}
	return strings.Join(parts, "; ")
}
