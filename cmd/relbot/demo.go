package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
	"github.com/relbot/relbot/release/pgsnap"
)

// defaultAdminDSN is the local PostgreSQL of a developer machine: trust
// authentication as postgres. RELBOT_DEMO_PG overrides it.
const defaultAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// demoMaxLines keeps long replies (a plan's statements) readable.
const demoMaxLines = 60

// demoBackupKey encrypts the demo's archives, to show encryption at rest.
const demoBackupKey = "relbot demo backup passphrase"

// runDemo plays the sample app's story on the local PostgreSQL and prints it
// as a conversation. It exits 0 only if every step did what it should.
func runDemo(ctx context.Context, args []string, io Stdio, getenv func(string) string) int {
	fs, keep := demoFlags()
	if !parseFlags("demo", fs, args, io) {
		return exitUsage
	}
	admin := getenv("RELBOT_DEMO_PG")
	if admin == "" {
		admin = defaultAdminDSN
	}
	dir := getenv("RELBOT_DEMO_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "relbot-demo")
	}
	prefix := getenv("RELBOT_DEMO_PREFIX")
	if prefix == "" {
		prefix = "relbot_demo"
	}
	d := &demo{io: io, start: time.Now()}
	if err := d.run(ctx, admin, dir, prefix, *keep); err != nil {
		d.say("FAILED: %s", oneLine(err.Error()))
		return exitFailed
	}
	d.say("Demo finished in %s: every step did what it should.", time.Since(d.start).Round(100*time.Millisecond))
	if *keep {
		hint := ""
		if _, err := exec.LookPath("relbot"); err != nil {
			hint = " (relbot is not on PATH yet: go install ./cmd/relbot, see README)"
		}
		d.say("The databases and files stay. To look around from a terminal: set -a; . %s; set +a; then e.g. relbot status crm, relbot release list crm%s",
			filepath.Join(dir, "relbot.env"), hint)
	}
	return exitOK
}

func demoFlags() (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	return fs, fs.Bool("keep", true, "keep the demo databases and files afterwards, to look at them")
}

// terminalEnv writes the demo's apps.yaml and relbot.env (the settings a
// terminal needs to work on the demo's installation) into dir and returns
// those settings.
func terminalEnv(settings *config.Settings, sample *fixtures.Sample, dir string) (map[string]string, error) {
	appsFile := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(appsFile, []byte(fixtures.AppsYAML(sample)), 0o600); err != nil {
		return nil, err
	}
	env := map[string]string{
		"RELBOT_DATABASE_URL": settings.DatabaseURL, "RELBOT_APPS_FILE": appsFile, "RELBOT_ARTIFACT_DIR": settings.ArtifactDir,
		"RELBOT_SECRET_KEY": settings.SecretKey, "RELBOT_BACKUP_KEY": settings.BackupKey,
	}
	for _, kv := range fixtures.Env(sample) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var b strings.Builder
	b.WriteString("# Settings of the demo's relbot, for a terminal: set -a; . relbot.env; set +a\n")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(env[k]))
	}
	if err := os.WriteFile(filepath.Join(dir, "relbot.env"), []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return env, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type demo struct {
	io       Stdio
	start    time.Time
	disp     *commands.Dispatcher
	settings *config.Settings
	dir      string
}

// say prints a narration line.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.io.Out, "\n== "+format+"\n", args...)
}

// command shows a user typing a command and relbot's answer, and fails the
// demo if the command fails.
func (d *demo) command(ctx context.Context, user, text string) (commands.Reply, error) {
	fmt.Fprintf(d.io.Out, "\n%s> /relbot %s\n", user, text)
	reply, err := d.disp.Handle(ctx, commands.Request{User: user, Channel: "C0CRMRELEASE", Text: text})
	d.print(reply, err)
	if err != nil {
		return reply, fmt.Errorf("/relbot %s: %s", text, commands.ErrorReply(err).Text)
	}
	return reply, nil
}

// print shows relbot's answer (and its error) as the channel would.
func (d *demo) print(reply commands.Reply, err error) {
	body := reply.Text
	if err != nil {
		body = strings.TrimSpace(body + "\n" + commands.ErrorReply(err).Text)
	}
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		if i == demoMaxLines && len(lines) > demoMaxLines+5 {
			fmt.Fprintf(d.io.Out, "  relbot | ... (%d more lines)\n", len(lines)-i)
			break
		}
		fmt.Fprintln(d.io.Out, "  relbot | "+l)
	}
}

