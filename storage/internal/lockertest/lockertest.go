// Package lockertest is the contract every release.Locker and Dedupe of the
// bot must meet. The Redis and in-memory implementations run the same tests,
// so a single replica without Redis behaves like a cluster with it.
package lockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// Deduper is what storage/redis.Dedupe and storage/memory.Dedupe share.
type Deduper interface {
	First(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Seen(ctx context.Context, key string) (bool, error)
}

// Short TTLs keep the suite fast; the margins are wide enough for -race on
// a loaded machine (Redis expiry is millisecond-precise).
const (
	shortTTL = 150 * time.Millisecond
	longTTL  = time.Minute
	pastTTL  = 400 * time.Millisecond // sleep long enough for shortTTL to lapse
)

// key returns a key no other test run shares, as the Redis is shared.
func key(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "relbot-test/" + t.Name() + "/" + hex.EncodeToString(b)
}

func wantCode(t *testing.T, what string, err error, code release.Code) *release.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	var e *release.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, release.ErrorCode(err), code)
	}
	return e
}

func mustLock(t *testing.T, l release.Locker, key, owner string, ttl time.Duration) release.Lock {
	t.Helper()
	lock, err := l.TryLock(context.Background(), key, owner, ttl)
	if err != nil {
		t.Fatalf("TryLock(%s, %s): %v", key, owner, err)
	}
	return lock
}

// Run holds a Locker to the contract. newLocker is called once per subtest.
func Run(t *testing.T, newLocker func(t *testing.T) release.Locker) {
	ctx := context.Background()

	t.Run("Exclusive", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k, "alice", longTTL)
		_, err := l.TryLock(ctx, k, "bob", longTTL)
		e := wantCode(t, "second owner", err, release.CodeConflict)
		// The user is told who holds it, and since when.
		if !strings.Contains(e.Message, k) || !strings.Contains(e.Message, "held by alice since ") {
			t.Errorf("conflict message %q should name the key and the holder", e.Message)
		}
		// Not re-entrant: the same owner asking twice is a conflict too, so
		// two runs of one user cannot overlap.
		_, err = l.TryLock(ctx, k, "alice", longTTL)
		wantCode(t, "same owner again", err, release.CodeConflict)
		if err := a.Unlock(ctx); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		b := mustLock(t, l, k, "bob", longTTL)
		_ = b.Unlock(ctx)
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k+"/production", "alice", longTTL)
		b := mustLock(t, l, k+"/staging", "bob", longTTL)
		_ = a.Unlock(ctx)
		_ = b.Unlock(ctx)
	})

	t.Run("ExpiryFrees", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		mustLock(t, l, k, "alice", shortTTL)
		time.Sleep(pastTTL)
		b := mustLock(t, l, k, "bob", longTTL)
		_ = b.Unlock(ctx)
	})

	t.Run("RefreshExtends", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k, "alice", shortTTL)
		if err := a.Refresh(ctx, longTTL); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		time.Sleep(pastTTL)
		_, err := l.TryLock(ctx, k, "bob", longTTL)
		wantCode(t, "after refresh", err, release.CodeConflict)
		if err := a.Unlock(ctx); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	})

	t.Run("LostLockStaysLost", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k, "alice", shortTTL)
		time.Sleep(pastTTL)
		b := mustLock(t, l, k, "bob", longTTL)
		// alice's lock expired and bob took it: alice may neither extend nor
		// release bob's lock.
		wantCode(t, "old owner Refresh", a.Refresh(ctx, longTTL), release.CodeConflict)
		wantCode(t, "old owner Unlock", a.Unlock(ctx), release.CodeConflict)
		_, err := l.TryLock(ctx, k, "carol", longTTL)
		e := wantCode(t, "third owner", err, release.CodeConflict)
		if !strings.Contains(e.Message, "held by bob") {
			t.Errorf("message %q should name bob", e.Message)
		}
		if err := b.Refresh(ctx, longTTL); err != nil {
			t.Fatalf("holder Refresh: %v", err)
		}
		if err := b.Unlock(ctx); err != nil {
			t.Fatalf("holder Unlock: %v", err)
		}
	})

	t.Run("ExpiredNotRetaken", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k, "alice", shortTTL)
		time.Sleep(pastTTL)
		// Nobody took it, but it lapsed: refreshing would hide that the
		// holder ran unprotected.
		wantCode(t, "Refresh after expiry", a.Refresh(ctx, longTTL), release.CodeConflict)
		wantCode(t, "Unlock after expiry", a.Unlock(ctx), release.CodeConflict)
	})

	t.Run("UnlockTwice", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		a := mustLock(t, l, k, "alice", longTTL)
		if err := a.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "second Unlock", a.Unlock(ctx), release.CodeConflict)
		wantCode(t, "Refresh after Unlock", a.Refresh(ctx, longTTL), release.CodeConflict)
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		_, err := l.TryLock(ctx, k, "alice", 0)
		wantCode(t, "zero ttl", err, release.CodeInvalid)
		_, err = l.TryLock(ctx, "", "alice", longTTL)
		wantCode(t, "empty key", err, release.CodeInvalid)
		_, err = l.TryLock(ctx, k, "", longTTL)
		wantCode(t, "empty owner", err, release.CodeInvalid)
		a := mustLock(t, l, k, "alice", longTTL)
		wantCode(t, "Refresh with zero ttl", a.Refresh(ctx, 0), release.CodeInvalid)
		_ = a.Unlock(ctx)
	})

	t.Run("OneWinnerUnderContention", func(t *testing.T) {
		l, k := newLocker(t), key(t)
		const n = 20
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := l.TryLock(ctx, k, "owner"+string(rune('a'+i)), longTTL)
				switch {
				case err == nil:
					wins.Add(1)
				case release.ErrorCode(err) != release.CodeConflict:
					t.Errorf("TryLock: %v", err)
				}
			})
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d owners got the lock, want 1", w)
		}
	})
}

