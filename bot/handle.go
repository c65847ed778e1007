package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// target is where an answer goes: the response_url of the request when
// there is one, else the channel (ephemeral to the user unless public),
// else a direct message. An answer that cannot go the first way (a
// response_url past its 30 minutes, a channel the bot is not in) goes to
// the user directly.
type target struct {
	responseURL, channel, user string
}

// target answers a form's submitter where the form was asked for.
func (r ReplyTo) target(user string) target { return target{r.ResponseURL, r.Channel, user} }

// acceptCommand queues a slash command's work unless key says it was
// handled already; false when it cannot be taken.
func (b *Bot) acceptCommand(ctx context.Context, key string, sc slack.SlashCommand) bool {
	received := time.Now()
	return b.accept(ctx, key, "command", func(ctx context.Context) { b.doCommand(ctx, sc, received) })
}

func (b *Bot) doCommand(ctx context.Context, sc slack.SlashCommand, received time.Time) {
	t := target{sc.ResponseURL, sc.ChannelID, sc.UserID}
	cmd, err := commands.Parse(sc.Text)
	if err != nil {
		b.respond(ctx, t, RenderError(err), false)
		return
	}
	b.log.Info("slack command", "user", sc.UserID, "channel", sc.ChannelID, "command", cmd.Name())
	req := commands.Request{User: sc.UserID, Channel: sc.ChannelID, Text: sc.Text}
	if commands.Slow(cmd) {
		b.doSlowCommand(ctx, t, req, cmd)
		return
	}
	if set, ok := cmd.(commands.SecretSet); ok {
		b.doSecretSet(ctx, t, sc, req, set)
		return
	}
	rep, err := b.cfg.Dispatcher.Run(ctx, req, cmd)
	m := RenderResult(rep, err)
	if err != nil && rep.Missing != nil {
		// Offer the requester a form for what the target lacks: at once
		// while the command's trigger lasts, else (or if Slack refuses it)
		// by a button, whose click brings a fresh trigger.
		opened := false
		if time.Since(received) < b.cfg.TriggerLife {
			verr := b.openView(ctx, sc.TriggerID, VariablesModal(*rep.Missing, replyTo(sc.ChannelID, sc.ResponseURL)))
			if verr != nil {
				b.log.Warn("slack: open the variables form", "err", verr)
			}
			opened = verr == nil
		}
		if !opened {
			m.Blocks = append(m.Blocks, VariablesButton(*rep.Missing)...)
		}
	}
	b.respond(ctx, t, m, err == nil && rep.Public)
	b.after(cmd, rep, err)
}

// doSecretSet opens the secret's form first, while the command's trigger
// lasts (3 seconds), showing that its permission is being checked; then
// runs the check and fills the form with views.update: the value's input,
// or the refusal. Nothing is stored until the form is submitted.
func (b *Bot) doSecretSet(ctx context.Context, t target, sc slack.SlashCommand, req commands.Request, c commands.SecretSet) {
	opened, openErr := b.cfg.API.OpenViewContext(ctx, sc.TriggerID, CheckingModal(CallbackSecret, "Set a secret",
		fmt.Sprintf("Checking that you may set %s of %s %s…", c.Var, c.App, c.Env)))
	if openErr != nil {
		b.log.Warn("slack: open the secret form", "err", openErr)
	}
	rep, err := b.cfg.Dispatcher.Run(ctx, req, c)
	var view slack.ModalViewRequest
	switch {
	case err != nil:
		view = NoticeModal(CallbackSecret, "Set a secret", ":no_entry_sign: "+commands.ErrorReply(err).Text)
		b.respond(ctx, t, RenderResult(rep, err), false)
	case rep.Prompt != nil:
		view = SecretModal(*rep.Prompt, replyTo(sc.ChannelID, sc.ResponseURL))
	default:
		b.respond(ctx, t, RenderResult(rep, nil), rep.Public)
		return
	}
	if openErr != nil {
		if err == nil {
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeUnavailable,
				"could not open the private form for secret %s (nothing was stored): try again", c.Var)), false)
		}
		return
	}
	if _, err := b.cfg.API.UpdateViewContext(ctx, view, "", opened.Hash, opened.ID); err != nil {
		b.log.Warn("slack: fill the secret form", "err", err)
		b.respond(ctx, t, RenderError(release.Errorf(release.CodeUnavailable,
			"could not show the private form for secret %s (nothing was stored): close it and try again", c.Var)), false)
	}
}

// responseURLLife is how long a response_url is worth trying: Slack
// takes answers on it for 30 minutes.
const responseURLLife = 25 * time.Minute

