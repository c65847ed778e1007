package bot

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// Slack's Block Kit limits, in characters
// (https://docs.slack.dev/reference/block-kit): what Slack refuses a whole
// message or view for.
var blockLimits = struct {
	messageBlocks, modalBlocks, sectionText, field, fields, header, contextElements, actionsElements,
	buttonText, buttonValue, id, optionText, optionValue, checkboxes, selectOptions, label, placeholder,
	modalTitle, modalButton, metadata, fallback int
}{50, 100, 3000, 2000, 10, 150, 10, 25, 75, 2000, 255, 75, 150, 10, 100, 2000, 150, 24, 24, 3000, 40000}

// limitChecker walks a message or view as the Web API receives it (its
// JSON) and reports every part over a limit.
type limitChecker struct {
	t    *testing.T
	what string
}

func (c limitChecker) over(where string, s any, limit int) {
	text, _ := s.(string)
	if n := utf8.RuneCountInString(text); n > limit {
		c.t.Errorf("%s: %s has %d characters, Slack allows %d", c.what, where, n, limit)
	}
}

func (c limitChecker) count(where string, list any, limit int) {
	if items, _ := list.([]any); len(items) > limit {
		c.t.Errorf("%s: %s has %d items, Slack allows %d", c.what, where, len(items), limit)
	}
}

func textOf(obj any) any {
	if m, ok := obj.(map[string]any); ok {
		return m["text"]
	}
	return nil
}

func (c limitChecker) element(where string, e map[string]any) {
	c.over(where+" action_id", e["action_id"], blockLimits.id)
	switch e["type"] {
	case "button":
		c.over(where+" button text", textOf(e["text"]), blockLimits.buttonText)
		c.over(where+" button value", e["value"], blockLimits.buttonValue)
	case "checkboxes", "radio_buttons":
		c.count(where+" options", e["options"], blockLimits.checkboxes)
	case "static_select", "multi_static_select":
		c.count(where+" options", e["options"], blockLimits.selectOptions)
	case "plain_text_input":
		c.over(where+" placeholder", textOf(e["placeholder"]), blockLimits.placeholder)
	}
	if p, ok := e["placeholder"]; ok {
		c.over(where+" placeholder", textOf(p), blockLimits.placeholder)
	}
	if opts, ok := e["options"].([]any); ok {
		for i, o := range opts {
			om, _ := o.(map[string]any)
			c.over(fmt.Sprintf("%s option %d text", where, i), textOf(om["text"]), blockLimits.optionText)
			c.over(fmt.Sprintf("%s option %d value", where, i), om["value"], blockLimits.optionValue)
		}
	}
}

func (c limitChecker) blocks(list []any, max int) {
	c.count("blocks", list, max)
	for i, b := range list {
		bm, _ := b.(map[string]any)
		where := fmt.Sprintf("block %d (%v)", i, bm["type"])
		c.over(where+" block_id", bm["block_id"], blockLimits.id)
		switch bm["type"] {
		case "section":
			c.over(where+" text", textOf(bm["text"]), blockLimits.sectionText)
			c.count(where+" fields", bm["fields"], blockLimits.fields)
			fields, _ := bm["fields"].([]any)
			for j, f := range fields {
				c.over(fmt.Sprintf("%s field %d", where, j), textOf(f), blockLimits.field)
			}
			if acc, ok := bm["accessory"].(map[string]any); ok {
				c.element(where+" accessory", acc)
			}
		case "header":
			c.over(where+" text", textOf(bm["text"]), blockLimits.header)
		case "context":
			c.count(where+" elements", bm["elements"], blockLimits.contextElements)
			elems, _ := bm["elements"].([]any)
			for j, e := range elems {
				c.over(fmt.Sprintf("%s element %d", where, j), textOf(e), blockLimits.sectionText)
			}
		case "actions":
			c.count(where+" elements", bm["elements"], blockLimits.actionsElements)
			elems, _ := bm["elements"].([]any)
			for j, e := range elems {
				em, _ := e.(map[string]any)
				c.element(fmt.Sprintf("%s element %d", where, j), em)
			}
		case "input":
			c.over(where+" label", textOf(bm["label"]), blockLimits.label)
			if em, ok := bm["element"].(map[string]any); ok {
				c.element(where+" element", em)
			}
		}
	}
}

