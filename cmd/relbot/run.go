package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/bot"
	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/checks"
	"github.com/relbot/relbot/release/hooks"
	"github.com/relbot/relbot/release/migrate"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/release/pgsnap"
	"github.com/relbot/relbot/release/versions"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/objects"
	"github.com/relbot/relbot/storage/postgres"
	"github.com/relbot/relbot/storage/redis"
	"github.com/relbot/relbot/web"
)

// Stdio is where a run reads and writes.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Exit codes (SPEC.md): 0 done, 1 refused or failed, 2 usage error.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// Run is main without the process: tests call it with their own arguments,
// streams and environment.
func Run(ctx context.Context, args []string, io Stdio, getenv func(string) string) int {
	if code, ok := runProcess(ctx, args, io, getenv); ok {
		return code
	}
	return runTerminal(ctx, args, io, getenv)
}

// system is every part wired together.
type system struct {
	services
	dispatcher *commands.Dispatcher
	// links signs the release pages' addresses; nil without
	// RELBOT_PUBLIC_URL (or RELBOT_SECRET_KEY).
	links *web.Signer
	// dedupe remembers Slack deliveries: in Redis when configured, else
	// in the bot's database.
	dedupe bot.Dedupe
	// ready says whether this process can work: the bot's database,
	// Redis when configured, the artifact store.
	ready func(ctx context.Context) error
	close func()
}

// services are the domain's, one per area, each built once over one Core.
type services struct {
	core       *release.Core
	backups    *release.BackupService
	migrations *release.MigrationService
	versions   *release.VersionService
	variables  *release.VariableService
	releases   *release.ReleaseService
}

// dispatch is what the commands call of each service.
func (sv services) dispatch() commands.Services {
	return commands.Services{Core: sv.core, Backups: sv.backups, Migrations: sv.migrations, Versions: sv.versions, Variables: sv.variables, Releases: sv.releases}
}

// build wires the parts from settings and apps. Only cmd knows them all.
// buildOptions are the choices of the transport that builds the system.
type buildOptions struct {
	// progress receives a release's events while it runs in the foreground.
	progress io.Writer
	// leaseTTL and pause come from RELBOT_LEASE_TTL and RELBOT_FAULT_PAUSE:
	// the crash tests use them to notice a killed runner quickly and to
	// stop one at a chosen step.
	leaseTTL time.Duration
	pause    func(step string)
}

func build(ctx context.Context, s *config.Settings, apps []*release.App, log *slog.Logger, opts ...buildOptions) (*system, error) {
	var o buildOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	// A terminal runs one command: a small pool keeps many concurrent
	// terminals (and their releases) well inside the server's connections.
	var poolSize int32
	if o.progress != nil {
		poolSize = 4
	}
	store, err := postgres.Open(ctx, s.DatabaseURL, log, poolSize)
	if err != nil {
		return nil, err
	}
	closers := []func(){store.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	// Without Redis, locks live in the bot's own database, so every process
	// using it (a server and terminals) shares them.
	var locker release.Locker = store.Locker()
	var dedupe bot.Dedupe = store.Dedupe()
	needs := []readiness{{"the bot's database", func(ctx context.Context) error { return store.Ping(ctx) }}}
	if s.RedisURL != "" {
		client, err := redis.Connect(ctx, s.RedisURL)
		if err != nil {
			closeAll()
			return nil, err
		}
		closers = append(closers, func() { client.Close() })
		locker = redis.NewLocker(client)
		dedupe = redis.NewDedupe(client)
		needs = append(needs, readiness{"Redis", func(ctx context.Context) error { return client.Ping(ctx).Err() }})
	}
	arts, err := openArtifacts(ctx, s.ArtifactDir)
	if err != nil {
		closeAll()
		return nil, err
	}
	closers = append(closers, func() { closeStore(arts) })
	if r, ok := arts.(interface{ Ready(context.Context) error }); ok {
		needs = append(needs, readiness{"the artifact store", r.Ready})
	}
	engine := &pgsnap.Engine{Workers: 2, Passphrase: s.BackupKey, PGBin: s.PGBin, MaintenanceWorkMem: s.RestoreMemory, Log: log}
	core := release.NewCore(apps, store, locker, log)
	if s.SlackBotToken != "" {
		// Roles may name Slack user groups; without a token a role that
		// does is refused (release says why).
		core.Groups = bot.NewGroups(bot.NewClient(s.SlackBotToken, slack.OptionAPIURL(s.SlackAPIURL)), bot.DefaultGroupRefresh)
	}
	vars, err := newVariables(core, store, s)
	if err != nil {
		closeAll()
		return nil, err
	}
	sv := services{core: core, variables: vars}
	sv.backups = &release.BackupService{Core: core, Store: store, Artifacts: arts, Engine: engine, Releases: store}
	sv.versions = &release.VersionService{Core: core, Store: store, Engine: &versions.Engine{}, Artifacts: arts, Variables: vars}
	sv.migrations = &release.MigrationService{Core: core, Store: store, Engine: &migrate.Engine{SigningKey: migrate.SigningKey(vars.SecretKey)},
		Artifacts: arts, LayoutReader: nocobase.Layouts{}, Versions: sv.versions, Variables: vars}
	sv.releases = &release.ReleaseService{Core: core, Store: store,
		Backups: sv.backups, Migrations: sv.migrations, Versions: sv.versions, Variables: vars,
		Hooks: &hooks.Runner{Log: log}, Checker: &checks.Runner{}, LeaseTTL: o.leaseTTL, Pause: o.pause}
	if o.progress != nil {
		var n release.Notifier = &termNotifier{w: o.progress, now: time.Now}
		// With Slack configured, what a terminal does (an approval, a run)
		// updates the release's message in the channel too.
		if s.SlackBotToken != "" {
			api := bot.NewClient(s.SlackBotToken, slack.OptionAPIURL(s.SlackAPIURL))
			nc := bot.NotifierConfig{API: api, Messages: store, Policies: bot.PolicyFunc(core.App), Log: log}
			if links, err := pageLinks(s); err == nil && links != nil {
				nc.ReleaseLink = links.ReleaseLink // the terminal's updates keep the message's link
			}
			sn := bot.NewNotifier(nc)
			n = bothNotifiers{n, sn}
			closers = append(closers, func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := sn.Close(ctx); err != nil {
					log.Warn("slack messages not all sent before exit", "err", err)
				}
			})
		}
		sv.releases.Notifier = n
	}
	loc, err := s.Location()
	if err != nil {
		closeAll()
		return nil, err
	}
	links, err := pageLinks(s)
	if err != nil {
		closeAll()
		return nil, err
	}
	d := &commands.Dispatcher{Services: sv.dispatch(), Location: loc, Foreground: o.progress != nil, Log: log, BuildInfo: readBuildInfo}
	if links != nil {
		d.Links = links
	}
	return &system{
		services:   sv,
		dispatcher: d,
		dedupe:     dedupe,
		links:      links,
		ready:      allReady(needs),
		close:      closeAll,
	}, nil
}

