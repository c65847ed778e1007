// Package redis holds the bot's Redis-backed Locker and Dedupe, shared by
// every replica: locks with an owner check, dedupe keys, and the leader lease
// (a lock refreshed by whichever replica took it).
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relbot/relbot/release"
)

var _ release.Locker = (*Locker)(nil)

// Key prefixes keep the bot's keys apart from each other and from anything
// else sharing the Redis database.
const (
	lockPrefix   = "relbot:lock:"
	dedupePrefix = "relbot:dedupe:"
)

// Connect parses a redis:// (or rediss://) URL and pings the server, so a
// wrong setting stops start-up instead of the first release.
func Connect(ctx context.Context, url string) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		// The cause may quote the URL with its password: log only.
		return nil, &release.Error{Code: release.CodeInvalid, Message: "the Redis URL is not a valid redis:// URL", Err: err}
	}
	client := goredis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, &release.Error{Code: release.CodeUnavailable, Message: fmt.Sprintf("cannot reach Redis at %s", opts.Addr), Err: err}
	}
	return client, nil
}

// Locker is a release.Locker on Redis.
type Locker struct {
	client *goredis.Client
}

// NewLocker returns a Locker using client.
func NewLocker(client *goredis.Client) *Locker { return &Locker{client: client} }

// holder is the lock's value: who holds it, since when, and a random token
// that tells this acquisition apart from any later one by the same owner.
type holder struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
	Token string    `json:"token"`
}

// TryLock takes key for owner with SET NX PX, or fails with CodeConflict
// naming the holder. It does not wait.
//
// A leader lease is TryLock("leader", replicaID, ttl) refreshed well within
// ttl; a replica whose Refresh fails stops leading.
func (l *Locker) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (release.Lock, error) {
	if key == "" || owner == "" {
		return nil, release.Errorf(release.CodeInvalid, "a lock needs a key and an owner")
	}
	if ttl < time.Millisecond {
		return nil, release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", key, ttl)
	}
	value, err := json.Marshal(holder{Owner: owner, Since: time.Now().UTC(), Token: newToken()})
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	rkey := lockPrefix + key
	// The holder may expire between our SET and our GET; try again then,
	// a few times, rather than report a conflict with nobody.
	for range 3 {
		ok, err := l.client.SetNX(ctx, rkey, value, ttl).Result()
		if err != nil {
			return nil, unavailable(fmt.Errorf("lock %s: %w", key, err))
		}
		if ok {
			return &lock{client: l.client, key: key, owner: owner, value: string(value)}, nil
		}
		cur, err := l.client.Get(ctx, rkey).Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, unavailable(fmt.Errorf("lock %s: read holder: %w", key, err))
		}
		var h holder
		if err := json.Unmarshal([]byte(cur), &h); err != nil || h.Owner == "" {
			// Not a value we wrote, but the key is still taken.
			return nil, release.Errorf(release.CodeConflict, "%s is held by an unknown owner", key)
		}
		return nil, release.LockHeld(key, h.Owner, h.Since)
	}
	return nil, release.Errorf(release.CodeConflict, "%s is changing hands; try again", key)
}

// The scripts compare the whole value (token included) before acting, in one
// step on the server: a lock that expired and was taken by someone else is
// never extended or deleted by its former owner.
var (
	refreshScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	unlockScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)
)

type lock struct {
	client *goredis.Client
	key    string
	owner  string
	value  string
}

func (k *lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return release.Errorf(release.CodeInvalid, "lock %s: ttl %v is too short", k.key, ttl)
	}
	n, err := refreshScript.Run(ctx, k.client, []string{lockPrefix + k.key}, k.value, ttl.Milliseconds()).Int()
	if err != nil {
		return unavailable(fmt.Errorf("refresh lock %s: %w", k.key, err))
	}
	if n == 0 {
		return release.LockLost(k.key, k.owner)
	}
	return nil
}

func (k *lock) Unlock(ctx context.Context) error {
	n, err := unlockScript.Run(ctx, k.client, []string{lockPrefix + k.key}, k.value).Int()
	if err != nil {
		return unavailable(fmt.Errorf("unlock %s: %w", k.key, err))
	}
	if n == 0 {
		return release.LockLost(k.key, k.owner)
	}
	return nil
}

// Dedupe remembers keys for a while so a retried Slack request or a
// double-click takes effect once, whichever replica receives it.
type Dedupe struct {
	client *goredis.Client
}

// NewDedupe returns a Dedupe using client.
func NewDedupe(client *goredis.Client) *Dedupe { return &Dedupe{client: client} }

// First reports whether key was not seen in the last ttl, and marks it seen.
func (d *Dedupe) First(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	if ttl < time.Millisecond {
		return false, release.Errorf(release.CodeInvalid, "dedupe %s: ttl %v is too short", key, ttl)
	}
	ok, err := d.client.SetNX(ctx, dedupePrefix+key, 1, ttl).Result()
	if err != nil {
		return false, unavailable(fmt.Errorf("dedupe %s: %w", key, err))
	}
	return ok, nil
}

// Seen reports whether key is remembered (First marked it within its
// ttl), without marking it.
func (d *Dedupe) Seen(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, release.Errorf(release.CodeInvalid, "dedupe key is empty")
	}
	n, err := d.client.Exists(ctx, dedupePrefix+key).Result()
	if err != nil {
		return false, unavailable(fmt.Errorf("dedupe %s: %w", key, err))
	}
	return n > 0, nil
}

// unavailable tells the user Redis is down; the cause goes to the log.
// Cancellation passes through: it is the caller's doing, not an outage.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &release.Error{Code: release.CodeUnavailable, Message: "Redis is not available", Err: err}
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return hex.EncodeToString(b)
}
