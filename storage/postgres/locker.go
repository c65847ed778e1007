package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
)

var _ release.Locker = (*Locker)(nil)

// sweepEvery is how many TryLock or First calls pass between deletions of
// expired rows, so keys used once do not pile up.
const sweepEvery = 256

// Locker is a release.Locker on the bot's database, for a relbot without
// Redis: every process using the same database shares its locks. Expiry
// follows the database's clock, so processes whose clocks disagree still
// agree on who holds a lock. Semantics and messages match storage/redis
// and storage/memory.
type Locker struct {
	s     *Store
	calls atomic.Uint64
}

// Locker returns the store's Locker.
func (s *Store) Locker() *Locker { return &Locker{s: s} }

// TryLock takes key for owner until ttl passes, or fails at once with
// CodeConflict naming the holder. One upsert takes a free key or an expired
// one; a key held by anyone, owner included, is refused.
func (l *Locker) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (release.Lock, error) {
	if key == "" || owner == "" {
		return nil, release.Errorf(release.CodeInvalid, "a lock needs a key and an owner")
	}
	if ttl < time.Millisecond {
		return nil, release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", key, ttl)
	}
	if l.calls.Add(1)%sweepEvery == 0 {
		if _, err := l.s.pool.Exec(ctx, "DELETE FROM relbot_locks WHERE until <= now()"); err != nil {
			return nil, l.s.dbErr(err, "lock %s: sweep", key)
		}
	}
	token := newToken()
	// The holder may expire or unlock between our upsert and our read; try
	// again then, a few times, rather than report a conflict with nobody.
	for range 3 {
		err := l.s.pool.QueryRow(ctx, `INSERT INTO relbot_locks AS l (key, owner, token, since, until)
			VALUES ($1, $2, $3, now(), now() + $4 * interval '1 microsecond')
			ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, token = excluded.token,
				since = excluded.since, until = excluded.until
			WHERE l.until <= now()
			RETURNING token`, key, owner, token, ttl.Microseconds()).Scan(&token)
		if err == nil {
			return &lock{s: l.s, key: key, owner: owner, token: token}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, l.s.dbErr(err, "lock %s", key)
		}
		var (
			holder string
			since  time.Time
		)
		err = l.s.pool.QueryRow(ctx, "SELECT owner, since FROM relbot_locks WHERE key = $1 AND until > now()", key).
			Scan(&holder, &since)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, l.s.dbErr(err, "lock %s: read holder", key)
		}
		return nil, release.LockHeld(key, holder, since)
	}
	return nil, release.Errorf(release.CodeConflict, "%s is changing hands; try again", key)
}

type lock struct {
	s     *Store
	key   string
	owner string
	token string
}

// Refresh extends the lock to ttl from now if this owner still holds it
// and it has not expired: a lapsed lock is not revived, even when nobody
// took it, since its holder ran unprotected meanwhile.
func (k *lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", k.key, ttl)
	}
	tag, err := k.s.pool.Exec(ctx, `UPDATE relbot_locks SET until = now() + $3 * interval '1 microsecond'
		WHERE key = $1 AND token = $2 AND until > now()`, k.key, k.token, ttl.Microseconds())
	if err != nil {
		return k.s.dbErr(err, "refresh lock %s", k.key)
	}
	if tag.RowsAffected() == 0 {
		return release.LockLost(k.key, k.owner)
	}
	return nil
}

// Unlock releases the lock if this owner still holds it. A row of ours that
// expired is deleted too, but reported as lost.
func (k *lock) Unlock(ctx context.Context) error {
	var live bool
	err := k.s.pool.QueryRow(ctx, "DELETE FROM relbot_locks WHERE key = $1 AND token = $2 RETURNING until > now()",
		k.key, k.token).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return release.LockLost(k.key, k.owner)
	}
	if err != nil {
		return k.s.dbErr(err, "unlock %s", k.key)
	}
	return nil
}

// Dedupe remembers keys for a while in the bot's database so a retried
// Slack request or a double-click takes effect once, whichever process
// receives it.
type Dedupe struct {
	s     *Store
	calls atomic.Uint64
}

// Dedupe returns the store's Dedupe.
func (s *Store) Dedupe() *Dedupe { return &Dedupe{s: s} }

// First reports whether key was not seen in the last ttl, and marks it seen.
func (d *Dedupe) First(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	if ttl < time.Millisecond {
		return false, release.Errorf(release.CodeInvalid, "dedupe %s: ttl %v is too short", key, ttl)
	}
	if d.calls.Add(1)%sweepEvery == 0 {
		if _, err := d.s.pool.Exec(ctx, "DELETE FROM relbot_dedupe WHERE until <= now()"); err != nil {
			return false, d.s.dbErr(err, "dedupe %s: sweep", key)
		}
	}
	var first bool
	err := d.s.pool.QueryRow(ctx, `INSERT INTO relbot_dedupe AS d (key, until)
		VALUES ($1, now() + $2 * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE d.until <= now()
		RETURNING true`, key, ttl.Microseconds()).Scan(&first)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, d.s.dbErr(err, "dedupe %s", key)
	}
	return first, nil
}

// Seen reports whether key is remembered (First marked it within its
// ttl), without marking it.
func (d *Dedupe) Seen(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	var seen bool
	if err := d.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM relbot_dedupe WHERE key = $1 AND until > now())`, key).Scan(&seen); err != nil {
		return false, d.s.dbErr(err, "dedupe %s", key)
	}
	return seen, nil
}

// dbErr is internal for the lock and dedupe paths; cancellation
// passes through as the caller's own doing.
func (s *Store) dbErr(err error, format string, args ...any) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return s.internal(err, format, args...)
}

// formatSince renders a moment in lease messages, in the layout of
// release.LockHeld.
func formatSince(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return hex.EncodeToString(b)
}