// readiness is one thing a process needs to work, and how to ask it.
type readiness struct {
	what  string
	check func(ctx context.Context) error
}

// allReady asks each in turn; the first that does not answer is named.
func allReady(checks []readiness) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				return &release.Error{Code: release.CodeUnavailable, Message: c.what + " does not answer", Err: err}
			}
		}
		return nil
	}
}

// openArtifacts opens where backups and migration files live: a bucket
// for an s3:// URL, else a directory.
func openArtifacts(ctx context.Context, where string) (release.Artifacts, error) {
	if objects.IsURL(where) {
		return objects.Open(ctx, where)
	}
	return artifacts.New(where)
}

// pageLinks is the signer of release pages' links, when RELBOT_PUBLIC_URL
// says where users reach relbot serve.
func pageLinks(s *config.Settings) (*web.Signer, error) {
	if s.PublicURL == "" {
		return nil, nil
	}
	key, err := s.SecretKeyBytes()
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%s is set, and its pages' links are signed with %s, which is not", config.EnvPublicURL, config.EnvSecretKey)
	}
	return web.NewSigner(key, s.PublicURL, s.LinkDuration())
}

// newLogger logs to w at the level RELBOT_LOG_LEVEL names (default def),
// in the format RELBOT_LOG_FORMAT names (text by default, or json).
// It is made before the settings are read, so that even a refusal to start
// is in the log's format; a malformed level is reported with the settings.
func newLogger(w io.Writer, getenv func(string) string, def slog.Level) *slog.Logger {
	level := def
	if v := getenv(config.EnvLogLevel); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(logHandler(w, getenv, &slog.HandlerOptions{Level: level}))
}

// logHandler writes records in the format RELBOT_LOG_FORMAT names.
func logHandler(w io.Writer, getenv func(string) string, opts *slog.HandlerOptions) slog.Handler {
	if getenv(config.EnvLogFormat) == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// loadConfig reads the settings, requires need among them, and reads
// apps.yaml: what every long-lived command starts from.
func loadConfig(getenv func(string) string, need ...string) (*config.Settings, *config.AppsFile, error) {
	settings, err := loadSettings(getenv, need...)
	if err != nil {
		return nil, nil, err
	}
	file, err := config.LoadAppsFile(settings.AppsFile, getenv)
	if err != nil {
		return nil, nil, err
	}
	return settings, file, nil
}

// loadSettings reads the settings through getenv and requires need among
// them, reporting every problem at once.
func loadSettings(getenv func(string) string, need ...string) (*config.Settings, error) {
	return config.LoadSettings(lookupFrom(getenv), need...)
}

// lookupFrom makes Run's getenv a lookup. A variable set to nothing counts
// as unset for every setting, so getenv says all a lookup would.
func lookupFrom(getenv func(string) string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
}

// problemLines is a configuration error as the lines a person reads: one
// per setting that is missing or malformed, else the error's one line.
func problemLines(err error) []string {
	var ps config.Problems
	if errors.As(err, &ps) {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.Error()
		}
		return lines
	}
	return []string{oneLine(err.Error())}
}

// configMessage is what a terminal prints when the configuration is
// refused: "relbot: " and one line per problem.
func configMessage(err error) string {
	lines := problemLines(err)
	for i, l := range lines {
		lines[i] = "relbot: " + l
	}
	return strings.Join(lines, "\n")
}

// bothNotifiers tells every notifier of an event.
type bothNotifiers []release.Notifier

func (ns bothNotifiers) ReleaseChanged(ctx context.Context, r *release.Release, e release.Event) {
	for _, n := range ns {
		n.ReleaseChanged(ctx, r, e)
	}
}

// faultOptions reads the crash tests' settings from the environment.
func faultOptions(getenv func(string) string, progress io.Writer) buildOptions {
	o := buildOptions{progress: progress}
	if v := getenv("RELBOT_LEASE_TTL"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			o.leaseTTL = d
		}
	}
	if step := getenv("RELBOT_FAULT_PAUSE"); step != "" {
		o.pause = func(at string) {
			if at == step {
				fmt.Fprintf(progress, "FAULT PAUSE at %q\n", at)
				select {} // wait to be killed
			}
		}
	}
	return o
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
