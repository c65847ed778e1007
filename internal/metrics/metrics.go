// Package metrics is relbot's /metrics: what operators graph and alert on.
// Figures of the shared records (the last backup and verify of each
// environment, open and interrupted releases) are read from the store at
// each scrape, so every replica reports the same; figures of this
// process's own work (releases it ran, step durations, Slack API calls,
// its work queue and ack latency) are counted as they happen.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relbot/relbot/release"
)

// Backups and Releases are the shared records a scrape reads
// (release.Store and release.ReleaseStore have them).
type (
	Backups interface {
		ListBackups(ctx context.Context, app, env string) ([]*release.Backup, error)
	}
	Releases interface {
		ListReleases(ctx context.Context, app, env string) ([]*release.Release, error)
	}
)

// Metrics holds relbot's collectors in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	releases *prometheus.CounterVec
	steps    *prometheus.HistogramVec
	slack    *prometheus.CounterVec
	limited  *prometheus.CounterVec
	ack      *prometheus.HistogramVec
	runs     *prometheus.CounterVec
	log      *slog.Logger
}

// Records reports, at each scrape, the last backups and verifies and the
// open releases of every environment of apps.
func (m *Metrics) Records(backups Backups, releases Releases, apps []*release.App) {
	m.reg.MustRegister(&recordsCollector{backups: backups, releases: releases, apps: apps, log: m.log})
}

// New registers the collectors of this process's work; queueDepth, when
// set, reads the work queue at each scrape. Records adds the shared ones.
func New(queueDepth func() int, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.releases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relbot_releases_total", Help: "Releases this process ran to an end, by app, environment, kind and outcome.",
	}, []string{"app", "env", "kind", "outcome"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "relbot_release_step_duration_seconds", Help: "How long each release step took, by step and outcome.",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"app", "env", "step", "outcome"})
	m.slack = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relbot_slack_api_calls_total", Help: "Calls to Slack's Web API, by method and result (ok, error, rate_limited, unreachable).",
	}, []string{"method", "result"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relbot_slack_rate_limited_total", Help: "Slack API answers of 429 (rate limited), by method.",
	}, []string{"method"})
	m.ack = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "relbot_slack_ack_seconds", Help: "From a Slack delivery's arrival to its acknowledgement, by kind (command, interaction, event).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"kind"})
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relbot_scheduled_runs_total", Help: "Scheduled backups and verifies this process ran, by app, environment, kind (backup, verify) and result (ok, failed).",
	}, []string{"app", "env", "kind", "result"})
	m.reg.MustRegister(m.releases, m.steps, m.slack, m.limited, m.ack, m.runs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queueDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relbot_work_queue_depth", Help: "Slack commands and clicks waiting for a worker in this process.",
		}, func() float64 { return float64(queueDepth()) }))
	}
	return m
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is for tests and for collectors added by callers.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveAck records how long a Slack delivery waited for its ack.
func (m *Metrics) ObserveAck(kind string, d time.Duration) {
	m.ack.WithLabelValues(kind).Observe(d.Seconds())
}

// ScheduledRun counts one scheduled backup or verify.
func (m *Metrics) ScheduledRun(app, env, kind string, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.runs.WithLabelValues(app, env, kind, result).Inc()
}

// Notifier counts releases and step durations from the events the
// release service sends, then passes each event on to next.
func (m *Metrics) Notifier(next release.Notifier) release.Notifier {
	return &notifier{m: m, next: next}
}

type notifier struct {
	m    *Metrics
	next release.Notifier
}

func (n *notifier) ReleaseChanged(ctx context.Context, r *release.Release, e release.Event) {
	switch e.Kind {
	case release.EventSucceeded, release.EventFailed, release.EventInterrupted, release.EventRejected, release.EventCancelled, release.EventExpired:
		n.m.releases.WithLabelValues(r.App, r.Env, string(r.Kind), string(e.Kind)).Inc()
	case release.EventStepFinished:
		for _, s := range r.Steps {
			if s.Name == e.Step && s.Started != nil && s.Ended != nil {
				n.m.steps.WithLabelValues(r.App, r.Env, s.Name, string(s.State)).Observe(s.Ended.Sub(*s.Started).Seconds())
			}
		}
	}
	if n.next != nil {
		n.next.ReleaseChanged(ctx, r, e)
	}
}

// SlackTransport counts every Slack Web API call going through base.
func (m *Metrics) SlackTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		method := req.URL.Path
		if i := strings.LastIndex(method, "/"); i >= 0 {
			method = method[i+1:]
		}
		res, err := base.RoundTrip(req)
		result := "ok"
		switch {
		case err != nil:
			result = "unreachable"
		case res.StatusCode == http.StatusTooManyRequests:
			result = "rate_limited"
			m.limited.WithLabelValues(method).Inc()
		case res.StatusCode >= 400:
			result = "error"
		}
		m.slack.WithLabelValues(method, result).Inc()
		return res, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// recordsCollector reads the shared records at each scrape.
