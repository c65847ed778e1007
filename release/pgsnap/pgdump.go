package pgsnap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

// The schema of a backup is pg_dump's own: its pre-data and post-data
// sections, and the part of its data section relbot does not copy itself
// (sequence values and large objects), each taken under the backup's
// exported snapshot and stored as plain SQL members of the archive.
const (
	preDataMember  = "schema/pre-data.sql"
	dataMember     = "schema/data.sql" // sequence values and large objects
	postDataMember = "schema/post-data.sql"
)

// PgDumpInfo records where the archive holds pg_dump's sections and which
// pg_dump wrote them.
type PgDumpInfo struct {
	Version  string `json:"version"` // e.g. "15.20"
	PreData  string `json:"pre_data"`
	Data     string `json:"data"`
	PostData string `json:"post_data"`
	// NoData are tables (quoted names) besides the manifest's whose rows
	// pg_dump's data section leaves out: extensions' configuration tables.
	NoData []string `json:"no_data,omitempty"`
}

// pgDump is the pg_dump program relbot runs: in PGBin when set, else on PATH.
func (e *Engine) pgDump() string {
	if e.PGBin != "" {
		return filepath.Join(e.PGBin, "pg_dump")
	}
	return "pg_dump"
}

var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// checkPgDump refuses a pg_dump that is missing or older than the server
// (serverNum is server_version_num): an older pg_dump cannot read a newer
// server's catalogue faithfully. It returns pg_dump's version.
func (e *Engine) checkPgDump(ctx context.Context, serverNum int) (string, error) {
	bin := e.pgDump()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", release.Errorf(release.CodeUnavailable, "cannot run %s (install postgresql-client, or set RELBOT_PG_BIN to the directory holding pg_dump): %v", bin, err)
	}
	m := toolVersion.FindStringSubmatch(string(out))
	if m == nil {
		return "", release.Errorf(release.CodeUnavailable, "%s --version said %q, not a PostgreSQL version", bin, strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	version := m[1]
	if m[2] != "" {
		version += "." + m[2]
	}
	if major < 10 && m[2] != "" { // 9.6 is a major version of its own
		minor, _ := strconv.Atoi(m[2])
		major = major*100 + minor
	}
	server := serverMajor(serverNum)
	if major < server {
		return "", release.Errorf(release.CodeIncompatible, "pg_dump %s (%s) is older than the server's PostgreSQL %s: install pg_dump %s or newer, or point RELBOT_PG_BIN at it",
			version, bin, majorText(server), majorText(server))
	}
	return version, nil
}

// serverMajor is 15 for 150004 and 906 for 90624.
func serverMajor(num int) int {
	if num >= 100000 {
		return num / 10000
	}
	return num / 100
}

func majorText(m int) string {
	if m > 100 {
		return fmt.Sprintf("%d.%d", m/100, m%100)
	}
	return strconv.Itoa(m)
}

// CheckTools checks that pg_dump is there and is not older than the server
// dsn points at; serve runs it at start.
func (e *Engine) CheckTools(ctx context.Context, dsn string) error {
	conn, err := appdb.Connect(ctx, dsn, "", "")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = e.checkPgDump(ctx, serverVersion(ctx, conn))
	return err
}

// pgDumpTarget turns a database address (a URL or key=value words) into
// pg_dump's --dbname argument and environment, for database db when it is
// not empty: the password travels in PGPASSWORD, never on a command line
// other users can read.
func pgDumpTarget(dsn, db string) (string, []string, error) {
	env := os.Environ()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		if m := kvPassword.FindStringSubmatch(dsn); m != nil {
			p := m[1]
			if strings.HasPrefix(p, "'") {
				p = kvUnescape.ReplaceAllString(strings.TrimSuffix(strings.TrimPrefix(p, "'"), "'"), "$1")
			}
			env = append(env, "PGPASSWORD="+p)
			dsn = strings.Replace(dsn, m[0], "", 1)
		}
		if db != "" {
			dsn += " dbname='" + strings.ReplaceAll(strings.ReplaceAll(db, `\`, `\\`), "'", `\'`) + "'"
		}
		return dsn, env, nil
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+p)
			u.User = url.User(u.User.Username())
		}
	}
	if db != "" {
		u.Path = "/" + db
	}
	return u.String(), env, nil
}

var (
	kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)`)
	kvUnescape = regexp.MustCompile(`\\(.)`)
)

// runPgDump runs pg_dump with args against dsn (database db when not
// empty) and streams its output to w through the \restrict filter.
func (e *Engine) runPgDump(ctx context.Context, dsn, db string, w io.Writer, args ...string) error {
	target, env, err := pgDumpTarget(dsn, db)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, e.pgDump(), append(args, "--dbname", target)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run pg_dump: %w", err)
	}
	_, cerr := io.Copy(w, newUnrestrict(out))
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("pg_dump %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return cerr
}

// dumpSchema writes the schema sections of the database of the snapshot
// (or of db, for a scratch comparison, when snapshotID is empty).
func (e *Engine) dumpArgs(snapshotID, section string) []string {
	args := []string{"--section=" + section, "--lock-wait-timeout=30s"}
	if snapshotID != "" {
		args = append(args, "--snapshot="+snapshotID)
	}
	return args
}

// excludeData is the pg_dump arguments that leave out the rows of the
// tables relbot copies itself; patterns are quoted so they match exactly.
func excludeData(tables []*pgschema.Table, more []string) []string {
	out := make([]string, 0, len(tables)+len(more))
	for _, t := range tables {
		out = append(out, "--exclude-table-data="+t.QualifiedName())
	}
	for _, q := range more {
		out = append(out, "--exclude-table-data="+q)
	}
	return out
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// unrestrict drops the \restrict and \unrestrict lines pg_dump 15.14 and
// newer print around a script: their key is random, so two dumps of the
// same schema would differ, and they are psql commands, not SQL.
type unrestrict struct {
	r   *bufio.Reader
	out []byte
	err error
}

var restrictLine = regexp.MustCompile(`^\\(un)?restrict [A-Za-z0-9]+\r?\n?$`)

func newUnrestrict(r io.Reader) *unrestrict { return &unrestrict{r: bufio.NewReaderSize(r, 64*1024)} }

func (u *unrestrict) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		line, err := u.r.ReadBytes('\n')
		u.err = err
		if !restrictLine.Match(line) {
			u.out = line
		}
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}
