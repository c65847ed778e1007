package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgsnap"
	"github.com/relbot/relbot/release/scheduler"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/postgres"
	"github.com/relbot/relbot/storage/redis"
)

// The sample app's databases are only read by backups (verifies restore
// into scratch databases), so the tests share one sample; each test has
// its own bot database and artifact directory.
var (
	sample     *fixtures.Sample
	sampleErr  error
	sampleOnce sync.Once
	sampleRoot string
)

func TestMain(m *testing.M) {
	code := testenv.Run(m)
	if sample != nil {
		_ = fixtures.Drop(context.Background(), testenv.AdminDSN(), sample.Prefix)
	}
	if sampleRoot != "" {
		_ = os.RemoveAll(sampleRoot)
	}
	os.Exit(code)
}

func sharedSample(t *testing.T) *fixtures.Sample {
	t.Helper()
	sampleOnce.Do(func() {
		sampleRoot, sampleErr = os.MkdirTemp("", "relbot-scheduler-")
		if sampleErr != nil {
			return
		}
		sample, sampleErr = fixtures.Create(context.Background(), testenv.AdminDSN(), testenv.UniqueName("sched"), sampleRoot)
	})
	if sampleErr != nil {
		t.Fatalf("fixtures: %v", sampleErr)
	}
	return sample
}

// clock is the fake time the services record backups at.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// baseDay is a random midnight (UTC) far in the future: claim keys name
// tick instants and the Redis is shared by every test run, so runs must
// not meet on the same instants.
func baseDay() time.Time {
	return time.Date(2100+rand.IntN(800), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(365))
}

// rig is one bot installation: a bot database, an artifact directory and
// apps.yaml, over the shared sample app. Each service built on it is one
// replica.
type rig struct {
	botDSN string
	arts   string
	yaml   string
	env    map[string]string
	clock  *clock
}

