package main

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
)

// withoutTable is a dbState without table's rows line.
func withoutTable(state, table string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(state, "\n") {
		if !strings.HasPrefix(l, table+" ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// writeTicket is a user's work after the deploy, in a business table the
// migration does not change; it returns how many such rows there are.
func writeTicket(t *testing.T, dsn string) int {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO tickets (subject, body) VALUES ('written after the deploy', 'keep me')`); err != nil {
		t.Fatal(err)
	}
	return ticketsWritten(t, dsn)
}

func ticketsWritten(t *testing.T, dsn string) int {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM tickets WHERE subject = 'written after the deploy'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func hasSegment(t *testing.T, dsn string) bool {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'segment'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// The targeted rollback from the terminal: a deploy, users' work in a
// business table the migration did not change, then `rollback`: the
// configuration is back as before the deploy, the users' rows stay.
func TestTargetedRollbackKeepsRowsWrittenSince(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	dsn := env["CRM_STAGING_DATABASE_URL"]
	m := createMigration(t, env)
	before := dbState(t, dsn)

	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded", "prepare apply", "kept release snapshot crm-r1")
	if !hasSegment(t, dsn) {
		t.Fatal("the deploy did not add customers.segment: the test proves nothing")
	}
	must(t, run(t, env, "release", "show", "crm-r1"), "Release snapshot", "snapshot retention")
	must(t, run(t, env, "status", "crm"), "Release snapshots", "crm-r1 (")
	if n := writeTicket(t, dsn); n != 1 {
		t.Fatalf("%d tickets written", n)
	}

	r := must(t, run(t, env, "rollback", "crm-r1", "--as", "alice"), "crm-r2", "targeted: puts back what crm-r1 changed, keeps rows written since", "succeeded", "revert")
	if strings.Contains(r.out, "restore backup") {
		t.Fatalf("the targeted rollback restored the backup:\n%s", r.out)
	}
	if hasSegment(t, dsn) {
		t.Fatal("customers.segment is still there after the rollback")
	}
	if n := ticketsWritten(t, dsn); n != 1 {
		t.Fatalf("the ticket written after the deploy is gone (%d left): a targeted rollback keeps it", n)
	}
	if after := dbState(t, dsn); withoutTable(after, "tickets") != withoutTable(before, "tickets") {
		t.Fatalf("staging after the targeted rollback differs from before the deploy (tickets aside):\n%s", firstDifference(before, after))
	}
	if n := markers(t, dsn); n != 0 {
		t.Fatalf("marker rows %d after the rollback, want 0", n)
	}
	must(t, run(t, env, "release", "show", "crm-r1"), "rolled back")
	must(t, run(t, env, "release", "show", "crm-r2", "--json"), `"rollback": "targeted"`, `"snapshot": "crm-r1"`)
	// Its snapshot was put back: a second rollback of crm-r1 is refused.
	refused(t, run(t, env, "rollback", "crm-r1", "--as", "alice"), "crm-r1 is rolled back")
}

// The full rollback: `rollback --full` restores the pre-release backup,
// what users wrote since included.
func TestFullRollbackRestoresTheBackup(t *testing.T) {
	t.Parallel()
	env := releaseEnv(t)
	dsn := env["CRM_STAGING_DATABASE_URL"]
	m := createMigration(t, env)
	before := dbState(t, dsn)
	must(t, run(t, env, "deploy", m, "staging", "--allow-new-plugins", "--as", "alice"), "succeeded")
	writeTicket(t, dsn)

	must(t, run(t, env, "rollback", "crm-r1", "--full", "--as", "alice"), "crm-r2", "full: restores backup crm-b", "taken before crm-r1", "restore backup", "succeeded")
	if after := dbState(t, dsn); after != before {
		t.Fatalf("staging after the full rollback differs from before the deploy:\n%s", firstDifference(before, after))
	}
	if n := ticketsWritten(t, dsn); n != 0 {
		t.Fatalf("%d tickets written after the deploy survived the full rollback", n)
	}
	must(t, run(t, env, "release", "show", "crm-r2", "--json"), `"rollback": "full"`, `"backup": "crm-b`)
}
