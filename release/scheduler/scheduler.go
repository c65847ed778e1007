// Package scheduler takes the scheduled backups of apps.yaml
// (environments' backup.schedule, with retention by backup.keep) and
// verifies the newest backup on backup.verify, telling the app's channel
// how each run went.
//
// Several replicas may run a Scheduler over the same bot database: each
// tick is claimed with the shared release.Locker under a key naming the
// environment, the kind of run and the tick's instant, so exactly one
// replica runs it and the others skip. A backup tick missed while every
// replica was down is taken at start when the environment's newest
// scheduled backup is older than that tick.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/relbot/relbot/release"
)

// Actor is who the scheduler's backups are recorded as taken by.
const Actor = "scheduler"

// Scheduler runs the scheduled backups and verifies of every environment
// of Backups' apps. Set the fields, then call Run (or Tick); the fields
// must not change afterwards.
type Scheduler struct {
	Backups *release.BackupService
	// Locker claims each tick across replicas; nil uses Backups.Locker.
	// Every replica must use the same one (Redis, or the bot's database).
	Locker release.Locker
	// Owner names this replica in claims; "" uses Backups.Owner.
	Owner string
	// Now is the clock Run reads; nil is time.Now.
	Now func() time.Time
	// Log defaults to Backups.Log.
	Log *slog.Logger
	// Notify tells an app's channel how a run went; nil logs the notice
	// (LogNotify). It is called once per run this replica made, from the
	// run's goroutine.
	Notify func(ctx context.Context, app, channel string, n BackupNotice)

	once sync.Once
	envs []*envJobs
}

// envJobs is the schedules of one environment, and what this replica did
// with them.
type envJobs struct {
	app    *release.App
	env    *release.Environment
	name   string // as commands name it ("recovery" for the recovery env)
	backup *schedule
	verify *schedule

	mu         sync.Mutex
	running    bool
	lastBackup time.Time // latest backup tick this replica handled
	lastVerify time.Time
}

func (s *Scheduler) init() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = s.Backups.Log
		}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Locker == nil {
			s.Locker = s.Backups.Locker
		}
		if s.Owner == "" {
			s.Owner = s.Backups.Owner
		}
		if s.Owner == "" {
			s.Owner = "relbot scheduler"
		}
		if s.Notify == nil {
			s.Notify = LogNotify(s.Log)
		}
		for _, a := range s.Backups.Apps() {
			envs := append([]*release.Environment(nil), a.Environments...)
			if a.Recovery != nil {
				envs = append(envs, a.Recovery)
			}
			for _, e := range envs {
				name := e.Name
				if e == a.Recovery {
					name = release.RecoveryEnv
				}
				j := &envJobs{app: a, env: e, name: name}
				if e.Backup.Schedule != "" {
					sc, err := parseSchedule(e.Backup.Schedule)
					if err != nil {
						s.Log.Error("scheduled backups disabled", "app", a.Name, "env", name, "err", err)
					}
					j.backup = sc
				}
				if e.Backup.Verify != "" {
					sc, err := parseSchedule(e.Backup.Verify)
					if err != nil {
						s.Log.Error("scheduled verifies disabled", "app", a.Name, "env", name, "err", err)
					}
					j.verify = sc
				}
				if j.backup != nil || j.verify != nil {
					s.envs = append(s.envs, j)
				}
			}
		}
	})
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run takes the backups missed while the bot was down, then runs every
// tick as it comes, until ctx is done; it then waits for the runs in
// progress (cancelled with ctx) and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	s.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := func(now time.Time) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Tick(ctx, now)
		}()
	}
	if len(s.envs) == 0 {
		s.Log.Info("scheduler: no environment has a backup schedule")
		<-ctx.Done()
		return nil
	}
	for _, j := range s.envs {
		if j.backup != nil {
			s.Log.Info("scheduled backups", "app", j.app.Name, "env", j.name, "schedule", j.backup.spec, "keep", j.env.Backup.Keep)
		}
		if j.verify != nil {
			s.Log.Info("scheduled verifies", "app", j.app.Name, "env", j.name, "schedule", j.verify.spec)
		}
	}
	tick(s.now()) // the catch-up of missed backups
	for {
		now := s.now()
		next := s.Next(now)
		if next.IsZero() {
			<-ctx.Done()
			return nil
		}
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		// The timer runs on the monotonic clock; never tick before the
		// instant it was set for.
		now = s.now()
		if now.Before(next) {
			now = next
		}
		tick(now)
	}
}