func (d *demo) run(ctx context.Context, admin, dir, prefix string, keep bool) error {
	d.say("Creating the sample app crm on %s: development, staging, production and an empty recovery environment", redactDSN(admin))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	sample, err := fixtures.Create(ctx, admin, prefix, dir)
	if err != nil {
		return fmt.Errorf("create the sample app (is PostgreSQL running? set RELBOT_DEMO_PG to its admin URL): %w", err)
	}
	botDSN, err := recreateDatabase(ctx, admin, prefix+"_bot")
	if err != nil {
		return err
	}
	if !keep {
		defer func() {
			_ = fixtures.Drop(context.Background(), admin, prefix)
			_ = dropDatabase(context.Background(), admin, prefix+"_bot")
			_ = os.RemoveAll(dir)
		}()
	}
	for _, env := range fixtures.Chain {
		d.say("  %-11s database %s, storage %s", env, sample.DatabaseNames[env], sample.Storage[env])
	}

	vars := map[string]string{}
	for _, kv := range fixtures.Env(sample) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	apps, err := config.ParseApps([]byte(fixtures.AppsYAML(sample)), func(k string) string { return vars[k] })
	if err != nil {
		return fmt.Errorf("sample apps.yaml: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	settings := &config.Settings{DatabaseURL: botDSN, ArtifactDir: filepath.Join(dir, "artifacts"), BackupKey: demoBackupKey,
		SecretKey: hex.EncodeToString(key), TimeZone: "UTC"}
	// Progress of releases the demo runs prints as the channel would see it.
	d.settings, d.dir = settings, dir
	sys, err := build(ctx, settings, apps, slog.New(slog.DiscardHandler), buildOptions{progress: &indent{w: d.io.Out}})
	if err != nil {
		return err
	}
	defer sys.close()
	d.disp = sys.dispatcher

	d.say("Backups: production is backed up, the backup verified in a scratch database, and restored into the recovery environment")
	if _, err := d.command(ctx, "alice", "apps"); err != nil {
		return err
	}
	reply, err := d.command(ctx, "alice", "backup create crm production")
	if err != nil {
		return err
	}
	id := reply.Data.(commands.BackupView).ID
	if _, err := d.command(ctx, "alice", "backup list crm production"); err != nil {
		return err
	}
	if _, err := d.command(ctx, "alice", "backup verify "+id); err != nil {
		return err
	}
	// Production's data is its approvers' to restore (README, Permissions).
	if _, err := d.command(ctx, "U01AAA", "backup restore "+id+" --into recovery"); err != nil {
		return err
	}

	d.say("Checking the recovery environment against production, table by table and file by file")
	tables, rows, err := sameData(ctx, sample.Databases[fixtures.Production], sample.Databases[fixtures.Recovery])
	if err != nil {
		return err
	}
	files, err := sameFiles(sample.Storage[fixtures.Production], sample.Storage[fixtures.Recovery])
	if err != nil {
		return err
	}
	d.say("recovery is identical to production: %s, %s, %s (logs excluded by the NocoBase preset)", release.Count(tables, "table"), release.Count(rows, "row"), release.Count(files, "storage file"))
	return d.migrations(ctx, sys, sample)
}

// migrations packages development's configuration into a signed file,
// plans it against staging, supplies the variable staging lacks, and
// applies it.
func (d *demo) migrations(ctx context.Context, sys *system, sample *fixtures.Sample) error {
	d.say("Versions: development's configuration is saved as a checkpoint that can be diffed and restored")
	if _, err := d.command(ctx, "alice", `version create crm "Contracts page and customer segment"`); err != nil {
		return err
	}
	if _, err := d.command(ctx, "alice", "version list crm"); err != nil {
		return err
	}
	d.say("Migrations: development's new configuration (a Contracts page, customers.segment) becomes one signed file")
	reply, err := d.command(ctx, "alice", `migration create crm --note "Contracts page and customer segment"`)
	if err != nil {
		return err
	}
	id := reply.Data.(commands.MigrationView).ID
	if _, err := d.command(ctx, "alice", "var list crm staging"); err != nil {
		return err
	}
	if _, err := d.command(ctx, "alice", "var set crm staging CONTRACTS_SIGN_URL=https://sign.staging.crm.example.com"); err != nil {
		return err
	}
	if _, err := d.command(ctx, "alice", "migration plan "+id+" staging"); err != nil {
		return err
	}
	// Production's variables are its approvers' to change.
	if _, err := d.command(ctx, "U01AAA", "var set crm production CONTRACTS_SIGN_URL=https://sign.crm.example.com"); err != nil {
		return err
	}
	if err := d.releases(ctx, sys, sample, id); err != nil {
		return err
	}
	if _, err := d.command(ctx, "alice", "migration show "+id); err != nil {
		return err
	}
	dev, err := tableChecksums(ctx, sample.Databases[fixtures.Development])
	if err != nil {
		return err
	}
	stg, err := tableChecksums(ctx, sample.Databases[fixtures.Staging])
	if err != nil {
		return err
	}
	m, _, err := sys.migrations.ShowMigration(ctx, id)
	if err != nil {
		return err
	}
	same := 0
	for _, t := range m.Summary.Tables {
		if t.Rule != release.RuleOverwrite {
			continue
		}
		if a, b := dev[t.Table], stg[t.Table]; a.Rows != b.Rows || a.Checksum != b.Checksum {
			return fmt.Errorf("overwrite table %s differs between development and staging after the apply", t.Table)
		}
		same++
	}
	d.say("staging's %d overwrite tables now equal development's row for row; its business rows are its own", same)
	return d.badChange(ctx, sample)
}

// releases takes the file through staging, then production with two
// approvals (one refused self-approval on the way).
func (d *demo) releases(ctx context.Context, sys *system, sample *fixtures.Sample, id string) error {
	d.say("Releases: the file goes to staging (no approval needed there), then the same file to production; it enables a plugin neither has, so each deploy says --allow-new-plugins")
	reply, err := d.command(ctx, "alice", "deploy "+id+" staging --allow-new-plugins")
	if err != nil {
		return err
	}
	staging := reply.Data.(commands.ReleaseView)
	if staging.State != release.StateSucceeded {
		return fmt.Errorf("staging release %s ended %s", staging.ID, staging.State)
	}
	if err := d.slackRelease(ctx, sys, d.settings, sample, d.dir, id); err != nil {
		return err
	}
	again, err := sys.migrations.ApplyMigration(ctx, "alice", id, fixtures.Staging, release.ApplyOptions{})
	if err != nil {
		return err
	}
	if again.AlreadyApplied == nil {
		return fmt.Errorf("applying %s twice changed staging twice", id)
	}
	d.say("applying the same file to staging again is a no-op: already applied by %s", again.AlreadyApplied.By)
	return nil
}

// badChange shows a release that fails its validation on staging and the
// targeted rollback that puts back what it changed, from the release
// snapshot its apply kept.
func (d *demo) badChange(ctx context.Context, sample *fixtures.Sample) error {
	d.say("A bad change: someone empties the menu in development by mistake; staging's check catches it, and a targeted rollback puts back what the release changed")
	before, err := tableChecksums(ctx, sample.Databases[fixtures.Staging])
	if err != nil {
		return err
	}
	if err := execOn(ctx, sample.Databases[fixtures.Development], `DELETE FROM "uiSchemas"`); err != nil {
		return err
	}
	reply, err := d.command(ctx, "alice", `migration create crm --note "menu cleanup"`)
	if err != nil {
		return err
	}
	id := reply.Data.(commands.MigrationView).ID
	fmt.Fprintf(d.io.Out, "\n%s> /relbot deploy %s staging --allow-new-plugins\n", "alice", id)
	reply, err = d.disp.Handle(ctx, commands.Request{User: "alice", Channel: "C0CRMRELEASE", Text: "deploy " + id + " staging --allow-new-plugins"})
	d.print(reply, err)
	if err == nil {
		return fmt.Errorf("the bad release passed staging's checks")
	}
	failed := reply.Data.(commands.ReleaseView).ID
	reply, err = d.command(ctx, "alice", "rollback "+failed)
	if err != nil {
		return err
	}
	if v := reply.Data.(commands.ReleaseView); v.State != release.StateSucceeded {
		return fmt.Errorf("rollback %s ended %s", v.ID, v.State)
	}
	after, err := tableChecksums(ctx, sample.Databases[fixtures.Staging])
	if err != nil {
		return err
	}
	for k, v := range before {
		if strings.HasPrefix(k, "relbot") {
			continue // relbot's own bookkeeping and release snapshots, not the app's
		}
		if a := after[k]; a.Rows != v.Rows || a.Checksum != v.Checksum {
			return fmt.Errorf("table %s of staging differs from before the bad release", k)
		}
	}
	d.say("staging is back exactly as before the bad release: %s identical", release.Count(len(before), "table"))
	return nil
}

func execOn(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// indent prints release progress inside the conversation.
type indent struct{ w io.Writer }

func (i *indent) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintln(i.w, "  relbot ~ "+l)
	}
	return len(p), nil
}

