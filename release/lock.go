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

// LockHeld is the conflict every Locker reports when another owner holds
// key, so users read the same sentence whichever backend is configured.
func LockHeld(key, owner string, since time.Time) error {
	return Errorf(CodeConflict, "%s is held by %s since %s", key, owner, since.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// LockLost is what Refresh and Unlock report once the lock expired or
// another owner took it.
func LockLost(key, owner string) error {
	return Errorf(CodeConflict, "%s is no longer held by %s (the lock expired or was taken)", key, owner)
}

// HoldPlaced is the conflict a ReleaseStore reports when PutHold finds the
// environment locked already: who locked it, since when, and why.
func HoldPlaced(old Hold) error {
	return Errorf(CodeConflict, "%s %s is locked already, by %s since %s: %s; unlock %s %s first to lock it again",
		old.App, old.Env, old.By, old.At.UTC().Format("2006-01-02 15:04 MST"), old.Reason, old.App, old.Env)
}
