package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/release"
)

// signedPost sends body to url signed the way Slack signs its requests.
func signedPost(ctx context.Context, client *http.Client, u, secret, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return client.Do(req)
}

// slackDemo is relbot serve on the sample app with the stand-in Slack, and
// the users who type and click in the channel.
type slackDemo struct {
	d       *demo
	slack   *standIn
	base    string
	secret  string
	client  *http.Client
	stop    func()
	done    chan int
	clicks  int
	channel string
	mrkdwn  mrkdwnRenderer // how the channel's messages are printed
}

// demoPeople are the names the channel shows for the demo's Slack users.
var demoPeople = map[string]string{"U01AAA": "bob", "U02BBB": "carol", "U03CCC": "dan"}

// person is how the demo's narration names a user: the channel's name
// with the Slack ID, or the terminal name as it is.
func person(user string) string {
	if n, ok := demoPeople[user]; ok {
		return n + " (" + user + ")"
	}
	return user
}

// name is how the channel names a user.
func name(user string) string {
	if n, ok := demoPeople[user]; ok {
		return n
	}
	return user
}

// isTTY reports whether w is a terminal, where styles may be printed.
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const demoSigningSecret = "relbot-demo-signing-secret"

// startSlack starts relbot serve against the stand-in, sharing the demo's
// bot database, artifacts and keys.
func (d *demo) startSlack(ctx context.Context, settings *config.Settings, sample *fixtures.Sample, dir string) (*slackDemo, error) {
	stand := newStandIn()
	env, err := terminalEnv(settings, sample, dir)
	if err != nil {
		stand.Stop()
		return nil, err
	}
	for k, v := range map[string]string{"RELBOT_HTTP_ADDR": "127.0.0.1:0", "RELBOT_SLACK_API_URL": stand.GetAPIURL(),
		"SLACK_BOT_TOKEN": "xoxb-demo", "SLACK_SIGNING_SECRET": demoSigningSecret, "RELBOT_LOG_LEVEL": "error"} {
		env[k] = v
	}
	serveCtx, stop := context.WithCancel(ctx)
	watch := &lineWatcher{want: listeningOn + "=", found: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- Run(serveCtx, []string{"serve"}, Stdio{In: strings.NewReader(""), Out: watch, Err: watch}, func(k string) string { return env[k] })
	}()
	s := &slackDemo{d: d, slack: stand, secret: demoSigningSecret, client: &http.Client{Timeout: 10 * time.Second}, stop: stop, done: done, channel: "C0CRMRELEASE",
		mrkdwn: mrkdwnRenderer{tty: isTTY(d.io.Out), names: demoPeople}}
	select {
	case addr := <-watch.found:
		s.base = "http://" + addr
	case code := <-done:
		stop()
		stand.Stop()
		return nil, fmt.Errorf("relbot serve exited %d: %s", code, oneLine(watch.buf.String()))
	case <-time.After(60 * time.Second):
		stop()
		stand.Stop()
		return nil, fmt.Errorf("relbot serve did not start")
	}
	return s, nil
}

func (s *slackDemo) close() {
	s.stop()
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
	}
	s.slack.Stop()
}

// command types a slash command in the channel and shows relbot's answer.
func (s *slackDemo) command(ctx context.Context, user, text string) error {
	fmt.Fprintf(s.d.io.Out, "\n%s> /relbot %s\n", person(user), text)
	body := url.Values{"team_id": {"T0001"}, "channel_id": {s.channel}, "channel_name": {"crm-releases"}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"command": {"/relbot"}, "text": {text}, "response_url": {s.slack.responseURL()}, "trigger_id": {fmt.Sprintf("demo.%d", time.Now().UnixNano())}}
	return s.send(ctx, "/slack/commands", body.Encode(), user)
}

// click presses a button of a release's message.
func (s *slackDemo) click(ctx context.Context, user, action, releaseID string) error {
	s.clicks++
	label := strings.TrimPrefix(action, "relbot_")
	fmt.Fprintf(s.d.io.Out, "\n%s clicks [%s] on %s's message\n", person(user), strings.ToUpper(label[:1])+label[1:], releaseID)
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "username": strings.ToLower(user), "team_id": "T0001"},
		"api_app_id": "A123456", "team": map[string]any{"id": "T0001"}, "channel": map[string]any{"id": s.channel, "name": "crm-releases"},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": s.channel},
		"trigger_id":   fmt.Sprintf("demo.click.%d", s.clicks),
		"response_url": s.slack.responseURL(),
		"actions": []map[string]any{{"action_id": action, "block_id": "release_actions", "type": "button", "value": releaseID,
			"action_ts": fmt.Sprintf("1700000100.%06d", s.clicks)}},
	})
	return s.send(ctx, "/slack/interactions", url.Values{"payload": {string(payload)}}.Encode(), user)
}