type recordsCollector struct {
	backups  Backups
	releases Releases
	apps     []*release.App
	log      *slog.Logger
}

var (
	lastBackupDesc = prometheus.NewDesc("relbot_last_backup_timestamp_seconds",
		"When the newest backup of the environment was taken (any kind), as a Unix time; alert when it is too old.", []string{"app", "env"}, nil)
	lastBackupSizeDesc = prometheus.NewDesc("relbot_last_backup_size_bytes",
		"The size of the newest backup's archive.", []string{"app", "env"}, nil)
	lastBackupDurationDesc = prometheus.NewDesc("relbot_last_backup_duration_seconds",
		"How long the newest backup took.", []string{"app", "env"}, nil)
	lastVerifyDesc = prometheus.NewDesc("relbot_last_verified_backup_timestamp_seconds",
		"When the newest backup whose verify passed was taken, as a Unix time.", []string{"app", "env"}, nil)
	lastVerifyAtDesc = prometheus.NewDesc("relbot_last_verify_timestamp_seconds",
		"When a verify of the environment's backups last passed, as a Unix time.", []string{"app", "env"}, nil)
	backupsDesc = prometheus.NewDesc("relbot_backups", "Backups the environment keeps, by kind.", []string{"app", "env", "kind"}, nil)
	openDesc    = prometheus.NewDesc("relbot_releases_open",
		"Releases not ended, by state (awaiting approval, scheduled, running, interrupted).", []string{"app", "env", "state"}, nil)
	lastReleaseDesc = prometheus.NewDesc("relbot_last_release_failed",
		"1 when the environment's newest ended release failed or was interrupted, else 0.", []string{"app", "env"}, nil)
	scrapeErrorsDesc = prometheus.NewDesc("relbot_records_scrape_errors",
		"Environments whose records could not be read during this scrape.", nil, nil)
)

func (c *recordsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lastBackupDesc, lastBackupSizeDesc, lastBackupDurationDesc, lastVerifyDesc, lastVerifyAtDesc,
		backupsDesc, openDesc, lastReleaseDesc, scrapeErrorsDesc} {
		ch <- d
	}
}

func (c *recordsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := 0
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, a := range c.apps {
		for _, e := range a.Environments {
			backups, err := c.backups.ListBackups(ctx, a.Name, e.Name)
			if err != nil {
				failed++
				c.log.Warn("metrics: cannot read backups", "app", a.Name, "env", e.Name, "err", err)
				continue
			}
			kinds := map[release.BackupKind]int{}
			var verifiedAt time.Time
			for i, b := range backups { // newest first
				kinds[b.Kind]++
				if i == 0 {
					gauge(lastBackupDesc, unix(b.CreatedAt), a.Name, e.Name)
					gauge(lastBackupSizeDesc, float64(b.Size), a.Name, e.Name)
					gauge(lastBackupDurationDesc, b.Manifest.Duration.Seconds(), a.Name, e.Name)
				}
				if b.VerifiedAt != nil {
					if verifiedAt.IsZero() {
						gauge(lastVerifyDesc, unix(b.CreatedAt), a.Name, e.Name)
					}
					if b.VerifiedAt.After(verifiedAt) {
						verifiedAt = *b.VerifiedAt
					}
				}
			}
			if !verifiedAt.IsZero() {
				gauge(lastVerifyAtDesc, unix(verifiedAt), a.Name, e.Name)
			}
			for k, n := range kinds {
				gauge(backupsDesc, float64(n), a.Name, e.Name, string(k))
			}
			rs, err := c.releases.ListReleases(ctx, a.Name, e.Name)
			if err != nil {
				failed++
				c.log.Warn("metrics: cannot read releases", "app", a.Name, "env", e.Name, "err", err)
				continue
			}
			open := map[release.State]int{release.StateAwaitingApproval: 0, release.StateScheduled: 0, release.StateRunning: 0, release.StateInterrupted: 0}
			lastFailed := -1.0
			for _, r := range rs { // newest first
				if r.State.Open() {
					open[r.State]++
					continue
				}
				if lastFailed < 0 && (r.State == release.StateSucceeded || r.State == release.StateFailed || r.State == release.StateRolledBack) {
					lastFailed = 0
					if r.State == release.StateFailed {
						lastFailed = 1
					}
				}
			}
			if open[release.StateInterrupted] > 0 {
				lastFailed = 1
			}
			for s, n := range open {
				gauge(openDesc, float64(n), a.Name, e.Name, string(s))
			}
			if lastFailed >= 0 {
				gauge(lastReleaseDesc, lastFailed, a.Name, e.Name)
			}
		}
	}
	gauge(scrapeErrorsDesc, float64(failed))
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