// asSent is a message or view as the Web API receives it.
func asSent(t *testing.T, what string, x any) map[string]any {
	t.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func checkMessage(t *testing.T, what string, m Message) {
	t.Helper()
	v := asSent(t, what, m)
	c := limitChecker{t, what}
	c.over("fallback text", v["text"], blockLimits.fallback)
	list, _ := v["blocks"].([]any)
	c.blocks(list, blockLimits.messageBlocks)
}

func checkView(t *testing.T, what string, view slack.ModalViewRequest) {
	t.Helper()
	v := asSent(t, what, view)
	c := limitChecker{t, what}
	c.over("title", textOf(v["title"]), blockLimits.modalTitle)
	c.over("submit", textOf(v["submit"]), blockLimits.modalButton)
	c.over("close", textOf(v["close"]), blockLimits.modalButton)
	c.over("private_metadata", v["private_metadata"], blockLimits.metadata)
	c.over("callback_id", v["callback_id"], blockLimits.id)
	list, _ := v["blocks"].([]any)
	c.blocks(list, blockLimits.modalBlocks)
}

func checkHome(t *testing.T, what string, view slack.HomeTabViewRequest) {
	t.Helper()
	v := asSent(t, what, view)
	c := limitChecker{t, what}
	c.over("private_metadata", v["private_metadata"], blockLimits.metadata)
	list, _ := v["blocks"].([]any)
	c.blocks(list, blockLimits.modalBlocks) // a home tab takes as many blocks as a modal
}

// Every message and view relbot renders keeps every Block Kit limit with
// extreme inputs: many and long names, 60 steps with long logs, hundreds
// of changes and checks, a huge reply.
func TestEveryRenderingKeepsBlockKitLimits(t *testing.T) {
	long := func(prefix string, n int) string { return prefix + strings.Repeat("é<&>*_x", n/7) }
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	r := awaitingRelease()
	r.ID, r.App, r.Env, r.Migration = long("crm-r", 300), long("app", 300), long("env", 300), long("crm-m", 300)
	r.RequestedBy = long("U", 200)
	r.Steps = nil
	for i := range 60 {
		ended := at.Add(time.Duration(i) * time.Second)
		r.Steps = append(r.Steps, release.Step{Name: long(fmt.Sprintf("step %d ", i), 200), State: release.StepFailed, Started: &at, Ended: &ended, Log: long("log ", 20000)})
	}
	for i := range 40 {
		r.Approvals = append(r.Approvals, release.Approval{By: long(fmt.Sprintf("U%02d", i), 100), At: at})
		r.Checks = append(r.Checks, release.CheckResult{Name: long("check ", 500), OK: i%2 == 0, Duration: time.Second, Detail: long("detail ", 5000)})
	}
	r.Changes = &release.Changes{Against: long("production", 500), Partial: []string{long("partial ", 4000)}}
	for i := range 300 {
		r.Changes.Items = append(r.Changes.Items, release.Change{Kind: release.ChangePage, Action: "added", Name: long(fmt.Sprintf("page %d ", i), 1000), Detail: long("in ", 1000)})
	}
	r.Reason = long("reason ", 20000)
	r.Backup, r.Snapshot = long("crm-b", 400), long("crm-r", 400)
	policy := release.ApprovalPolicy{Required: 30, Approvers: []string{long("U", 300), long("V", 300)}}
	for _, state := range []release.State{release.StateAwaitingApproval, release.StateRunning, release.StateFailed, release.StateSucceeded, release.StateInterrupted} {
		r.State = state
		checkMessage(t, "release "+string(state), RenderRelease(r, policy))
		checkMessage(t, "DM "+string(state), RenderDM(r, release.Event{Kind: release.EventFailed, Actor: long("U", 300), Detail: long("detail ", 9000)}))
	}
	checkMessage(t, "checks", RenderChecks(r))
	checkMessage(t, "failure", RenderFailure(r, r.Steps[3].Name))
	checkMessage(t, "log", RenderLog(r, r.Steps[3].Name, long("log ", 200000)))
	r.Kind, r.SwitchTo = release.KindRestore, long("crm-r", 400)
	checkMessage(t, "switch offer", RenderSwitchOffer(r))

	table := &commands.Table{Columns: []string{long("A", 300), long("B", 300), long("C", 300)}}
	for i := range 2000 {
		table.Rows = append(table.Rows, []string{long(fmt.Sprint(i), 200), long("b", 200), long("c", 200)})
	}
	var fields []commands.Field
	for i := range 40 {
		fields = append(fields, commands.Field{Name: long(fmt.Sprint("field ", i), 300), Value: long("value ", 5000)})
	}
	rep := commands.Reply{Title: long("title ", 500), Text: long("text ", 100000), Fields: fields, Table: table, Public: true,
		Restart: &commands.RestartOffer{App: long("app", 300), Env: long("env", 300)},
		NewPlugins: &commands.NewPluginsOffer{Migration: long("crm-m", 300), Env: long("env", 300), At: long("at", 300),
			Plugins: []release.NewPlugin{{Name: long("plugin", 400), PackageName: long("@x/", 400), Version: long("1.", 300), InTarget: "not registered"}}}}
	checkMessage(t, "reply", RenderReply(rep))
	checkMessage(t, "result", RenderResult(rep, errors.New(long("boom ", 9000))))
	checkMessage(t, "error", RenderError(&release.Error{Code: release.CodeInvalid, Message: long("bad ", 9000)}))

	checkMessage(t, "approval reminder", RenderReminder(release.Reminder{Release: r, Approvers: []string{long("U", 300)}, ExpiresAt: at.Add(time.Hour), Missing: 9},
		long("https://relbot.example/releases/", 3000), at))
	home := &commands.Home{User: long("U", 100)}
	for i := range 60 {
		rr := *r
		rr.ID = fmt.Sprintf("%s-%d", r.ID, i)
		home.ToApprove, home.Mine = append(home.ToApprove, &rr), append(home.Mine, &rr)
	}
	for i := range 120 {
		app := commands.HomeApp{App: long(fmt.Sprint("app", i), 300)}
		for j := range 30 {
			app.Envs = append(app.Envs, commands.HomeEnv{Env: long(fmt.Sprint("env", j), 300), Open: r, Last: r, Hold: &release.Hold{By: long("U", 100), Reason: long("reason ", 2000)}})
		}
		home.Apps = append(home.Apps, app)
	}
	checkHome(t, "app home", RenderHome(home, at))
	for _, n := range []int{1, 40, 400} {
		var names []string
		for i := range n {
			names = append(names, long(fmt.Sprint("VAR_", i), 60))
		}
		checkMessage(t, fmt.Sprintf("variables button of %d", n), message("x", VariablesButton(release.MissingVariables{App: long("app", 300), Env: long("env", 300), Migration: "crm-m7", Names: names})...))
	}
	checkHome(t, "empty app home", RenderHome(&commands.Home{User: "U1"}, at))
	checkView(t, "checking form", CheckingModal(CallbackSecret, long("title ", 300), long("text ", 9000)))
	checkView(t, "notice form", NoticeModal(CallbackSecret, long("title ", 300), long("text ", 9000)))
	checkView(t, "reject form", RejectModal(long("crm-r", 400), replyTo(long("C", 400), long("https://hooks.slack.com/", 600))))
	checkView(t, "secret form", SecretModal(commands.SecretPrompt{App: long("app", 400), Env: long("env", 400), Var: long("VAR", 400)}, replyTo(long("C", 400), long("https://hooks.slack.com/", 400))))
	for _, n := range []int{1, 11, 45, 150} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("VAR_%03d_%s", i, strings.Repeat("X", i*3)))
		}
		checkView(t, fmt.Sprintf("variables form of %d", n), VariablesModal(release.MissingVariables{App: long("app", 200), Env: long("env", 200), Migration: long("crm-m", 200), Names: names}, replyTo(long("C", 300), long("https://hooks.slack.com/", 400))))
	}
}

