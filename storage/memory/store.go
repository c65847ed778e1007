package memory

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relbot/relbot/release"
)

var (
	_ release.Store          = (*Store)(nil)
	_ release.ReleaseStore   = (*Store)(nil)
	_ release.MigrationStore = (*Store)(nil)
	_ release.VersionStore   = (*Store)(nil)
	_ release.VariableStore  = (*Store)(nil)
)

// Store keeps the bot's records in memory, with the semantics of
// storage/postgres (storage/internal/storetest holds both to them): the
// same error codes and messages, ID counters, orderings, compare-and-set
// moves and leases. Times are kept at PostgreSQL's microsecond precision in
// UTC, and records are copied in and out, so a caller never shares memory
// with the store. It is for tests and for trying relbot without a database;
// nothing survives the process.
type Store struct {
	mu         sync.Mutex
	now        func() time.Time
	ids        map[[2]string]int64 // (app, kind) -> last number given
	backups    map[string]*release.Backup
	releases   map[string]*release.Release
	holds      map[[2]string]release.Hold
	migrations map[string]*release.Migration
	runs       []*release.MigrationRun // in insertion order, as the table's identity
	versions   map[string]*release.Version
	variables  map[[3]string]release.StoredVariable
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		now:        time.Now,
		ids:        map[[2]string]int64{},
		backups:    map[string]*release.Backup{},
		releases:   map[string]*release.Release{},
		holds:      map[[2]string]release.Hold{},
		migrations: map[string]*release.Migration{},
		versions:   map[string]*release.Version{},
		variables:  map[[3]string]release.StoredVariable{},
	}
}

// micro is what PostgreSQL keeps of t: microseconds, read back in UTC.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

func microPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := micro(*t)
	return &v
}

// stamp is the database's now().
func (s *Store) stamp() time.Time { return micro(s.now()) }

// viaJSON copies v through its JSON encoding, as storage/postgres keeps
// such fields in jsonb columns: what JSON drops (omitempty, empty maps) is
// dropped here too.
func viaJSON[T any](v T) (T, error) {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(b, &out)
	return out, err
}

// getCopy returns a copy of the record id of a kind, or CodeNotFound.
func getCopy[T any](recs map[string]*T, kind, id string, copyOf func(*T) (*T, error)) (*T, error) {
	r, ok := recs[id]
	if !ok {
		return nil, release.Errorf(release.CodeNotFound, "no %s %s", kind, id)
	}
	return copyOf(r)
}