// sameData compares every table of two databases by row count and checksum.
func sameData(ctx context.Context, a, b string) (tables int, rows int64, err error) {
	sa, err := tableChecksums(ctx, a)
	if err != nil {
		return 0, 0, err
	}
	sb, err := tableChecksums(ctx, b)
	if err != nil {
		return 0, 0, err
	}
	if len(sa) != len(sb) {
		return 0, 0, fmt.Errorf("production has %d tables, recovery %d", len(sa), len(sb))
	}
	for k, v := range sa {
		if w := sb[k]; w.Rows != v.Rows || w.Checksum != v.Checksum {
			return 0, 0, fmt.Errorf("table %s differs between production and recovery", k)
		}
		rows += v.Rows
	}
	return len(sa), rows, nil
}

func tableChecksums(ctx context.Context, dsn string) (map[string]pgsnap.TableInfo, error) {
	conn, err := pgschema.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	s, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := map[string]pgsnap.TableInfo{}
	for i := range s.Tables {
		ti, err := pgsnap.TableChecksum(ctx, conn, &s.Tables[i])
		if err != nil {
			return nil, err
		}
		out[ti.Key] = ti
	}
	return out, nil
}

// sameFiles compares the files two storage directories hold, leaving out
// what the NocoBase preset excludes.
func sameFiles(a, b string) (int, error) {
	exclude := []string{"logs/**", "gateway.sock"}
	la, err := listFiles(a, exclude)
	if err != nil {
		return 0, err
	}
	lb, err := listFiles(b, exclude)
	if err != nil {
		return 0, err
	}
	if strings.Join(la, "\n") != strings.Join(lb, "\n") {
		return 0, fmt.Errorf("storage files differ between %s and %s", a, b)
	}
	return len(la), nil
}

