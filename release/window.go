package release

import (
	"context"
	"time"
)

// A release's maintenance window holds only what the migration changes:
// the engine prepares the apply ahead (shadow tables loaded while users
// work), swaps it in inside the window, and keeps a release snapshot of
// exactly what it changed, from which a targeted rollback puts it back.

// WindowEngine is the part of a MigrationEngine that keeps the window
// independent of the size of the business data.
type WindowEngine interface {
	// Prepare does ahead, without changing what users see, what an apply
	// of file to target can: the file's rows loaded into shadow tables
	// built from the source's definitions, with their keys and indexes,
	// and the plan computed and checked. Preparing again under the same
	// key replaces the earlier preparation.
	Prepare(ctx context.Context, file ArchiveReader, app *App, target *Environment, opts PrepareOptions) (*Preparation, error)
	// Unprepare drops what Prepare left under key (after an apply that
	// used it, or a release that will not run); none left is no error.
	Unprepare(ctx context.Context, app *App, target *Environment, key string) error
	// Revert puts back, in one transaction, exactly what the apply that
	// kept the snapshot changed (definitions and rows of those tables);
	// rows written since to tables it did not change stay. It refuses
	// when a later apply changed the target since, naming it.
	Revert(ctx context.Context, app *App, target *Environment, snapshot string, opts RevertOptions) (*ApplyResult, error)
	// Reverted reads, in the target, whether a revert of snapshot
	// committed (the resume probe of a targeted rollback).
	Reverted(ctx context.Context, app *App, target *Environment, snapshot string) (bool, error)
	// Snapshots lists the release snapshots target keeps, newest first.
	Snapshots(ctx context.Context, app *App, target *Environment) ([]SnapshotInfo, error)
	// DropSnapshot removes one; none of that name is no error.
	DropSnapshot(ctx context.Context, app *App, target *Environment, snapshot string) error
}

// PrepareOptions are the caller's choices for a preparation; they must be
// those of the apply that uses it.
type PrepareOptions struct {
	// Key names the preparation (the release's ID).
	Key              string
	AllowDestructive bool
	KnownVariables   map[string]bool
}

// Preparation says what Prepare did.
type Preparation struct {
	Key string `json:"key"`
	// Tables are the target tables whose new contents are ready to swap in.
	Tables []string `json:"tables"`
	// InWindow are the tables the apply will still load inside the
	// window, each with why (children that keep their rows, ...).
	InWindow []string       `json:"in_window,omitempty"`
	Steps    []ExecutedStep `json:"steps"`
	Duration time.Duration  `json:"duration"`
}

// RevertOptions are the caller's choices for a targeted rollback.
type RevertOptions struct {
	By string
	// BeforeCommit: as ApplyOptions.BeforeCommit.
	BeforeCommit func()
}

// SnapshotInfo describes one release snapshot kept in a target.
type SnapshotInfo struct {
	Name      string    `json:"name"`
	Migration string    `json:"migration"`
	TakenAt   time.Time `json:"taken_at"`
	Tables    int       `json:"tables"`
	Bytes     int64     `json:"size_bytes"`
	Reverted  bool      `json:"reverted"`
}