// listCopies returns copies of the records keep selects, sorted by order;
// never nil, as storage/postgres gives an empty list.
func listCopies[T any](recs map[string]*T, keep func(*T) bool, copyOf func(*T) (*T, error), order func(a, b *T) int) ([]*T, error) {
	out := []*T{}
	for _, r := range recs {
		if keep(r) {
			c, err := copyOf(r)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, order)
	return out, nil
}

// saveNew records c under id; an ID already saved is refused (such a
// record is never replaced).
func saveNew[T any](recs map[string]*T, kind, id string, c *T) error {
	if _, ok := recs[id]; ok {
		return fmt.Errorf("save %s %s: a %s with this ID exists", kind, id, kind)
	}
	recs[id] = c
	return nil
}

// NextID allocates the next ID of kind for app.
func (s *Store) NextID(ctx context.Context, app, kind string) (string, error) {
	if app == "" || kind == "" {
		return "", release.Errorf(release.CodeInvalid, "an ID needs an app and a kind")
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{app, kind}
	s.ids[k]++
	return fmt.Sprintf("%s-%s%d", app, kind, s.ids[k]), nil
}

// --- backups ---

// SaveBackup inserts the backup, or replaces the record with the same ID.
func (s *Store) SaveBackup(ctx context.Context, b *release.Backup) error {
	if b == nil || b.ID == "" || b.App == "" || b.Env == "" || b.Kind == "" {
		return release.Errorf(release.CodeInvalid, "a backup needs an ID, an app, an environment and a kind")
	}
	if b.CreatedAt.IsZero() {
		return release.Errorf(release.CodeInvalid, "backup %s has no creation time", b.ID)
	}
	c, err := copyBackup(b)
	if err != nil {
		return fmt.Errorf("backup %s: encode manifest: %w", b.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backups[b.ID] = c
	return nil
}

func copyBackup(b *release.Backup) (*release.Backup, error) {
	c := *b
	var err error
	if c.Manifest, err = viaJSON(b.Manifest); err != nil {
		return nil, err
	}
	c.CreatedAt, c.VerifiedAt, c.CheckedAt = micro(b.CreatedAt), microPtr(b.VerifiedAt), microPtr(b.CheckedAt)
	return &c, nil
}

// GetBackup returns one backup, or CodeNotFound.
func (s *Store) GetBackup(ctx context.Context, id string) (*release.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return getCopy(s.backups, "backup", id, copyBackup)
}

// ListBackups returns an environment's backups, newest first.
func (s *Store) ListBackups(ctx context.Context, app, env string) ([]*release.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listCopies(s.backups, func(b *release.Backup) bool { return b.App == app && b.Env == env }, copyBackup,
		func(a, b *release.Backup) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
		})
}

// DeleteBackup removes the record, or returns CodeNotFound.
func (s *Store) DeleteBackup(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.backups[id]; !ok {
		return release.Errorf(release.CodeNotFound, "no backup %s", id)
	}
	delete(s.backups, id)
	return nil
}

// MarkBackupVerified records a verify that passed at at.
func (s *Store) MarkBackupVerified(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.backups[id]
	if !ok {
		return release.Errorf(release.CodeNotFound, "no backup %s", id)
	}
	b.VerifiedAt = microPtr(&at)
	return nil
}

// --- releases ---

// copyRelease is r as the database gives it back: its own slices, times
// at microsecond precision in UTC, approvals ordered by time then approver.
func copyRelease(r *release.Release) *release.Release {
	c := *r
	c.RequestedAt, c.UpdatedAt = micro(r.RequestedAt), micro(r.UpdatedAt)
	c.At, c.LeaseUntil = microPtr(r.At), microPtr(r.LeaseUntil)
	c.Approvals = nil
	for _, a := range r.Approvals {
		c.Approvals = append(c.Approvals, release.Approval{By: a.By, At: micro(a.At)})
	}
	slices.SortStableFunc(c.Approvals, func(a, b release.Approval) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.By, b.By))
	})
	c.Steps = copySteps(r.Steps)
	c.Checks = nil
	if len(r.Checks) > 0 {
		c.Checks = slices.Clone(r.Checks)
	}
	if r.Changes != nil {
		ch := *r.Changes
		ch.Items, ch.Partial = slices.Clone(ch.Items), slices.Clone(ch.Partial)
		c.Changes = &ch
	}
	return &c
}

func copySteps(steps []release.Step) []release.Step {
	var out []release.Step
	for _, st := range steps {
		st.Started, st.Ended = microPtr(st.Started), microPtr(st.Ended)
		out = append(out, st)
	}
	return out
}

// openRelease returns the open release of app's env other than id, if any.
// Called with s.mu held.
func (s *Store) openRelease(app, env, id string) *release.Release {
	var found *release.Release
	for _, o := range s.releases {
		if o.ID != id && o.App == app && o.Env == env && o.State.Open() {
			if found == nil || o.ID < found.ID {
				found = o
			}
		}
	}
	return found
}