// Next returns the first tick of any schedule after now (zero if none).
func (s *Scheduler) Next(now time.Time) time.Time {
	s.init()
	var first time.Time
	for _, j := range s.envs {
		for _, sc := range []*schedule{j.backup, j.verify} {
			if sc == nil {
				continue
			}
			if n := sc.next(now); !n.IsZero() && (first.IsZero() || n.Before(first)) {
				first = n
			}
		}
	}
	return first
}

// Tick runs whatever is due at now and returns once it is done, with the
// notices of the runs this replica made (skipped ticks give none), in the
// order of apps.yaml, each backup before its environment's verify.
//
// Due is each schedule's latest tick at or before now, once per Scheduler:
// a backup tick is run unless the environment already has a scheduled
// backup from that tick on (so the first Tick, at start, takes a backup
// missed while the bot was down); a verify tick only while it is recent
// (half a period, at most 15 minutes), as a verify is not worth catching up.
// Environments run side by side; one failing does not stop the others.
// Tick needs no real time: tests call it with the instants they choose.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) []BackupNotice {
	s.init()
	out := make([][]BackupNotice, len(s.envs))
	var wg sync.WaitGroup
	for i, j := range s.envs {
		backupTick, verifyTick, ok, busy := j.due(now)
		if busy {
			s.Log.Warn("scheduled run skipped: the previous run of this environment is still going",
				"app", j.app.Name, "env", j.name, "at", now.UTC().Format(time.RFC3339))
		}
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer j.done()
			defer func() {
				if p := recover(); p != nil {
					s.Log.Error("scheduled run panicked", "app", j.app.Name, "env", j.name, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			if !backupTick.IsZero() {
				if n, ran := s.runBackup(ctx, j, backupTick, now); ran {
					out[i] = append(out[i], n)
				}
			}
			if !verifyTick.IsZero() {
				if n, ran := s.runVerify(ctx, j, verifyTick, now); ran {
					out[i] = append(out[i], n)
				}
			}
		}()
	}
	wg.Wait()
	var all []BackupNotice
	for _, ns := range out {
		all = append(all, ns...)
	}
	return all
}

// due picks the ticks to run at now and marks the environment running; ok
// is false when nothing is due, or (busy) a run of it is still going.
func (j *envJobs) due(now time.Time) (backupTick, verifyTick time.Time, ok, busy bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.backup != nil {
		if t := j.backup.prev(now); !t.IsZero() && t.After(j.lastBackup) {
			backupTick = t
		}
	}
	if j.verify != nil {
		if t := j.verify.prev(now); !t.IsZero() && t.After(j.lastVerify) {
			verifyTick = t
		}
	}
	if backupTick.IsZero() && verifyTick.IsZero() {
		return backupTick, verifyTick, false, false
	}
	if j.running {
		// Left unmarked: the next Tick finds the latest tick then.
		return time.Time{}, time.Time{}, false, true
	}
	if !backupTick.IsZero() {
		j.lastBackup = backupTick
	}
	if !verifyTick.IsZero() {
		j.lastVerify = verifyTick
	}
	j.running = true
	return backupTick, verifyTick, true, false
}

func (j *envJobs) done() {
	j.mu.Lock()
	j.running = false
	j.mu.Unlock()
}

// grace is how long after its tick a run still counts as on time.
func grace(period time.Duration) time.Duration {
	return min(period/2, 15*time.Minute)
}

// claimTTL is how long a tick's claim lives: longer than anything a replica
// could still do about that tick (a period, and at least a day, so that a
// slow replica or a restart soon after finds it); the key names the tick,
// so a long claim never blocks the next one.
func claimTTL(period time.Duration) time.Duration {
	return max(period, 24*time.Hour)
}

// retryAfter is what a claim is cut to when its run failed: a replica
// starting after that retries the missed backup.
const retryAfter = 10 * time.Minute

// ClaimKey is the lock key under which one replica claims a tick.
func ClaimKey(app, env, kind string, tick time.Time) string {
	return "schedule:" + app + "/" + env + ":" + kind + ":" + tick.UTC().Format(time.RFC3339)
}

// claim takes the tick for this replica. ok is false when another replica
// has it; err is set when the claim could not be made at all.
func (s *Scheduler) claim(ctx context.Context, key string, ttl time.Duration) (release.Lock, bool, error) {
	lock, err := s.Locker.TryLock(ctx, key, s.Owner, ttl)
	if err != nil {
		if release.ErrorCode(err) == release.CodeConflict {
			s.Log.Info("scheduled run taken by another replica", "key", key, "holder", release.ErrorMessage(err))
			return nil, false, nil
		}
		return nil, false, err
	}
	return lock, true, nil
}

// settle leaves the claim as the outcome requires: kept when the run
// succeeded, cut to retryAfter when it failed, released when shutdown
// interrupted it.
func (s *Scheduler) settle(ctx context.Context, lock release.Lock, key string, failed bool) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	switch {
	case ctx.Err() != nil:
		err = lock.Unlock(bg)
	case failed:
		err = lock.Refresh(bg, retryAfter)
	}
	if err != nil {
		s.Log.Warn("scheduled run: settle claim", "key", key, "err", err)
	}
}

