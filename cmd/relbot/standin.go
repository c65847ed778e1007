package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/slack-go/slack/slacktest"
)

// standIn is the built-in stand-in for Slack's Web API (slack-go's
// slacktest) that the demo and `bench slack` point relbot at: it answers
// every call relbot makes and remembers what was posted, so nothing leaves
// the machine.
type standIn struct {
	*slacktest.Server
	mu    sync.Mutex
	posts []slackPost
	ts    int
}

// Who the stand-in says the bot is.
const (
	standInBot  = "relbot"
	standInTeam = "relbot-demo"
)

// slackPost is one message relbot sent: to a channel, a thread, a user,
// or a response_url.
type slackPost struct {
	Method  string // chat.postMessage, chat.update, chat.postEphemeral, views.open, views.update, views.publish, conversations.open, response
	Channel string
	Thread  string
	TS      string
	Text    string
	Blocks  string
	Form    url.Values // the request's form, for form-encoded calls
	Body    string     // the raw request
}

// newStandIn starts the stand-in; extra registers more endpoints (a test's
// usergroups).
func newStandIn(extra ...slacktest.Binder) *standIn {
	s := &standIn{}
	record := func(method string) slacktest.Binder {
		return func(c slacktest.Customize) {
			c.Handle("/"+method, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				p := slackPost{Method: strings.TrimSuffix(method, "/"), Body: string(body)}
				if form, err := url.ParseQuery(string(body)); err == nil && form.Get("channel") != "" {
					p.Form = form
					p.Channel, p.Thread, p.TS, p.Text, p.Blocks = form.Get("channel"), form.Get("thread_ts"), form.Get("ts"), form.Get("text"), form.Get("blocks")
				} else {
					var m struct {
						Text   string          `json:"text"`
						Blocks json.RawMessage `json:"blocks"`
					}
					_ = json.Unmarshal(body, &m)
					p.Text, p.Blocks = m.Text, string(m.Blocks)
				}
				s.mu.Lock()
				if p.Method == "chat.postMessage" {
					s.ts++
					p.TS = fmt.Sprintf("1700000000.%06d", s.ts)
				}
				s.posts = append(s.posts, p)
				s.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				answer := map[string]any{"ok": true, "channel": orDefault(p.Channel, "D0DIRECT"), "ts": orDefault(p.TS, "1700000000.000001")}
				switch p.Method {
				case "conversations.open":
					answer["channel"] = map[string]any{"id": "D0DIRECT"} // a direct message channel is an object here
				case "views.open", "views.update", "views.publish":
					answer["view"] = map[string]any{"id": "V0STANDIN", "hash": "h1"}
				}
				json.NewEncoder(w).Encode(answer)
			})
		}
	}
	binders := append([]slacktest.Binder(nil), extra...)
	// relbot serve checks its token with auth.test at start; the stand-in
	// accepts any as the demo's bot. (A test's own auth.test, in extra,
	// is registered first and wins.)
	binders = append(binders, func(c slacktest.Customize) {
		c.Handle("/auth.test", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"ok": true, "url": "https://relbot-demo.slack.com/", "team": standInTeam, "team_id": "T0DEMO",
				"user": standInBot, "user_id": "U0RELBOT", "bot_id": "B0RELBOT",
			})
		})
	})
	for _, m := range []string{"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update", "views.publish", "conversations.open", "response/"} {
		binders = append(binders, record(m))
	}
	s.Server = slacktest.NewTestServer(binders...)
	s.Start()
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// since returns the posts after the first n.
func (s *standIn) since(n int) []slackPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackPost(nil), s.posts[min(n, len(s.posts)):]...)
}

func (s *standIn) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.posts)
}

// find returns the posts of method whose request mentions contains.
func (s *standIn) find(method, contains string) []slackPost {
	var out []slackPost
	for _, p := range s.since(0) {
		text := p.Body
		for _, vs := range p.Form {
			text += "\n" + strings.Join(vs, "\n")
		}
		if p.Method == method && strings.Contains(text, contains) {
			out = append(out, p)
		}
	}
	return out
}

// lastMessage is the latest version (posted, then updated) of a release's
// message in channel, as Block Kit.
func (s *standIn) lastMessage(channel, release string) string {
	last := ""
	for _, p := range s.since(0) {
		if p.Channel == channel && strings.HasPrefix(p.Text, release+" ") &&
			((p.Method == "chat.postMessage" && p.Thread == "") || p.Method == "chat.update") {
			last = p.Blocks
		}
	}
	return last
}

// responseURL is where relbot's answers to commands and clicks go.
func (s *standIn) responseURL() string { return s.GetAPIURL() + "response/" }

// blocksText renders Block Kit as the lines a reader sees, each text
// object through render (mrkdwn as Slack shows it; nil: as it is).
func blocksText(blocks string, render func(string) string) []string {
	var bs []map[string]any
	if json.Unmarshal([]byte(blocks), &bs) != nil {
		return nil
	}
	if render == nil {
		render = func(s string) string { return s }
	}
	var out []string
	text := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			if t, ok := m["text"].(string); ok {
				if m["type"] == "plain_text" {
					return t
				}
				return render(t)
			}
		}
		return ""
	}
	for _, b := range bs {
		if t := text(b["text"]); t != "" {
			if b["type"] == "header" {
				t = render("*" + t + "*")
			}
			out = append(out, strings.Split(strings.Trim(t, "\n"), "\n")...)
		}
		if fs, ok := b["fields"].([]any); ok {
			for _, f := range fs {
				// A field is "*Name*\nvalue": one line, "Name: value".
				out = append(out, strings.ReplaceAll(strings.Replace(strings.TrimSpace(text(f)), "\n", ": ", 1), "\n", " "))
			}
		}
		if es, ok := b["elements"].([]any); ok {
			var parts []string
			for _, e := range es {
				if em, ok := e.(map[string]any); ok {
					if t := text(em["text"]); t != "" && em["type"] == "button" {
						parts = append(parts, "["+t+"]")
					} else if t, ok := em["text"].(string); ok {
						parts = append(parts, render(t))
					}
				}
			}
			if len(parts) > 0 {
				out = append(out, strings.Join(parts, "  "))
			}
		}
	}
	return out
}
