package release

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"
)

// Core is what every area service shares: the configured apps, who may do
// what (permissions.go), the clock, the log and the locks. Each area
// service (BackupService, MigrationService, VersionService,
// VariableService, ReleaseService) holds the one Core built at start-up
// and only the dependencies of its own area, so none is ever half wired.
type Core struct {
	apps   []*App
	byName map[string]*App
	// IDs allocates the short IDs of backups, migrations, versions and
	// releases.
	IDs    IDs
	Locker Locker
	Log    *slog.Logger
	Now    func() time.Time
	// Owner names this process in locks, so a conflict can say who holds one.
	Owner string
	// Groups reads Slack user groups named in roles (permissions.go); nil
	// refuses a role that names one, saying why.
	Groups GroupMembers
}

// IDs allocates short IDs: kind "b" of app crm gives crm-b1, crm-b2, ...
type IDs interface {
	NextID(ctx context.Context, app, kind string) (string, error)
}

// NewCore builds the Core over the configured apps.
func NewCore(apps []*App, ids IDs, locker Locker, log *slog.Logger) *Core {
	s := &Core{apps: apps, byName: map[string]*App{}, IDs: ids, Locker: locker, Log: log, Now: time.Now}
	for _, a := range apps {
		s.byName[a.Name] = a
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	s.Owner = fmt.Sprintf("relbot on %s (pid %d)", host, os.Getpid())
	return s
}

// Apps lists the configured apps in the order apps.yaml gives them.
func (s *Core) Apps() []*App { return s.apps }

// App finds an app by name.
func (s *Core) App(name string) (*App, error) {
	if a, ok := s.byName[name]; ok {
		return a, nil
	}
	names := make([]string, 0, len(s.apps))
	for _, a := range s.apps {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return nil, Errorf(CodeNotFound, "no app %q (configured: %s)", name, List(names))
}

func (s *Core) appEnv(app, env string) (*App, *Environment, error) {
	a, err := s.App(app)
	if err != nil {
		return nil, nil, err
	}
	e, err := a.Env(env)
	if err != nil {
		return nil, nil, err
	}
	return a, e, nil
}

// envLockKey is the lock every change of an environment's database holds:
// releases, restores and rollbacks of one environment never overlap.
func envLockKey(app, env string) string { return "env:" + app + "/" + env }

// lockTTL is how long a lock outlives a process that died holding it; a
// live holder refreshes it well before.
const lockTTL = 2 * time.Minute

// withLock runs fn while holding key, refreshing it as fn runs.
func (s *Core) withLock(ctx context.Context, key string, fn func(context.Context) error) error {
	return s.holding(ctx, key, s.Owner, lockTTL, nil, fn)
}

// holding runs fn while owner holds key. Every ttl/4 the lock is refreshed
// and renew, when set, is called too (a release renews its lease there);
// if either fails, fn's context is cancelled so it stops at its next
// boundary.
func (s *Core) holding(ctx context.Context, key, owner string, ttl time.Duration, renew func(context.Context) error, fn func(context.Context) error) error {
	lock, err := s.Locker.TryLock(ctx, key, owner, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				err := lock.Refresh(ctx, ttl)
				if err == nil && renew != nil {
					err = renew(ctx)
				}
				if err != nil && ctx.Err() == nil {
					s.Log.Error("lock or lease lost: stopping", "key", key, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	err = fn(ctx)
	cancel()
	<-done
	if uerr := lock.Unlock(context.Background()); uerr != nil {
		s.Log.Warn("unlock", "key", key, "err", uerr)
	}
	return err
}
