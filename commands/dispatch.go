package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// Core is what every command may need from the domain: the configured
// apps and whether someone may do something (release.Core).
type Core interface {
	Apps() []*release.App
	App(name string) (*release.App, error)
	// Permit checks actor's role for an action without doing it.
	Permit(ctx context.Context, actor string, act release.Action, app, env string) error
}

// Backups are the backup commands' service (backup.go; release.BackupService).
// A restore is a release: Releases.RestoreBackup.
type Backups interface {
	CreateBackup(ctx context.Context, actor, app, env string, kind release.BackupKind) (*release.Backup, error)
	ListBackups(ctx context.Context, app, env string) ([]*release.Backup, error)
	VerifyBackup(ctx context.Context, actor, id string) (*release.Backup, *release.VerifyReport, error)
	ShowBackup(ctx context.Context, id string) (*release.Backup, error)
	DeleteBackup(ctx context.Context, actor, id string) (*release.Backup, error)
	DownloadBackup(ctx context.Context, actor, id string) (*release.Backup, error)
	ImportBackup(ctx context.Context, actor, app, env, name string, file io.Reader) (*release.Backup, error)
}

// Variables are variables and secrets (vars.go; release.VariableService).
type Variables interface {
	ListVariables(ctx context.Context, app, env string) ([]release.VariableView, error)
	SetVariable(ctx context.Context, actor, app, env, name, value string) (*release.VariableView, error)
	UnsetVariable(ctx context.Context, actor, app, env, name string) error
	SetSecret(ctx context.Context, actor, app, env, name, value string) (*release.VariableView, error)
	UnsetSecret(ctx context.Context, actor, app, env, name string) error
	// RefuseSecretIn refuses free text (what names it) that holds the value
	// of a secret relbot knows.
	RefuseSecretIn(ctx context.Context, what, text string) error
}

// Migrations are migration files (migration.go) and environments' NocoBase
// layouts (status, apps) (release.MigrationService).
type Migrations interface {
	CreateMigration(ctx context.Context, actor, app, version, note string) (*release.Migration, error)
	ListMigrations(ctx context.Context, app string) ([]*release.Migration, error)
	ShowMigration(ctx context.Context, id string) (*release.Migration, []*release.MigrationRun, error)
	// NextChanges summarizes a migration against the next environment
	// that lacks it.
	NextChanges(ctx context.Context, m *release.Migration, runs []*release.MigrationRun) *release.Changes
	PlanMigration(ctx context.Context, id, env string) (*release.Migration, *release.MigrationPlan, error)
	Layouts(ctx context.Context, app string) ([]release.LayoutReport, error)
	// Snapshots are the release snapshots each target keeps (status).
	Snapshots(ctx context.Context, app string) ([]release.EnvSnapshots, error)
}

// Versions are versions (version.go) and drift (drift.go)
// (release.VersionService).
type Versions interface {
	CreateVersion(ctx context.Context, actor, app, description string) (*release.Version, error)
	ListVersions(ctx context.Context, app string) ([]*release.Version, error)
	DiffVersion(ctx context.Context, app, from, to string) (*release.VersionDiff, error)
	RestoreVersion(ctx context.Context, actor, app, id string) (restored, before *release.Version, rep *release.VersionRestoreReport, err error)
	Drift(ctx context.Context, app, from, to string) (*release.Drift, error)
}

// Releases are releases (release.go), restores of backups, restarts
// (restart.go) and locks (release.ReleaseService).
type Releases interface {
	// RestoreBackup requests a restore release.
	RestoreBackup(ctx context.Context, actor, id, into string, noAnalyze bool) (*release.Release, error)
	// Restart runs an environment's restart hook.
	Restart(ctx context.Context, actor, app, env string) (*release.RestartResult, error)
	RequestDeploy(ctx context.Context, actor, migration, env string, at *time.Time, allowNewPlugins bool) (*release.Release, error)
	Approve(ctx context.Context, actor, id string) (*release.Release, bool, error)
	Reject(ctx context.Context, actor, id, reason string) (*release.Release, error)
	Cancel(ctx context.Context, actor, id string) (*release.Release, error)
	Resume(ctx context.Context, actor, id string) (*release.Release, error)
	RequestRollback(ctx context.Context, actor, id, into string, full, noAnalyze bool) (*release.Release, error)
	RequestSwitch(ctx context.Context, actor, id string) (*release.Release, error)
	Run(ctx context.Context, id string) (*release.Release, error)
	GetRelease(ctx context.Context, id string) (*release.Release, error)
	ListReleases(ctx context.Context, app, env string) ([]*release.Release, error)
	Lock(ctx context.Context, actor, app, env, reason string) (*release.Hold, error)
	Unlock(ctx context.Context, actor, app, env string) error
	Holds(ctx context.Context) ([]release.Hold, error)
}

// Services are the domain's services the commands call, one per area.
type Services struct {
	Core       Core
	Backups    Backups
	Migrations Migrations
	Versions   Versions
	Variables  Variables
	Releases   Releases
}

