package pgsnap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// runner runs pg_dump's statements as far as the roles exist here and the
// restoring role may: an owner or grantee this server lacks, or an owner
// the restoring role may not give objects to, becomes a warning instead
// of a failed restore. Everything else that fails, fails the restore.
type runner struct {
	current string
	super   bool
	exists  map[string]bool

	mu        sync.Mutex
	noOwner   map[string]int             // objects of owners that do not exist here
	notOwned  map[string]int             // objects kept by the restoring role, owner granted ALL
	kept      map[string]int             // the same, for kinds without privileges of their own
	noGrantee map[string]map[string]bool // role -> entries whose grants to it were not made
	savepoint int
}

func newRunner(ctx context.Context, q pgschema.Querier) (*runner, error) {
	r := &runner{exists: map[string]bool{}, noOwner: map[string]int{}, notOwned: map[string]int{}, kept: map[string]int{}, noGrantee: map[string]map[string]bool{}}
	if err := q.QueryRow(ctx, `SELECT rolname, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&r.current, &r.super); err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles`)
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	for _, n := range names {
		r.exists[n] = true
	}
	return r, nil
}

var ownerStmt = regexp.MustCompile(`(?s)^ALTER (TABLE|FOREIGN TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|FUNCTION|PROCEDURE|AGGREGATE|SCHEMA|TYPE|DOMAIN|LARGE OBJECT|FOREIGN DATA WRAPPER|SERVER|PROCEDURAL LANGUAGE|LANGUAGE|[A-Z ]+?) (.+) OWNER TO ("(?:[^"]|"")+"|[^\s"]+)$`)

// grantKind is what GRANT calls the kinds of objects pg_dump gives owners.
var grantKind = map[string]string{
	"TABLE": "TABLE", "FOREIGN TABLE": "TABLE", "VIEW": "TABLE", "MATERIALIZED VIEW": "TABLE", "SEQUENCE": "SEQUENCE",
	"FUNCTION": "ROUTINE", "PROCEDURE": "ROUTINE", "AGGREGATE": "ROUTINE",
	"SCHEMA": "SCHEMA", "TYPE": "TYPE", "DOMAIN": "DOMAIN", "LARGE OBJECT": "LARGE OBJECT",
	"FOREIGN DATA WRAPPER": "FOREIGN DATA WRAPPER", "SERVER": "FOREIGN SERVER", "PROCEDURAL LANGUAGE": "LANGUAGE", "LANGUAGE": "LANGUAGE",
}

var missingRole = regexp.MustCompile(`role "((?:[^"]|"")+)" does not exist`)

func unquoteIdent(s string) string {
	if strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`) && len(s) >= 2 {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// exec runs one statement on q, which must be in a transaction when the
// statement may need a savepoint (owners, grants).
func (r *runner) exec(ctx context.Context, q pgschema.Querier, st statement) error {
	if m := ownerStmt.FindStringSubmatch(st.SQL); m != nil {
		return r.owner(ctx, q, st, m[1], m[2], unquoteIdent(m[3]))
	}
	if st.Type == "ACL" || st.Type == "DEFAULT ACL" {
		err := r.guarded(ctx, q, st.SQL)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42704" {
			if m := missingRole.FindStringSubmatch(pe.Message); m != nil {
				role := strings.ReplaceAll(m[1], `""`, `"`)
				r.mu.Lock()
				if r.noGrantee[role] == nil {
					r.noGrantee[role] = map[string]bool{}
				}
				r.noGrantee[role][st.Entry] = true
				r.mu.Unlock()
				return nil
			}
		}
		return stmtError(st, err)
	}
	_, err := q.Exec(ctx, st.SQL)
	return stmtError(st, err)
}

func (r *runner) owner(ctx context.Context, q pgschema.Querier, st statement, kind, object, role string) error {
	switch {
	case role == r.current:
		return nil // already
	case !r.exists[role]:
		r.count(r.noOwner, role)
		return nil
	case r.super:
		_, err := q.Exec(ctx, st.SQL)
		return stmtError(st, err)
	}
	err := r.guarded(ctx, q, st.SQL)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		return stmtError(st, err)
	}
	// The restoring role may not give the object away: it keeps it, and
	// the owner keeps its access through a grant where the kind has any.
	gk, ok := grantKind[kind]
	if !ok {
		r.count(r.kept, role)
		return nil
	}
	grant := fmt.Sprintf("GRANT ALL ON %s %s TO %s", gk, object, pgschema.QuoteIdent(role))
	if _, err := q.Exec(ctx, grant); err != nil {
		return fmt.Errorf("%s (instead of %s): %w", grant, appdb.FirstLine(st.SQL), err)
	}
	r.count(r.notOwned, role)
	return nil
}

func (r *runner) count(m map[string]int, role string) {
	r.mu.Lock()
	m[role]++
	r.mu.Unlock()
}

// guarded runs sql under a savepoint, so that its failure leaves the
// transaction usable.
func (r *runner) guarded(ctx context.Context, q pgschema.Querier, sql string) error {
	r.mu.Lock()
	r.savepoint++
	sp := fmt.Sprintf("relbot_%d", r.savepoint)
	r.mu.Unlock()
	if _, err := q.Exec(ctx, "SAVEPOINT "+sp+"; "+sql+"; RELEASE SAVEPOINT "+sp); err != nil {
		if _, rerr := q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+sp+"; RELEASE SAVEPOINT "+sp); rerr != nil {
			return fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
		return err
	}
	return nil
}

func stmtError(st statement, err error) error {
	if err == nil {
		return nil
	}
	where := appdb.FirstLine(st.SQL)
	if st.Entry != "" {
		where = st.Entry + ": " + where
	}
	return fmt.Errorf("%s: %w", where, err)
}

func (r *runner) warnings() []string {
	var out []string
	for _, role := range slices.Sorted(maps.Keys(r.noOwner)) {
		out = append(out, fmt.Sprintf("role %s does not exist on this server: its %d objects are owned by %s", role, r.noOwner[role], r.current))
	}
	for _, role := range slices.Sorted(maps.Keys(r.notOwned)) {
		out = append(out, fmt.Sprintf("%d objects of role %s are owned by %s, which may not give objects to %s (it lacks %s's privileges, or %s may not create in their schema); %s was granted all privileges on them instead",
			r.notOwned[role], role, r.current, role, role, role, role))
	}
	for _, role := range slices.Sorted(maps.Keys(r.kept)) {
		out = append(out, fmt.Sprintf("%d objects of role %s (of kinds without privileges, such as operators) are owned by %s, which may not give objects to %s", r.kept[role], role, r.current, role))
	}
	for _, role := range slices.Sorted(maps.Keys(r.noGrantee)) {
		out = append(out, fmt.Sprintf("role %s does not exist on this server: its privileges on %d objects were not granted", role, len(r.noGrantee[role])))
	}
	return out
}

// runAll runs statements in order on q.
func (r *runner) runAll(ctx context.Context, q pgschema.Querier, stmts []statement) error {
	for _, st := range stmts {
		if err := r.exec(ctx, q, st); err != nil {
			return err
		}
	}
	return nil
}