// The variables form asks for what fits and names the rest: none is
// dropped silently, and a name too long for Slack is left to var set.
func TestVariablesFormNamesWhatItCannotAsk(t *testing.T) {
	var names []string
	for i := range 45 {
		names = append(names, fmt.Sprintf("VAR_%02d", i))
	}
	tooLong := "V" + strings.Repeat("X", 300)
	names = append(names, tooLong)
	view := VariablesModal(release.MissingVariables{App: "crm", Env: "production", Migration: "crm-m7", Names: names}, ReplyTo{Channel: "C1"})
	var meta variablesMeta
	if err := json.Unmarshal([]byte(view.PrivateMetadata), &meta); err != nil {
		t.Fatal(err)
	}
	if len(meta.Names) != maxFormVariables || meta.Names[0] != "VAR_00" {
		t.Fatalf("the form asks for %d: %v", len(meta.Names), meta.Names)
	}
	intro, _ := json.Marshal(view.Blocks.BlockSet[0])
	for _, want := range []string{"This form asks for 40 of them", "Set the other 6 variables", "VAR_44", tooLong[:50]} {
		if !strings.Contains(string(intro), want) {
			t.Errorf("the form's text lacks %q:\n%s", want, intro)
		}
	}
	inputs := 0
	for _, b := range view.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && strings.HasPrefix(in.BlockID, "var:") {
			inputs++
		}
	}
	if inputs != maxFormVariables || view.Submit == nil {
		t.Fatalf("%d inputs, submit %v", inputs, view.Submit)
	}
	none := VariablesModal(release.MissingVariables{App: "crm", Env: "production", Migration: "crm-m7", Names: []string{tooLong}}, ReplyTo{Channel: "C1"})
	if none.Submit != nil {
		t.Fatal("a form with nothing to fill offers Save")
	}
}

// chunks keeps every character, in order, in pieces of at most n runes,
// cutting after a line break where one is in reach.
func TestChunks(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want []string
	}{
		{"", 5, []string{""}},
		{"abc", 5, []string{"abc"}},
		{"abcdefgh", 3, []string{"abc", "def", "gh"}},
		{"ab\ncdef\ngh", 5, []string{"ab\n", "cdef\n", "gh"}},
		{"\nabcdef", 3, []string{"\nab", "cde", "f"}},
		{"ééé\nééé", 4, []string{"ééé\n", "ééé"}},
	} {
		if got := chunks(c.in, c.n); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("chunks(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	long := strings.Repeat("line of text é\n", 20000)
	parts := chunks(long, 3000)
	if strings.Join(parts, "") != long {
		t.Fatal("chunks lost or reordered text")
	}
	for _, p := range parts {
		if utf8.RuneCountInString(p) > 3000 {
			t.Fatalf("a piece of %d runes", utf8.RuneCountInString(p))
		}
	}
}
