package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/scheduler"
)

func TestMrkdwnRendersAsSlackShowsIt(t *testing.T) {
	plain := mrkdwnRenderer{names: map[string]string{"U01AAA": "bob"}}
	for in, want := range map[string]string{
		"*Approvals:* 1 of 2 — <@U01AAA>":                                           "Approvals: 1 of 2 — @bob",
		"waiting for <@U09ZZZ> and <!subteam^S0OPS1234>":                            "waiting for @U09ZZZ and @S0OPS1234",
		"_… 3 more lines not shown_":                                                "… 3 more lines not shown",
		"run `rollback crm-r5` in a terminal":                                       "run rollback crm-r5 in a terminal",
		"development -&gt; staging &amp; &lt;production&gt;":                        "development -> staging & <production>",
		"Starts <!date^1772445600^{date_short_pretty} {time}|2026-03-02 10:00 UTC>": "Starts 2026-03-02 10:00 UTC",
		"see <https://example.com/r/5|the release page> or <https://example.com>":   "see the release page (https://example.com/r/5) or https://example.com",
		"Progress is in <#C0CRMRELEASE>.":                                           "Progress is in #C0CRMRELEASE.",
		":white_check_mark: *Succeeded* in 1m 56s":                                  "✅ Succeeded in 1m 56s",
		"main_desktopRoutes_path stays, 2*3*4 too":                                  "main_desktopRoutes_path stays, 2*3*4 too",
		"Your release failed.\n> 1 of 2 checks failed":                              "Your release failed.\n│ 1 of 2 checks failed",
		"*crm-r5* and *crm-r6*.":                                                    "crm-r5 and crm-r6.",
	} {
		if got := plain.Render(in); got != want {
			t.Errorf("Render(%q)\n = %q\nwant %q", in, got, want)
		}
	}
	block := plain.Render("Output:\n```\nINSERT &gt; 1\n*not bold*\n```")
	if block != "Output:\n\n    INSERT > 1\n    *not bold*\n" {
		t.Errorf("code block = %q", block)
	}
	tty := mrkdwnRenderer{tty: true}
	if got := tty.Render("*bold* `code`"); got != ansiBold+"bold"+ansiReset+" "+ansiCode+"code"+ansiReset {
		t.Errorf("on a TTY: %q", got)
	}
}

// rawMrkdwn finds what a reader should never see of mrkdwn.
var rawMrkdwn = regexp.MustCompile("(^|\\s)\\*\\S|\\S\\*($|\\s)|&gt;|&lt;|&amp;|<!date\\^|<@|<!subteam|```|:white_check_mark:|:x:")

// Every message relbot's Slack renderer records in bot's golden files
// reads, through the demo's printer, without raw mrkdwn.
func TestRecordedMessagesPrintWithoutRawMrkdwn(t *testing.T) {
	files, err := filepath.Glob("../../bot/testdata/*.golden.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded messages (%v)", err)
	}
	r := mrkdwnRenderer{names: demoPeople}
	raw := 0 // what the lines held before rendering: the check is not vacuous
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []struct {
			Text   string          `json:"text"`
			Blocks json.RawMessage `json:"blocks"`
		}
		if data[0] == '{' {
			data = append(append([]byte("["), data...), ']')
		}
		if err := json.Unmarshal(data, &msgs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, m := range msgs {
			for _, l := range blocksText(string(m.Blocks), nil) {
				if rawMrkdwn.MatchString(l) {
					raw++
				}
			}
			for _, l := range slackLines(slackPost{Text: m.Text, Blocks: string(m.Blocks)}, r) {
				if loc := rawMrkdwn.FindStringIndex(l); loc != nil {
					t.Errorf("%s: raw mrkdwn %q in %q", filepath.Base(f), l[loc[0]:loc[1]], l)
				}
			}
		}
	}
	if raw < 10 {
		t.Errorf("only %d raw mrkdwn lines in the recorded messages before rendering: is the check looking?", raw)
	}
}

// The demo prints the channel's messages through the renderer.
func TestDemoPrintsSlackMessagesRendered(t *testing.T) {
	var out bytes.Buffer
	s := &slackDemo{d: &demo{io: Stdio{Out: &out}}, mrkdwn: mrkdwnRenderer{names: demoPeople}}
	blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"*Approvals:* 1 of 2 — <@U01AAA>\nstarted <!date^1772445600^{date_short_pretty} {time}|x> -&gt; done"}}]`
	s.show("relbot", slackPost{Text: "fallback", Blocks: blocks})
	got := out.String()
	if !strings.Contains(got, "relbot | Approvals: 1 of 2 — @bob") || !strings.Contains(got, "relbot | started 2026-03-02 10:00 UTC -> done") {
		t.Errorf("demo printed:\n%s", got)
	}
}

// The scheduler's report in the channel says its title once, in bold.
func TestBackupNoticeTitleOnce(t *testing.T) {
	n := scheduler.BackupNotice{App: "crm", Env: "production", Kind: scheduler.KindBackup, OK: true, Duration: time.Second,
		Backup: &release.Backup{ID: "crm-b12", Size: 1 << 20}}
	text := backupNoticeText(n)
	if c := strings.Count(text, n.Title()); c != 1 {
		t.Errorf("title %q appears %d times in:\n%s", n.Title(), c, text)
	}
	if !strings.HasPrefix(text, "*"+n.Title()+"*\n") {
		t.Errorf("notice does not open with its bold title:\n%s", text)
	}
	n.OK, n.Backup, n.Err = false, nil, "disk full"
	if text := backupNoticeText(n); strings.Count(text, n.Title()) != 1 || !strings.HasPrefix(text, ":rotating_light: ") {
		t.Errorf("failed notice:\n%s", text)
	}
}

// Every emoji relbot's Slack messages use prints as the emoji, not as its
// short code.
func TestEveryEmojiRelbotSendsIsDrawn(t *testing.T) {
	files, _ := filepath.Glob("../../bot/*.go")
	more, _ := filepath.Glob("*.go")
	code := regexp.MustCompile(`:([a-z_]+):`)
	seen := 0
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, lit := range regexp.MustCompile(`"[^"\n]*"`).FindAllString(string(src), -1) {
			for _, m := range code.FindAllStringSubmatch(lit, -1) {
				seen++
				if _, ok := emoji[m[1]]; !ok {
					t.Errorf("%s sends :%s:, which the demo prints raw", f, m[1])
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("found only %d emoji in the senders' source", seen)
	}
}
