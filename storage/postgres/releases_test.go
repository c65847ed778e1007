package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/internal/storetest"
)

// TestStoreContract runs the store-agnostic behaviour (codes, orderings,
// compare-and-set under concurrency, leases, holds) that storage/memory
// meets too; this file keeps what only PostgreSQL has.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
}

func TestOpenStatesMatchIndex(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.NewDatabase(t, "store")
	openStore(t, dsn)
	var def string
	conn := testenv.Connect(t, dsn)
	if err := conn.QueryRow(context.Background(), "SELECT pg_get_indexdef($1::regclass)", openIndex).Scan(&def); err != nil {
		t.Fatal(err)
	}
	all := []release.State{release.StateAwaitingApproval, release.StateScheduled, release.StateRunning, release.StateSucceeded,
		release.StateFailed, release.StateRolledBack, release.StateRejected, release.StateCancelled, release.StateExpired, release.StateInterrupted}
	for _, st := range all {
		if in := strings.Contains(def, "'"+string(st)+"'"); in != st.Open() {
			t.Errorf("state %q: in the index %v, Open %v (%s)", st, in, st.Open(), def)
		}
	}
	if len(openStates) != 4 {
		t.Errorf("openStates = %q", openStates)
	}
}
