package commands

import (
	"regexp"
	"time"
)

var (
	clockRE = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):([0-5][0-9])$`)
	dateRE  = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// Layouts read in the app's time zone; RFC 3339 carries its own offset.
var localLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

// validAt reports whether s has one of the shapes ParseAt reads, whatever
// the time now is.
func validAt(s string) bool {
	_, err := ParseAt(s, time.Time{}, time.UTC)
	return err == nil
}

// ParseAt resolves a deploy --at value: "now"; "22:00", the next such time
// in loc (today if still ahead of now, else tomorrow); "2026-12-01 22:00"
// in loc; or RFC 3339 with its own offset. A moment before now is refused.
// Errors are *UsageError.
func ParseAt(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	if s == "now" {
		return now, nil
	}
	if m := clockRE.FindStringSubmatch(s); m != nil {
		t, _ := time.ParseInLocation("15:04", s, loc)
		n := now.In(loc)
		at := time.Date(n.Year(), n.Month(), n.Day(), t.Hour(), t.Minute(), 0, 0, loc)
		if !at.After(now) {
			at = time.Date(n.Year(), n.Month(), n.Day()+1, t.Hour(), t.Minute(), 0, 0, loc)
		}
		return at, nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		for _, layout := range localLayouts {
			if at, err = time.ParseInLocation(layout, s, loc); err == nil {
				break
			}
		}
	}
	if err != nil {
		return time.Time{}, usageErr("deploy", "%s is not a time: use 22:00, \"2026-12-01 22:00\" or RFC 3339 (2026-12-01T22:00:00+01:00)", quoteShort(s))
	}
	if at.Before(now) {
		return time.Time{}, usageErr("deploy", "--at %s is in the past", s)
	}
	return at, nil
}