func newRig(t *testing.T, editYAML func(string) string) *rig {
	t.Helper()
	s := sharedSample(t)
	_, botDSN := testenv.NewDatabase(t, "sched")
	r := &rig{botDSN: botDSN, arts: filepath.Join(t.TempDir(), "artifacts"), yaml: fixtures.AppsYAML(s), env: map[string]string{}, clock: &clock{}}
	if editYAML != nil {
		r.yaml = editYAML(r.yaml)
	}
	for _, kv := range fixtures.Env(s) {
		k, v, _ := strings.Cut(kv, "=")
		r.env[k] = v
	}
	return r
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// service builds one replica's release.BackupService: its own connection pool
// to the shared bot database, and locker (nil: the database's).
func (r *rig) service(t *testing.T, locker release.Locker) (*release.BackupService, *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	log := testLog(t)
	store, err := postgres.Open(ctx, r.botDSN, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	arts, err := artifacts.New(r.arts)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := config.ParseApps([]byte(r.yaml), func(k string) string { return r.env[k] })
	if err != nil {
		t.Fatalf("apps.yaml: %v", err)
	}
	if locker == nil {
		locker = store.Locker()
	}
	svc := &release.BackupService{Core: release.NewCore(apps, store, locker, log), Store: store, Artifacts: arts, Engine: &pgsnap.Engine{Workers: 2, Log: log}}
	svc.Now = r.clock.Now
	return svc, store
}

// notices collects what a scheduler tells the channels.
type notices struct {
	mu  sync.Mutex
	all []scheduler.BackupNotice
	ch  []string
}

func (n *notices) notify(_ context.Context, app, channel string, msg scheduler.BackupNotice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if app != msg.App {
		panic("notice app mismatch")
	}
	n.all = append(n.all, msg)
	n.ch = append(n.ch, channel)
}

func (n *notices) take() []scheduler.BackupNotice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.all
	n.all = nil
	return out
}

func (r *rig) scheduler(t *testing.T, svc *release.BackupService, owner string, n *notices) *scheduler.Scheduler {
	return &scheduler.Scheduler{Backups: svc, Owner: owner, Now: r.clock.Now, Log: testLog(t), Notify: n.notify}
}

func scheduled(t *testing.T, svc *release.BackupService, env string) []*release.Backup {
	t.Helper()
	all, err := svc.ListBackups(context.Background(), "crm", env)
	if err != nil {
		t.Fatal(err)
	}
	var out []*release.Backup
	for _, b := range all {
		if b.Kind == release.BackupScheduled {
			out = append(out, b)
		}
	}
	return out
}

// TestOneBackupPerTickAcrossReplicas: two replicas (each its own service
// and connections, sharing the bot database, the artifacts and the locker)
// tick the same instants at the same time; each tick gives exactly one
// scheduled backup, and a replica starting later does not take another.
func TestOneBackupPerTickAcrossReplicas(t *testing.T) {
	t.Run("postgres locker", func(t *testing.T) {
		r := newRig(t, nil)
		a, storeA := r.service(t, nil)
		b, storeB := r.service(t, nil)
		onePerTick(t, r, a, b, storeA.Locker(), storeB.Locker(), nil)
	})
	t.Run("redis locker", func(t *testing.T) {
		ctx := context.Background()
		connect := func() *goredis.Client {
			c, err := redis.Connect(ctx, testenv.RedisURL())
			if err != nil {
				t.Fatalf("no Redis at %s (start it; .ci/run does): %v", testenv.RedisURL(), err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		ca, cb := connect(), connect()
		la, lb := redis.NewLocker(ca), redis.NewLocker(cb)
		r := newRig(t, nil)
		a, _ := r.service(t, la)
		b, _ := r.service(t, lb)
		onePerTick(t, r, a, b, la, lb, func(keys []string) {
			for _, k := range keys {
				ca.Del(ctx, "relbot:lock:"+k)
			}
		})
	})
}

func onePerTick(t *testing.T, r *rig, svcA, svcB *release.BackupService, la, lb release.Locker, cleanup func([]string)) {
	ctx := context.Background()
	var na, nb notices
	sa := r.scheduler(t, svcA, "replica-a", &na)
	sb := r.scheduler(t, svcB, "replica-b", &nb)
	sa.Locker, sb.Locker = la, lb
	base := baseDay()
	var keys []string
	if cleanup != nil {
		t.Cleanup(func() { cleanup(keys) })
	}
	for i := range 3 {
		tick := base.Add(2*time.Hour + time.Duration(i)*24*time.Hour)
		keys = append(keys, scheduler.ClaimKey("crm", "production", scheduler.KindBackup, tick))
		r.clock.Set(tick)
		var wg sync.WaitGroup
		var ra, rb []scheduler.BackupNotice
		wg.Add(2)
		go func() { defer wg.Done(); ra = sa.Tick(ctx, tick) }()
		go func() { defer wg.Done(); rb = sb.Tick(ctx, tick) }()
		wg.Wait()
		got := append(na.take(), nb.take()...)
		if len(got) != 1 || len(ra)+len(rb) != 1 {
			t.Fatalf("tick %d: %d notices (%d+%d returned), want exactly one: %+v", i, len(got), len(ra), len(rb), got)
		}
		n := got[0]
		if !n.OK || n.Kind != scheduler.KindBackup || n.Env != "production" || n.Late || n.Backup == nil {
			t.Fatalf("tick %d: notice %+v", i, n)
		}
		bs := scheduled(t, svcA, "production")
		if len(bs) != i+1 {
			t.Fatalf("tick %d: %d scheduled backups, want %d", i, len(bs), i+1)
		}
		if !bs[0].CreatedAt.Equal(tick) || bs[0].CreatedBy != scheduler.Actor || bs[0].ID != n.Backup.ID {
			t.Fatalf("tick %d: newest %s at %v by %s, want %s at %v by %s", i, bs[0].ID, bs[0].CreatedAt, bs[0].CreatedBy, n.Backup.ID, tick, scheduler.Actor)
		}
		// Ticking again changes nothing, nor does a replica that starts a
		// few minutes later (its catch-up sees the backup).
		if again := sa.Tick(ctx, tick); len(again) != 0 {
			t.Fatalf("tick %d again: %+v", i, again)
		}
		var nc notices
		sc := r.scheduler(t, svcB, "replica-c", &nc)
		sc.Locker = lb
		if late := sc.Tick(ctx, tick.Add(5*time.Minute)); len(late) != 0 {
			t.Fatalf("tick %d, replica started later: %+v", i, late)
		}
		if n := len(scheduled(t, svcA, "production")); n != i+1 {
			t.Fatalf("tick %d: %d scheduled backups after the late replica, want %d", i, n, i+1)
		}
		// The claim names the tick: another replica cannot take it.
		if _, err := lb.TryLock(ctx, keys[i], "replica-d", time.Minute); release.ErrorCode(err) != release.CodeConflict {
			t.Fatalf("tick %d: claim %s not held: %v", i, keys[i], err)
		}
	}
}

// TestMissedBackupTakenAtStart: at start (a fresh Scheduler's first Tick)
// a backup is taken when the environment has no scheduled backup from the
// latest tick on, and not when it has one.
func TestMissedBackupTakenAtStart(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	svc, _ := r.service(t, nil)
	base := baseDay()
	start := func(at time.Time) []scheduler.BackupNotice {
		r.clock.Set(at)
		var n notices
		out := r.scheduler(t, svc, "replica-"+at.Format("0102-1504"), &n).Tick(ctx, at)
		if len(out) != len(n.take()) {
			t.Fatalf("Tick returned %d notices, notified a different number", len(out))
		}
		// The base day is random, so a start may fall on the weekly
		// verify's tick; this test is about backups only.
		var backups []scheduler.BackupNotice
		for _, b := range out {
			if b.Kind == scheduler.KindBackup {
				backups = append(backups, b)
			}
		}
		return backups
	}

	// No scheduled backup at all (a fresh install, as the demo's): taken
	// at start, recorded at start, and not called late: no run was missed
	// while the bot was down, as it had never run this schedule.
	at := base.Add(10 * time.Hour)
	got := start(at)
	if len(got) != 1 || !got[0].OK || got[0].Late || !got[0].First || !got[0].Tick.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("start with none: %+v", got)
	}
	if bs := scheduled(t, svc, "production"); len(bs) != 1 || !bs[0].CreatedAt.Equal(at) {
		t.Fatalf("after start: %+v", bs)
	}
	if text := got[0].Text(); strings.Contains(text, "late") || strings.Contains(text, "missed") ||
		!strings.Contains(text, "taken at start: the first scheduled backup of crm production") {
		t.Errorf("the first backup's notice:\n%s", text)
	}

	// Recent (taken after the latest tick): nothing at start.
	if got := start(base.Add(20 * time.Hour)); len(got) != 0 {
		t.Fatalf("start with a recent backup: %+v", got)
	}
	if got := start(base.Add(26*time.Hour - time.Second)); len(got) != 0 {
		t.Fatalf("start just before the next tick: %+v", got)
	}

	// Older than a period: taken at start, late, as it says.
	at = base.Add(2*24*time.Hour + 5*time.Hour)
	got = start(at)
	if len(got) != 1 || !got[0].OK || !got[0].Late || got[0].First {
		t.Fatalf("start with an old backup: %+v", got)
	}
	if !strings.Contains(got[0].Text(), "missed while the bot was down") {
		t.Errorf("late notice should say so:\n%s", got[0].Text())
	}
	if bs := scheduled(t, svc, "production"); len(bs) != 2 || !bs[0].CreatedAt.Equal(at) {
		t.Fatalf("after second start: %d scheduled", len(bs))
	}

	// A manual backup is not a scheduled one: a missed tick is still taken.
	r.clock.Set(base.Add(3*24*time.Hour + 3*time.Hour))
	if _, err := svc.CreateBackup(ctx, "alice", "crm", "production", release.BackupManual); err != nil {
		t.Fatal(err)
	}
	if got := start(base.Add(3*24*time.Hour + 4*time.Hour)); len(got) != 1 || !got[0].OK {
		t.Fatalf("start after a manual backup: %+v", got)
	}
	if n := len(scheduled(t, svc, "production")); n != 3 {
		t.Fatalf("%d scheduled backups, want 3", n)
	}
}

// TestRetentionAfterScheduledBackups: keep: 2 leaves the two newest.
func TestRetentionAfterScheduledBackups(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(y string) string { return mustReplace(t, y, "keep: 14", "keep: 2") })
	svc, _ := r.service(t, nil)
	var n notices
	s := r.scheduler(t, svc, "replica-a", &n)
	base := baseDay()
	var ids []string
	for i := range 4 {
		tick := base.Add(2*time.Hour + time.Duration(i)*24*time.Hour)
		r.clock.Set(tick)
		got := s.Tick(ctx, tick)
		if len(got) != 1 || !got[0].OK {
			t.Fatalf("tick %d: %+v", i, got)
		}
		ids = append(ids, got[0].Backup.ID)
		if want := min(i+1, 2); got[0].Kept != want || got[0].Keep != 2 {
			t.Fatalf("tick %d: kept %d (keep %d), want %d", i, got[0].Kept, got[0].Keep, want)
		}
	}
	bs := scheduled(t, svc, "production")
	if len(bs) != 2 || bs[0].ID != ids[3] || bs[1].ID != ids[2] {
		t.Fatalf("after retention: %v, want [%s %s]", backupIDs(bs), ids[3], ids[2])
	}
	for _, id := range ids[:2] {
		if _, err := svc.Store.GetBackup(ctx, id); release.ErrorCode(err) != release.CodeNotFound {
			t.Errorf("%s should be deleted by retention: %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(r.arts, "crm", "backups", id+".relbot")); !os.IsNotExist(err) {
			t.Errorf("%s's archive should be removed: %v", id, err)
		}
	}
}

// TestVerifyTick: the verify tick verifies the newest backup once across
// two replicas, marks it verified and notifies; a stale verify tick is not
// run at start.
func TestVerifyTick(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(y string) string { return mustReplace(t, y, `verify: "0 4 * * 0"`, `verify: "0 4 * * *"`) })
	a, _ := r.service(t, nil)
	b, _ := r.service(t, nil)
	var na, nb notices
	sa, sb := r.scheduler(t, a, "replica-a", &na), r.scheduler(t, b, "replica-b", &nb)
	base := baseDay()

	// Before any backup: the verify alerts that there is none.
	tick := base.Add(4 * time.Hour)
	r.clock.Set(tick)
	got := sa.Tick(ctx, tick)
	// The first Tick also catches up the 02:00 backup, before the verify.
	if len(got) != 2 || got[0].Kind != scheduler.KindBackup || !got[0].OK || got[1].Kind != scheduler.KindVerify || !got[1].OK {
		t.Fatalf("first tick: %+v", got)
	}
	newest := got[0].Backup.ID
	if got[1].Backup.ID != newest || got[1].Report == nil || !got[1].Report.OK() || got[1].Backup.VerifiedAt == nil {
		t.Fatalf("verify notice: %+v", got[1])
	}
	if rec, err := a.Store.GetBackup(ctx, newest); err != nil || rec.VerifiedAt == nil {
		t.Fatalf("%s not marked verified: %+v %v", newest, rec, err)
	}
	if !strings.Contains(got[1].Text(), "verified") {
		t.Errorf("verify notice text:\n%s", got[1].Text())
	}
	na.take()

	// Next day: both replicas tick the backup and then the verify; one
	// backup, one verify, of that new backup.
	for _, at := range []time.Duration{26 * time.Hour, 28 * time.Hour} {
		tick := base.Add(at)
		r.clock.Set(tick)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); sa.Tick(ctx, tick) }()
		go func() { defer wg.Done(); sb.Tick(ctx, tick) }()
		wg.Wait()
	}
	all := append(na.take(), nb.take()...)
	if len(all) != 2 || all[0].Kind == all[1].Kind {
		t.Fatalf("day two: %+v", all)
	}
	var backupID, verifiedID string
	for _, n := range all {
		if !n.OK {
			t.Fatalf("day two: %+v", n)
		}
		if n.Kind == scheduler.KindBackup {
			backupID = n.Backup.ID
		} else {
			verifiedID = n.Backup.ID
		}
	}
	if backupID == newest || verifiedID != backupID {
		t.Fatalf("day two verified %s, want the new backup %s", verifiedID, backupID)
	}

	// A replica starting long after a verify tick does not run it.
	var nc notices
	late := base.Add(28*time.Hour + 3*time.Hour)
	r.clock.Set(late)
	if got := r.scheduler(t, a, "replica-c", &nc).Tick(ctx, late); len(got) != 0 {
		t.Fatalf("stale verify tick ran: %+v", got)
	}
}