// newestScheduled returns the environment's newest scheduled backup, or nil.
func (s *Scheduler) newestScheduled(ctx context.Context, j *envJobs) (*release.Backup, error) {
	all, err := s.Backups.ListBackups(ctx, j.app.Name, j.name)
	if err != nil {
		return nil, err
	}
	for _, b := range all { // newest first
		if b.Kind == release.BackupScheduled {
			return b, nil
		}
	}
	return nil, nil
}

func (s *Scheduler) notify(ctx context.Context, j *envJobs, n BackupNotice) BackupNotice {
	s.Notify(context.WithoutCancel(ctx), j.app.Name, j.app.Channel, n)
	return n
}

// runBackup takes the scheduled backup of tick unless it exists or another
// replica claimed it. ran is false when this replica did nothing.
func (s *Scheduler) runBackup(ctx context.Context, j *envJobs, tick, now time.Time) (n BackupNotice, ran bool) {
	log := s.Log.With("app", j.app.Name, "env", j.name, "tick", tick.UTC().Format(time.RFC3339))
	period := j.backup.period(tick)
	n = BackupNotice{App: j.app.Name, Env: j.name, Kind: KindBackup, Tick: tick, Late: now.Sub(tick) > grace(period), Keep: j.env.Backup.Keep}
	start := time.Now()
	fail := func(what error, todo string) (BackupNotice, bool) {
		n.Duration = time.Since(start)
		n.Err = release.ErrorMessage(what)
		n.WhatToDo = todo
		log.Error("scheduled backup failed", "err", what)
		return s.notify(ctx, j, n), true
	}
	byHand := fmt.Sprintf("run `backup create %s %s` by hand", j.app.Name, j.name)
	first := false // the environment has no scheduled backup at all
	taken := func() (bool, error) {
		b, err := s.newestScheduled(ctx, j)
		if err != nil {
			return false, err
		}
		first = b == nil
		if b != nil && !b.CreatedAt.Before(tick) {
			log.Debug("scheduled backup already taken", "backup", b.ID)
			return true, nil
		}
		return false, nil
	}
	if done, err := taken(); err != nil || done {
		if err != nil && ctx.Err() == nil {
			return fail(err, "check that the bot's database is reachable; meanwhile "+byHand)
		}
		return n, false
	}
	if n.Late && first {
		// Nothing says a run was missed: no scheduled backup was ever
		// taken here (a fresh install, a schedule just added), so the last
		// tick came before relbot ran this schedule, not while it was down.
		n.Late, n.First = false, true
	}
	key := ClaimKey(j.app.Name, j.name, KindBackup, tick)
	lock, ok, err := s.claim(ctx, key, claimTTL(period))
	if err != nil {
		if ctx.Err() != nil {
			return n, false
		}
		return fail(fmt.Errorf("could not claim the run: %w", err),
			"check that the lock store (Redis, or the bot's database without it) is reachable; meanwhile "+byHand)
	}
	if !ok {
		return n, false
	}
	// Between our look and our claim another replica may have finished
	// the same tick and let its claim go (it never does on success, but a
	// claim can expire).
	if done, err := taken(); err == nil && done {
		return n, false
	}
	switch {
	case n.Late:
		log.Info("taking a scheduled backup missed while the bot was down")
	case n.First:
		log.Info("taking the first scheduled backup of this environment at start")
	}
	b, err := s.createWaiting(ctx, j, period, log)
	if err != nil {
		s.settle(ctx, lock, key, true)
		if ctx.Err() != nil {
			log.Warn("scheduled backup interrupted by shutdown", "err", err)
			return n, false
		}
		todo := fmt.Sprintf("check that the database of %s %s is reachable and the artifact directory is writable and not full; then %s",
			j.app.Name, j.name, byHand)
		if release.ErrorCode(err) == release.CodeConflict {
			todo = fmt.Sprintf("another backup or a release of %s %s still held it %s after this one was due; if this repeats, space out backup.schedule in apps.yaml; %s once it ends",
				j.app.Name, j.name, grace(period).Round(time.Second), byHand)
		}
		return fail(err, todo)
	}
	s.settle(ctx, lock, key, false)
	n.OK = true
	n.Backup = b
	n.Duration = time.Since(start)
	if all, err := s.Backups.ListBackups(ctx, j.app.Name, j.name); err == nil {
		n.Kept = len(all)
	}
	log.Info("scheduled backup done", "backup", b.ID, "bytes", b.Size, "late", n.Late, "first", n.First)
	return s.notify(ctx, j, n), true
}

