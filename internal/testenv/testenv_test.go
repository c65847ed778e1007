package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// made are the database and role TestDatabaseAndRoleOutliveTheirTest
// made; TestMain checks that Run dropped them.
var made struct{ db, role string }

func TestMain(m *testing.M) {
	code := Run(m)
	if code == 0 && made.db != "" {
		if err := checkGone(made.db, made.role); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkGone(db, role string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var dbs, roles int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1), (SELECT count(*) FROM pg_roles WHERE rolname = $2)", db, role).Scan(&dbs, &roles); err != nil {
		return err
	}
	if dbs != 0 || roles != 0 {
		return fmt.Errorf("after Run: database %s left: %v, role %s left: %v", db, dbs != 0, role, roles != 0)
	}
	return nil
}

// Under Main a test's database is dropped in the background and its role
// after every database, so a role owning objects in the test's database
// goes too, and the test does not wait for either.
func TestDatabaseAndRoleOutliveTheirTest(t *testing.T) {
	role := UniqueName("relbot_testenv")
	DropRoleAfterDatabases(t, role)
	Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize())
	name, dsn := NewDatabase(t, "testenv")
	conn := Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE owned (a int); ALTER TABLE owned OWNER TO "+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	made.db, made.role = name, role
}
