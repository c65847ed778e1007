package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/internal/lockertest"
)

func newClient(t *testing.T) *goredis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := Connect(ctx, testenv.RedisURL())
	if err != nil {
		t.Fatalf("Connect(%s): %v", testenv.RedisURL(), err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestLockerContract(t *testing.T) {
	lockertest.Run(t, func(t *testing.T) release.Locker { return NewLocker(newClient(t)) })
}

func TestDedupeContract(t *testing.T) {
	lockertest.RunDedupe(t, func(t *testing.T) lockertest.Deduper { return NewDedupe(newClient(t)) })
}

// Two replicas are two clients: the lock must hold across them.
func TestLockerAcrossClients(t *testing.T) {
	ctx := context.Background()
	a, b := NewLocker(newClient(t)), NewLocker(newClient(t))
	key := "relbot-test/" + testenv.UniqueName(t.Name())
	la, err := a.TryLock(ctx, key, "replica-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLock(ctx, key, "replica-2", time.Minute); release.ErrorCode(err) != release.CodeConflict {
		t.Fatalf("second replica: %v, want conflict", err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConnectErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Connect(ctx, "http://example.com"); release.ErrorCode(err) != release.CodeInvalid {
		t.Errorf("bad scheme: %v, want invalid", err)
	}
	_, err := Connect(ctx, "redis://:secret@127.0.0.1:1/0")
	if release.ErrorCode(err) != release.CodeUnavailable {
		t.Fatalf("closed port: %v, want not available", err)
	}
	if msg := release.ErrorMessage(err); msg != "cannot reach Redis at 127.0.0.1:1" {
		t.Errorf("message %q", msg)
	}
}

func TestForeignValueIsStillAConflict(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	key := "relbot-test/" + testenv.UniqueName(t.Name())
	if err := client.Set(ctx, lockPrefix+key, "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Del(context.Background(), lockPrefix+key) })
	_, err := NewLocker(client).TryLock(ctx, key, "alice", time.Minute)
	if release.ErrorCode(err) != release.CodeConflict {
		t.Fatalf("%v, want conflict", err)
	}
}
