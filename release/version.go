package release

import (
	"context"
	"encoding/json"
	"time"
)

// MaxVersionDescription is the longest description a version takes, in
// characters: enough for release notes, short enough for a Slack message.
const MaxVersionDescription = 2000

// DefaultVersionKeep is how many versions an app keeps when apps.yaml says
// nothing (versions: {keep: N}).
const DefaultVersionKeep = 50

// DiffEntriesPerTable bounds the entries a diff lists per table; the
// counts are always complete.
const DiffEntriesPerTable = 20

// Version is a checkpoint of the source environment's configuration
// tables. Rows live in content-addressed blobs (VersionTable.Blob), so a
// table unchanged between versions is stored once.
type Version struct {
	ID          string // crm-v3
	App         string
	Env         string // the source environment it was taken from
	Description string
	CreatedBy   string
	CreatedAt   time.Time
	// Auto is set on the version saved before a restore.
	Auto        bool
	CoreVersion string
	Plugins     map[string]string
	Tables      []VersionTable
}

// Rows is the number of rows the version holds.
func (v *Version) Rows() int64 {
	var n int64
	for _, t := range v.Tables {
		n += t.Rows
	}
	return n
}

// Table finds one of the version's tables by name.
func (v *Version) Table(name string) *VersionTable {
	for i := range v.Tables {
		if v.Tables[i].Table == name {
			return &v.Tables[i]
		}
	}
	return nil
}

// VersionTable is one table of a version.
type VersionTable struct {
	Table string `json:"table"`
	// Rule is the table's effective rule when the version was taken, or
	// "version_tables" for a user table apps.yaml lists.
	Rule string `json:"rule"`
	// Blob is the sha256 (hex) of the rows as COPY text in primary key
	// order: the blob's name in the artifact store.
	Blob string `json:"blob"`
	Rows int64  `json:"rows"`
	// Checksum is the order-independent row checksum backups use, so a
	// restored table can be compared with a live one.
	Checksum string   `json:"checksum"`
	Columns  []string `json:"columns"`
	// Schema is the table's structure (a pgschema.Table as JSON): release
	// stays free of the engine's types.
	Schema json.RawMessage `json:"schema"`
}

// VersionSnapshot is what the engine read and stored for a new version.
type VersionSnapshot struct {
	CoreVersion string
	Plugins     map[string]string
	Tables      []VersionTable
	// NewBlobs and NewBytes count what this version added to the store;
	// unchanged tables add nothing.
	NewBlobs int
	NewBytes int64
}

// VersionDiff is how two states of an app's versioned tables differ.
type VersionDiff struct {
	App    string      `json:"app"`
	From   string      `json:"from"`
	To     string      `json:"to"` // a version ID, or "development (live)"
	Tables []TableDiff `json:"tables"`
	// Unchanged counts tables equal on both sides (not listed).
	Unchanged int `json:"unchanged"`
	// Changes, for a NocoBase app, tells the difference in its own terms
	// (pages, collections, workflows, roles, plugins); Against is From.
	Changes *Changes `json:"changes,omitempty"`
}

// TableDiff is one table's changes, keyed by primary key. Tables without
// one compare as multisets: only Added and Removed.
type TableDiff struct {
	Table   string      `json:"table"`
	Added   int64       `json:"added"`
	Removed int64       `json:"removed"`
	Changed int64       `json:"changed"`
	Entries []DiffEntry `json:"entries"` // the first DiffEntriesPerTable
	Note    string      `json:"note,omitempty"`
}

// DiffEntry is one row that differs.
type DiffEntry struct {
	Key     string   `json:"key"`  // "id=5", or the row itself without a primary key
	Kind    string   `json:"kind"` // added, removed or changed
	Columns []string `json:"columns,omitempty"`
}

// Diff entry kinds.
const (
	DiffAdded   = "added"
	DiffRemoved = "removed"
	DiffChanged = "changed"
)

// VersionRestoreReport says what a restore did.
type VersionRestoreReport struct {
	Tables   int           `json:"tables"`
	Rows     int64         `json:"rows"`
	Notes    []string      `json:"notes,omitempty"` // structure differences, skipped tables
	Duration time.Duration `json:"duration"`
}

// VersionBlobs stores a version's row blobs by content hash.
type VersionBlobs interface {
	Has(ctx context.Context, hash string) (bool, error)
	// Create starts a blob; a CodeConflict from it or from Commit means
	// the same content is already stored.
	Create(ctx context.Context, hash string) (ArtifactWriter, error)
	Open(ctx context.Context, hash string) (Artifact, error)
}

// VersionEngine reads, compares and restores versions of an environment's
// database.
type VersionEngine interface {
	// Snapshot reads env's versioned tables in one snapshot and stores
	// their rows.
	Snapshot(ctx context.Context, app *App, env *Environment, blobs VersionBlobs) (*VersionSnapshot, error)
	// Diff compares from with to, or with env's live database when to is nil.
	Diff(ctx context.Context, app *App, env *Environment, from, to *Version, blobs VersionBlobs) (*VersionDiff, error)
	// Restore makes env's versioned tables exactly v's, in one transaction.
	Restore(ctx context.Context, app *App, env *Environment, v *Version, blobs VersionBlobs) (*VersionRestoreReport, error)
	// Materialize makes a scratch database on env's server with env's live
	// schema and v's rows, returns an environment standing for it and a
	// function that drops it.
	Materialize(ctx context.Context, app *App, env *Environment, v *Version, blobs VersionBlobs) (*Environment, func(), error)
	// Drift compares the schemas and app versions of two environments.
	Drift(ctx context.Context, app *App, a, b *Environment) (*Drift, error)
}

// VersionStore keeps version records.
type VersionStore interface {
	SaveVersion(ctx context.Context, v *Version) error
	GetVersion(ctx context.Context, id string) (*Version, error)
	// ListVersions returns an app's versions, newest first.
	ListVersions(ctx context.Context, app string) ([]*Version, error)
	DeleteVersion(ctx context.Context, id string) error
}

// Drift is how two environments of an app differ: schema of the tables in
// migration scope, core and plugin versions, variable names.
type Drift struct {
	App      string        `json:"app"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Schema   []SchemaDrift `json:"schema"`
	Versions []string      `json:"versions"`
	// VariablesOnlyIn maps each environment to the variable names only it
	// has; values are never compared nor shown.
	VariablesOnlyIn map[string][]string `json:"variables_only_in"`
	// VariablesChecked is false when relbot does not manage variables.
	VariablesChecked bool `json:"variables_checked"`
}

// SchemaDrift lists one table's differences.
type SchemaDrift struct {
	Table       string   `json:"table"`
	Differences []string `json:"differences"`
}

// Empty reports whether the environments agree on everything compared.
func (d *Drift) Empty() bool {
	if len(d.Schema) > 0 || len(d.Versions) > 0 {
		return false
	}
	for _, names := range d.VariablesOnlyIn {
		if len(names) > 0 {
			return false
		}
	}
	return true
}
