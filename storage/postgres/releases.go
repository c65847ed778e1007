package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relbot/relbot/release"
)

var _ release.ReleaseStore = (*Store)(nil)

// openIndex is the partial unique index that keeps one open release per
// environment (migrations/0010_releases.sql).
const openIndex = "relbot_releases_one_open"

// PostgreSQL error codes the store translates.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// openStates lists the states that hold an environment, from the state
// machine: every state named in release.Transitions whose Open is true.
var openStates = func() []string {
	seen := map[release.State]bool{}
	for from, tos := range release.Transitions {
		seen[from] = true
		for _, to := range tos {
			seen[to] = true
		}
	}
	var out []string
	for s := range seen {
		if s.Open() {
			out = append(out, string(s))
		}
	}
	sort.Strings(out)
	return out
}()

const releaseColumns = `id, app, env, kind, migration, file_hash, backup, snapshot, rollback_of, switch_to, allow_new_plugins, no_analyze, changes,
	requested_by, requested_at, at, state, reason, lease_owner, lease_until,
	channel, message_ts, updated_at`

// micro truncates t to what PostgreSQL keeps.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// microPtr is micro for optional times.
func microPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := micro(*t)
	return &v
}

// utcPtr returns an optional time read from the database in UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// pgCode returns err's PostgreSQL error, if it is one.
func pgCode(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func scanRelease(row pgx.Row) (*release.Release, error) {
	var (
		r           release.Release
		kind, state string
	)
	err := row.Scan(&r.ID, &r.App, &r.Env, &kind, &r.Migration, &r.FileHash, &r.Backup, &r.Snapshot, &r.RollbackOf, &r.SwitchTo, &r.AllowNewPlugins, &r.NoAnalyze, &r.Changes,
		&r.RequestedBy, &r.RequestedAt, &r.At, &state, &r.Reason, &r.LeaseOwner, &r.LeaseUntil,
		&r.Channel, &r.MessageTS, &r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	r.Kind, r.State = release.ReleaseKind(kind), release.State(state)
	r.RequestedAt, r.UpdatedAt = r.RequestedAt.UTC(), r.UpdatedAt.UTC()
	r.At, r.LeaseUntil = utcPtr(r.At), utcPtr(r.LeaseUntil)
	return &r, nil
}

// CreateRelease inserts r with its approvals, steps and checks, in one
// transaction. It sets r.UpdatedAt to the database's time. When r's
// environment already has an open release it fails with CodeConflict naming
// that release; the partial unique index decides, so of many concurrent
// requests exactly one wins.
func (s *Store) CreateRelease(ctx context.Context, r *release.Release) error {
	if r == nil || r.ID == "" || r.App == "" || r.Env == "" || r.Kind == "" || r.State == "" || r.RequestedBy == "" {
		return release.Errorf(release.CodeInvalid, "a release needs an ID, an app, an environment, a kind, a state and a requester")
	}
	if r.RequestedAt.IsZero() {
		return release.Errorf(release.CodeInvalid, "release %s has no request time", r.ID)
	}
	// The open release we collide with may finish between our insert and
	// our look-up; then the insert is worth another try.
	for range 3 {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `INSERT INTO relbot_releases (id, app, env, kind, migration, file_hash, backup,
				rollback_of, switch_to, requested_by, requested_at, at, state, reason, lease_owner, lease_until, channel, message_ts, allow_new_plugins, snapshot, no_analyze, changes)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
				RETURNING updated_at`,
				r.ID, r.App, r.Env, string(r.Kind), r.Migration, r.FileHash, r.Backup, r.RollbackOf, r.SwitchTo,
				r.RequestedBy, micro(r.RequestedAt), microPtr(r.At), string(r.State), r.Reason,
				r.LeaseOwner, microPtr(r.LeaseUntil), r.Channel, r.MessageTS, r.AllowNewPlugins, r.Snapshot, r.NoAnalyze, r.Changes).Scan(&r.UpdatedAt)
			if err != nil {
				return err
			}
			r.UpdatedAt = r.UpdatedAt.UTC()
			for _, a := range r.Approvals {
				if _, err := tx.Exec(ctx, `INSERT INTO relbot_release_approvals (release, approver, at)
					VALUES ($1, $2, coalesce($3, now())) ON CONFLICT DO NOTHING`, r.ID, a.By, approvalTime(a)); err != nil {
					return err
				}
			}
			if err := insertSteps(ctx, tx, r.ID, r.Steps); err != nil {
				return err
			}
			return insertChecks(ctx, tx, r.ID, r.Checks)
		})
		if err == nil {
			return nil
		}
		pe := pgCode(err)
		switch {
		case pe != nil && pe.Code == pgUniqueViolation && pe.ConstraintName == openIndex:
			var otherID, otherState string
			lookErr := s.pool.QueryRow(ctx, `SELECT id, state FROM relbot_releases
				WHERE app = $1 AND env = $2 AND state = ANY($3) LIMIT 1`, r.App, r.Env, openStates).Scan(&otherID, &otherState)
			if errors.Is(lookErr, pgx.ErrNoRows) {
				continue
			}
			if lookErr != nil {
				return s.internal(lookErr, "create release %s: find the open release of %s %s", r.ID, r.App, r.Env)
			}
			return release.Errorf(release.CodeConflict, "%s already has an open release %s (%s): approve, cancel or finish it first",
				r.Env, otherID, otherState)
		case pe != nil && pe.Code == pgUniqueViolation && pe.ConstraintName == "relbot_releases_pkey":
			return release.Errorf(release.CodeConflict, "release %s already exists", r.ID)
		default:
			return s.internal(err, "create release %s", r.ID)
		}
	}
	return release.Errorf(release.CodeConflict, "%s is changing hands between releases; try again", r.Env)
}

