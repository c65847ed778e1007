// Package memory holds the in-process Locker and Dedupe used when relbot runs
// as a single replica without Redis (semantics and messages match
// storage/redis so commands read the same either way), and Store, the bot's
// records in memory with storage/postgres's semantics, on which the domain's
// tests run without a database.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/relbot/relbot/release"
)

var _ release.Locker = (*Locker)(nil)

type lockEntry struct {
	owner   string
	token   string
	since   time.Time
	expires time.Time
}

// Locker is a release.Locker for one process. The zero value is not usable;
// call NewLocker.
type Locker struct {
	mu    sync.Mutex
	locks map[string]*lockEntry
	now   func() time.Time
}

// NewLocker returns an empty Locker.
func NewLocker() *Locker {
	return &Locker{locks: map[string]*lockEntry{}, now: time.Now}
}

// TryLock takes key for owner until ttl passes, or fails with CodeConflict
// naming the holder. It does not wait.
func (l *Locker) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (release.Lock, error) {
	if err := checkLockArgs(key, owner, ttl); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if e, ok := l.locks[key]; ok && now.Before(e.expires) {
		return nil, release.LockHeld(key, e.owner, e.since)
	}
	l.sweep(now)
	e := &lockEntry{owner: owner, token: newToken(), since: now, expires: now.Add(ttl)}
	l.locks[key] = e
	return &lock{l: l, key: key, owner: owner, token: e.token}, nil
}

// sweep drops expired locks so keys used once (per release) do not pile up.
// Called with l.mu held; cheap next to the work a lock protects.
func (l *Locker) sweep(now time.Time) {
	for k, e := range l.locks {
		if !now.Before(e.expires) {
			delete(l.locks, k)
		}
	}
}

type lock struct {
	l     *Locker
	key   string
	owner string
	token string
}

// held returns the entry if this lock still owns it: same token, not expired.
func (k *lock) held(now time.Time) *lockEntry {
	e, ok := k.l.locks[k.key]
	if !ok || e.token != k.token || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (k *lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", k.key, ttl)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	now := k.l.now()
	e := k.held(now)
	if e == nil {
		return release.LockLost(k.key, k.owner)
	}
	e.expires = now.Add(ttl)
	return nil
}

func (k *lock) Unlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	if k.held(k.l.now()) == nil {
		return release.LockLost(k.key, k.owner)
	}
	delete(k.l.locks, k.key)
	return nil
}

// Dedupe remembers keys for a while so a retried Slack request or a
// double-click takes effect once.
type Dedupe struct {
	mu        sync.Mutex
	seen      map[string]time.Time // key -> expiry
	lastSweep int
	now       func() time.Time
}

// NewDedupe returns an empty Dedupe.
func NewDedupe() *Dedupe {
	return &Dedupe{seen: map[string]time.Time{}, now: time.Now}
}

// First reports whether key was not seen in the last ttl, and marks it seen.
func (d *Dedupe) First(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	if ttl < time.Millisecond {
		return false, release.Errorf(release.CodeInvalid, "dedupe %s: ttl %v is too short", key, ttl)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if exp, ok := d.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	// Sweep when the map has doubled since the last sweep: amortised O(1)
	// per call, and memory stays proportional to live keys.
	if len(d.seen) >= 2*d.lastSweep+64 {
		for k, exp := range d.seen {
			if !now.Before(exp) {
				delete(d.seen, k)
			}
		}
		d.lastSweep = len(d.seen)
	}
	d.seen[key] = now.Add(ttl)
	return true, nil
}

// Seen reports whether key is remembered (First marked it within its
// ttl), without marking it.
func (d *Dedupe) Seen(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	exp, ok := d.seen[key]
	return ok && d.now().Before(exp), nil
}

func checkLockArgs(key, owner string, ttl time.Duration) error {
	if key == "" || owner == "" {
		return release.Errorf(release.CodeInvalid, "a lock needs a key and an owner")
	}
	if ttl < time.Millisecond {
		return release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", key, ttl)
	}
	return nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return hex.EncodeToString(b)
}
