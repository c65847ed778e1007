package release

import (
	"context"
	"time"
)

// RestartResult is what a restart did.
type RestartResult struct {
	App, Env string
	By       string
	Output   string
	Duration time.Duration
}

// HasRestartHook reports whether env defines a restart hook.
func (e *Environment) HasRestartHook() bool {
	_, ok := e.Hooks[HookRestart]
	return ok
}

// Restart runs env's restart hook, so the running app reads its variables
// and configuration again (NocoBase reads them at start only). Like any
// change of the environment it is refused while the environment is
// locked, and it never overlaps a release there: it holds the
// environment's lock.
func (s *ReleaseService) Restart(ctx context.Context, actor, app, env string) (*RestartResult, error) {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, actor, ActRestart, a, e); err != nil {
		return nil, err
	}
	if !e.HasRestartHook() {
		return nil, Errorf(CodeConflict, "%s %s has no restart hook in apps.yaml: restart the app yourself to make it see the change (or define hooks: {restart: ...} for %s)", a.Name, e.Name, e.Name)
	}
	h, err := s.Store.GetHold(ctx, a.Name, e.Name)
	if err != nil {
		return nil, err
	}
	if h != nil {
		return nil, Errorf(CodeForbidden, "%s %s is locked by %s since %s: %s; unlock %s %s first, then restart it", a.Name, e.Name, h.By, h.At.UTC().Format("2006-01-02 15:04 MST"), h.Reason, a.Name, e.Name)
	}
	res := &RestartResult{App: a.Name, Env: e.Name, By: actor}
	start := s.Now()
	err = s.holding(ctx, envLockKey(a.Name, e.Name), s.Owner+" restarting the app for "+actor, lockTTL, nil, func(ctx context.Context) error {
		s.Log.Info("restart started", "app", a.Name, "env", e.Name, "by", actor)
		out, _, err := s.hook(ctx, e, HookRestart)
		res.Output = out
		return err
	})
	res.Duration = s.Now().Sub(start)
	if err != nil {
		s.Log.Warn("restart failed", "app", a.Name, "env", e.Name, "by", actor, "err", err)
		return res, err
	}
	s.Log.Info("restart done", "app", a.Name, "env", e.Name, "by", actor, "duration", res.Duration)
	return res, nil
}
