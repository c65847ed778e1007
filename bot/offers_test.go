package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// The fake's variables reach the app's table; its restart needs the hook.

func (s *fakeService) SetVariable(_ context.Context, actor, app, env, name, value string) (*release.VariableView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("SetVariable " + actor + " " + app + " " + env + " " + name)
	return &release.VariableView{Name: name, Value: value, InRelbot: true, InApp: true, UpdatedBy: actor}, nil
}

func (s *fakeService) Restart(_ context.Context, actor, app, env string) (*release.RestartResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("Restart " + actor + " " + app + " " + env)
	e, err := s.app.Env(env)
	if err != nil {
		return nil, err
	}
	if !e.HasRestartHook() {
		return nil, release.Errorf(release.CodeConflict, "%s %s has no restart hook in apps.yaml", app, env)
	}
	return &release.RestartResult{App: app, Env: env, By: actor, Duration: 2 * time.Second}, nil
}

// newPlugin is what the fake's deploy finds production lacks.
var newPlugin = release.NewPlugin{Name: "workflow-json-query", PackageName: "@nocobase/plugin-workflow-json-query", Version: "2.2.15", InTarget: "not registered"}

// RequestDeploy refuses without allowNewPlugins, as release.ReleaseService does
// for a migration that brings plugins the target lacks.
func (s *fakeService) RequestDeploy(_ context.Context, actor, migration, env string, at *time.Time, allowNewPlugins bool) (*release.Release, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called(fmt.Sprintf("RequestDeploy %s %s %s at=%v allow=%v", actor, migration, env, at != nil, allowNewPlugins))
	if !allowNewPlugins {
		return nil, &release.Error{Code: release.CodeConflict,
			Message: fmt.Sprintf("%s brings plugins crm %s does not have: %s; install them there first, or deploy %s %s --allow-new-plugins to go on", migration, env, newPlugin, migration, env),
			Err:     &release.NewPluginsRefusal{App: "crm", Env: env, Migration: migration, Plugins: []release.NewPlugin{newPlugin}}}
	}
	r := &release.Release{ID: "crm-r8", App: "crm", Env: env, Kind: release.KindDeploy, Migration: migration, RequestedBy: actor, At: at,
		RequestedAt: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), State: release.StateAwaitingApproval, Channel: "C0123456789", AllowNewPlugins: true}
	s.rels[r.ID] = r
	return copyRelease(r), nil
}

func withRestartHook(svc *fakeService) {
	svc.app.Environments[2].Hooks = map[string]release.Hook{release.HookRestart: {Exec: []string{"kubectl", "rollout", "restart", "deploy/crm"}}}
}

// clickOffer posts a click on a button of a command's reply: action and
// its JSON value, by user.
func clickOffer(t *testing.T, f *fakeSlack, srvPost func([]byte), action string, value any, user string) {
	t.Helper()
	v, _ := json.Marshal(value)
	quoted, _ := json.Marshal(string(v))
	body := fixture(t, f, "block_actions_approve.json")
	body = bytes.ReplaceAll(body, []byte(`"relbot_approve"`), []byte(`"`+action+`"`))
	body = bytes.ReplaceAll(body, []byte(`"value": "crm-r5"`), append([]byte(`"value": `), quoted...))
	body = bytes.ReplaceAll(body, []byte("U09MALLORY"), []byte(user))
	clicks++ // each click its own action_ts: Slack's retries share one
	body = bytes.ReplaceAll(body, []byte("1700000012.345678"), []byte(fmt.Sprintf("1700000100.%06d", clicks)))
	srvPost(interaction(body))
}

var clicks int

// typed is a slash command with text, its own trigger_id (the dedupe key).
func typed(t *testing.T, f *fakeSlack, text string) []byte {
	t.Helper()
	form, err := url.ParseQuery(string(command(t, f, text)))
	if err != nil {
		t.Fatal(err)
	}
	clicks++
	form.Set("trigger_id", fmt.Sprintf("13345224609.738474920.%d", clicks))
	return []byte(form.Encode())
}