// Dispatcher runs commands against the domain's Services. Only help works
// without them.
type Dispatcher struct {
	Services
	// Now and Location are for showing times; nil means time.Now and
	// time.Local.
	Now      func() time.Time
	Location *time.Location
	// Foreground is set by a transport with no server behind it (the
	// terminal without relbot serve): the command that makes a release
	// runnable runs it to the end before it returns.
	Foreground bool
	// Log receives every internal error with its cause (users read only
	// "internal error"); nil discards.
	Log *slog.Logger
	// BuildInfo is what "version" reports; nil is debug.ReadBuildInfo.
	BuildInfo func() (*debug.BuildInfo, bool)
	// Links, when set, gives the signed addresses of relbot serve's pages
	// (at RELBOT_PUBLIC_URL); nil: no page is linked.
	Links Links
}

// Links are the signed addresses of the pages relbot serve shows.
type Links interface {
	ReleaseLink(id string) string
	AppLink(app string) string
	BackupsLink(app, env string) string
	// BackupFileLink downloads a backup's archive: handed out by backup
	// download only, to those who may.
	BackupFileLink(id string) string
}

// handler runs one kind of command; cmd's dynamic type matches the key it
// is registered under in handlers.
type handler func(d *Dispatcher, ctx context.Context, req Request, cmd Command) (Reply, error)

// on adapts a handler of one concrete command type.
func on[C Command](f func(*Dispatcher, context.Context, Request, C) (Reply, error)) handler {
	return func(d *Dispatcher, ctx context.Context, req Request, cmd Command) (Reply, error) {
		c, ok := cmd.(C)
		if !ok {
			return Reply{}, release.Errorf(release.CodeInternal, "%s: handler got a %T", cmd.Name(), cmd)
		}
		return f(d, ctx, req, c)
	}
}

// handlers maps command names to what runs them. A command without an
// entry answers "not available yet"; implementing one is adding its entry.
var handlers = map[string]handler{
	"help":             on((*Dispatcher).help),
	"version":          on((*Dispatcher).version),
	"apps":             on((*Dispatcher).apps),
	"backup create":    on((*Dispatcher).backupCreate),
	"backup list":      on((*Dispatcher).backupList),
	"backup verify":    on((*Dispatcher).backupVerify),
	"backup show":      on((*Dispatcher).backupShow),
	"backup download":  on((*Dispatcher).backupDownload),
	"backup import":    on((*Dispatcher).backupImport),
	"backup delete":    on((*Dispatcher).backupDelete),
	"backup restore":   on((*Dispatcher).backupRestore),
	"var list":         on((*Dispatcher).varList),
	"var set":          on((*Dispatcher).varSet),
	"var unset":        on((*Dispatcher).varUnset),
	"secret set":       on((*Dispatcher).secretSet),
	"secret unset":     on((*Dispatcher).secretUnset),
	"restart":          on((*Dispatcher).restart),
	"migration create": on((*Dispatcher).migrationCreate),
	"migration list":   on((*Dispatcher).migrationList),
	"migration show":   on((*Dispatcher).migrationShow),
	"migration plan":   on((*Dispatcher).migrationPlan),
	"version create":   on((*Dispatcher).versionCreate),
	"version list":     on((*Dispatcher).versionList),
	"version diff":     on((*Dispatcher).versionDiff),
	"version restore":  on((*Dispatcher).versionRestore),
	"drift":            on((*Dispatcher).drift),
	"deploy":           on((*Dispatcher).deploy),
	"approve":          on((*Dispatcher).approve),
	"reject":           on((*Dispatcher).reject),
	"cancel":           on((*Dispatcher).cancel),
	"resume":           on((*Dispatcher).resume),
	"rollback":         on((*Dispatcher).rollback),
	"switch":           on((*Dispatcher).switchTraffic),
	"release list":     on((*Dispatcher).releaseList),
	"release show":     on((*Dispatcher).releaseShow),
	"lock":             on((*Dispatcher).lock),
	"unlock":           on((*Dispatcher).unlock),
	"status":           on((*Dispatcher).status),
}

// Handle parses req.Text and runs the command. Errors are *UsageError or
// release errors; render them with ErrorReply and ExitCode. A reply may
// come with an error when it holds details of the failure (a backup verify
// that found problems): show both.
func (d *Dispatcher) Handle(ctx context.Context, req Request) (Reply, error) {
	cmd, err := Parse(req.Text)
	if err != nil {
		return Reply{}, err
	}
	return d.Run(ctx, req, cmd)
}

// NeedsNoService reports whether cmd runs without the domain's services
// (and so without settings): help and relbot's own version.
func NeedsNoService(cmd Command) bool {
	switch cmd.(type) {
	case Help, Version:
		return true
	}
	return false
}