// createWaiting takes the scheduled backup. While another backup or a
// release holds the environment (a catch-up run at start just before a
// tick, a deploy), it waits for it, polling, up to the tick's grace; only
// then is the conflict the run's failure.
func (s *Scheduler) createWaiting(ctx context.Context, j *envJobs, period time.Duration, log *slog.Logger) (*release.Backup, error) {
	deadline := time.Now().Add(grace(period))
	poll := min(max(period/40, 100*time.Millisecond), time.Second)
	for waited := false; ; waited = true {
		b, err := s.Backups.CreateBackup(release.AsSystem(ctx), Actor, j.app.Name, j.name, release.BackupScheduled)
		if release.ErrorCode(err) != release.CodeConflict || time.Now().Add(poll).After(deadline) {
			return b, err
		}
		if !waited {
			log.Info("scheduled backup waits for the environment", "err", err, "up_to", time.Until(deadline).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(poll):
		}
	}
}

// runVerify verifies the environment's newest backup for tick, unless the
// tick is stale or another replica claimed it.
func (s *Scheduler) runVerify(ctx context.Context, j *envJobs, tick, now time.Time) (n BackupNotice, ran bool) {
	log := s.Log.With("app", j.app.Name, "env", j.name, "tick", tick.UTC().Format(time.RFC3339))
	period := j.verify.period(tick)
	n = BackupNotice{App: j.app.Name, Env: j.name, Kind: KindVerify, Tick: tick}
	if now.Sub(tick) > grace(period) {
		log.Info("scheduled verify missed while the bot was down; it runs at the next tick")
		return n, false
	}
	key := ClaimKey(j.app.Name, j.name, KindVerify, tick)
	start := time.Now()
	fail := func(what error, todo string) (BackupNotice, bool) {
		n.Duration = time.Since(start)
		n.Err = release.ErrorMessage(what)
		n.WhatToDo = todo
		log.Error("scheduled verify failed", "err", what)
		return s.notify(ctx, j, n), true
	}
	lock, ok, err := s.claim(ctx, key, claimTTL(period))
	if err != nil {
		if ctx.Err() != nil {
			return n, false
		}
		return fail(fmt.Errorf("could not claim the run: %w", err),
			"check that the lock store (Redis, or the bot's database without it) is reachable")
	}
	if !ok {
		return n, false
	}
	all, err := s.Backups.ListBackups(ctx, j.app.Name, j.name)
	if err != nil {
		s.settle(ctx, lock, key, true)
		if ctx.Err() != nil {
			return n, false
		}
		return fail(err, "check that the bot's database is reachable")
	}
	if len(all) == 0 {
		return fail(release.Errorf(release.CodeNotFound, "%s %s has no backup to verify", j.app.Name, j.name),
			fmt.Sprintf("run `backup create %s %s`%s", j.app.Name, j.name, scheduleHint(j)))
	}
	newest := all[0]
	n.Backup = newest
	b, rep, err := s.Backups.VerifyBackup(release.AsSystem(ctx), Actor, newest.ID)
	if err != nil {
		s.settle(ctx, lock, key, true)
		if ctx.Err() != nil {
			log.Warn("scheduled verify interrupted by shutdown", "err", err)
			return n, false
		}
		return fail(err, fmt.Sprintf("check that the database server verifies run on (the recovery environment's, or %s %s's) is reachable and the archive is readable; then run `backup verify %s` by hand",
			j.app.Name, j.name, newest.ID))
	}
	n.Backup, n.Report, n.Duration = b, rep, time.Since(start)
	if !rep.OK() {
		n.Err = fmt.Sprintf("backup %s does not restore as its manifest says (%d problem(s))", newest.ID, len(rep.Problems))
		n.WhatToDo = fmt.Sprintf("do not count on %s: take a fresh backup with `backup create %s %s` and verify it with `backup verify`; check the disk where backups are stored",
			newest.ID, j.app.Name, j.name)
		log.Error("scheduled verify found problems", "backup", newest.ID, "problems", rep.Problems)
		return s.notify(ctx, j, n), true
	}
	n.OK = true
	log.Info("scheduled verify passed", "backup", newest.ID)
	return s.notify(ctx, j, n), true
}

func scheduleHint(j *envJobs) string {
	if j.backup == nil {
		return " (and give it a backup.schedule in apps.yaml)"
	}
	return ""
}
