package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// schedule is one parsed cron line of apps.yaml.
type schedule struct {
	spec  string
	sched cron.Schedule
}

// parseSchedule reads a cron line with robfig/cron's standard parser (five
// fields or a descriptor such as @daily or @every 6h), with or without a
// CRON_TZ= (or TZ=) prefix. config already pins apps.yaml lines to the app's
// zone; a line without one is read in UTC, so every replica agrees on the
// instants whatever its local zone.
func parseSchedule(spec string) (*schedule, error) {
	spec = strings.TrimSpace(spec)
	full := spec
	if !strings.HasPrefix(full, "CRON_TZ=") && !strings.HasPrefix(full, "TZ=") {
		full = "CRON_TZ=UTC " + full
	}
	s, err := cron.ParseStandard(full)
	if err != nil {
		return nil, fmt.Errorf("cron schedule %q: %w", spec, err)
	}
	return &schedule{spec: spec, sched: s}, nil
}

// maxLookBack bounds the search for the previous tick: a schedule that has
// not fired in that long (30 February…) has no previous tick.
const maxLookBack = 6 * 366 * 24 * time.Hour

// prev returns the latest tick at or before now, or the zero time when
// there is none within maxLookBack. Ticks are whole seconds.
func (s *schedule) prev(now time.Time) time.Time {
	if cd, ok := s.sched.(cron.ConstantDelaySchedule); ok {
		// @every D: anchor the ticks to the zero time, so every replica
		// names the same instants whenever it started.
		return now.Truncate(cd.Delay)
	}
	// Step back, doubling, until a tick lies between now-d and now; then
	// walk forward to the last one not after now.
	for d := time.Minute; d <= 2*maxLookBack; d *= 2 {
		t := s.sched.Next(now.Add(-d))
		if t.IsZero() || t.After(now) {
			continue
		}
		for {
			n := s.sched.Next(t)
			if n.IsZero() || n.After(now) {
				return t
			}
			t = n
		}
	}
	return time.Time{}
}

// next returns the first tick after now (zero if none).
func (s *schedule) next(now time.Time) time.Time {
	if cd, ok := s.sched.(cron.ConstantDelaySchedule); ok {
		return now.Truncate(cd.Delay).Add(cd.Delay)
	}
	return s.sched.Next(now)
}

// period returns the time from tick to the tick after it.
func (s *schedule) period(tick time.Time) time.Duration {
	n := s.next(tick)
	if n.IsZero() {
		return 0
	}
	return n.Sub(tick)
}