// TestFailingBackupAlertsAndOthersRun: staging's database does not exist;
// its scheduled backup alerts with what failed and what to do, and
// production's backup at the same tick is taken all the same.
func TestFailingBackupAlertsAndOthersRun(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(y string) string {
		return mustReplace(t, y, "        approvals: {required: 0}\n",
			"        approvals: {required: 0}\n        backup: {schedule: \"0 2 * * *\", keep: 3}\n")
	})
	r.env["CRM_STAGING_DATABASE_URL"] = testenv.DSNFor(testenv.UniqueName("relbot_no_such_db"))
	svc, _ := r.service(t, nil)
	var n notices
	s := r.scheduler(t, svc, "replica-a", &n)
	tick := baseDay().Add(2 * time.Hour)
	r.clock.Set(tick)
	got := s.Tick(ctx, tick)
	if len(got) != 2 {
		t.Fatalf("notices: %+v", got)
	}
	byEnv := map[string]scheduler.BackupNotice{}
	for _, x := range got {
		byEnv[x.Env] = x
	}
	st, prod := byEnv["staging"], byEnv["production"]
	if st.OK || st.Kind != scheduler.KindBackup || st.Backup != nil {
		t.Fatalf("staging: %+v", st)
	}
	if !strings.Contains(st.Err, "cannot connect to database") || !strings.Contains(st.WhatToDo, "database of crm staging is reachable") ||
		!strings.Contains(st.WhatToDo, "`backup create crm staging`") {
		t.Errorf("staging alert says:\nerr: %s\ntodo: %s", st.Err, st.WhatToDo)
	}
	text := st.Text()
	for _, want := range []string{"FAILED", "what failed:", "what to do:"} {
		if !strings.Contains(text, want) {
			t.Errorf("alert text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "password") {
		t.Errorf("alert text mentions a password:\n%s", text)
	}
	if !prod.OK || prod.Backup == nil {
		t.Fatalf("production: %+v", prod)
	}
	for _, want := range []string{prod.Backup.ID, "sha256 " + prod.Backup.SHA256, fmt.Sprintf("%d tables", prod.Backup.Manifest.Tables), "files"} {
		if !strings.Contains(prod.Text(), want) {
			t.Errorf("production notice lacks %q:\n%s", want, prod.Text())
		}
	}
	for _, ch := range n.ch {
		if ch != "C0CRMRELEASE" {
			t.Errorf("notified channel %q, want the app's", ch)
		}
	}
	if bs := scheduled(t, svc, "staging"); len(bs) != 0 {
		t.Fatalf("staging backups: %v", backupIDs(bs))
	}
	if bs := scheduled(t, svc, "production"); len(bs) != 1 {
		t.Fatalf("production backups: %v", backupIDs(bs))
	}
}

// TestBackupWaitsForABusyEnvironment: a tick that finds the environment
// held (another backup still running, a release) waits for it and then
// takes its backup; held past the tick's grace, the run fails and says so.
func TestBackupWaitsForABusyEnvironment(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, nil)
	svc, _ := r.service(t, nil)
	var n notices
	s := r.scheduler(t, svc, "replica-a", &n)
	key := "backup:crm/production"

	held, err := svc.Locker.TryLock(ctx, key, "another backup", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const busy = 1500 * time.Millisecond
	go func() {
		time.Sleep(busy)
		_ = held.Unlock(ctx)
	}()
	tick := baseDay().Add(2 * time.Hour)
	r.clock.Set(tick)
	start := time.Now()
	got := s.Tick(ctx, tick)
	if len(got) != 1 || !got[0].OK || got[0].Backup == nil {
		t.Fatalf("a tick during a busy second: %+v", got)
	}
	if took := time.Since(start); took < busy {
		t.Fatalf("the backup ran after %s, while the environment was still held (%s)", took, busy)
	}
	if bs := scheduled(t, svc, "production"); len(bs) != 1 {
		t.Fatalf("production backups: %v", backupIDs(bs))
	}

	// Held for longer than an @every 2s schedule's grace (1 s): a failure
	// naming the holder and what to do.
	r2 := newRig(t, func(y string) string { return mustReplace(t, y, `schedule: "0 2 * * *"`, `schedule: "@every 2s"`) })
	svc2, _ := r2.service(t, nil)
	s2 := r2.scheduler(t, svc2, "replica-a", &n)
	if _, err := svc2.Locker.TryLock(ctx, key, "a long release", time.Minute); err != nil {
		t.Fatal(err)
	}
	tick2 := baseDay().Add(2 * time.Hour)
	r2.clock.Set(tick2)
	got = s2.Tick(ctx, tick2)
	if len(got) != 1 || got[0].OK {
		t.Fatalf("a tick held past its grace: %+v", got)
	}
	if !strings.Contains(got[0].Err, "is held by a long release") || !strings.Contains(got[0].WhatToDo, "still held it 1s after this one was due") {
		t.Errorf("the failure says:\nerr: %s\ntodo: %s", got[0].Err, got[0].WhatToDo)
	}
	if bs := scheduled(t, svc2, "production"); len(bs) != 0 {
		t.Fatalf("production backups while held: %v", backupIDs(bs))
	}
}

// TestRun: Run takes the missed backup at start, then one per tick of an
// @every schedule, and returns when its context ends.
func TestRun(t *testing.T) {
	r := newRig(t, func(y string) string { return mustReplace(t, y, `schedule: "0 2 * * *"`, `schedule: "@every 2s"`) })
	r.clock = nil
	svc, _ := r.serviceRealTime(t)
	var n notices
	s := &scheduler.Scheduler{Backups: svc, Owner: "replica-run", Log: testLog(t), Notify: n.notify}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for len(scheduled(t, svc, "production")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run took fewer than two scheduled backups in a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for _, x := range n.take() {
		if !x.OK {
			t.Errorf("notice: %+v", x)
		}
	}
}

func (r *rig) serviceRealTime(t *testing.T) (*release.BackupService, *postgres.Store) {
	r.clock = &clock{}
	svc, store := r.service(t, nil)
	svc.Now = time.Now
	return svc, store
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("apps.yaml has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

func backupIDs(bs []*release.Backup) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}
