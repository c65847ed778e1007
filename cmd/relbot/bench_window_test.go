package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/internal/testenv"
)

// bench window at a tiny size: both ways release the migration through
// the release service, and the figures are printed for the size.
func TestBenchWindowSmoke(t *testing.T) {
	t.Parallel()
	prefix := testenv.UniqueName("bw") + "_"
	t.Cleanup(func() {
		for _, db := range []string{"20m", "20m_classic", "20m_window", "src", "bot"} {
			testenv.DropDatabase(t, prefix+db)
		}
	})
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := benchWindowAs(ctx, Stdio{Out: &out, Err: &errb}, testenv.AdminDSN(), t.TempDir(), prefix, []int64{20 << 20}, false); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []string{"classic-20m (20.0 MiB): held out", "window-20m (20.0 MiB): held out", "prepare apply", "snapshot retention"} {
		if !strings.Contains(text, want) {
			t.Fatalf("output lacks %q:\n%s", want, text)
		}
	}
	// The summary row: the size, both windows, their ratio, both wholes.
	if !regexp.MustCompile(`(?m)^\s*20\.0 MiB\s+[0-9.]+s\s+[0-9.]+s\s+[0-9.]+x\s+[0-9.]+s\s+[0-9.]+s\s+[0-9.]+x$`).MatchString(text) {
		t.Fatalf("no summary row for 20 MiB:\n%s", text)
	}
	// The classic way took its backup inside the window, the window way before it.
	classic := text[strings.Index(text, "classic-20m"):strings.Index(text, "window-20m")]
	if strings.Index(classic, "pre-release backup") < strings.Index(classic, "maintenance on") || strings.Contains(classic, "prepare apply") {
		t.Fatalf("classic plan:\n%s", classic)
	}
	window := text[strings.Index(text, "window-20m"):]
	if strings.Index(window, "pre-release backup") > strings.Index(window, "maintenance on") {
		t.Fatalf("window plan:\n%s", window)
	}
}