// approvalTime is a.At for the database, or nil for "now".
func approvalTime(a release.Approval) *time.Time {
	if a.At.IsZero() {
		return nil
	}
	t := micro(a.At)
	return &t
}

func insertSteps(ctx context.Context, tx pgx.Tx, id string, steps []release.Step) error {
	if len(steps) == 0 {
		return nil
	}
	rows := make([][]any, len(steps))
	for i, st := range steps {
		rows[i] = []any{id, i, st.Name, string(st.State), microPtr(st.Started), microPtr(st.Ended), st.Log}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"relbot_release_steps"},
		[]string{"release", "idx", "name", "state", "started", "ended", "log"}, pgx.CopyFromRows(rows))
	return err
}

func insertChecks(ctx context.Context, tx pgx.Tx, id string, checks []release.CheckResult) error {
	if len(checks) == 0 {
		return nil
	}
	rows := make([][]any, len(checks))
	for i, c := range checks {
		rows[i] = []any{id, i, c.Name, c.OK, durationMS(c.Duration), c.Detail}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"relbot_release_checks"},
		[]string{"release", "idx", "name", "ok", "duration_ms", "detail"}, pgx.CopyFromRows(rows))
	return err
}

// durationMS and fromMS convert a duration to fractional milliseconds and
// back; float64 keeps every nanosecond of durations up to weeks.
func durationMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func fromMS(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// GetRelease returns a release with its approvals (in order), steps and
// checks, or CodeNotFound.
func (s *Store) GetRelease(ctx context.Context, id string) (*release.Release, error) {
	var r *release.Release
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRelease(tx.QueryRow(ctx, "SELECT "+releaseColumns+" FROM relbot_releases WHERE id = $1", id))
		if err != nil {
			return err
		}
		return loadChildren(ctx, tx, []*release.Release{r})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	if err != nil {
		return nil, s.internal(err, "get release %s", id)
	}
	return r, nil
}

// ListReleases returns an app's releases (of env, if not empty), newest
// first, each with its approvals, steps and checks: two round trips in one
// consistent snapshot.
func (s *Store) ListReleases(ctx context.Context, app, env string) ([]*release.Release, error) {
	var out []*release.Release
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryReleases(ctx, tx, `WHERE app = $1 AND ($2 = '' OR env = $2)
			ORDER BY requested_at DESC, id DESC`, app, env)
		if err != nil {
			return err
		}
		return loadChildren(ctx, tx, out)
	})
	if err != nil {
		return nil, s.internal(err, "list releases of %s %s", app, env)
	}
	return out, nil
}

