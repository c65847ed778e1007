package release

import (
	"context"
	"time"
)

// Locker hands out exclusive, expiring locks shared by every replica (Redis)
// or by one process (in memory).
type Locker interface {
	// TryLock takes key for owner, or fails at once with CodeConflict naming
	// the current holder. The lock expires after ttl unless refreshed.
	TryLock(ctx context.Context, key, owner string, ttl time.Duration) (Lock, error)
}

// Lock is a held lock.
type Lock interface {
	// Refresh extends the lock; it fails when the lock was lost.
	Refresh(ctx context.Context, ttl time.Duration) error
	// Unlock releases the lock if this owner still holds it.
	Unlock(ctx context.Context) error
}
