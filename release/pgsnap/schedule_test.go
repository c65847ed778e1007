package pgsnap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

// events records when each task of a schedule started and ended, in the
// order the workers reported them.
type events struct {
	mu   sync.Mutex
	list []string
}

func (ev *events) add(s string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.list = append(ev.list, s)
}

func (ev *events) index(t *testing.T, s string) int {
	t.Helper()
	i := slices.Index(ev.list, s)
	if i < 0 {
		t.Fatalf("no event %q in %q", s, ev.list)
	}
	return i
}

// fakeJob records its start and end and takes a time in proportion to
// bytes (two milliseconds a byte), so that the schedule's overlaps show.
func fakeJob(ev *events, name string, bytes int64) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, _ *pgx.Conn) error {
		ev.add("start " + name)
		select {
		case <-time.After(time.Duration(bytes) * 2 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		ev.add("end " + name)
		return nil
	}
}

func keyGroup(table, index string) []statement {
	return []statement{{Type: "INDEX", SQL: fmt.Sprintf("CREATE INDEX %s ON public.%s USING btree (x)", index, table)}}
}

// scheduleTables is a manifest of a big table split in three, two plain
// tables, a table whose rows the target keeps, and keys of each and of a
// partitioned table (no rows of its own).
func scheduleTables() ([]TableInfo, map[string]bool, [][]statement) {
	tables := []TableInfo{
		{Key: "small", Member: "table/small", Bytes: 20},
		{Key: "big", Bytes: 240, Parts: []TablePart{
			{Member: "table/big.1", Bytes: 80}, {Member: "table/big.2", Bytes: 80}, {Member: "table/big.3", Bytes: 80}}},
		{Key: "middle", Member: "table/middle", Bytes: 100},
		{Key: "kept", Member: "table/kept", Bytes: 500},
	}
	keys := [][]statement{keyGroup("big", "big_x"), keyGroup("middle", "middle_x"), keyGroup("small", "small_x"),
		keyGroup("kept", "kept_x"), keyGroup("parted", "parted_x")}
	return tables, map[string]bool{"kept": true}, keys
}

func fakeSchedule(ev *events, tables []TableInfo, skip map[string]bool, keys [][]statement) []*task {
	return restoreTasks(tables, skip, keys,
		func(ti TableInfo, part int) func(context.Context, *pgx.Conn) error {
			return fakeJob(ev, fmt.Sprintf("load %s.%d", ti.Key, part+1), ti.part(part).Bytes)
		},
		func(g []statement) func(context.Context, *pgx.Conn) error {
			return fakeJob(ev, "build "+tableOf(g[0].SQL), 30)
		})
}

func TestScheduleBuildsKeysAsSoonAsTheirTableIsIn(t *testing.T) {
	t.Parallel()
	tables, skip, keys := scheduleTables()
	ev := &events{}
	if err := schedule(context.Background(), make([]*pgx.Conn, 2), fakeSchedule(ev, tables, skip, keys)); err != nil {
		t.Fatal(err)
	}
	if len(ev.list) != 2*(5+5) { // big's three parts, middle, small; five builds
		t.Fatalf("events %q", ev.list)
	}
	for _, l := range ev.list {
		if strings.Contains(l, "load kept") {
			t.Fatalf("a kept table was loaded: %q", ev.list)
		}
	}
	// The largest table's first part is the first load.
	if i := slices.IndexFunc(ev.list, func(s string) bool { return strings.HasPrefix(s, "start load") }); ev.list[i] != "start load big.1" {
		t.Fatalf("first load %q, want the largest table's first part: %q", ev.list[i], ev.list)
	}
	// A split table's later parts only once its first (which empties the
	// table to COPY FREEZE) is in.
	for _, p := range []string{"big.2", "big.3"} {
		if ev.index(t, "start load "+p) < ev.index(t, "end load big.1") {
			t.Fatalf("%s started before big.1 ended: %q", p, ev.list)
		}
	}
	// Never a build before every part of its table is in.
	for table, parts := range map[string][]string{"big": {"big.1", "big.2", "big.3"}, "middle": {"middle.1"}, "small": {"small.1"}} {
		for _, p := range parts {
			if ev.index(t, "start build "+table) < ev.index(t, "end load "+p) {
				t.Fatalf("build of %s started before load %s ended: %q", table, p, ev.list)
			}
		}
	}
	// The partitioned table's keys wait for every load.
	for _, l := range ev.list {
		if strings.HasPrefix(l, "end load ") && ev.index(t, "start build parted") < ev.index(t, l) {
			t.Fatalf("build of parted started before %s: %q", l, ev.list)
		}
	}
	// The kept table's keys need no load: a build, so taken first.
	if ev.index(t, "start build kept") > 1 {
		t.Fatalf("the kept table's keys were not built at once: %q", ev.list)
	}
	// Builds overlap other tables' loads: middle's keys are built while
	// big's parts still load, not in a phase after every load.
	if ev.index(t, "start build middle") > ev.index(t, "end load big.3") {
		t.Fatalf("middle's keys waited for every load: %q", ev.list)
	}
}

func TestScheduleTakesAReadyBuildBeforeALoad(t *testing.T) {
	t.Parallel()
	ev := &events{}
	a := &task{name: "load a", bytes: 10, run: fakeJob(ev, "load a", 10)}
	b := &task{name: "load b", bytes: 5, run: fakeJob(ev, "load b", 5)}
	c := &task{name: "load c", bytes: 1, run: fakeJob(ev, "load c", 1)}
	build := &task{name: "build a", bytes: 10, build: true, run: fakeJob(ev, "build a", 1)}
	build.after(a)
	// One worker: the largest load, then the build it made ready before
	// the other loads, then those, the larger first.
	if err := schedule(context.Background(), make([]*pgx.Conn, 1), []*task{c, b, a, build}); err != nil {
		t.Fatal(err)
	}
	want := []string{"start load a", "end load a", "start build a", "end build a", "start load b", "end load b", "start load c", "end load c"}
	if !slices.Equal(ev.list, want) {
		t.Fatalf("order %q, want %q", ev.list, want)
	}
}

func TestScheduleStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	ev := &events{}
	boom := errors.New("load failed")
	var tasks []*task
	tasks = append(tasks, &task{name: "bad", bytes: 100, run: func(context.Context, *pgx.Conn) error { return boom }})
	for i := range 5 {
		name := fmt.Sprintf("load %d", i)
		tasks = append(tasks, &task{name: name, bytes: 10, run: fakeJob(ev, name, 20)})
	}
	build := &task{name: "build", build: true, run: fakeJob(ev, "build", 1)}
	build.after(tasks[0])
	tasks = append(tasks, build)
	err := schedule(context.Background(), make([]*pgx.Conn, 2), tasks)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the load's", err)
	}
	// The other worker finishes (or abandons) the job it had; no more
	// start, and the failed load's build never.
	if len(ev.list) > 2 || slices.Contains(ev.list, "start build") {
		t.Fatalf("went on after the failure: %q", ev.list)
	}
}

