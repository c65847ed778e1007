package release

import (
	"context"
	"io"
	"time"
)

// BackupKind says why a backup was taken.
type BackupKind string

const (
	BackupManual     BackupKind = "manual"
	BackupPreRelease BackupKind = "pre-release"
	BackupScheduled  BackupKind = "scheduled"
	// BackupImported is an archive taken in with backup import; its
	// Manifest.Origin says where it came from.
	BackupImported BackupKind = "imported"
)

// Backup is the bot's record of one archive: what it holds and where it is.
// The archive itself carries the full manifest; this is its summary.
type Backup struct {
	ID        string // crm-b12
	App       string
	Env       string
	Kind      BackupKind
	CreatedBy string
	CreatedAt time.Time
	// Artifact is the archive's name in the artifact store.
	Artifact string
	Size     int64
	SHA256   string // of the whole archive file
	Manifest BackupSummary
	// VerifiedAt is the time of the last verify that passed, if any.
	VerifiedAt *time.Time
	// CheckedAt is when its checksums were last read back and matched,
	// short of a verify's restore (a pre-release backup before its apply).
	CheckedAt *time.Time
	// ReleaseID is set on pre-release backups.
	ReleaseID string
}

// BackupSummary is what the engine reports about an archive it wrote.
type BackupSummary struct {
	ServerVersion string            `json:"server_version"`
	CoreVersion   string            `json:"core_version,omitempty"`
	Plugins       map[string]string `json:"plugins,omitempty"`
	Tables        int               `json:"tables"`
	Rows          int64             `json:"rows"`
	Files         int               `json:"files"`
	FileBytes     int64             `json:"file_bytes"`
	DataBytes     int64             `json:"data_bytes"` // uncompressed COPY bytes
	Duration      time.Duration     `json:"duration"`
	Encrypted     bool              `json:"encrypted"`
	Warnings      []string          `json:"warnings,omitempty"`
	Origin        *BackupOrigin     `json:"origin,omitempty"` // set on imported backups
}

// ArchiveHeader identifies an archive before it is written: whose it is.
type ArchiveHeader struct {
	ID        string
	App       string
	Env       string
	Kind      BackupKind
	CreatedBy string
	CreatedAt time.Time
}

// VerifyReport is the outcome of restoring an archive into a scratch
// database and comparing it with its manifest.
type VerifyReport struct {
	Tables   int
	Rows     int64
	Files    int
	Problems []string // empty when the archive is sound
	Duration time.Duration
}

// OK reports whether the verify found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// RestoreReport says what a restore did.
type RestoreReport struct {
	Tables   int
	Rows     int64
	Files    int
	Mode     string        // "fresh (parallel)" or "in place (one transaction)"
	Duration time.Duration // everything, the ANALYZE included
	// Analyzed is how many tables the ANALYZE after the load covered, in
	// AnalyzeTime; both zero when RestoreOptions.NoAnalyze skipped it.
	Analyzed    int
	AnalyzeTime time.Duration
	Warnings    []string
}

// ArchiveReader is an archive opened for random access.
type ArchiveReader interface {
	io.ReaderAt
	Size() int64
}

// BackupEngine is the work done on an environment's database and storage.
type BackupEngine interface {
	// Create writes a consistent archive of env to w.
	Create(ctx context.Context, env *Environment, h ArchiveHeader, w io.Writer) (*BackupSummary, error)
	// Check reads every byte of the archive and verifies every checksum,
	// naming the damaged member, and says whose it is and what it holds.
	// It touches no database.
	Check(ctx context.Context, a ArchiveReader, app string) (*ArchiveHeader, *BackupSummary, error)
	// Verify checks the archive, restores it into a scratch database on the
	// same server as env and compares the result with the manifest.
	Verify(ctx context.Context, a ArchiveReader, app string, env *Environment) (*VerifyReport, error)
	// Restore replaces target's database and storage with the archive's,
	// but for what opts keeps of the target's own.
	Restore(ctx context.Context, a ArchiveReader, app string, target *Environment, opts RestoreOptions) (*RestoreReport, error)
}

// RestoreOptions keep part of the target as it is.
type RestoreOptions struct {
	// KeepTables are app tables (NocoBase names, found by the engine under
	// the target's layout) whose rows stay the target's own: the backup's
	// rows of them are not loaded.
	KeepTables []string
	// KeepFiles are storage paths (patterns as in storage_exclude) whose
	// files stay the target's own: the backup's are not written.
	KeepFiles []string
	// NoAnalyze leaves the restored database without planner statistics
	// (faster; autovacuum gathers them later): by default every table is
	// analyzed before the restore is reported done.
	NoAnalyze bool
}

// keepSecrets is what a backup restored into another environment than its
// own leaves as the target had it: its variables and secrets, and the key
// files its secrets are encrypted with.
var keepSecrets = RestoreOptions{KeepTables: []string{"environmentVariables"}, KeepFiles: []string{"apps/*/aes_key.dat"}}

// restoreOptions: a backup's secrets stay in their environment, but for
// recovery, which must be able to take production's place, keys included.
func restoreOptions(b *Backup, target string) RestoreOptions {
	if b.sourceEnv() == target || target == RecoveryEnv {
		return RestoreOptions{}
	}
	return keepSecrets
}

// Artifacts stores archives and migration files.
type Artifacts interface {
	// Create starts a new artifact; it becomes visible under name only when
	// Commit succeeds.
	Create(ctx context.Context, name string) (ArtifactWriter, error)
	Open(ctx context.Context, name string) (Artifact, error)
	Remove(ctx context.Context, name string) error
}

// ArtifactWriter is an artifact being written.
type ArtifactWriter interface {
	io.Writer
	Commit() error
	Abort() error
}

// Artifact is an artifact opened for reading.
type Artifact interface {
	ArchiveReader
	io.Closer
}