// doSlowCommand answers at once that the command is under way, runs it
// outside the worker pool without the job timeout (a backup of a big
// database takes what it takes) and posts the result when it is done: by
// the response_url while it lasts, then in the channel if everyone should
// see it, or else by direct message.
func (b *Bot) doSlowCommand(ctx context.Context, t target, req commands.Request, cmd commands.Command) {
	started := time.Now()
	if !b.startLong(cmd.Name(), func(ctx context.Context) {
		b.respond(ctx, t, note(":hourglass_flowing_sand: Working on `%s`. The result follows here when it is done, however long that takes.", req.Text), false)
		rep, err := b.cfg.Dispatcher.Run(ctx, req, cmd)
		public := err == nil && rep.Public
		to := t
		if time.Since(started) > responseURLLife {
			to.responseURL = ""
			if !public {
				to.channel = ""
			}
		}
		b.respond(ctx, to, RenderResult(rep, err), public)
	}) {
		b.respond(ctx, t, RenderError(release.Errorf(release.CodeUnavailable, "relbot is shutting down: %s was not started; try again in a minute", cmd.Name())), false)
	}
}

// after starts a release a command made runnable: in a server, the server
// runs it (the command returned at once).
func (b *Bot) after(cmd commands.Command, rep commands.Reply, err error) {
	if err != nil {
		return
	}
	switch cmd.(type) {
	case commands.Deploy, commands.Approve, commands.Rollback, commands.Switch, commands.BackupRestore:
	default:
		return
	}
	if v, ok := rep.Data.(commands.ReleaseView); ok && v.State == release.StateScheduled {
		b.RunRelease(v.ID)
	}
}

// acceptInteraction queues a click's or a form's work, like acceptCommand.
func (b *Bot) acceptInteraction(ctx context.Context, key string, ic *slack.InteractionCallback) bool {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		return b.accept(ctx, key, "click", func(ctx context.Context) { b.doActions(ctx, ic) })
	case slack.InteractionTypeViewSubmission:
		return b.accept(ctx, key, "form", func(ctx context.Context) { b.doSubmission(ctx, ic) })
	}
	return true // nothing relbot acts on (a closed modal, a shortcut)
}

func (b *Bot) doActions(ctx context.Context, ic *slack.InteractionCallback) {
	a := firstAction(ic)
	if a == nil {
		return
	}
	t := target{ic.ResponseURL, ic.Channel.ID, ic.User.ID}
	if ic.View.Type == slack.VTHomeTab {
		// A click in the Home tab: the tab is published again after, to
		// show what the click changed.
		defer b.publishHome(ctx, ic.User.ID)
	}
	if b.doOffer(ctx, t, ic, a) {
		return
	}
	id, err := releaseID(a.Value)
	if err != nil {
		b.respond(ctx, t, RenderError(release.Errorf(release.CodeInvalid, "this button carries no release")), false)
		return
	}
	req := commands.Request{User: ic.User.ID, Channel: ic.Channel.ID}
	b.log.Info("slack click", "user", ic.User.ID, "action", a.ActionID, "release", id)
	switch a.ActionID {
	case ActionApprove:
		cmd := commands.Approve{Release: id}
		rep, err := b.cfg.Dispatcher.Run(ctx, req, cmd)
		if err != nil {
			b.respond(ctx, t, refusal("Not approved", err), false)
			return
		}
		b.respond(ctx, t, note(":white_check_mark: You approved *%s*.%s", id, stateNote(rep)), false)
		b.after(cmd, rep, nil)
	case ActionReject:
		if err := b.openView(ctx, ic.TriggerID, RejectModal(id, replyTo(ic.Channel.ID, ic.ResponseURL))); err != nil {
			b.log.Warn("slack: open the reject form", "release", id, "err", err)
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeUnavailable,
				"could not open the reject form: use /relbot reject %s REASON", id)), false)
		}
	case ActionRollback:
		b.requestByClick(ctx, t, req, commands.Rollback{Release: id}, "No rollback", ":rewind:")
	case ActionRollbackFull:
		b.requestByClick(ctx, t, req, commands.Rollback{Release: id, Full: true}, "No rollback", ":rewind:")
	case ActionSwitch:
		b.requestByClick(ctx, t, req, commands.Switch{Release: id}, "No switch", ":arrows_counterclockwise:")
	default:
		b.log.Info("slack click on an unknown action ignored", "action", a.ActionID)
	}
}

