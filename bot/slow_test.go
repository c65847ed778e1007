package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// slowBackups is a backup that takes as long as the test says.
type slowBackups struct {
	*fakeService
	done chan struct{}
}

func (s *slowBackups) CreateBackup(ctx context.Context, actor, app, env string, kind release.BackupKind) (*release.Backup, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &release.Backup{ID: "crm-b7", App: app, Env: env, Kind: kind, CreatedBy: actor, CreatedAt: time.Now(), Size: 1 << 20}, nil
}

// A backup started in Slack answers at once that it is working, holds no
// worker (another command is answered meanwhile), outlives the job
// timeout, and posts its result when it is done.
func TestSlowCommandAnswersNowAndWhenDone(t *testing.T) {
	f := newFakeSlack(t)
	svc := &slowBackups{fakeService: newFakeService(), done: make(chan struct{})}
	s := services(svc.fakeService)
	s.Backups = svc
	_, srv := serveBot(t, f, s, Config{Workers: 1, JobTimeout: 50 * time.Millisecond})
	answered := func(says string) func() bool {
		return func() bool {
			for _, c := range f.Calls("response/") {
				if strings.Contains(c.Body, says) {
					return true
				}
			}
			return false
		}
	}
	post(t, srv, "/slack/commands", command(t, f, "backup create crm production"), testSecret, time.Now())
	waitFor(t, "the working answer", answered("Working on `backup create crm production`"))
	help, _ := url.ParseQuery(string(command(t, f, "help backup")))
	help.Set("trigger_id", "another.trigger") // another command, not a retry of the first
	post(t, srv, "/slack/commands", []byte(help.Encode()), testSecret, time.Now())
	waitFor(t, "help while the backup runs", answered("backup create APP ENV"))
	time.Sleep(200 * time.Millisecond) // past the job timeout
	if answered("crm-b7")() {
		t.Fatal("the backup's result came before it was done")
	}
	close(svc.done)
	waitFor(t, "the backup's result", answered("Backup crm-b7 of crm production created"))
}

// An approver is reminded by DM once per release, with the buttons to act
// from there, however often (and by however many replicas) reminders are
// asked for; a group left unresolved is not messaged.
func TestApprovalRemindersGoOnce(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	b, _ := newTestBot(t, f, svc, nil)
	r := awaitingRelease()
	rem := release.Reminder{Release: r, Approvers: []string{"U03CCC", "U05EEE", "S0GROUP"}, ExpiresAt: time.Now().Add(90 * time.Minute), Missing: 1}
	if n := b.RemindApprovers(context.Background(), []release.Reminder{rem}); n != 2 {
		t.Fatalf("%d reminders sent, want 2", n)
	}
	if n := b.RemindApprovers(context.Background(), []release.Reminder{rem}); n != 0 {
		t.Fatalf("%d reminders sent again", n)
	}
	opened := f.Calls("conversations.open")
	if len(opened) != 2 || opened[0].Form.Get("users") != "U03CCC" || opened[1].Form.Get("users") != "U05EEE" {
		t.Fatalf("direct messages opened: %v", opened)
	}
	for _, p := range f.Calls("chat.postMessage") {
		blocks := p.Form.Get("blocks")
		if p.Form.Get("channel") != "D0DIRECT" || !strings.Contains(blocks, "it needs 1 approval more") ||
			!strings.Contains(blocks, ActionApprove) || !strings.Contains(blocks, "expires in 1h30m") {
			t.Fatalf("reminder: %v", p.Form)
		}
	}
}

// Opening relbot's Home tab publishes it for that user: what waits for
// their approval with an Approve button, and the apps; Slack's retry of
// the event publishes once.
func TestAppHomeOpened(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	for range 2 {
		if resp := post(t, srv, "/slack/events", fixture(t, f, "app_home_opened.json"), testSecret, time.Now()); resp.StatusCode != 200 {
			t.Fatalf("event: %d", resp.StatusCode)
		}
	}
	waitFor(t, "views.publish", func() bool { return len(f.Calls("views.publish")) == 1 })
	time.Sleep(100 * time.Millisecond)
	calls := f.Calls("views.publish")
	if len(calls) != 1 {
		t.Fatalf("%d publishes for one event", len(calls))
	}
	var sent struct {
		UserID string `json:"user_id"`
		View   struct {
			Type   string           `json:"type"`
			Blocks []map[string]any `json:"blocks"`
		} `json:"view"`
	}
	if err := json.Unmarshal([]byte(calls[0].Body), &sent); err != nil {
		t.Fatalf("%v: %s", err, calls[0].Body)
	}
	body := calls[0].Body
	if sent.UserID != "U03CCC" || sent.View.Type != "home" || !strings.Contains(body, "Waiting for your approval") ||
		!strings.Contains(body, "*crm-r5* deploy crm-m7 to crm production") || !strings.Contains(body, ActionApprove) || !strings.Contains(body, "*crm*") {
		t.Fatalf("home tab: %s", body)
	}
}