func TestScheduleRefusesACycle(t *testing.T) {
	t.Parallel()
	a := &task{name: "a", run: func(context.Context, *pgx.Conn) error { return nil }}
	b := &task{name: "b", run: func(context.Context, *pgx.Conn) error { return nil }}
	a.after(b)
	b.after(a)
	done := make(chan error, 1)
	go func() { done <- schedule(context.Background(), make([]*pgx.Conn, 2), []*task{a, b}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "wait for one another") {
			t.Fatalf("err %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cycle of waits hung the schedule")
	}
}

func TestDefaultMaintenanceWorkMem(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cache, own int64
		workers    int
		want       int64
	}{
		{4 << 30, 64 << 20, 2, 512 << 20},  // PostgreSQL's defaults: 4GB of cache, two workers
		{64 << 30, 64 << 20, 2, 1 << 30},   // at most 1GB a worker
		{256 << 20, 64 << 20, 4, 64 << 20}, // at least 64MB
		{4 << 30, 2 << 30, 2, 2 << 30},     // never below the server's own
	} {
		if got := defaultMaintenanceWorkMem(c.cache, c.own, c.workers); got != c.want {
			t.Errorf("cache %d, own %d, %d workers: %d, want %d", c.cache, c.own, c.workers, got, c.want)
		}
	}
}