// buttonValue finds the value of the button with action id in a response.
func buttonValue(t *testing.T, body, action string) string {
	t.Helper()
	var m struct {
		Blocks []struct {
			Type     string `json:"type"`
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
				Confirm  any    `json:"confirm"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, b := range m.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == action {
				if e.Confirm == nil {
					t.Fatalf("button %s asks no confirmation", action)
				}
				return e.Value
			}
		}
	}
	return ""
}

// var set in Slack says the app must be restarted and offers a button
// where the environment has a restart hook; the click runs restart as
// the clicking user. Without a hook: said, no button.
func TestVarSetOffersRestart(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	withRestartHook(svc)
	_, srv := newTestBot(t, f, svc, nil)
	send := func(path string) func([]byte) {
		return func(b []byte) {
			if resp := post(t, srv, path, b, testSecret, time.Now()); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}

	send("/slack/commands")(typed(t, f, "var set crm staging API_URL=https://x.example"))
	waitFor(t, "the staging answer", func() bool { return len(f.Calls("response/")) == 1 })
	ans := f.Calls("response/")[0].Body
	if !strings.Contains(ans, "must be restarted to see the change") || !strings.Contains(ans, "crm staging has no restart hook") || buttonValue(t, ans, ActionRestart) != "" {
		t.Fatalf("staging answer: %s", ans)
	}

	send("/slack/commands")(typed(t, f, "var set crm production API_URL=https://x.example"))
	waitFor(t, "the production answer", func() bool { return len(f.Calls("response/")) == 2 })
	ans = f.Calls("response/")[1].Body
	value := buttonValue(t, ans, ActionRestart)
	if value != `{"app":"crm","env":"production"}` || !strings.Contains(ans, "restart crm production runs its restart hook") {
		t.Fatalf("production answer (button value %q): %s", value, ans)
	}

	clickOffer(t, f, send("/slack/interactions"), ActionRestart, restartValue{App: "crm", Env: "production"}, "U03CCC")
	waitFor(t, "the restart", func() bool { return len(f.Calls("response/")) == 3 })
	if ans := f.Calls("response/")[2].Body; !strings.Contains(ans, "crm production restarted by U03CCC") || !strings.Contains(ans, `"response_type":"in_channel"`) {
		t.Fatalf("restart answer: %s", ans)
	}
	// A forged or stale value changes nothing.
	clickOffer(t, f, send("/slack/interactions"), ActionRestart, map[string]string{"app": "crm"}, "U03CCC")
	waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 4 })
	if ans := f.Calls("response/")[3].Body; !strings.Contains(ans, "names no environment") {
		t.Fatalf("bad value: %s", ans)
	}
	var restarts []string
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "Restart") {
			restarts = append(restarts, c)
		}
	}
	if strings.Join(restarts, "; ") != "Restart U03CCC crm production" {
		t.Fatalf("restarts: %v", restarts)
	}
}

// A deploy refused for new plugins shows them with a confirmation button;
// the click requests the deploy with the choice recorded, keeping --at.
// The command text's --allow-new-plugins does the same without a click.
func TestDeployNewPluginsConfirmation(t *testing.T) {
	f := newFakeSlack(t)
	svc := newFakeService()
	_, srv := newTestBot(t, f, svc, nil)
	send := func(path string) func([]byte) {
		return func(b []byte) {
			if resp := post(t, srv, path, b, testSecret, time.Now()); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	send("/slack/commands")(typed(t, f, "deploy crm-m7 production --at 22:00"))
	waitFor(t, "the refusal", func() bool { return len(f.Calls("response/")) == 1 })
	ans := f.Calls("response/")[0].Body
	value := buttonValue(t, ans, ActionDeployNewPlugins)
	if value != `{"migration":"crm-m7","env":"production","at":"22:00"}` || !strings.Contains(ans, "workflow-json-query (@nocobase/plugin-workflow-json-query 2.2.15): not registered in the target") ||
		!strings.Contains(ans, `"response_type":"ephemeral"`) {
		t.Fatalf("refusal (button value %q): %s", value, ans)
	}

	var v deployValue
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		t.Fatal(err)
	}
	clickOffer(t, f, send("/slack/interactions"), ActionDeployNewPlugins, v, "U01AAA")
	waitFor(t, "the request", func() bool { return len(f.Calls("response/")) == 2 })
	if ans := f.Calls("response/")[1].Body; !strings.Contains(ans, "Release crm-r8 requested") || !strings.Contains(ans, "awaiting approval") {
		t.Fatalf("request answer: %s", ans)
	}

	send("/slack/commands")(typed(t, f, "deploy crm-m7 production --allow-new-plugins"))
	waitFor(t, "the typed request", func() bool { return len(f.Calls("response/")) == 3 })

	var deploys []string
	for _, c := range svc.Calls() {
		if strings.HasPrefix(c, "RequestDeploy") {
			deploys = append(deploys, c)
		}
	}
	want := []string{"RequestDeploy U01AAA crm-m7 production at=true allow=false", "RequestDeploy U01AAA crm-m7 production at=true allow=true",
		"RequestDeploy U01AAA crm-m7 production at=false allow=true"}
	if strings.Join(deploys, "; ") != strings.Join(want, "; ") {
		t.Fatalf("deploys:\n%v\nwant\n%v", deploys, want)
	}
}

// The exact Block Kit of the offers and of a release that succeeded
// without a restart hook and with new plugins allowed.
func TestOffersGolden(t *testing.T) {
	rep := commands.Reply{Title: "Variable API_URL of crm production set", Public: true,
		Text:    "Variable API_URL of crm production set\n  Value: https://x.example\n  Where: relbot and the app's own variables table\nThe app must be restarted to see the change (it reads its variables at start): restart crm production runs its restart hook.",
		Restart: &commands.RestartOffer{App: "crm", Env: "production"}}
	m := RenderResult(rep, nil)
	checkLimits(t, m)
	golden(t, "reply_var_set_restart", m)

	err := &release.Error{Code: release.CodeConflict, Message: "crm-m7 brings plugins crm production does not have: " + newPlugin.String() + "; install them there first, or deploy crm-m7 production --allow-new-plugins to go on"}
	m = RenderResult(commands.Reply{NewPlugins: &commands.NewPluginsOffer{Migration: "crm-m7", Env: "production", Plugins: []release.NewPlugin{newPlugin,
		{Name: "map", PackageName: "@nocobase/plugin-map", Version: "2.2.15", InTarget: "installed but disabled"}}}}, err)
	checkLimits(t, m)
	golden(t, "reply_deploy_new_plugins", m)

	r := releaseIn("succeeded")
	r.Env, r.AllowNewPlugins = "staging", true
	end := *r.Steps[4].Ended
	r.Steps = append(r.Steps[:5], append([]release.Step{{Name: release.StepRestart, State: release.StepSkipped, Started: &end, Ended: &end}}, r.Steps[5:]...)...)
	m = RenderRelease(r, policy)
	checkLimits(t, m)
	golden(t, "release_succeeded_restart_needed", m)
}
