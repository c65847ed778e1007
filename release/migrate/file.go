package migrate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/archive"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgschema"
)

// A migration file is a relbot archive (no encryption: it holds
// configuration, never secrets) followed by a signature block: "RELBOTS1"
// and HMAC-SHA256(key, sha256 of the archive bytes). The signature makes a
// modified or foreign file fail before anything reads it; the sha256 of
// the whole file is its identity.
const (
	sigMagic = "RELBOTS1"
	sigSize  = len(sigMagic) + sha256.Size
	kind     = "migration"
)

// Engine implements release.MigrationEngine.
type Engine struct {
	// SigningKey signs new files and checks files before use.
	SigningKey []byte
}

var _ release.MigrationEngine = (*Engine)(nil)

// Meta is the manifest of a migration file.
type Meta struct {
	ID               string            `json:"id"`
	App              string            `json:"app"`
	SourceEnv        string            `json:"source_env"`
	Version          string            `json:"version,omitempty"`
	Note             string            `json:"note,omitempty"`
	CreatedBy        string            `json:"created_by"`
	CreatedAt        time.Time         `json:"created_at"`
	ServerVersionNum int               `json:"server_version_num"`
	CoreVersion      string            `json:"core_version,omitempty"`
	Plugins          map[string]string `json:"plugins,omitempty"`
	Rules            []appdb.TableRule `json:"rules"`
	Schema           *pgschema.Schema  `json:"schema"`
	RowCounts        map[string]int64  `json:"row_counts"`
	Tables           []TableData       `json:"tables"` // carried rows
	Variables        []string          `json:"variables"`
	// Layout is the source's NocoBase layout, when it has NocoBase's
	// tables or apps.yaml states one: a target laid out otherwise is
	// refused.
	Layout *release.Layout `json:"layout,omitempty"`
	// PresetWarnings say that the preset or builtin list did not fit the
	// source (Coverage); every listing of the file repeats them.
	PresetWarnings []string `json:"preset_warnings,omitempty"`
}

// TableData is one table whose rows the file carries.
type TableData struct {
	Key      string   `json:"key"`
	Member   string   `json:"member"`
	Columns  []string `json:"columns"`
	Rows     int64    `json:"rows"`
	Checksum string   `json:"checksum"`
}

// Create reads the source environment in one snapshot and writes a
// migration file to w.
func (e *Engine) Create(ctx context.Context, in release.MigrationInput, w io.Writer) (*release.MigrationSummary, error) {
	if len(e.SigningKey) == 0 {
		return nil, release.Errorf(release.CodeUnavailable, "migration files are signed with RELBOT_SECRET_KEY, which is not set")
	}
	for _, v := range in.Secrets {
		if len(v) >= minSecretScan && strings.Contains(in.Note, v) {
			return nil, release.Errorf(release.CodeForbidden, "migration refused: its note holds the value of a secret; describe the change without it")
		}
	}
	cfg, err := pgschema.ConnConfig(in.Source.Database)
	if err != nil {
		return nil, release.Errorf(release.CodeInvalid, "%v", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, release.Errorf(release.CodeUnavailable, "cannot connect to %s's database: %w", in.Source.Name, err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	full, err := pgschema.Inspect(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", in.Source.Name, err)
	}
	schema := withoutMarker(full)
	layout, err := nocobase.LayoutOfDB(ctx, tx, schema, in.Source)
	if err != nil {
		return nil, err
	}
	rules, err := appdb.Rules(in.App, layout.Layout, schema)
	if err != nil {
		return nil, err
	}
	core, plugins, err := nocobase.AppVersions(ctx, tx, schema, layout.Layout)
	if err != nil {
		return nil, err
	}
	meta := &Meta{
		ID: in.ID, App: in.App.Name, SourceEnv: in.Source.Name, Version: in.Version, Note: in.Note,
		CreatedBy: in.By, CreatedAt: in.CreatedAt, ServerVersionNum: schema.ServerVersionNum,
		CoreVersion: core, Plugins: plugins, Rules: rules, Schema: schema, RowCounts: map[string]int64{},
		PresetWarnings: appdb.Coverage(in.App, layout.Layout, schema, rules, in.Source.Name, layout.How),
	}
	if len(layout.SubAppSchemas) > 0 {
		meta.PresetWarnings = append(meta.PresetWarnings, in.Source.Name+": "+release.SubAppWarning(layout.SubAppSchemas))
	}
	if layout.Found || in.Source.Layout != nil {
		meta.Layout = &layout.Layout
	}
	for i := range schema.Tables {
		t := &schema.Tables[i]
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.From()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t.Key(), err)
		}
		meta.RowCounts[t.Key()] = n
	}

	hw := &hashWriter{w: w, h: sha256.New()}
	aw, err := archive.NewWriter(hw, archive.Header{
		ID: in.ID, App: in.App.Name, Env: in.Source.Name, Kind: kind, CreatedBy: in.By, CreatedAt: in.CreatedAt,
		ServerVersion: schema.ServerVersion, ServerVersionNum: schema.ServerVersionNum,
	}, "")
	if err != nil {
		return nil, err
	}
	refs := map[string]bool{}
	secrets := secretPatterns(in.Secrets)
	for _, r := range rules {
		if !r.Rule.CarriesRows() {
			continue
		}
		t := schema.Table(r.Table)
		td, err := copyTable(ctx, conn, aw, t, refs, secrets)
		if err != nil {
			return nil, err
		}
		meta.Tables = append(meta.Tables, td)
	}
	for name := range refs {
		meta.Variables = append(meta.Variables, name)
	}
	sort.Strings(meta.Variables)
	if err := aw.Finish(meta); err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, e.SigningKey)
	mac.Write(hw.h.Sum(nil))
	if _, err := w.Write(append([]byte(sigMagic), mac.Sum(nil)...)); err != nil {
		return nil, fmt.Errorf("write migration file: %w", err)
	}
	return summarize(meta, schema.Warnings), nil
}

