package bot

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/relbot/relbot/commands"
)

// Socket Mode uses the same handlers: a slash command and a click arrive
// as envelopes, are acknowledged, and answered through response_url; a
// retried envelope takes effect once.
func TestSocketMode(t *testing.T) {
	acks := make(chan string, 10)
	var f *fakeSlack
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	f = newFakeSlack(t, func(c slacktest.Customize) {
		c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws://" + f.ServerAddr + "/socket"})
		})
		c.Handle("/socket", func(w http.ResponseWriter, r *http.Request) {
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				t.Logf("upgrade %s: %v", r.URL, err)
				return
			}
			defer conn.Close()
			go func() {
				for {
					var ack struct {
						EnvelopeID string `json:"envelope_id"`
					}
					if err := conn.ReadJSON(&ack); err != nil {
						return
					}
					acks <- ack.EnvelopeID
				}
			}()
			conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
			form, _ := url.ParseQuery(string(fixture(t, f, "slash_command.form")))
			cmd := map[string]string{}
			for k := range form {
				cmd[k] = form.Get(k)
			}
			conn.WriteJSON(map[string]any{"type": "slash_commands", "envelope_id": "env-1", "payload": cmd, "accepts_response_payload": true})
			click := json.RawMessage(fixture(t, f, "block_actions_approve.json"))
			conn.WriteJSON(map[string]any{"type": "interactive", "envelope_id": "env-2", "payload": click})
			conn.WriteJSON(map[string]any{"type": "interactive", "envelope_id": "env-3", "payload": click, "retry_attempt": 1, "retry_reason": "timeout"})
			<-r.Context().Done()
		})
	})
	svc := newFakeService()
	b := New(Config{API: slack.New("xoxb-test", slack.OptionAPIURL(f.GetAPIURL()), slack.OptionAppLevelToken("xapp-1-test")),
		Dispatcher: &commands.Dispatcher{Services: services(svc)}, Runner: svc, Dedupe: newMemDedupe()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.RunSocketMode(ctx, slack.New("xoxb-test", slack.OptionAPIURL(f.GetAPIURL()), slack.OptionAppLevelToken("xapp-1-test")))
	}()
	got := map[string]bool{}
	for len(got) < 3 {
		select {
		case id := <-acks:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("acks: %v", got)
		}
	}
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	readyz := func() (int, string) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("/readyz while connected: %d %q", code, body)
	}
	waitFor(t, "both answers", func() bool { return len(f.Calls("response/")) == 2 })
	time.Sleep(100 * time.Millisecond)
	var answers []string
	for _, c := range f.Calls("response/") {
		answers = append(answers, c.Body)
	}
	all := strings.Join(answers, "\n")
	if !strings.Contains(all, "U01AAA approved crm-r5") || !strings.Contains(all, "U09MALLORY may not approve") || len(answers) != 2 {
		t.Fatalf("answers:\n%s", all)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("socket mode did not stop")
	}
	// Slack can no longer reach this process: it is not ready.
	if code, body := readyz(); code != 503 || body != "the Slack Socket Mode connection is not up\n" {
		t.Fatalf("/readyz without the connection: %d %q", code, body)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = b.Shutdown(sctx)
}
