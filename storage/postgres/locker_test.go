package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/internal/lockertest"
)

func TestLockerContract(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	lockertest.Run(t, func(t *testing.T) release.Locker { return s.Locker() })
}

func TestDedupeContract(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	lockertest.RunDedupe(t, func(t *testing.T) lockertest.Deduper { return s.Dedupe() })
}

// Two stores on one database stand for two relbot processes: a lock one
// takes is refused to the other.
func TestLockerSharedBetweenProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := testenv.NewDatabase(t, "locker")
	a, b := openStore(t, dsn), openStore(t, dsn)
	la, err := a.Locker().TryLock(ctx, "crm/production", "replica-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Locker().TryLock(ctx, "crm/production", "replica-b", time.Minute); release.ErrorCode(err) != release.CodeConflict {
		t.Fatalf("second process: %v, want conflict", err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Locker().TryLock(ctx, "crm/production", "replica-b", time.Minute)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	_ = lb.Unlock(ctx)
}
