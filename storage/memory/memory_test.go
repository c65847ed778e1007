package memory

import (
	"context"
	"fmt"
	"time"

	"testing"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/internal/lockertest"
)

func TestLockerContract(t *testing.T) {
	lockertest.Run(t, func(t *testing.T) release.Locker { return NewLocker() })
}

func TestDedupeContract(t *testing.T) {
	lockertest.RunDedupe(t, func(t *testing.T) lockertest.Deduper { return NewDedupe() })
}

func TestExpiredEntriesAreDropped(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }

	d := NewDedupe()
	d.now = clock
	for i := range 1000 {
		if _, err := d.First(ctx, fmt.Sprint("k", i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	for i := range 1000 {
		_, _ = d.First(ctx, fmt.Sprint("new", i), time.Second)
	}
	// Sweeps run when the map doubles, so at most 2x the live keys (+64).
	if n := len(d.seen); n > 1000+64 {
		t.Errorf("dedupe keeps %d keys, want the expired ones dropped", n)
	}

	l := NewLocker()
	l.now = clock
	for i := range 100 {
		if _, err := l.TryLock(ctx, fmt.Sprint("k", i), "alice", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := l.TryLock(ctx, "fresh", "bob", time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(l.locks); n != 1 {
		t.Errorf("locker keeps %d locks, want 1", n)
	}
}