// CreateRelease inserts r with its approvals, steps and checks and sets
// r.UpdatedAt. An environment with an open release refuses another with
// CodeConflict naming it.
func (s *Store) CreateRelease(ctx context.Context, r *release.Release) error {
	if r == nil || r.ID == "" || r.App == "" || r.Env == "" || r.Kind == "" || r.State == "" || r.RequestedBy == "" {
		return release.Errorf(release.CodeInvalid, "a release needs an ID, an app, an environment, a kind, a state and a requester")
	}
	if r.RequestedAt.IsZero() {
		return release.Errorf(release.CodeInvalid, "release %s has no request time", r.ID)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.releases[r.ID]; ok {
		return release.Errorf(release.CodeConflict, "release %s already exists", r.ID)
	}
	if r.State.Open() {
		if o := s.openRelease(r.App, r.Env, r.ID); o != nil {
			return release.Errorf(release.CodeConflict, "%s already has an open release %s (%s): approve, cancel or finish it first",
				r.Env, o.ID, o.State)
		}
	}
	now := s.stamp()
	c := copyRelease(r)
	// One approval per person (the first given), a zero time being now.
	c.Approvals = nil
	seen := map[string]bool{}
	for _, a := range r.Approvals {
		if seen[a.By] {
			continue
		}
		seen[a.By] = true
		if a.At.IsZero() {
			a.At = now
		}
		c.Approvals = append(c.Approvals, a)
	}
	c.UpdatedAt = now
	s.releases[r.ID] = c
	r.UpdatedAt = now
	return nil
}

// GetRelease returns a release with its approvals, steps and checks, or
// CodeNotFound.
func (s *Store) GetRelease(ctx context.Context, id string) (*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return nil, release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	return copyRelease(r), nil
}

// ListReleases returns an app's releases (of env, if not empty), newest
// first.
func (s *Store) ListReleases(ctx context.Context, app, env string) ([]*release.Release, error) {
	return s.listReleases(func(r *release.Release) bool { return r.App == app && (env == "" || r.Env == env) },
		func(a, b *release.Release) int {
			return cmp.Or(b.RequestedAt.Compare(a.RequestedAt), strings.Compare(b.ID, a.ID))
		})
}

// ExpiredLeases lists running releases whose lease ran out before now,
// oldest lease first.
func (s *Store) ExpiredLeases(ctx context.Context, now time.Time) ([]*release.Release, error) {
	now = micro(now)
	return s.listReleases(func(r *release.Release) bool {
		return r.State == release.StateRunning && r.LeaseUntil != nil && r.LeaseUntil.Before(now)
	}, func(a, b *release.Release) int {
		return cmp.Or(a.LeaseUntil.Compare(*b.LeaseUntil), strings.Compare(a.ID, b.ID))
	})
}

func (s *Store) listReleases(keep func(*release.Release) bool, order func(a, b *release.Release) int) ([]*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*release.Release{}
	for _, r := range s.releases {
		if keep(r) {
			out = append(out, copyRelease(r))
		}
	}
	slices.SortFunc(out, order)
	return out, nil
}

// describe is the state a failed compare-and-set reports.
func describe(r *release.Release) string {
	if r.State == release.StateRunning && r.LeaseOwner != "" {
		until := ""
		if r.LeaseUntil != nil {
			until = " until " + r.LeaseUntil.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return fmt.Sprintf("%s (run by %s%s)", r.State, r.LeaseOwner, until)
	}
	return string(r.State)
}

// MoveRelease changes a release's state from `from` to `to` and records
// reason, as a compare-and-set on `from`.
func (s *Store) MoveRelease(ctx context.Context, id string, from, to release.State, reason string) error {
	if !release.CanMove(from, to) {
		return release.Errorf(release.CodeInvalid, "a release cannot go from %s to %s", from, to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	if r.State != from {
		return release.Errorf(release.CodeConflict, "%s is %s, not %s", id, describe(r), from)
	}
	if to.Open() && !from.Open() && s.openRelease(r.App, r.Env, id) != nil {
		return release.Errorf(release.CodeConflict, "%s cannot become %s: its environment has another open release", id, to)
	}
	r.State, r.Reason, r.UpdatedAt = to, reason, s.stamp()
	return nil
}

// AddApproval records a.By's approval; false when they already approved.
// A zero a.At is now.
func (s *Store) AddApproval(ctx context.Context, id string, a release.Approval) (bool, error) {
	if a.By == "" {
		return false, release.Errorf(release.CodeInvalid, "an approval needs an approver")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return false, release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	for _, o := range r.Approvals {
		if o.By == a.By {
			return false, nil
		}
	}
	if a.At.IsZero() {
		a.At = s.stamp()
	}
	r.Approvals = append(r.Approvals, release.Approval{By: a.By, At: micro(a.At)})
	return true, nil
}

// update runs fn on the release id under the lock, stamping UpdatedAt, or
// returns CodeNotFound.
func (s *Store) update(id string, fn func(r *release.Release)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	fn(r)
	r.UpdatedAt = s.stamp()
	return nil
}

// SaveSteps replaces the release's steps.
func (s *Store) SaveSteps(ctx context.Context, id string, steps []release.Step) error {
	return s.update(id, func(r *release.Release) { r.Steps = copySteps(steps) })
}

// SaveChecks replaces the release's check results.
func (s *Store) SaveChecks(ctx context.Context, id string, checks []release.CheckResult) error {
	return s.update(id, func(r *release.Release) {
		r.Checks = nil
		if len(checks) > 0 {
			r.Checks = slices.Clone(checks)
		}
	})
}

// SetBackup records the pre-release backup of a deploy.
func (s *Store) SetBackup(ctx context.Context, id, backup string) error {
	return s.update(id, func(r *release.Release) { r.Backup = backup })
}

// SetSnapshot records the release snapshot a deploy's apply kept.
func (s *Store) SetSnapshot(ctx context.Context, id, snapshot string) error {
	return s.update(id, func(r *release.Release) { r.Snapshot = snapshot })
}

// SetMessage records where the release's Slack message is.
func (s *Store) SetMessage(ctx context.Context, id, channel, ts string) error {
	return s.update(id, func(r *release.Release) { r.Channel, r.MessageTS = channel, ts })
}

// TakeLease makes owner the runner of a release in state `from` until
// `until`, moving it to running and clearing its reason.
func (s *Store) TakeLease(ctx context.Context, id string, from release.State, owner string, until time.Time) error {
	if owner == "" || until.IsZero() {
		return release.Errorf(release.CodeInvalid, "a lease needs an owner and an end")
	}
	if !release.CanMove(from, release.StateRunning) {
		return release.Errorf(release.CodeInvalid, "a release cannot go from %s to %s", from, release.StateRunning)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	if r.State != from {
		return release.Errorf(release.CodeConflict, "%s is %s, not %s", id, describe(r), from)
	}
	r.State, r.Reason, r.LeaseOwner, r.LeaseUntil, r.UpdatedAt = release.StateRunning, "", owner, microPtr(&until), s.stamp()
	return nil
}

// RenewLease extends owner's lease of a running release.
func (s *Store) RenewLease(ctx context.Context, id, owner string, until time.Time) error {
	if owner == "" || until.IsZero() {
		return release.Errorf(release.CodeInvalid, "a lease needs an owner and an end")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.releases[id]
	if !ok {
		return release.Errorf(release.CodeNotFound, "no release %s", id)
	}
	if r.State != release.StateRunning || r.LeaseOwner != owner {
		return release.Errorf(release.CodeConflict, "lease of %s lost", id)
	}
	r.LeaseUntil, r.UpdatedAt = microPtr(&until), s.stamp()
	return nil
}

// --- holds ---

// PutHold places the hold of an environment, or returns
// release.HoldPlaced naming the hold in force. A zero h.At is now.
func (s *Store) PutHold(ctx context.Context, h release.Hold) error {
	if h.App == "" || h.Env == "" || h.By == "" {
		return release.Errorf(release.CodeInvalid, "a hold needs an app, an environment and who placed it")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{h.App, h.Env}
	if old, ok := s.holds[k]; ok {
		return release.HoldPlaced(old)
	}
	if h.At.IsZero() {
		h.At = s.stamp()
	}
	h.At = micro(h.At)
	s.holds[k] = h
	return nil
}

// DeleteHold lifts the hold of an environment, or returns CodeNotFound.
func (s *Store) DeleteHold(ctx context.Context, app, env string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{app, env}
	if _, ok := s.holds[k]; !ok {
		return release.Errorf(release.CodeNotFound, "%s %s is not locked", app, env)
	}
	delete(s.holds, k)
	return nil
}

// GetHold returns the hold of an environment, or nil when there is none.
func (s *Store) GetHold(ctx context.Context, app, env string) (*release.Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.holds[[2]string{app, env}]
	if !ok {
		return nil, nil
	}
	return &h, nil
}

// ListHolds returns every hold, ordered by app and environment.
func (s *Store) ListHolds(ctx context.Context) ([]release.Hold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []release.Hold{}
	for _, h := range s.holds {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b release.Hold) int {
		return cmp.Or(strings.Compare(a.App, b.App), strings.Compare(a.Env, b.Env))
	})
	return out, nil
}

// --- migrations ---

func copyMigration(m *release.Migration) (*release.Migration, error) {
	c := *m
	var err error
	if c.Summary, err = viaJSON(m.Summary); err != nil {
		return nil, err
	}
	c.CreatedAt = micro(m.CreatedAt)
	return &c, nil
}

// SaveMigration records a migration file; an ID already saved is refused
// (the record is never replaced).
func (s *Store) SaveMigration(ctx context.Context, m *release.Migration) error {
	c, err := copyMigration(m)
	if err != nil {
		return fmt.Errorf("encode migration %s: %w", m.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return saveNew(s.migrations, "migration", m.ID, c)
}

// GetMigration finds a migration by ID, or returns CodeNotFound.
func (s *Store) GetMigration(ctx context.Context, id string) (*release.Migration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return getCopy(s.migrations, "migration", id, copyMigration)
}

// ListMigrations returns an app's migrations, newest first.
func (s *Store) ListMigrations(ctx context.Context, app string) ([]*release.Migration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listCopies(s.migrations, func(m *release.Migration) bool { return m.App == app }, copyMigration,
		func(a, b *release.Migration) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
		})
}

func copyRun(r *release.MigrationRun) (*release.MigrationRun, error) {
	c := *r
	c.StartedAt = micro(r.StartedAt)
	if r.Result != nil {
		res, err := viaJSON(*r.Result)
		if err != nil {
			return nil, err
		}
		c.Result = &res
	}
	return &c, nil
}

// SaveMigrationRun keeps the execution log of one apply; the migration
// must exist.
func (s *Store) SaveMigrationRun(ctx context.Context, r *release.MigrationRun) error {
	c, err := copyRun(r)
	if err != nil {
		return fmt.Errorf("encode run of %s: %w", r.Migration, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.migrations[r.Migration]; !ok {
		return fmt.Errorf("save run of %s: no such migration", r.Migration)
	}
	s.runs = append(s.runs, c)
	return nil
}

// ListMigrationRuns returns the applies of a migration, oldest first.
func (s *Store) ListMigrationRuns(ctx context.Context, id string) ([]*release.MigrationRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*release.MigrationRun{}
	for _, r := range s.runs {
		if r.Migration == id {
			c, err := copyRun(r)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	// Stable: runs started at the same time stay in the order saved.
	slices.SortStableFunc(out, func(a, b *release.MigrationRun) int { return a.StartedAt.Compare(b.StartedAt) })
	return out, nil
}

// --- versions ---

func copyVersion(v *release.Version) (*release.Version, error) {
	c := *v
	var err error
	if c.Plugins, err = viaJSON(v.Plugins); err != nil {
		return nil, err
	}
	if c.Tables, err = viaJSON(v.Tables); err != nil {
		return nil, err
	}
	// jsonb would reformat a table's schema, which JSON compacts: keep the
	// bytes as given (the suite writes them in jsonb's own layout).
	for i, t := range v.Tables {
		if t.Schema != nil {
			c.Tables[i].Schema = slices.Clone(t.Schema)
		}
	}
	c.CreatedAt = micro(v.CreatedAt)
	return &c, nil
}

// SaveVersion records a version; an ID already saved is refused.
func (s *Store) SaveVersion(ctx context.Context, v *release.Version) error {
	c, err := copyVersion(v)
	if err != nil {
		return fmt.Errorf("encode version %s: %w", v.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return saveNew(s.versions, "version", v.ID, c)
}

// GetVersion finds a version by ID, or returns CodeNotFound.
func (s *Store) GetVersion(ctx context.Context, id string) (*release.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return getCopy(s.versions, "version", id, copyVersion)
}

// ListVersions returns an app's versions, newest first; of two made at
// the same time, the higher number first (crm-v10 before crm-v9).
func (s *Store) ListVersions(ctx context.Context, app string) ([]*release.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listCopies(s.versions, func(v *release.Version) bool { return v.App == app }, copyVersion,
		func(a, b *release.Version) int {
			return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(len(b.ID), len(a.ID)), strings.Compare(b.ID, a.ID))
		})
}

// DeleteVersion removes a version's record, or returns CodeNotFound.
func (s *Store) DeleteVersion(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.versions[id]; !ok {
		return release.Errorf(release.CodeNotFound, "no version %s", id)
	}
	delete(s.versions, id)
	return nil
}

// --- variables ---

// PutVariable inserts or replaces one variable or secret. A plain variable
// keeps only its value, a secret only its ciphertext and key id.
func (s *Store) PutVariable(ctx context.Context, v release.StoredVariable) error {
	if v.App == "" || v.Env == "" || v.Name == "" {
		return release.Errorf(release.CodeInvalid, "a variable needs an app, an environment and a name")
	}
	if v.Secret && (len(v.Ciphertext) == 0 || v.KeyID == "") {
		return release.Errorf(release.CodeInvalid, "secret %s has no ciphertext or key id", v.Name)
	}
	if v.Secret {
		v.Value, v.Ciphertext = "", slices.Clone(v.Ciphertext)
	} else {
		v.Ciphertext, v.KeyID = nil, ""
	}
	v.UpdatedAt = micro(v.UpdatedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.variables[[3]string{v.App, v.Env, v.Name}] = v
	return nil
}

// DeleteVariable removes one variable, or returns CodeNotFound.
func (s *Store) DeleteVariable(ctx context.Context, app, env, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [3]string{app, env, name}
	if _, ok := s.variables[k]; !ok {
		return release.Errorf(release.CodeNotFound, "%s %s has no variable %s", app, env, name)
	}
	delete(s.variables, k)
	return nil
}

// ListVariables returns an environment's variables ordered by name.
func (s *Store) ListVariables(ctx context.Context, app, env string) ([]release.StoredVariable, error) {
	return s.listVariables(func(v release.StoredVariable) bool { return v.App == app && v.Env == env }), nil
}

// AllSecrets returns every secret, ordered by app, environment and name.
func (s *Store) AllSecrets(ctx context.Context) ([]release.StoredVariable, error) {
	return s.listVariables(func(v release.StoredVariable) bool { return v.Secret }), nil
}

func (s *Store) listVariables(keep func(release.StoredVariable) bool) []release.StoredVariable {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []release.StoredVariable{}
	for _, v := range s.variables {
		if keep(v) {
			v.Ciphertext = slices.Clone(v.Ciphertext)
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b release.StoredVariable) int {
		return cmp.Or(strings.Compare(a.App, b.App), strings.Compare(a.Env, b.Env), strings.Compare(a.Name, b.Name))
	})
	return out
}
