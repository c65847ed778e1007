package release

import (
	"context"
	"fmt"
)

// RequestSwitch asks for users to be moved to the recovery environment
// after release id — a rollback or restore into it — passed its checks:
// the recovery environment's switch_traffic hook runs once the environment
// users leave (the restored backup's) has approved it, as a release there.
func (s *ReleaseService) RequestSwitch(ctx context.Context, actor, id string) (*Release, error) {
	src, err := s.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := s.App(src.App)
	if err != nil {
		return nil, err
	}
	from, err := s.switchSource(ctx, a, src)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActSwitch, a, from); err != nil {
		return nil, err
	}
	if err := s.preflightWindow(ctx, a, from, nil); err != nil {
		return nil, err
	}
	// A deploy interrupted in the environment users leave holds it; moving
	// them away abandons it (it can still be rolled back later).
	open, err := s.Store.ListReleases(ctx, a.Name, from.Name)
	if err != nil {
		return nil, err
	}
	for _, r := range open {
		if r.State == StateInterrupted && r.Kind == KindDeploy {
			if err := s.move(ctx, r, StateInterrupted, StateFailed,
				fmt.Sprintf("interrupted; abandoned by %s, who asked to move users to %s", actor, RecoveryEnv)); err != nil {
				return nil, err
			}
		}
	}
	return s.request(ctx, &Release{App: a.Name, Env: from.Name, Kind: KindSwitch, Backup: src.Backup, SwitchTo: src.ID, RequestedBy: actor}, a, from)
}

// switchSource checks that users may be moved to what src restored into
// the recovery environment, and returns the environment they would leave.
// It holds at request time and again when the switch starts.
func (s *ReleaseService) switchSource(ctx context.Context, a *App, src *Release) (*Environment, error) {
	if !src.restoredRecovery() {
		return nil, Errorf(CodeConflict, "%s is a %s of %s %s that is %s: users can be moved only to the %s environment, after a rollback or restore into it succeeded with its checks passed",
			src.ID, src.Kind, src.App, src.Env, src.State, RecoveryEnv)
	}
	if !src.checksRan() {
		return nil, Errorf(CodeConflict, "%s ran no validation checks (%s %s defines none in apps.yaml): add checks, restore again, and switch once they pass",
			src.ID, a.Name, RecoveryEnv)
	}
	if a.Recovery == nil {
		return nil, Errorf(CodeConflict, "%s has no %s environment in apps.yaml", a.Name, RecoveryEnv)
	}
	if _, ok := a.Recovery.Hooks[HookSwitchTraffic]; !ok {
		return nil, Errorf(CodeConflict, "%s %s has no %s hook in apps.yaml: move users by hand, or add the hook", a.Name, RecoveryEnv, HookSwitchTraffic)
	}
	// Users arrive in recovery: a hold or freeze of it stops the switch too.
	if err := s.preflightWindow(ctx, a, a.Recovery, nil); err != nil {
		return nil, err
	}
	rs, err := s.Store.ListReleases(ctx, a.Name, RecoveryEnv)
	if err != nil {
		return nil, err
	}
	if len(rs) > 0 && rs[0].ID != src.ID {
		return nil, Errorf(CodeConflict, "%s %s has changed since %s (%s is newer): switch to what the newest restore brought, once its checks pass",
			a.Name, RecoveryEnv, src.ID, rs[0].ID)
	}
	b, err := s.Backups.Store.GetBackup(ctx, src.Backup)
	if err != nil {
		return nil, err
	}
	from, err := a.Env(b.Env)
	if err != nil {
		return nil, err
	}
	if from.Name == RecoveryEnv {
		return nil, Errorf(CodeConflict, "%s restored a backup of %s itself: there is no environment to move users from", src.ID, RecoveryEnv)
	}
	done, err := s.Store.ListReleases(ctx, a.Name, from.Name)
	if err != nil {
		return nil, err
	}
	for _, r := range done {
		if r.Kind == KindSwitch && r.SwitchTo == src.ID && r.State == StateSucceeded {
			return nil, Errorf(CodeConflict, "users of %s %s were moved to what %s restored already, by %s", a.Name, from.Name, src.ID, r.ID)
		}
	}
	return from, nil
}

// checkSwitch checks, for switch release r, that users may still be moved
// to what r.SwitchTo restored.
func (s *ReleaseService) checkSwitch(ctx context.Context, a *App, r *Release) error {
	src, err := s.Store.GetRelease(ctx, r.SwitchTo)
	if err != nil {
		return err
	}
	_, err = s.switchSource(ctx, a, src)
	return err
}

// switchTraffic runs the recovery environment's switch_traffic hook for
// switch release r, holding the recovery environment so that nothing
// restores into it meanwhile.
func (s *ReleaseService) switchTraffic(ctx context.Context, r *Release, a *App) (string, bool, error) {
	var out string
	err := s.withLock(ctx, envLockKey(a.Name, RecoveryEnv), func(ctx context.Context) error {
		// Checked again here, under recovery's lock: a resumed switch skips
		// its preflight, and recovery may have been restored since.
		if err := s.checkSwitch(ctx, a, r); err != nil {
			return err
		}
		var ran bool
		var err error
		out, ran, err = s.hook(ctx, a.Recovery, HookSwitchTraffic)
		if err == nil && !ran {
			err = Errorf(CodeConflict, "%s %s has no %s hook in apps.yaml", a.Name, RecoveryEnv, HookSwitchTraffic)
		}
		return err
	})
	if err != nil {
		return out, true, err
	}
	if out == "" {
		out = fmt.Sprintf("users of %s %s now reach %s (restored by %s)", a.Name, r.Env, RecoveryEnv, r.SwitchTo)
	}
	return out, true, nil
}
