package bot

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode answers Slack over Socket Mode (no public URL needed)
// until ctx ends, with the same handlers as HTTP. api must carry the
// app-level token (slack.OptionAppLevelToken). Socket Mode requests come
// over a connection that token opened, so there is no signature to check;
// retries (retry_attempt) are deduplicated like HTTP ones.
func (b *Bot) RunSocketMode(ctx context.Context, api *slack.Client) error {
	b.socketMode.Store(true)
	defer b.socketUp.Store(false)
	sm := socketmode.New(api, socketmode.OptionLog(log.New(slogWriter{b.log}, "", 0)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go b.socketEvents(ctx, sm)
	err := sm.RunContext(ctx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (b *Bot) socketEvents(ctx context.Context, sm *socketmode.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-sm.Events:
			b.socketEvent(ctx, sm, evt)
		}
	}
}

func (b *Bot) socketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	ack := func(payload ...any) {
		if evt.Request == nil {
			return
		}
		if err := sm.Ack(*evt.Request, payload...); err != nil {
			b.log.Warn("socket mode: ack failed", "err", err)
		}
	}
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.socketUp.Store(false)
		b.log.Info("socket mode: connecting")
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		b.socketUp.Store(true)
		b.log.Info("socket mode: connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeDisconnect:
		b.socketUp.Store(false)
		b.log.Warn("socket mode: connection problem", "event", evt.Type, "detail", fmt.Sprint(evt.Data))
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			ack()
			return
		}
		if !b.acceptCommand(ctx, commandKey(sc, retryStamp(evt)), sc) {
			ack(map[string]string{"response_type": "ephemeral", "text": "relbot is busy or restarting: try again in a minute."})
			return
		}
		ack()
	case socketmode.EventTypeInteractive:
		ic, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			ack()
			return
		}
		// A view submission's empty ack closes the form. Work that cannot
		// be taken is not acked: Slack tells the user it failed, and a
		// retry is new (its key was not recorded).
		if b.acceptInteraction(ctx, interactionKey(&ic), &ic) {
			ack()
		}
	case socketmode.EventTypeEventsAPI:
		ack()
		if e, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			if id := eventID(e); id == "" || b.first(ctx, "evt:"+id) {
				b.acceptEvent(ctx, e)
			}
		}
	}
}

// SocketModeReady says whether Slack can reach this process: over Socket
// Mode, only while its connection is up; over HTTP, always (the request
// reaching /readyz came the way Slack's do).
func (b *Bot) SocketModeReady() error {
	if b.socketMode.Load() && !b.socketUp.Load() {
		return errors.New("the Slack Socket Mode connection is not up")
	}
	return nil
}

// retryStamp stands in for the request timestamp of an HTTP slash command
// in the dedupe key of a command without trigger_id: the envelope, which a
// retry repeats.
func retryStamp(evt socketmode.Event) string {
	if evt.Request == nil {
		return ""
	}
	return evt.Request.EnvelopeID
}

// slogWriter sends slack-go's own log lines to slog at debug level.
type slogWriter struct {
	log interface{ Debug(string, ...any) }
}

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("socketmode", "msg", string(p))
	return len(p), nil
}