// Slow reports whether cmd may take minutes or hours on a big database
// (it reads or restores all of it): a chat transport answers such a
// command at once that it is working, and with the result when it is done.
func Slow(cmd Command) bool {
	switch cmd.(type) {
	case BackupCreate, BackupVerify, BackupImport, MigrationCreate, VersionCreate:
		return true
	}
	return false
}

// Run runs an already parsed command, e.g. one a Slack button stands for.
func (d *Dispatcher) Run(ctx context.Context, req Request, cmd Command) (Reply, error) {
	h, ok := handlers[cmd.Name()]
	if !ok {
		return Reply{}, release.Errorf(release.CodeUnavailable, "%s is not available yet", cmd.Name())
	}
	if d.Core == nil && !NeedsNoService(cmd) {
		return Reply{}, release.Errorf(release.CodeUnavailable, "%s is not available: relbot was started without its service", cmd.Name())
	}
	if err := d.checkFreeText(ctx, cmd); err != nil {
		return Reply{}, d.logInternal(req, cmd, err)
	}
	rep, err := h(d, ctx, req, cmd)
	return rep, d.logInternal(req, cmd, err)
}

// logInternal logs err with its cause when users are shown only "internal
// error", and returns it.
func (d *Dispatcher) logInternal(req Request, cmd Command, err error) error {
	var ue *UsageError
	if err == nil || errors.As(err, &ue) || release.ErrorCode(err) != release.CodeInternal || d.Log == nil {
		return err
	}
	d.Log.Error("command failed with an internal error", "command", cmd.Name(), "user", req.User, "err", err)
	return err
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) when(t time.Time) string {
	loc := d.Location
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

func (d *Dispatcher) help(_ context.Context, _ Request, c Help) (Reply, error) {
	return helpReply(c.Topic)
}

// AppView is what --json prints for one app.
type AppView struct {
	Name         string      `json:"name"`
	Channel      string      `json:"channel,omitempty"`
	Environments []string    `json:"environments"`
	Recovery     bool        `json:"recovery"`
	LastBackup   *BackupView `json:"last_backup,omitempty"`
	// Layouts are the environments' NocoBase layouts, recovery last.
	Layouts []release.LayoutReport `json:"layouts,omitempty"`
}

func (d *Dispatcher) apps(ctx context.Context, _ Request, _ Apps) (Reply, error) {
	apps := d.Core.Apps()
	if len(apps) == 0 {
		return newReply("No apps are configured (see apps.yaml).", nil, nil, []AppView{}), nil
	}
	now := d.now()
	table := &Table{Columns: []string{"App", "Environments", "Recovery", "Last backup", "NocoBase layout"}}
	views := make([]AppView, 0, len(apps))
	for _, a := range apps {
		if a == nil {
			continue
		}
		v := AppView{Name: a.Name, Channel: a.Channel, Environments: []string{}, Recovery: a.Recovery != nil}
		for _, e := range a.Environments {
			if e != nil {
				v.Environments = append(v.Environments, e.Name)
			}
		}
		recovery := "-"
		if v.Recovery {
			recovery = release.RecoveryEnv
		}
		last, lastErr := d.lastBackup(ctx, a)
		lastText := "none"
		switch {
		case lastErr != nil:
			lastText = "unknown" // one failing store read should not hide the list
		case last != nil:
			bv := backupView(last)
			v.LastBackup = &bv
			lastText = fmt.Sprintf("%s (%s, %s)", last.ID, last.Env, ago(last.CreatedAt, now))
		}
		layouts, err := d.Migrations.Layouts(ctx, a.Name)
		if err != nil {
			return Reply{}, err
		}
		v.Layouts = layouts
		views = append(views, v)
		table.Rows = append(table.Rows, []string{a.Name, joinArrow(v.Environments), recovery, lastText, layoutSummary(layouts)})
	}
	return newReply("Apps", nil, table, views), nil
}

// lastBackup is the newest backup of any environment of the app.
func (d *Dispatcher) lastBackup(ctx context.Context, a *release.App) (*release.Backup, error) {
	envs := append([]*release.Environment{}, a.Environments...)
	if a.Recovery != nil {
		envs = append(envs, &release.Environment{Name: release.RecoveryEnv})
	}
	var last *release.Backup
	for _, e := range envs {
		if e == nil {
			continue
		}
		bs, err := d.Backups.ListBackups(ctx, a.Name, e.Name)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b != nil && (last == nil || b.CreatedAt.After(last.CreatedAt)) {
				last = b
			}
		}
	}
	return last, nil
}

func joinArrow(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += " -> "
		}
		s += n
	}
	return s
}

// layoutSummary is one line for the layouts of an app's environments: the
// layout when they share it, each environment's otherwise.
func layoutSummary(rs []release.LayoutReport) string {
	same := len(rs) > 0
	for _, r := range rs {
		if r.Error != "" || r.Layout != rs[0].Layout {
			same = false
		}
	}
	if same {
		return rs[0].Layout.String()
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Env + ": " + r.Text()
	}
	return strings.Join(parts, "; ")
}