// ExpiredLeases lists running releases whose lease ran out before now,
// with their steps, oldest lease first.
func (s *Store) ExpiredLeases(ctx context.Context, now time.Time) ([]*release.Release, error) {
	var out []*release.Release
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryReleases(ctx, tx, `WHERE state = $1 AND lease_until < $2
			ORDER BY lease_until, id`, string(release.StateRunning), micro(now))
		if err != nil {
			return err
		}
		return loadChildren(ctx, tx, out)
	})
	if err != nil {
		return nil, s.internal(err, "list expired leases")
	}
	return out, nil
}

// readTx runs fn in a read-only snapshot, so a release and its steps agree.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func queryReleases(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]*release.Release, error) {
	rows, err := tx.Query(ctx, "SELECT "+releaseColumns+" FROM relbot_releases "+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*release.Release, error) { return scanRelease(row) })
}

// loadChildren fills the approvals, steps and checks of rs with one batch
// of three queries, whatever the number of releases.
func loadChildren(ctx context.Context, tx pgx.Tx, rs []*release.Release) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*release.Release, len(rs))
	ids := make([]string, len(rs))
	for i, r := range rs {
		byID[r.ID], ids[i] = r, r.ID
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT release, approver, at FROM relbot_release_approvals
		WHERE release = ANY($1) ORDER BY release, at, approver`, ids).Query(func(rows pgx.Rows) error {
		var (
			id string
			a  release.Approval
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &a.By, &a.At}, func() error {
			a.At = a.At.UTC()
			byID[id].Approvals = append(byID[id].Approvals, a)
			return nil
		})
		return err
	})
	b.Queue(`SELECT release, name, state, started, ended, log FROM relbot_release_steps
		WHERE release = ANY($1) ORDER BY release, idx`, ids).Query(func(rows pgx.Rows) error {
		var (
			id, state string
			st        release.Step
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &st.Name, &state, &st.Started, &st.Ended, &st.Log}, func() error {
			st.State = release.StepState(state)
			st.Started, st.Ended = utcPtr(st.Started), utcPtr(st.Ended)
			byID[id].Steps = append(byID[id].Steps, st)
			return nil
		})
		return err
	})
	b.Queue(`SELECT release, name, ok, duration_ms, detail FROM relbot_release_checks
		WHERE release = ANY($1) ORDER BY release, idx`, ids).Query(func(rows pgx.Rows) error {
		var (
			id string
			ms float64
			c  release.CheckResult
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &c.Name, &c.OK, &ms, &c.Detail}, func() error {
			c.Duration = fromMS(ms)
			byID[id].Checks = append(byID[id].Checks, c)
			return nil
		})
		return err
	})
	return tx.SendBatch(ctx, b).Close()
}

// MoveRelease changes a release's state from `from` to `to` and records
// reason, as a compare-and-set on `from`. A move the state machine does not
// allow is CodeInvalid; a release no longer in `from` is CodeConflict.
func (s *Store) MoveRelease(ctx context.Context, id string, from, to release.State, reason string) error {
	if !release.CanMove(from, to) {
		return release.Errorf(release.CodeInvalid, "a release cannot go from %s to %s", from, to)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE relbot_releases SET state = $3, reason = $4, updated_at = now()
		WHERE id = $1 AND state = $2`, id, string(from), string(to), reason)
	if err != nil {
		if pe := pgCode(err); pe != nil && pe.Code == pgUniqueViolation && pe.ConstraintName == openIndex {
			// No allowed move reopens a closed release today; say so
			// clearly should the state machine grow one.
			return release.Errorf(release.CodeConflict, "%s cannot become %s: its environment has another open release", id, to)
		}
		return s.internal(err, "move release %s from %s to %s", id, from, to)
	}
	if tag.RowsAffected() == 0 {
		return s.stateConflict(ctx, id, func(cur currentState) error {
			return release.Errorf(release.CodeConflict, "%s is %s, not %s", id, cur.describe(), from)
		})
	}
	return nil
}

// currentState is what a failed compare-and-set looks up for its message.
type currentState struct {
	state      string
	leaseOwner string
	leaseUntil *time.Time
}

func (c currentState) describe() string {
	if c.state == string(release.StateRunning) && c.leaseOwner != "" {
		until := ""
		if c.leaseUntil != nil {
			until = " until " + formatSince(*c.leaseUntil)
		}
		return fmt.Sprintf("%s (run by %s%s)", c.state, c.leaseOwner, until)
	}
	return c.state
}