// deployLacking is a deploy whose check finds variables missing, after
// the time the test says.
type deployLacking struct {
	*fakeService
	took time.Duration
}

func (s *deployLacking) RequestDeploy(_ context.Context, actor, migration, env string, at *time.Time, allowNewPlugins bool) (*release.Release, error) {
	time.Sleep(s.took)
	return nil, &release.Error{Code: release.CodeConflict, Message: env + " lacks variables",
		Err: &release.MissingVariables{App: "crm", Env: env, Migration: migration, Names: []string{"SIGN_URL", "SIGN_TOKEN"}}}
}

// The missing-variables form opens at once while the command's trigger
// lasts; a check that outlasts it offers the form by a button instead,
// whose click (a fresh trigger) opens it.
func TestVariablesFormAfterASlowCheck(t *testing.T) {
	for _, c := range []struct {
		name       string
		took, life time.Duration
	}{{"fast check", 0, 10 * time.Second}, {"slow check", 300 * time.Millisecond, 100 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSlack(t)
			svc := &deployLacking{fakeService: newFakeService(), took: c.took}
			s := services(svc.fakeService)
			s.Releases = svc
			_, srv := serveBot(t, f, s, Config{TriggerLife: c.life})
			post(t, srv, "/slack/commands", command(t, f, "deploy crm-m7 production"), testSecret, time.Now())
			waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 1 })
			refusal := f.Calls("response/")[0].Body
			opened := f.Calls("views.open")
			if c.took == 0 {
				if len(opened) != 1 || strings.Contains(refusal, ActionSupplyVariables) {
					t.Fatalf("fast: %d forms opened, refusal %s", len(opened), refusal)
				}
				return
			}
			if len(opened) != 0 || !strings.Contains(refusal, ActionSupplyVariables) {
				t.Fatalf("slow: %d forms opened with a stale trigger, refusal %s", len(opened), refusal)
			}
			var sent struct {
				Blocks []struct {
					Elements []struct {
						ActionID string `json:"action_id"`
						Value    string `json:"value"`
					} `json:"elements"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal([]byte(refusal), &sent); err != nil {
				t.Fatal(err)
			}
			value := ""
			for _, bl := range sent.Blocks {
				for _, e := range bl.Elements {
					if e.ActionID == ActionSupplyVariables {
						value = e.Value
					}
				}
			}
			click := fmt.Sprintf(`{"type":"block_actions","user":{"id":"U04ALICE"},"channel":{"id":"C0123456789"},"trigger_id":"fresh.trigger","response_url":%q,
				"actions":[{"action_id":%q,"block_id":"variables_actions","type":"button","value":%q,"action_ts":"1700000001.000001"}]}`, f.responseURL(), ActionSupplyVariables, value)
			if resp := post(t, srv, "/slack/interactions", interaction([]byte(click)), testSecret, time.Now()); resp.StatusCode != 200 {
				t.Fatalf("click: %d", resp.StatusCode)
			}
			waitFor(t, "the form", func() bool { return len(f.Calls("views.open")) == 1 })
			body := f.Calls("views.open")[0].Body
			if !strings.Contains(body, "fresh.trigger") || !strings.Contains(body, "SIGN_TOKEN") || !strings.Contains(body, CallbackVariables) {
				t.Fatalf("form: %s", body)
			}
		})
	}
}

// A refused secret set fills the form it opened with the refusal (and
// answers it too): no input is ever shown to someone who may not set it.
func TestSecretFormShowsARefusal(t *testing.T) {
	f := newFakeSlack(t)
	_, srv := newTestBot(t, f, newFakeService(), nil)
	post(t, srv, "/slack/commands", command(t, f, "secret set nosuchapp production TOKEN"), testSecret, time.Now())
	waitFor(t, "views.update", func() bool { return len(f.Calls("views.update")) == 1 })
	body := f.Calls("views.update")[0].Body
	if strings.Contains(body, `"type":"input"`) || !strings.Contains(body, "nosuchapp") {
		t.Fatalf("the refused form: %s", body)
	}
	waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 1 })
}
