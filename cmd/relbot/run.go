package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/migrate"
	"github.com/relbot/relbot/release/pgsnap"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/memory"
	"github.com/relbot/relbot/storage/postgres"
	"github.com/relbot/relbot/storage/redis"
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
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			fmt.Fprintln(io.Err, "relbot: serve is not available yet (the Slack bot comes with its own issue); use the terminal commands")
			return exitFailed
		case "demo":
			return runDemo(ctx, args[1:], io, getenv)
		case "bench":
			return runBench(ctx, args[1:], io, getenv)
		case benchWorker:
			return runBenchWorker(ctx, args[1:], io)
		case "rekey-secrets":
			return runRekey(ctx, args[1:], io, getenv)
		}
	}
	return runTerminal(ctx, args, io, getenv)
}

// system is every part wired together.
type system struct {
	service    *release.Service
	dispatcher *commands.Dispatcher
	close      func()
}

// build wires the parts from settings and apps. Only cmd knows them all.
func build(ctx context.Context, s *config.Settings, apps []*release.App, log *slog.Logger) (*system, error) {
	store, err := postgres.Open(ctx, s.DatabaseURL, log)
	if err != nil {
		return nil, err
	}
	closers := []func(){store.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var locker release.Locker = memory.NewLocker()
	if s.RedisURL != "" {
		client, err := redis.Connect(ctx, s.RedisURL)
		if err != nil {
			closeAll()
			return nil, err
		}
		closers = append(closers, func() { client.Close() })
		locker = redis.NewLocker(client)
	}
	arts, err := artifacts.New(s.ArtifactDir)
	if err != nil {
		closeAll()
		return nil, err
	}
	engine := &pgsnap.Engine{Workers: 2, Passphrase: s.BackupKey, Log: log}
	svc := release.NewService(apps, store, arts, engine, locker, log)
	if err := wireVariables(svc, store, s); err != nil {
		closeAll()
		return nil, err
	}
	svc.Migrations = store
	svc.Migrator = &migrate.Engine{SigningKey: migrate.SigningKey(svc.SecretKey)}
	loc, err := s.Location()
	if err != nil {
		closeAll()
		return nil, err
	}
	return &system{
		service:    svc,
		dispatcher: &commands.Dispatcher{Service: svc, Location: loc},
		close:      closeAll,
	}, nil
}

// newLogger logs to w at the level RELBOT_LOG_LEVEL names (default def).
func newLogger(w io.Writer, getenv func(string) string, def slog.Level) *slog.Logger {
	level := def
	if v := getenv("RELBOT_LOG_LEVEL"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// loadSettings reads the settings through getenv (envconfig reads the
// process environment, so a test's getenv is applied to it first).
func loadSettings(getenv func(string) string) (*config.Settings, error) {
	for _, name := range []string{config.EnvDatabaseURL, config.EnvRedisURL, config.EnvAppsFile, config.EnvArtifactDir,
		config.EnvSecretKey, config.EnvSecretKeyPrevious, config.EnvBackupKey, config.EnvHTTPAddr, config.EnvSlackAPIURL, config.EnvTimeZone,
		config.EnvSlackBotToken, config.EnvSlackSigningSecret, config.EnvSlackAppToken} {
		if v := getenv(name); v != os.Getenv(name) {
			if v == "" {
				os.Unsetenv(name)
			} else {
				os.Setenv(name, v)
			}
		}
	}
	return config.LoadSettings()
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