// doOffer runs the buttons a command's reply offered (their value is the
// command's arguments as JSON, not a release): the restart after a
// variable change, the deploy confirmed despite new plugins. False for any
// other button.
func (b *Bot) doOffer(ctx context.Context, t target, ic *slack.InteractionCallback, a *slack.BlockAction) bool {
	req := commands.Request{User: ic.User.ID, Channel: ic.Channel.ID}
	switch a.ActionID {
	case ActionRestart:
		var v restartValue
		if err := json.Unmarshal([]byte(a.Value), &v); err != nil || v.App == "" || v.Env == "" {
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeInvalid, "this button names no environment to restart")), false)
			return true
		}
		b.log.Info("slack click", "user", ic.User.ID, "action", a.ActionID, "app", v.App, "env", v.Env)
		rep, err := b.cfg.Dispatcher.Run(ctx, req, commands.Restart{App: v.App, Env: v.Env})
		if err != nil {
			b.respond(ctx, t, refusal("Not restarted", err), false)
			return true
		}
		b.respond(ctx, t, RenderResult(rep, nil), rep.Public)
	case ActionSupplyVariables:
		var v variablesValue
		if err := json.Unmarshal([]byte(a.Value), &v); err != nil || v.App == "" || v.Env == "" || v.Migration == "" || len(v.Names) == 0 {
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeInvalid, "this button names no variables")), false)
			return true
		}
		missing := release.MissingVariables{App: v.App, Env: v.Env, Migration: v.Migration, Names: v.Names}
		if err := b.openView(ctx, ic.TriggerID, VariablesModal(missing, replyTo(ic.Channel.ID, ic.ResponseURL))); err != nil {
			b.log.Warn("slack: open the variables form", "err", err)
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeUnavailable, "could not open the variables form: click again, or set them with /relbot var set %s %s NAME=VALUE", v.App, v.Env)), false)
		}
	case ActionDeployNewPlugins:
		var v deployValue
		if err := json.Unmarshal([]byte(a.Value), &v); err != nil || v.Migration == "" || v.Env == "" {
			b.respond(ctx, t, RenderError(release.Errorf(release.CodeInvalid, "this button names no deploy")), false)
			return true
		}
		b.log.Info("slack click", "user", ic.User.ID, "action", a.ActionID, "migration", v.Migration, "env", v.Env)
		b.requestByClick(ctx, t, req, commands.Deploy{Migration: v.Migration, Env: v.Env, At: v.At, AllowNewPlugins: true}, "No deploy", ":rocket:")
	default:
		return false
	}
	return true
}

// requestByClick runs a button's request (a rollback, a switch) as the
// clicking user and answers them privately: the new release, or why not.
func (b *Bot) requestByClick(ctx context.Context, t target, req commands.Request, cmd commands.Command, refused, icon string) {
	rep, err := b.cfg.Dispatcher.Run(ctx, req, cmd)
	if err != nil {
		b.respond(ctx, t, refusal(refused, err), false)
		return
	}
	b.respond(ctx, t, note("%s %s%s", icon, rep.Title, stateNote(rep)), false)
	b.after(cmd, rep, nil)
}

func (b *Bot) doSubmission(ctx context.Context, ic *slack.InteractionCallback) {
	switch ic.View.CallbackID {
	case CallbackReject:
		var m rejectMeta
		if err := json.Unmarshal([]byte(ic.View.PrivateMetadata), &m); err != nil || m.Release == "" {
			b.log.Warn("slack: reject form without its release")
			return
		}
		t := m.target(ic.User.ID)
		reason := viewValue(ic, "reason", "reason")
		rep, err := b.cfg.Dispatcher.Run(ctx, commands.Request{User: ic.User.ID, Channel: m.Channel}, commands.Reject{Release: m.Release, Reason: reason})
		if err != nil {
			b.respond(ctx, t, refusal("Not rejected", err), false)
			return
		}
		b.respond(ctx, t, note(":no_entry: You rejected *%s*.%s", m.Release, stateNote(rep)), false)
	case CallbackSecret:
		var m secretMeta
		if err := json.Unmarshal([]byte(ic.View.PrivateMetadata), &m); err != nil || m.App == "" || m.Env == "" || m.Var == "" {
			b.log.Warn("slack: secret form without its secret's name")
			return
		}
		value := viewValue(ic, "value", "value")
		req := commands.Request{User: ic.User.ID, Channel: m.Channel,
			Secret: func(context.Context, string) (string, error) { return value, nil }}
		rep, err := b.cfg.Dispatcher.Run(ctx, req, commands.SecretSet{App: m.App, Env: m.Env, Var: m.Var})
		b.respond(ctx, m.target(ic.User.ID), RenderResult(rep, err), err == nil && rep.Public)
	case CallbackVariables:
		b.submitVariables(ctx, ic)
	}
}