// send posts a signed request, then shows what relbot answered the user.
func (s *slackDemo) send(ctx context.Context, path, body, user string) error {
	before := s.slack.count()
	resp, err := signedPost(ctx, s.client, s.base+path, s.secret, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", path, resp.Status)
	}
	fmt.Fprintf(s.d.io.Out, "  (acknowledged at once: %s)\n", resp.Status)
	// The work runs after the ack; its answer arrives on response_url.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range s.slack.since(before) {
			if p.Method == "response" {
				s.show("relbot (to "+name(user)+" only)", p)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer to %s", path)
}

func (s *slackDemo) show(who string, p slackPost) {
	lines := slackLines(p, s.mrkdwn)
	for i, l := range lines {
		if i == demoMaxLines {
			fmt.Fprintf(s.d.io.Out, "  %s | ... (%d more lines)\n", who, len(lines)-i)
			break
		}
		fmt.Fprintf(s.d.io.Out, "  %s | %s\n", who, l)
	}
}

// slackLines is a message as the channel shows it: its blocks, else its
// notification text, with mrkdwn rendered for a terminal.
func slackLines(p slackPost, r mrkdwnRenderer) []string {
	lines := blocksText(p.Blocks, r.Render)
	if len(lines) == 0 {
		lines = strings.Split(strings.Trim(r.Render(p.Text), "\n"), "\n")
	}
	return lines
}

// channel prints what the channel shows now: each message in its latest
// version, thread replies under it, and direct messages apart.
func (s *slackDemo) channelView() {
	posts := s.slack.since(0)
	latest := map[string]slackPost{}
	var order []string
	for _, p := range posts {
		switch {
		case p.Method == "chat.postMessage" && p.Channel == s.channel && p.Thread == "":
			latest[p.TS] = p
			order = append(order, p.TS)
		case p.Method == "chat.update" && p.Channel == s.channel:
			if _, ok := latest[p.TS]; ok {
				latest[p.TS] = p
			}
		}
	}
	fmt.Fprintf(s.d.io.Out, "\n#crm-releases (%s), as the channel shows it now:\n", s.channel)
	for _, ts := range order {
		fmt.Fprintln(s.d.io.Out)
		s.show("relbot", latest[ts])
		for _, p := range posts {
			if p.Method == "chat.postMessage" && p.Thread == ts {
				s.show("  thread", p)
			}
		}
	}
	for _, p := range posts {
		if p.Method == "chat.postMessage" && p.Channel != s.channel {
			fmt.Fprintf(s.d.io.Out, "\ndirect message (%s):\n", p.Channel)
			s.show("relbot", p)
		}
	}
}

// slackRelease requests the production release in Slack and approves it
// by button: the requester's own click is refused, two approvers' clicks
// make it run on the server, and the channel's message follows it.
func (d *demo) slackRelease(ctx context.Context, sys *system, settings *config.Settings, sample *fixtures.Sample, dir, migration string) error {
	d.say("In Slack: the production release is requested with /relbot and approved by button; relbot serve runs it (Slack here is a built-in stand-in)")
	s, err := d.startSlack(ctx, settings, sample, dir)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.command(ctx, "alice", "deploy "+migration+" production --allow-new-plugins"); err != nil {
		return err
	}
	rs, err := sys.releases.ListReleases(ctx, "crm", "production")
	if err != nil || len(rs) == 0 || rs[0].State != release.StateAwaitingApproval {
		return fmt.Errorf("the production release was not requested (%v)", err)
	}
	id := rs[0].ID
	for _, c := range []struct{ user, action string }{{"alice", "relbot_approve"}, {"U01AAA", "relbot_approve"}, {"U02BBB", "relbot_approve"}} {
		if err := s.click(ctx, c.user, c.action, id); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	var r *release.Release
	for time.Now().Before(deadline) {
		if r, err = sys.releases.GetRelease(ctx, id); err != nil {
			return err
		}
		if r.State == release.StateSucceeded || r.State == release.StateFailed {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.State != release.StateSucceeded {
		return fmt.Errorf("production release %s ended %s: %s", id, r.State, r.Reason)
	}
	time.Sleep(1500 * time.Millisecond) // the channel message is updated at most once a second
	s.channelView()
	d.say("production release %s succeeded: requested, approved and followed in Slack", id)
	return nil
}