// stateConflict reads the release's current state after a compare-and-set
// touched no row: CodeNotFound when it does not exist, conflict(cur) when it
// does.
func (s *Store) stateConflict(ctx context.Context, id string, conflict func(currentState) error) error {
	var cur currentState
	err := s.pool.QueryRow(ctx, "SELECT state, lease_owner, lease_until FROM relbot_releases WHERE id = $1", id).
		Scan(&cur.state, &cur.leaseOwner, &cur.leaseUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	if err != nil {
		return s.internal(err, "read state of release %s", id)
	}
	return conflict(cur)
}

// AddApproval records a.By's approval; false when they already approved.
// A zero a.At is the database's now.
func (s *Store) AddApproval(ctx context.Context, id string, a release.Approval) (bool, error) {
	if a.By == "" {
		return false, release.Errorf(release.CodeInvalid, "an approval needs an approver")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO relbot_release_approvals (release, approver, at)
		VALUES ($1, $2, coalesce($3, now())) ON CONFLICT DO NOTHING`, id, a.By, approvalTime(a))
	if err != nil {
		if pe := pgCode(err); pe != nil && pe.Code == pgForeignKeyViolation {
			return false, release.Errorf(release.CodeNotFound, "no release %s", id)
		}
		return false, s.internal(err, "approve release %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

// SaveSteps replaces the release's steps in one transaction. The release's
// row is locked first, so concurrent saves of one release serialise.
func (s *Store) SaveSteps(ctx context.Context, id string, steps []release.Step) error {
	return s.replaceChildren(ctx, id, "steps", "relbot_release_steps", func(tx pgx.Tx) error {
		return insertSteps(ctx, tx, id, steps)
	})
}

// SaveChecks replaces the release's check results in one transaction.
func (s *Store) SaveChecks(ctx context.Context, id string, checks []release.CheckResult) error {
	return s.replaceChildren(ctx, id, "checks", "relbot_release_checks", func(tx pgx.Tx) error {
		return insertChecks(ctx, tx, id, checks)
	})
}

func (s *Store) replaceChildren(ctx context.Context, id, what, table string, insert func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE relbot_releases SET updated_at = now() WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return release.Errorf(release.CodeNotFound, "no release %s", id)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE release = $1", id); err != nil {
			return err
		}
		return insert(tx)
	})
	var relErr *release.Error
	if errors.As(err, &relErr) {
		return err
	}
	if err != nil {
		return s.internal(err, "save %s of release %s", what, id)
	}
	return nil
}

// SetBackup records the pre-release backup of a deploy.
func (s *Store) SetBackup(ctx context.Context, id, backup string) error {
	return s.updateRelease(ctx, id, "set backup of",
		"UPDATE relbot_releases SET backup = $2, updated_at = now() WHERE id = $1", id, backup)
}

// SetSnapshot records the release snapshot a deploy's apply kept.
func (s *Store) SetSnapshot(ctx context.Context, id, snapshot string) error {
	return s.updateRelease(ctx, id, "set snapshot of",
		"UPDATE relbot_releases SET snapshot = $2, updated_at = now() WHERE id = $1", id, snapshot)
}

// SetMessage records where the release's Slack message is.
func (s *Store) SetMessage(ctx context.Context, id, channel, ts string) error {
	return s.updateRelease(ctx, id, "set message of",
		"UPDATE relbot_releases SET channel = $2, message_ts = $3, updated_at = now() WHERE id = $1", id, channel, ts)
}

// updateRelease runs a statement that must touch exactly the release id.
func (s *Store) updateRelease(ctx context.Context, id, what, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return s.internal(err, "%s release %s", what, id)
	}
	if tag.RowsAffected() == 0 {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	return nil
}

// TakeLease makes owner the runner of a release in state `from` until
// `until`, moving it to running and clearing its reason (an interrupted
// release being resumed is no longer interrupted). It is a compare-and-set
// on `from`: of two processes, one gets the release and the other
// CodeConflict naming the state and runner it found.
func (s *Store) TakeLease(ctx context.Context, id string, from release.State, owner string, until time.Time) error {
	if owner == "" || until.IsZero() {
		return release.Errorf(release.CodeInvalid, "a lease needs an owner and an end")
	}
	if !release.CanMove(from, release.StateRunning) {
		return release.Errorf(release.CodeInvalid, "a release cannot go from %s to %s", from, release.StateRunning)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE relbot_releases
		SET state = $3, reason = '', lease_owner = $4, lease_until = $5, updated_at = now()
		WHERE id = $1 AND state = $2`, id, string(from), string(release.StateRunning), owner, micro(until))
	if err != nil {
		return s.internal(err, "take lease of release %s", id)
	}
	if tag.RowsAffected() == 0 {
		return s.stateConflict(ctx, id, func(cur currentState) error {
			return release.Errorf(release.CodeConflict, "%s is %s, not %s", id, cur.describe(), from)
		})
	}
	return nil
}

// RenewLease extends owner's lease of a running release; CodeConflict when
// the release is no longer running or another owner took it.
func (s *Store) RenewLease(ctx context.Context, id, owner string, until time.Time) error {
	if owner == "" || until.IsZero() {
		return release.Errorf(release.CodeInvalid, "a lease needs an owner and an end")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE relbot_releases SET lease_until = $3, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND state = $4`, id, owner, micro(until), string(release.StateRunning))
	if err != nil {
		return s.internal(err, "renew lease of release %s", id)
	}
	if tag.RowsAffected() == 0 {
		return s.stateConflict(ctx, id, func(currentState) error {
			return release.Errorf(release.CodeConflict, "lease of %s lost", id)
		})
	}
	return nil
}

// PutHold places the hold of an environment in one statement, or returns
// release.HoldPlaced naming the hold in force. A zero h.At is the
// database's now.
func (s *Store) PutHold(ctx context.Context, h release.Hold) error {
	if h.App == "" || h.Env == "" || h.By == "" {
		return release.Errorf(release.CodeInvalid, "a hold needs an app, an environment and who placed it")
	}
	var at *time.Time
	if !h.At.IsZero() {
		t := micro(h.At)
		at = &t
	}
	// The holder may unlock between our insert and our read; try again
	// then, a few times, rather than report a conflict with nobody.
	for range 3 {
		var placed bool
		err := s.pool.QueryRow(ctx, `INSERT INTO relbot_holds (app, env, reason, by_user, at)
			VALUES ($1, $2, $3, $4, coalesce($5, now()))
			ON CONFLICT (app, env) DO NOTHING
			RETURNING true`, h.App, h.Env, h.Reason, h.By, at).Scan(&placed)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return s.internal(err, "hold %s %s", h.App, h.Env)
		}
		old, err := s.GetHold(ctx, h.App, h.Env)
		if err != nil {
			return err
		}
		if old != nil {
			return release.HoldPlaced(*old)
		}
	}
	return release.Errorf(release.CodeConflict, "%s %s is being locked and unlocked; try again", h.App, h.Env)
}

// DeleteHold lifts the hold of an environment, or returns CodeNotFound.
func (s *Store) DeleteHold(ctx context.Context, app, env string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM relbot_holds WHERE app = $1 AND env = $2", app, env)
	if err != nil {
		return s.internal(err, "lift hold of %s %s", app, env)
	}
	if tag.RowsAffected() == 0 {
		return release.Errorf(release.CodeNotFound, "%s %s is not locked", app, env)
	}
	return nil
}

const holdColumns = "app, env, reason, by_user, at"

func scanHold(row pgx.Row) (release.Hold, error) {
	var h release.Hold
	err := row.Scan(&h.App, &h.Env, &h.Reason, &h.By, &h.At)
	h.At = h.At.UTC()
	return h, err
}

// GetHold returns the hold of an environment, or nil when there is none.
func (s *Store) GetHold(ctx context.Context, app, env string) (*release.Hold, error) {
	h, err := scanHold(s.pool.QueryRow(ctx, "SELECT "+holdColumns+" FROM relbot_holds WHERE app = $1 AND env = $2", app, env))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.internal(err, "get hold of %s %s", app, env)
	}
	return &h, nil
}

// ListHolds returns every hold, ordered by app and environment.
func (s *Store) ListHolds(ctx context.Context) ([]release.Hold, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+holdColumns+" FROM relbot_holds ORDER BY app, env")
	if err != nil {
		return nil, s.internal(err, "list holds")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (release.Hold, error) { return scanHold(row) })
	if err != nil {
		return nil, s.internal(err, "list holds")
	}
	return out, nil
}