// submitVariables stores what the missing-variables form gave: each as a
// secret (through the same path as secret set: never echoed) or a plain
// variable, then tells the requester how to deploy again.
func (b *Bot) submitVariables(ctx context.Context, ic *slack.InteractionCallback) {
	var m variablesMeta
	if err := json.Unmarshal([]byte(ic.View.PrivateMetadata), &m); err != nil || m.App == "" || m.Env == "" || len(m.Names) == 0 {
		b.log.Warn("slack: variables form without its variables")
		return
	}
	t := m.target(ic.User.ID)
	secret := map[string]bool{}
	if ic.View.State != nil {
		for _, o := range ic.View.State.Values["secrets"]["secrets"].SelectedOptions {
			secret[o.Value] = true
		}
	}
	var set []string
	for _, name := range m.Names {
		value := viewValue(ic, "var:"+name, "value")
		if value == "" {
			continue
		}
		var cmd commands.Command = commands.VarSet{App: m.App, Env: m.Env, Var: name, Value: value}
		req := commands.Request{User: ic.User.ID, Channel: m.Channel}
		if secret[name] {
			cmd = commands.SecretSet{App: m.App, Env: m.Env, Var: name}
			req.Secret = func(context.Context, string) (string, error) { return value, nil }
		}
		if _, err := b.cfg.Dispatcher.Run(ctx, req, cmd); err != nil {
			b.respond(ctx, t, refusal("Not stored: "+name, err), false)
			return
		}
		set = append(set, name)
	}
	b.log.Info("slack: variables supplied", "app", m.App, "env", m.Env, "count", len(set))
	b.respond(ctx, t, note(":white_check_mark: %s of %s %s set: %s. Deploy again with `/relbot deploy %s %s`.",
		release.Count(len(set), "variable"), m.App, m.Env, release.List(set), m.Migration, m.Env), false)
}

func refusal(what string, err error) Message {
	text := what + ": " + commands.ErrorReply(err).Text
	return message(text, section(":no_entry_sign: "+escape(text)))
}

// note is an answer in mrkdwn: format's own markup is kept, args (what
// users and the domain said) are escaped in the block and the fallback.
func note(format string, args ...string) Message {
	plain, safe := make([]any, len(args)), make([]any, len(args))
	for i, a := range args {
		plain[i], safe[i] = a, escape(a)
	}
	return message(fmt.Sprintf(format, plain...), section(fmt.Sprintf(format, safe...)))
}

func stateNote(rep commands.Reply) string {
	if v, ok := rep.Data.(commands.ReleaseView); ok {
		if commands.RunsNow(v.State, v.At, time.Now()) {
			return " It is running."
		}
		// After an approval that was not the last, the approver hears how
		// many are still needed; a fresh request keeps "awaiting approval".
		if v.State == release.StateAwaitingApproval && v.ApprovalsLeft > 0 && len(v.Approvals) > 0 {
			return " It still needs " + release.Count(v.ApprovalsLeft, "more approval|more approvals") + "."
		}
		return fmt.Sprintf(" It is now %s.", v.State)
	}
	return ""
}

func (b *Bot) openView(ctx context.Context, trigger string, view slack.ModalViewRequest) error {
	if trigger == "" {
		return errors.New("no trigger_id to open a form with")
	}
	_, err := b.cfg.API.OpenViewContext(ctx, trigger, view)
	return err
}

// respond delivers an answer (the client waits out a 429 itself).
func (b *Bot) respond(ctx context.Context, t target, m Message, public bool) {
	if err := b.deliver(ctx, t, m, public); err != nil {
		b.log.Warn("slack: answer not delivered", "user", t.user, "channel", t.channel, "err", err)
	}
}

func (b *Bot) deliver(ctx context.Context, t target, m Message, public bool) error {
	var err error
	switch {
	case t.responseURL != "":
		kind := slack.ResponseTypeEphemeral
		if public {
			kind = slack.ResponseTypeInChannel
		}
		err = slack.PostWebhookCustomHTTPContext(ctx, t.responseURL, b.cfg.HTTPClient, &slack.WebhookMessage{
			Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}, ResponseType: kind, ReplaceOriginal: false})
	case t.channel != "" && public:
		_, _, err = b.cfg.API.PostMessageContext(ctx, t.channel, m.options()...)
	case t.channel != "":
		_, err = b.cfg.API.PostEphemeralContext(ctx, t.channel, t.user, m.options()...)
	case t.user != "":
		return b.dm(ctx, t.user, m)
	default:
		return nil
	}
	if err != nil && t.user != "" && ctx.Err() == nil {
		b.log.Info("slack: answer goes by direct message", "user", t.user, "err", err)
		return b.dm(ctx, t.user, m)
	}
	return err
}

func (b *Bot) dm(ctx context.Context, user string, m Message) error {
	ch, _, _, err := b.cfg.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return err
	}
	_, _, err = b.cfg.API.PostMessageContext(ctx, ch.ID, m.options()...)
	return err
}