func listFiles(root string, exclude []string) ([]string, error) {
	var out []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if pgsnap.Excluded(filepath.ToSlash(rel), exclude) {
			return nil
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %x", rel, len(content), content[:min(16, len(content))]))
		return nil
	})
	sort.Strings(out)
	return out, err
}

// recreateDatabase drops and creates a database on admin's server and
// returns its DSN.
func recreateDatabase(ctx context.Context, admin, name string) (string, error) {
	if err := dropDatabase(ctx, admin, name); err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return "", err
	}
	return dsnWithDatabase(admin, cfg.Database, name), nil
}

func dropDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL (set RELBOT_DEMO_PG to its admin URL): %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// dsnWithDatabase points a URL or key=value DSN at another database.
func dsnWithDatabase(dsn, from, to string) string {
	if strings.Contains(dsn, "://") {
		base, query, _ := strings.Cut(dsn, "?")
		if i := strings.LastIndex(base, "/"); i > strings.Index(base, "://")+2 {
			base = base[:i]
		}
		out := base + "/" + to
		if query != "" {
			out += "?" + query
		}
		return out
	}
	if strings.Contains(dsn, "dbname=") {
		return strings.Replace(dsn, "dbname="+from, "dbname="+to, 1)
	}
	return dsn + " dbname=" + to
}

// redactDSN shows where a DSN points without its password.
func redactDSN(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "the configured server"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}
