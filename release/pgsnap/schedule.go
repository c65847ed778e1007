package pgsnap

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/relbot/relbot/release/appdb"
)

// A task's waits once a worker took it.
const (
	running  = -1
	finished = -2
)

// task is one job of a restore's schedule: a load of one part of a table,
// or a build of a table's indexes and keys, or any other job.
type task struct {
	name  string // for the log and tests: "load X part 1 of 3", "keys of X"
	bytes int64  // the larger first, among tasks of the same kind
	// build marks an index and key build: a free worker takes a ready
	// build before any load, so that a table's indexes are made while its
	// pages are still in the cache and the other workers keep loading.
	build bool
	table string // the manifest key of a load's or build's table
	// locks are names no two running tasks share: tables a task locks
	// against the others that name them (a foreign key, both of its).
	locks []string
	run   func(context.Context, *pgx.Conn) error

	waits int     // unfinished tasks this one waits for
	then  []*task // tasks that wait for this one
	seq   int     // its place in the list: ties keep the list's order
}

// after makes t wait until every one of first has finished.
func (t *task) after(first ...*task) {
	for _, f := range first {
		f.then = append(f.then, t)
		t.waits++
	}
}

// before reports whether a ready task a is taken before b: builds first,
// then the larger, then the earlier in the list.
func before(a, b *task) bool {
	if a.build != b.build {
		return a.build
	}
	if a.bytes != b.bytes {
		return a.bytes > b.bytes
	}
	return a.seq < b.seq
}

// schedule runs tasks on the workers, one connection each: every worker
// takes the first ready task (see before) none of whose locks a running
// task holds, and a task becomes ready when the tasks it waits for are
// done. The first failure stops it.
func schedule(ctx context.Context, conns []*pgx.Conn, tasks []*task) error {
	var (
		mu    sync.Mutex
		cond  = sync.NewCond(&mu)
		ready []*task
		left  = len(tasks)
		busy  int // workers running a task
		held  = map[string]bool{}
	)
	free := func(t *task) bool {
		for _, l := range t.locks {
			if held[l] {
				return false
			}
		}
		return true
	}
	for i, t := range tasks {
		t.seq = i
		if t.waits == 0 {
			ready = append(ready, t)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cond.Broadcast()
	})
	defer stop()
	// next waits for a ready task; nil when all are done or the schedule
	// was stopped. spare is how many other workers have nothing to do
	// when it is taken.
	next := func() (t *task, spare int) {
		mu.Lock()
		defer mu.Unlock()
		for {
			if gctx.Err() != nil || left == 0 {
				return nil, 0
			}
			best := -1
			for i := range ready {
				if free(ready[i]) && (best < 0 || before(ready[i], ready[best])) {
					best = i
				}
			}
			if best >= 0 {
				t := ready[best]
				for _, l := range t.locks {
					held[l] = true
				}
				ready = append(ready[:best], ready[best+1:]...)
				t.waits = running
				busy++
				if len(ready) == 0 {
					spare = len(conns) - busy
				}
				return t, spare
			}
			if stuck(tasks) {
				return nil, 0 // a cycle of waits: never wait forever
			}
			cond.Wait()
		}
	}
	done := func(t *task) {
		mu.Lock()
		defer mu.Unlock()
		left--
		busy--
		t.waits = finished
		for _, l := range t.locks {
			delete(held, l)
		}
		for _, d := range t.then {
			if d.waits--; d.waits == 0 {
				ready = append(ready, d)
			}
		}
		cond.Broadcast()
	}
	for _, c := range conns {
		g.Go(func() error {
			for {
				t, spare := next()
				if t == nil {
					return gctx.Err()
				}
				if err := t.run(context.WithValue(gctx, spareKey{}, spare), c); err != nil {
					return err
				}
				done(t)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if left > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("restore schedule: %d tasks wait for one another", left)
	}
	return nil
}

type spareKey struct{}

// spareWorkers is how many workers had nothing to do when the task
// running on ctx was taken (by schedule).
func spareWorkers(ctx context.Context) int {
	n, _ := ctx.Value(spareKey{}).(int)
	return n
}

// stuck reports whether no task runs and none can become ready: only a
// cycle of waits does that.
func stuck(tasks []*task) bool {
	for _, t := range tasks {
		if t.waits == running {
			return false
		}
	}
	return true
}

// sessionSQL is what each worker's session sets before its first job:
// work_mem too, since a foreign key's check is one join of two whole
// tables, whose hash spills to disk in batches at the default 4MB.
const sessionSQL = `SELECT pg_catalog.set_config('synchronous_commit', 'off', false),
	pg_catalog.set_config('maintenance_work_mem', $1, false), pg_catalog.set_config('work_mem', $1, false)`

// openWorkers opens the engine's worker connections to database db (""
// for dsn's own), each set up for a restore's jobs: see Engine.MaintenanceWorkMem.
func (e *Engine) openWorkers(ctx context.Context, dsn, db string) (conns []*pgx.Conn, err error) {
	defer func() {
		if err != nil {
			closeAll(conns)
			conns = nil
		}
	}()
	for range e.workers() {
		c, err := appdb.Connect(ctx, dsn, db, "")
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
	}
	mem, err := e.maintenanceWorkMem(ctx, conns[0])
	if err != nil {
		return conns, err
	}
	for _, c := range conns {
		// Losing the last commits in a crash is harmless here: a failed
		// restore is done again, and the final phase commits durably.
		if _, err := c.Exec(ctx, sessionSQL, mem); err != nil {
			return conns, fmt.Errorf("set up a restore session (maintenance_work_mem %s): %w", mem, err)
		}
	}
	return conns, nil
}

// parallelBuild runs an index and key build with as many parallel
// maintenance workers (PostgreSQL 11 and later build a B-tree with
// processes of their own) as the schedule's workers have nothing to do:
// none while the others load or build, their cores at the end of the
// restore, when one build is left.
func parallelBuild(serverVersion int, run func(context.Context, *pgx.Conn) error) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, c *pgx.Conn) error {
		if serverVersion >= 110000 {
			if _, err := c.Exec(ctx, `SELECT pg_catalog.set_config('max_parallel_maintenance_workers', $1, false)`, fmt.Sprint(spareWorkers(ctx))); err != nil {
				return err
			}
		}
		return run(ctx, c)
	}
}

func closeAll(conns []*pgx.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close(context.Background())
		}
	}
}

// maintenanceWorkMem is each worker's maintenance_work_mem: the engine's
// setting, or else a quarter of the server's effective_cache_size (its
// idea of the memory it may use) shared by the workers, within 64MB..1GB
// and never less than the server's own maintenance_work_mem.
func (e *Engine) maintenanceWorkMem(ctx context.Context, c *pgx.Conn) (string, error) {
	if e.MaintenanceWorkMem != "" {
		return e.MaintenanceWorkMem, nil
	}
	var cache, own int64
	err := c.QueryRow(ctx, `SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('effective_cache_size')),
		pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem'))`).Scan(&cache, &own)
	if err != nil {
		return "", fmt.Errorf("read the server's memory settings: %w", err)
	}
	return fmt.Sprintf("%dMB", defaultMaintenanceWorkMem(cache, own, e.workers())>>20), nil
}

func defaultMaintenanceWorkMem(cache, own int64, workers int) int64 {
	const lo, hi = 64 << 20, 1 << 30
	m := min(max(cache/4/int64(max(workers, 1)), lo), hi)
	return max(m, own)
}
