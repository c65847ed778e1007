// Package pgsnap is relbot's backup engine: a consistent, parallel snapshot
// of an environment's PostgreSQL database and storage directory into one
// archive, and its verification and restore.
//
// A backup works like pg_dump -j: one transaction exports its snapshot and
// holds ACCESS SHARE locks; workers join that snapshot and stream COPY TO
// through the archive writer (zstd, sha256), while pg_dump itself writes
// the schema (its pre-data and post-data sections) and what its data
// section holds besides tables' rows (sequence values, large objects)
// under the same snapshot. A table above Engine.SplitBytes is read in
// ranges of ctid pages by several workers, each range its own member
// (TableInfo.Parts), so that one big table is not one worker's serial
// tail. A restore works like pg_restore: pre-data, rows, then post-data
// (indexes and keys, foreign keys, the rest); into an empty database the
// rows and each table's indexes and keys are one schedule on the workers
// (schedule.go), a build starting as soon as its table's rows are in. The
// restored database is analyzed before the restore is done (analyze.go).
//
// Archives written before pg_dump took the schema hold relbot's own model
// of it (Meta.Schema); they are restored from that model (restore_v1.go).
package pgsnap

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/pgschema"
)

// Engine implements release.BackupEngine.
type Engine struct {
	// Workers is how many connections copy tables at once (default 2).
	Workers int
	// Passphrase encrypts new archives and opens encrypted ones; empty
	// writes plain archives.
	Passphrase string
	// PGBin is the directory of pg_dump; empty finds it on PATH.
	PGBin string
	// MaintenanceWorkMem is each restore worker's maintenance_work_mem
	// (what its index and key builds may sort in), as PostgreSQL writes
	// it: "512MB". Empty: a quarter of the server's effective_cache_size
	// shared by the workers, within 64MB..1GB.
	MaintenanceWorkMem string
	// SplitBytes is the size (with TOAST) above which a backup splits a
	// table into ranges of pages read by several workers and stored as
	// several members; 0 means 64 MiB, a negative value never splits.
	SplitBytes int64
	Log        *slog.Logger

	// trace, when set (tests), hears "start NAME" and "end NAME" of each
	// task of a fresh restore's schedule.
	trace func(string)
}

var _ release.BackupEngine = (*Engine)(nil)

