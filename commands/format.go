package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// humanDuration rounds to what a reader cares about at that scale:
// "350ms", "4.2s", "3m12s", "1h5m".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// count prints an integer with thousands separators: "1,234,567".
func count[T int | int64](n T) string { return release.Number(n) }

// Ago prints how long before now t was, coarsely: "just now", "5m ago",
// "3h ago", "2d ago".
func Ago(t, now time.Time) string { return ago(t, now) }

func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
