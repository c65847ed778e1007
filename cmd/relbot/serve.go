package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/bot"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/internal/metrics"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/scheduler"
	"github.com/relbot/relbot/storage/memory"
	"github.com/relbot/relbot/storage/postgres"
	"github.com/relbot/relbot/storage/redis"
	"github.com/relbot/relbot/web"
)

// Every dedupe store works for the bot.
var (
	_ bot.Dedupe = (*redis.Dedupe)(nil)
	_ bot.Dedupe = (*memory.Dedupe)(nil)
	_ bot.Dedupe = (*postgres.Dedupe)(nil)
)

// The bot records where a release's message is through the release store.
var _ bot.MessageStore = (release.ReleaseStore)(nil)

const (
	// recoverEvery is how often serve looks for releases whose runner died
	// and for scheduled releases nobody runs.
	recoverEvery = 30 * time.Second
	// shutdownGrace bounds how long a stopping server waits for the work
	// in flight; a release still running then is resumed from its lease.
	shutdownGrace = 25 * time.Second
	// slackCheckTimeout bounds the auth.test made at start.
	slackCheckTimeout = 15 * time.Second

	cannotStart = "relbot serve cannot start"
	// listeningOn is the key of the address serve listens on in its
	// "started" record.
	listeningOn = "listening_on"
)

// checkSlackToken asks Slack whose the bot token is (auth.test), so that a
// wrong token stops serve at once with a line that names the setting,
// rather than failing at the first message.
func checkSlackToken(ctx context.Context, api *slack.Client, apiURL string) (*slack.AuthTestResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, slackCheckTimeout)
	defer cancel()
	who, err := api.AuthTestContext(ctx)
	if err == nil {
		return who, nil
	}
	var refused slack.SlackErrorResponse
	if errors.As(err, &refused) {
		return nil, fmt.Errorf("%s was refused by Slack (%s)", config.EnvSlackBotToken, refused.Err)
	}
	// slack-go's error names the URL, never the token (it goes in the body).
	return nil, fmt.Errorf("cannot check %s: Slack at %s (%s) did not answer: %s", config.EnvSlackBotToken, apiURL, config.EnvSlackAPIURL, oneLine(err.Error()))
}

// runServe is `relbot serve`: Slack over HTTP (or Socket Mode when
// SLACK_APP_TOKEN is set), the runner of approved releases, and the
// health endpoints, until SIGTERM, SIGINT or ctx ends.
func runServe(ctx context.Context, args []string, io Stdio, getenv func(string) string) int {
	if len(args) > 0 {
		fmt.Fprintln(io.Err, "relbot: serve takes no arguments (settings come from the environment)")
		return exitUsage
	}
	// The logger comes first: every line serve writes, a refusal to start
	// included, is in the log's one format.
	log := newLogger(io.Err, getenv, slog.LevelInfo)
	need := []string{config.EnvDatabaseURL, config.EnvSlackBotToken}
	if getenv(config.EnvSlackAppToken) == "" {
		need = append(need, config.EnvSlackSigningSecret) // Socket Mode needs no signing secret
	}
	settings, file, err := loadConfig(getenv, need...)
	if err != nil {
		log.Error(cannotStart, "err", strings.Join(problemLines(err), "; "))
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	// The bot's own figures (/metrics); the work queue is read from the
	// bot made below.
	var b *bot.Bot
	queueDepth := func() int {
		if b == nil {
			return 0
		}
		return b.QueueDepth()
	}
	m := metrics.New(queueDepth, log)
	opts := []slack.Option{slack.OptionAPIURL(settings.SlackAPIURL), slack.OptionHTTPClient(&http.Client{Transport: m.SlackTransport(nil)})}
	if settings.SlackAppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(settings.SlackAppToken))
	}
	api := bot.NewClient(settings.SlackBotToken, opts...)
	who, err := checkSlackToken(ctx, api, settings.SlackAPIURL)
	if err != nil {
		log.Error(cannotStart, "err", err.Error())
		return exitFailed
	}
	log.Info("slack token accepted", "bot", who.User, "bot_user_id", who.UserID, "team", who.Team, "team_id", who.TeamID)

	// The tests' fault knobs (a lease that runs out soon, a pause at a
	// step to kill the process at), as a terminal has them; serve prints
	// no progress of its own.
	faults := faultOptions(getenv, io.Err)
	faults.progress = nil
	sys, err := build(ctx, settings, file.Apps, log, faults)
	if err != nil {
		log.Error(cannotStart, "err", oneLine(release.ErrorMessage(err)), "cause", err.Error())
		return exitFailed
	}
	defer sys.close()
	svc := sys.releases
	m.Records(sys.backups.Store, svc.Store, svc.Apps())

	nc := bot.NotifierConfig{API: api, Messages: svc.Store, Policies: bot.PolicyFunc(svc.App), Log: log}
	var pages http.Handler
	if sys.links != nil {
		nc.ReleaseLink = sys.links.ReleaseLink
		// The pages run read-only commands; their replies link nowhere
		// (the page does).
		reader := *sys.dispatcher
		reader.Links = nil
		pages = (&web.Pages{Signer: sys.links, Releases: svc.Store, Backups: sys.backups.Store,
			Migrations: sys.migrations.Store, Commands: &reader, Artifacts: sys.backups.Artifacts, Log: log}).Handler()
	}
	notifier := bot.NewNotifier(nc)
	svc.Notifier = m.Notifier(notifier)
	// The server runs what becomes runnable; commands return at once.
	sys.dispatcher.Foreground = false
	b = bot.New(bot.Config{
		SigningSecret: settings.SlackSigningSecret,
		API:           api,
		Dispatcher:    sys.dispatcher,
		Runner:        svc,
		Dedupe:        sys.dedupe,
		Ready:         sys.ready,
		Log:           log,
		Metrics:       m.Handler(),
		ObserveAck:    m.ObserveAck,
		Pages:         pages,
		ReleaseLink:   nc.ReleaseLink,
	})

	ln, err := net.Listen("tcp", settings.HTTPAddr)
	if err != nil {
		log.Error(cannotStart, "err", fmt.Sprintf("cannot listen on %s (%s): %v", settings.HTTPAddr, config.EnvHTTPAddr, err))
		return exitFailed
	}
	// Where serve listens is said whatever RELBOT_LOG_LEVEL is (the demo
	// and bench quiet the log to errors), in the same format. The address
	// is the record's last value: they read it from the end of the line.
	slog.New(logHandler(io.Err, getenv, nil)).Info("relbot serve started",
		"socket_mode", settings.SlackAppToken != "", "apps", len(file.Apps), listeningOn, ln.Addr().String())
	go checkBackupTools(ctx, sys.backups.Engine, file.Apps, log)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		keepRecovering(ctx, svc, b, log, recoverInterval(getenv))
	}()
	// Nightly backups and verifies: every replica runs the scheduler; the
	// shared locker lets exactly one take each tick.
	post := backupNotifier(api, log)
	sched := &scheduler.Scheduler{Backups: sys.backups, Log: log, Notify: func(ctx context.Context, app, channel string, n scheduler.BackupNotice) {
		m.ScheduledRun(app, n.Env, n.Kind, n.OK)
		post(ctx, app, channel, n)
	}}
	go func() {
		defer wg.Done()
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("scheduler stopped", "err", err)
		}
	}()
	socketErr := make(chan error, 1)
	if settings.SlackAppToken != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			socketErr <- b.RunSocketMode(ctx, api)
		}()
	}

	serveErr := b.Serve(ctx, ln, shutdownGrace)
	stop()
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := notifier.Close(flushCtx); err != nil {
		log.Warn("slack messages not all sent before exit", "err", err)
	}
	code := exitOK
	if serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		log.Error("serve failed", "err", oneLine(serveErr.Error()))
		code = exitFailed
	}
	select {
	case err := <-socketErr:
		if err != nil {
			log.Error("socket mode failed", "err", oneLine(err.Error()))
			code = exitFailed
		}
	default:
	}
	log.Info("relbot serve stopped")
	return code
}