// RunDedupe holds a Dedupe to the contract.
func RunDedupe(t *testing.T, newDedupe func(t *testing.T) Deduper) {
	ctx := context.Background()

	t.Run("FirstThenSeen", func(t *testing.T) {
		d, k := newDedupe(t), key(t)
		for i, want := range []bool{true, false, false} {
			got, err := d.First(ctx, k, longTTL)
			if err != nil || got != want {
				t.Fatalf("call %d: First = %v, %v; want %v", i+1, got, err, want)
			}
		}
		if got, err := d.First(ctx, k+"/other", longTTL); err != nil || !got {
			t.Fatalf("other key: First = %v, %v; want true", got, err)
		}
	})

	t.Run("SeenDoesNotMark", func(t *testing.T) {
		d, k := newDedupe(t), key(t)
		seen := func(when string, want bool) {
			t.Helper()
			if got, err := d.Seen(ctx, k); err != nil || got != want {
				t.Fatalf("%s: Seen = %v, %v; want %v", when, got, err, want)
			}
		}
		seen("before First", false)
		seen("asked twice", false)
		if got, err := d.First(ctx, k, shortTTL); err != nil || !got {
			t.Fatalf("First after Seen = %v, %v; want true (Seen marked the key)", got, err)
		}
		seen("after First", true)
		if got, err := d.Seen(ctx, k+"/other"); err != nil || got {
			t.Fatalf("other key: Seen = %v, %v; want false", got, err)
		}
		time.Sleep(pastTTL)
		seen("after the ttl", false)
	})

	t.Run("ForgottenAfterTTL", func(t *testing.T) {
		d, k := newDedupe(t), key(t)
		if got, _ := d.First(ctx, k, shortTTL); !got {
			t.Fatal("first call not first")
		}
		time.Sleep(pastTTL)
		if got, err := d.First(ctx, k, shortTTL); err != nil || !got {
			t.Fatalf("after ttl: First = %v, %v; want true", got, err)
		}
	})

	t.Run("OneFirstUnderContention", func(t *testing.T) {
		d, k := newDedupe(t), key(t)
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ok, err := d.First(ctx, k, longTTL)
				if err != nil {
					t.Errorf("First: %v", err)
				}
				if ok {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if f := firsts.Load(); f != 1 {
			t.Fatalf("%d callers were first, want 1", f)
		}
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		d := newDedupe(t)
		_, err := d.First(ctx, "", longTTL)
		wantCode(t, "empty key", err, release.CodeInvalid)
		_, err = d.First(ctx, key(t), 0)
		wantCode(t, "zero ttl", err, release.CodeInvalid)
		_, err = d.Seen(ctx, "")
		wantCode(t, "empty key, Seen", err, release.CodeInvalid)
	})
}