// A split table restored into an empty database: its later parts load
// after its first (which COPY FREEZEs), on both workers, and its keys are
// built once all its parts are in, while other tables still load.
func TestScheduledRestoreOfSplitTables(t *testing.T) {
	t.Parallel()
	src := newEnv(t, "schedsrc", splitSQL, nil)
	path, _ := backup(t, &Engine{Workers: 2, SplitBytes: testSplitBytes}, src)
	wantRows := rowSums(t, src.Database)
	ev := &events{}
	e := &Engine{Workers: 2, trace: ev.add}
	dst := newEnv(t, "scheddst", "", nil)
	if _, err := e.Restore(ctxT(t), openArchiveFile(t, path), "crm", dst, release.RestoreOptions{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	equalMaps(t, "tables", wantRows, rowSums(t, dst.Database))
	split := splitTables(t, path, e)
	lastLoad := 0
	for i, l := range ev.list {
		if strings.HasPrefix(l, "start load ") {
			lastLoad = i
		}
	}
	for _, key := range []string{`Odd "Schema".Big Table`, "toasted"} {
		ti := split[key]
		if len(ti.Parts) < 2 {
			t.Fatalf("%s was not split: %+v", key, ti)
		}
		build := ev.index(t, "start indexes and keys of "+key)
		first := ev.index(t, "end load "+partLabel(ti, 0))
		for i := range ti.Parts {
			end := ev.index(t, "end load "+partLabel(ti, i))
			if build < end {
				t.Errorf("keys of %s built before %s was in: %q", key, partLabel(ti, i), ev.list)
			}
			if start := ev.index(t, "start load "+partLabel(ti, i)); i > 0 && start < first {
				t.Errorf("%s started before the first part was in: %q", partLabel(ti, i), ev.list)
			}
		}
	}
	// Some table's keys are built while other tables still wait to load.
	firstBuild := slices.IndexFunc(ev.list, func(s string) bool { return strings.HasPrefix(s, "start indexes and keys of ") })
	if firstBuild < 0 || firstBuild > lastLoad {
		t.Errorf("every build waited for every load: %q", ev.list)
	}
}

// A task taken while other workers have nothing left to take hears how
// many (a build then uses their cores); one taken among others, none.
func TestScheduleTellsTheSpareWorkers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	spare := map[string]int{}
	job := func(name string, d time.Duration) func(context.Context, *pgx.Conn) error {
		return func(ctx context.Context, _ *pgx.Conn) error {
			mu.Lock()
			spare[name] = spareWorkers(ctx)
			mu.Unlock()
			time.Sleep(d)
			return nil
		}
	}
	a := &task{name: "a", bytes: 3, run: job("a", 20*time.Millisecond)}
	b := &task{name: "b", bytes: 2, run: job("b", 100*time.Millisecond)}
	last := &task{name: "last", bytes: 1, build: true, run: job("last", 0)}
	last.after(a)
	// Three workers: a and b start together (a with b still ready, b with
	// none ready but one worker idle); last, after a, while b runs.
	if err := schedule(context.Background(), make([]*pgx.Conn, 3), []*task{a, b, last}); err != nil {
		t.Fatal(err)
	}
	if spare["a"] != 0 || spare["b"] != 1 || spare["last"] != 1 {
		t.Fatalf("spare workers %v, want a 0, b 1, last 1", spare)
	}
}

// A narrow table of many rows whose indexes take long (uiSchemaTreePath)
// is loaded before a table of more bytes and few rows (attachments), so
// that its index builds do not end the schedule alone.
func TestScheduleWeighsIndexBuilds(t *testing.T) {
	t.Parallel()
	tables := []TableInfo{
		{Key: "files", Member: "table/files", Bytes: 150 << 20, Rows: 1000},
		{Key: "tree", Member: "table/tree", Bytes: 40 << 20, Rows: 650_000},
		{Key: "notes", Member: "table/notes", Bytes: 1 << 20, Rows: 10},
	}
	keys := [][]statement{keyGroup("files", "files_pkey"),
		append(keyGroup("tree", "tree_pkey"), keyGroup("tree", "tree_x")[0], keyGroup("tree", "tree_y")[0])}
	first := &task{}
	for _, tk := range restoreTasks(tables, nil, keys,
		func(ti TableInfo, part int) func(context.Context, *pgx.Conn) error { return nil },
		func(g []statement) func(context.Context, *pgx.Conn) error { return nil }) {
		if !tk.build && tk.waits == 0 && (first.name == "" || before(tk, first)) {
			first = tk
		}
	}
	if first.name != "load table tree" {
		t.Fatalf("first load %q, want tree's (650k rows, 3 indexes) before files' (150 MiB, 1000 rows)", first.name)
	}
	if w := restoreWeight(tables[2], 0); w != tables[2].Bytes {
		t.Fatalf("a table without indexes weighs %d, want its bytes %d", w, tables[2].Bytes)
	}
}

func fkGroup(table, name, parent string) []statement {
	return []statement{{Type: "FK CONSTRAINT", SQL: fmt.Sprintf("ALTER TABLE ONLY public.%s\n    ADD CONSTRAINT %s FOREIGN KEY (x) REFERENCES public.%s(id);", table, name, parent)}}
}

// Foreign keys run in the schedule: each after its table's and the
// referenced table's rows and indexes, keys sharing a table never at once
// (each locks both its tables), a key on a table the schedule lacks after
// everything else, a key among the loads of other tables rather than in a
// phase after them, and a referenced table loaded early.
func TestScheduleChecksForeignKeysAmongTheLoads(t *testing.T) {
	t.Parallel()
	tables, skip, keys := scheduleTables()
	tables = append(tables, TableInfo{Key: "late", Member: "table/late", Bytes: 90})
	fks := [][]statement{
		fkGroup("small", "small_middle_fk", "middle"), fkGroup("middle", "middle_small_fk", "small"),
		fkGroup("small", "small_kept_fk", "kept"), fkGroup("late", "late_big_fk", "big"),
		fkGroup("small", "small_nowhere_fk", "nowhere"), fkGroup("kept", "kept_self_fk", "kept"),
		fkGroup("late", "late_small_fk", "small"),
	}
	ev := &events{}
	tasks := foreignKeyTasks(fakeSchedule(ev, tables, skip, keys), fks, func(g []statement) func(context.Context, *pgx.Conn) error {
		return fakeJob(ev, "fk "+strings.Fields(g[0].SQL)[6], 10)
	})
	if err := schedule(context.Background(), make([]*pgx.Conn, 2), tasks); err != nil {
		t.Fatal(err)
	}
	startOf, endOf := func(s string) int { return ev.index(t, "start "+s) }, func(s string) int { return ev.index(t, "end "+s) }
	for fk, waits := range map[string][]string{
		"small_middle_fk": {"build small", "build middle"}, "middle_small_fk": {"build small", "build middle"},
		"small_kept_fk": {"build small", "build kept"}, "late_big_fk": {"load late.1", "build big"},
	} {
		for _, w := range waits {
			if startOf("fk "+fk) < endOf(w) {
				t.Errorf("%s started before %s ended: %q", fk, w, ev.list)
			}
		}
	}
	// The three keys on small, one at a time.
	onSmall := []string{"small_middle_fk", "middle_small_fk", "small_kept_fk", "small_nowhere_fk"}
	for i, a := range onSmall {
		for _, b := range onSmall[i+1:] {
			if startOf("fk "+a) < endOf("fk "+b) && startOf("fk "+b) < endOf("fk "+a) {
				t.Errorf("%s and %s overlapped: %q", a, b, ev.list)
			}
		}
	}
	for _, l := range ev.list {
		if strings.HasPrefix(l, "end ") && !strings.Contains(l, "fk ") && startOf("fk small_nowhere_fk") < ev.index(t, l) {
			t.Errorf("the key on a table the schedule lacks started before %s: %q", l, ev.list)
		}
	}
	// small, referenced by middle and late, loads before them, not last
	// as its size alone would have it: their keys wait for it.
	if startOf("load small.1") > startOf("load middle.1") || startOf("load small.1") > startOf("load late.1") {
		t.Errorf("the referenced table small loaded after the tables referencing it: %q", ev.list)
	}
	// The kept table's rows are in from the start: its key is checked
	// while the big table still loads.
	if startOf("fk kept_self_fk") > endOf("load big.3") {
		t.Errorf("the keys waited for every load: %q", ev.list)
	}
}
