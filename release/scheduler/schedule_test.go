package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

func TestSchedulePrevNext(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		spec, now, prev, next string
		period                time.Duration
	}{
		{"0 2 * * *", "2030-05-10T10:00:00Z", "2030-05-10T02:00:00Z", "2030-05-11T02:00:00Z", 24 * time.Hour},
		{"0 2 * * *", "2030-05-10T02:00:00Z", "2030-05-10T02:00:00Z", "2030-05-11T02:00:00Z", 24 * time.Hour},
		{"0 2 * * *", "2030-05-10T01:59:59Z", "2030-05-09T02:00:00Z", "2030-05-10T02:00:00Z", 24 * time.Hour},
		{"CRON_TZ=UTC 0 2 * * *", "2030-05-10T10:00:00Z", "2030-05-10T02:00:00Z", "2030-05-11T02:00:00Z", 24 * time.Hour},
		// 02:00 in Berlin (CEST, UTC+2) is 00:00 UTC.
		{"CRON_TZ=Europe/Berlin 0 2 * * *", "2030-05-10T10:00:00Z", "2030-05-10T00:00:00Z", "2030-05-11T00:00:00Z", 24 * time.Hour},
		{"0 4 * * 0", "2030-05-10T10:00:00Z", "2030-05-05T04:00:00Z", "2030-05-12T04:00:00Z", 7 * 24 * time.Hour},
		{"@daily", "2030-05-10T10:00:00Z", "2030-05-10T00:00:00Z", "2030-05-11T00:00:00Z", 24 * time.Hour},
		{"*/15 * * * *", "2030-05-10T10:07:00Z", "2030-05-10T10:00:00Z", "2030-05-10T10:15:00Z", 15 * time.Minute},
		{"0 0 1 1 *", "2030-05-10T10:00:00Z", "2030-01-01T00:00:00Z", "2031-01-01T00:00:00Z", 365 * 24 * time.Hour},
		{"@every 6h", "2030-05-10T10:00:00Z", "2030-05-10T06:00:00Z", "2030-05-10T12:00:00Z", 6 * time.Hour},
	}
	for _, c := range cases {
		s, err := parseSchedule(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		now := utc(c.now)
		if got := s.prev(now); !got.Equal(utc(c.prev)) {
			t.Errorf("%s: prev(%s) = %v, want %s", c.spec, c.now, got.UTC(), c.prev)
		}
		if got := s.next(now); !got.Equal(utc(c.next)) {
			t.Errorf("%s: next(%s) = %v, want %s", c.spec, c.now, got.UTC(), c.next)
		}
		if got := s.period(utc(c.prev)); got != c.period {
			t.Errorf("%s: period = %v, want %v", c.spec, got, c.period)
		}
	}
	if _, err := parseSchedule("61 * * * *"); err == nil || !strings.Contains(err.Error(), "61 * * * *") {
		t.Errorf("bad spec: %v", err)
	}
	never, _ := parseSchedule("0 0 30 2 *")
	if got := never.prev(utc("2030-05-10T10:00:00Z")); !got.IsZero() {
		t.Errorf("30 February: prev = %v", got)
	}
}

func TestClaimKey(t *testing.T) {
	tick := time.Date(2030, 5, 10, 4, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	if got, want := ClaimKey("crm", "production", KindBackup, tick), "schedule:crm/production:backup:2030-05-10T02:00:00Z"; got != want {
		t.Errorf("ClaimKey = %s, want %s", got, want)
	}
}

// TestNoticeSizesAreIEC: the channel's backup notices use the units of
// every other transport (release.Bytes), not SI units of their own.
func TestNoticeSizesAreIEC(t *testing.T) {
	n := BackupNotice{App: "crm", Env: "production", Kind: KindBackup, OK: true, Kept: 1, Keep: 3,
		Backup: &release.Backup{ID: "crm-b1", Size: 3 << 30, Manifest: release.BackupSummary{Tables: 1, Rows: 1, Files: 1, FileBytes: 1536}}}
	text := n.Text()
	for _, want := range []string{"size 3.0 GiB", "1 table, 1 row, 1 file (1.5 KiB)", "1 backup kept (keep 3)"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{" GB", " MB", " kB", "(s)"} {
		if strings.Contains(text, bad) {
			t.Errorf("notice says %q:\n%s", bad, text)
		}
	}
}