// backupNotifier posts the scheduler's reports in the app's channel; a
// failure is an alert that says what failed and what to do.
func backupNotifier(api *slack.Client, log *slog.Logger) func(context.Context, string, string, scheduler.BackupNotice) {
	return func(ctx context.Context, app, channel string, n scheduler.BackupNotice) {
		if channel == "" {
			log.Warn("backup notice without a channel", "app", app, "env", n.Env, "ok", n.OK)
			return
		}
		if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText(backupNoticeText(n), true)); err != nil { // escaped: reasons come from databases and users
			log.Error("post backup notice", "app", app, "env", n.Env, "err", err)
		}
	}
}

// backupNoticeText is the channel's text of a scheduler notice: the title
// in bold, once (Text starts with it), then its facts; an alert when it
// failed.
func backupNoticeText(n scheduler.BackupNotice) string {
	text := "*" + n.Title() + "*" + strings.TrimPrefix(n.Text(), n.Title())
	if !n.OK {
		return ":rotating_light: " + text
	}
	return text
}

// recoverInterval is recoverEvery, or RELBOT_RECOVER_EVERY (tests: a
// killed replica's release is found at once).
func recoverInterval(getenv func(string) string) time.Duration {
	if d, err := time.ParseDuration(getenv("RELBOT_RECOVER_EVERY")); err == nil && d > 0 {
		return d
	}
	return recoverEvery
}

// keepRecovering marks releases whose runner died as interrupted, at start
// and every recoverEvery, starts scheduled releases nobody runs (one
// approved while no server was up, or whose server restarted), and reminds
// the approvers of releases that have waited half their approval window.
func keepRecovering(ctx context.Context, svc *release.ReleaseService, b *bot.Bot, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := svc.RecoverInterrupted(ctx); err != nil && ctx.Err() == nil {
			log.Warn("recover interrupted releases", "err", err)
		}
		for _, a := range svc.Apps() {
			rs, err := svc.ListReleases(ctx, a.Name, "")
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("list releases", "app", a.Name, "err", err)
				}
				continue
			}
			for _, r := range rs {
				if r.State == release.StateScheduled {
					b.RunRelease(r.ID)
				}
			}
		}
		if rems, err := svc.DueReminders(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("approval reminders", "err", err)
			}
		} else {
			b.RemindApprovers(ctx, rems)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkBackupTools says at start which environments' backups pg_dump
// cannot take (missing, or older than their server), rather than at the
// first backup; the check is made again before each one.
func checkBackupTools(ctx context.Context, engine release.BackupEngine, apps []*release.App, log *slog.Logger) {
	tc, ok := engine.(interface {
		CheckTools(ctx context.Context, dsn string) error
	})
	if !ok {
		return
	}
	for _, a := range apps {
		envs := append([]*release.Environment(nil), a.Environments...)
		if a.Recovery != nil {
			envs = append(envs, a.Recovery)
		}
		for _, e := range envs {
			if err := tc.CheckTools(ctx, e.Database); err != nil {
				log.Warn("backups cannot be taken", "app", a.Name, "env", e.Name, "err", release.ErrorMessage(err))
			}
		}
	}
}