func (e *Engine) workers() int {
	if e.Workers > 0 {
		return e.Workers
	}
	return 2
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Meta is what pgsnap stores in the archive's manifest.
type Meta struct {
	App              string            `json:"app"`
	Env              string            `json:"env"`
	Kind             string            `json:"kind"`
	CreatedBy        string            `json:"created_by"`
	CreatedAt        time.Time         `json:"created_at"`
	ServerVersion    string            `json:"server_version"`
	ServerVersionNum int               `json:"server_version_num"`
	CoreVersion      string            `json:"core_version,omitempty"`
	Plugins          map[string]string `json:"plugins,omitempty"`
	Layout           *release.Layout   `json:"layout,omitempty"` // NocoBase's; nil without its tables
	// Encoding is the source database's; a target of binary tables must
	// have the same.
	Encoding string `json:"encoding,omitempty"`
	// PgDump names the members holding pg_dump's sections.
	PgDump *PgDumpInfo `json:"pg_dump,omitempty"`
	// Schema is relbot's own model of the schema, in archives written
	// before pg_dump took it.
	Schema *pgschema.Schema `json:"schema,omitempty"`
	Tables []TableInfo      `json:"tables"`
	// HasStorage is false when the environment has no storage directory:
	// a restore then leaves the target's files alone.
	HasStorage bool       `json:"has_storage"`
	Files      []FileInfo `json:"files"`
	Warnings   []string   `json:"warnings,omitempty"`
	Workers    int        `json:"workers"`
	Duration   Duration   `json:"duration"`
}

// TableInfo records one table's rows in the archive.
type TableInfo struct {
	Key     string   `json:"key"`
	Schema  string   `json:"schema,omitempty"` // empty in archives of the old format: see Meta.Schema
	Name    string   `json:"name,omitempty"`
	Member  string   `json:"member"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
	Bytes   int64    `json:"bytes"`
	// Checksum is the RowChecksum of the rows; the archive member's own
	// sha256 guards the bytes.
	Checksum string `json:"checksum"`
	// Format is "binary" for rows stored in COPY's binary format (their
	// Checksum is over binary tuples), "" for COPY text (binary.go).
	Format string `json:"format,omitempty"`
	// Parts is set when the table was split into ranges read by several
	// workers; then Member is "" and Rows, Bytes and Checksum stay the
	// table's totals (Checksum is the parts' RowChecksums summed).
	Parts []TablePart `json:"parts,omitempty"`
}

// TablePart records one range of a split table: its own member, rows and
// RowChecksum.
type TablePart struct {
	Member   string `json:"member"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	Checksum string `json:"checksum"`
	// FromPage and ToPage are the ctid pages [FromPage, ToPage) the part
	// holds; ToPage 0 means to the table's end (the last part is open so
	// that pages added after the size was read are not missed).
	FromPage int64 `json:"from_page"`
	ToPage   int64 `json:"to_page,omitempty"`
}

// partCount is how many members hold ti's rows: one for an unsplit table
// (old archives included).
func (ti TableInfo) partCount() int {
	if len(ti.Parts) > 0 {
		return len(ti.Parts)
	}
	return 1
}

// part is entry i of the members holding ti's rows.
func (ti TableInfo) part(i int) TablePart {
	if len(ti.Parts) > 0 {
		return ti.Parts[i]
	}
	return TablePart{Member: ti.Member, Rows: ti.Rows, Bytes: ti.Bytes, Checksum: ti.Checksum}
}

// FileInfo records one entry of the storage directory.
type FileInfo struct {
	Path    string    `json:"path"` // slash-separated, relative to the storage directory
	Dir     bool      `json:"dir,omitempty"`
	Mode    uint32    `json:"mode"`
	ModTime time.Time `json:"mtime"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256,omitempty"`
	Member  string    `json:"member,omitempty"`
}

// Duration marshals as a readable string.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// openArchive opens and identifies an archive, refusing another app's.
// migrationKind is the header kind of migration files (release/migrate),
// relbot archives too, which a backup must not be mistaken for.
const migrationKind = "migration"

func (e *Engine) openArchive(a release.ArchiveReader, app string) (*archive.Reader, *Meta, error) {
	if h, ok := archive.PeekHeader(a, a.Size()); ok && h.Kind == migrationKind {
		return nil, nil, release.Errorf(release.CodeInvalid, "file is relbot migration file %s, not a backup", h.ID)
	}
	ar, err := archive.Open(a, a.Size(), e.Passphrase)
	if err != nil {
		return nil, nil, archiveError(err)
	}
	h := ar.Header()
	if app != "" && h.App != app {
		return nil, nil, release.Errorf(release.CodeInvalid, "backup %s is of app %s, not %s", h.ID, h.App, app)
	}
	var m Meta
	if err := json.Unmarshal(ar.Meta(), &m); err != nil || (m.Schema == nil && m.PgDump == nil) {
		return nil, nil, release.Errorf(release.CodeDamaged, "backup archive's manifest is unreadable")
	}
	if err := checkTables(ar, &m); err != nil {
		return nil, nil, err
	}
	return ar, &m, nil
}

// checkTables refuses a manifest naming rows the archive does not hold, or
// a split table whose parts do not add up to its row count, before
// anything reads them.
func checkTables(ar *archive.Reader, m *Meta) error {
	for _, ti := range m.Tables {
		var rows int64
		for i := range ti.partCount() {
			p := ti.part(i)
			if _, ok := ar.Member(p.Member); !ok {
				return release.Errorf(release.CodeDamaged, "backup archive lacks the rows of %s", partLabel(ti, i))
			}
			rows += p.Rows
		}
		if rows != ti.Rows {
			return release.Errorf(release.CodeDamaged, "backup archive's manifest is inconsistent: the %d parts of table %s hold %d rows, the table %d", len(ti.Parts), ti.Key, rows, ti.Rows)
		}
	}
	return nil
}

// archiveError turns the archive package's errors into what users read.
func archiveError(err error) error {
	var d *archive.DamagedError
	switch {
	case errors.As(err, &d):
		return &release.Error{Code: release.CodeDamaged, Message: fmt.Sprintf("backup archive is damaged in %s: %s", memberLabel(d.Member), d.Detail), Err: err}
	case errors.Is(err, archive.ErrWrongKey):
		return &release.Error{Code: release.CodeForbidden, Message: "backup archive was encrypted with a different key: RELBOT_BACKUP_KEY does not match the one it was written with", Err: err}
	case errors.Is(err, archive.ErrNeedKey):
		return &release.Error{Code: release.CodeForbidden, Message: "backup archive is encrypted: set RELBOT_BACKUP_KEY to the key it was written with", Err: err}
	case errors.Is(err, archive.ErrTruncated):
		return &release.Error{Code: release.CodeDamaged, Message: "backup archive is truncated: its end is missing", Err: err}
	case errors.Is(err, archive.ErrNotArchive):
		return &release.Error{Code: release.CodeInvalid, Message: "file is not a relbot backup archive", Err: err}
	case errors.Is(err, archive.ErrNewer):
		return &release.Error{Code: release.CodeIncompatible, Message: "backup archive was written by a newer relbot; upgrade relbot to read it", Err: err}
	}
	return err
}

// memberLabel names an archive member the way users think of it.
func memberLabel(member string) string {
	switch {
	case strings.HasPrefix(member, tablePartPrefix):
		rest := strings.TrimPrefix(member, tablePartPrefix)
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			return fmt.Sprintf("table %s part %s (member %s)", rest[:i], strings.Replace(rest[i+1:], "-of-", " of ", 1), member)
		}
		return "table " + rest
	case strings.HasPrefix(member, tablePrefix):
		return "table " + strings.TrimPrefix(member, tablePrefix)
	case strings.HasPrefix(member, filePrefix):
		return "storage file " + strings.TrimPrefix(member, filePrefix)
	case strings.HasPrefix(member, "schema/"):
		return "the schema (pg_dump's " + strings.TrimSuffix(strings.TrimPrefix(member, "schema/"), ".sql") + " section)"
	}
	return member
}

const (
	tablePrefix     = "table/"
	tablePartPrefix = "table-part/" // a range of a split table: see partMember
	filePrefix      = "file/"
)

// Excluded reports whether a storage path (slash-separated, relative) is
// left out by patterns: "logs/**" excludes a directory and all below it;
// other patterns follow path.Match.
func Excluded(rel string, patterns []string) bool {
	for _, p := range patterns {
		if dir, ok := strings.CutSuffix(p, "/**"); ok {
			if rel == dir || strings.HasPrefix(rel, dir+"/") {
				return true
			}
			continue
		}
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
	}
	return false
}

func majorOf(versionNum int) int { return versionNum / 10000 }