func summarize(m *Meta, warnings []string) *release.MigrationSummary {
	s := &release.MigrationSummary{CoreVersion: m.CoreVersion, Plugins: m.Plugins, Variables: m.Variables, Layout: m.Layout,
		Warnings: append(append([]string(nil), m.PresetWarnings...), warnings...)}
	if s.Variables == nil {
		s.Variables = []string{}
	}
	for _, r := range m.Rules {
		s.Tables = append(s.Tables, release.TableSummary{Table: r.Table, Rule: r.Rule, Reason: r.Reason, Rows: m.RowCounts[r.Table], Carried: r.Rule.CarriesRows()})
	}
	return s
}

// withoutMarker drops relbot's own bookkeeping schema from a schema.
func withoutMarker(s *pgschema.Schema) *pgschema.Schema { return appdb.WithoutOwn(s) }

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	return n, err
}

var envRef = regexp.MustCompile(`\{\{\s*\$env\.([A-Za-z][A-Za-z0-9_]*)\s*\}\}`)

// copyTable streams one table into the file, collecting variable
// references and refusing rows that hold a known secret in clear.
func copyTable(ctx context.Context, conn *pgx.Conn, aw *archive.Writer, t *pgschema.Table, refs map[string]bool, secrets []secretPattern) (TableData, error) {
	mw, err := aw.Create("table/" + t.Key())
	if err != nil {
		return TableData{}, err
	}
	sc := &rowScanner{table: t, refs: refs, secrets: secrets}
	var sum appdb.RowChecksum
	if _, err := conn.PgConn().CopyTo(ctx, io.MultiWriter(mw, &sum, sc), appdb.CopyOutSQL(t)); err != nil {
		if sc.leak != nil {
			return TableData{}, sc.leak
		}
		return TableData{}, fmt.Errorf("copy %s: %w", t.Key(), err)
	}
	if sc.leak != nil {
		return TableData{}, sc.leak
	}
	m, err := mw.Close()
	if err != nil {
		return TableData{}, err
	}
	return TableData{Key: t.Key(), Member: m.Name, Columns: t.CopyColumns(), Rows: sum.Rows, Checksum: sum.Sum()}, nil
}

// File is an opened, signature-checked migration file.
type File struct {
	Meta   *Meta
	SHA256 string
	r      *archive.Reader
}

// ErrSignature is why a modified or foreign file is refused.
var ErrSignature = errors.New("signature mismatch")

// Open checks a file's signature, then reads its manifest.
func (e *Engine) Open(a release.ArchiveReader) (*File, error) {
	size := a.Size()
	if size < int64(sigSize) {
		return nil, release.Errorf(release.CodeInvalid, "not a relbot migration file")
	}
	sig := make([]byte, sigSize)
	if _, err := a.ReadAt(sig, size-int64(sigSize)); err != nil {
		return nil, fmt.Errorf("read migration file: %w", err)
	}
	if string(sig[:len(sigMagic)]) != sigMagic {
		return nil, release.Errorf(release.CodeInvalid, "not a relbot migration file (it is truncated or something else)")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(a, 0, size-int64(sigSize))); err != nil {
		return nil, fmt.Errorf("read migration file: %w", err)
	}
	if len(e.SigningKey) == 0 {
		return nil, release.Errorf(release.CodeUnavailable, "migration files are checked with RELBOT_SECRET_KEY, which is not set")
	}
	mac := hmac.New(sha256.New, e.SigningKey)
	mac.Write(h.Sum(nil))
	if !hmac.Equal(mac.Sum(nil), sig[len(sigMagic):]) {
		return nil, &release.Error{Code: release.CodeForbidden, Message: "migration file was modified or made by another relbot: its signature does not match", Err: ErrSignature}
	}
	h.Write(sig)
	r, err := archive.Open(io.NewSectionReader(a, 0, size-int64(sigSize)), size-int64(sigSize), "")
	if err != nil {
		return nil, release.Errorf(release.CodeDamaged, "migration file is unreadable: %w", err)
	}
	if r.Header().Kind != kind {
		return nil, release.Errorf(release.CodeInvalid, "file is a relbot %s archive, not a migration file", r.Header().Kind)
	}
	var m Meta
	if err := json.Unmarshal(r.Meta(), &m); err != nil || m.Schema == nil {
		return nil, release.Errorf(release.CodeDamaged, "migration file's manifest is unreadable")
	}
	return &File{Meta: &m, SHA256: hex.EncodeToString(h.Sum(nil)), r: r}, nil
}

// Rows streams the carried rows of one table.
func (f *File) Rows(td TableData) (io.Reader, error) {
	m, ok := f.r.Member(td.Member)
	if !ok {
		return nil, release.Errorf(release.CodeDamaged, "migration file lacks the rows of %s", td.Key)
	}
	return f.r.Open(m), nil
}

// Summary describes the file for listings.
func (f *File) Summary() *release.MigrationSummary { return summarize(f.Meta, f.Meta.Schema.Warnings) }
