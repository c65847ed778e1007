package bot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxBody bounds what relbot reads of one Slack request; Slack's own
// payloads are far smaller.
const maxBody = 1 << 20

// errBadPayload is what a malformed payload gets; the payload itself is
// never echoed (a view submission may hold a secret).
var errBadPayload = errors.New("malformed Slack payload")

// DecodeCommand decodes a slash command's form body with slack-go's
// parser (the body was read once, for its signature).
func DecodeCommand(body []byte) (slack.SlashCommand, error) {
	r, err := http.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(body))
	if err != nil {
		return slack.SlashCommand{}, err
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sc, err := slack.SlashCommandParse(r)
	if err != nil {
		return slack.SlashCommand{}, fmt.Errorf("%w: the form does not parse", errBadPayload)
	}
	if sc.UserID == "" || sc.Command == "" {
		return slack.SlashCommand{}, fmt.Errorf("%w: a slash command needs user_id and command", errBadPayload)
	}
	return sc, nil
}

// DecodeInteraction decodes an interaction's form body (payload=JSON).
func DecodeInteraction(body []byte) (*slack.InteractionCallback, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: the form does not parse", errBadPayload)
	}
	return DecodeInteractionJSON([]byte(form.Get("payload")))
}

// DecodeInteractionJSON decodes an interaction payload (Socket Mode sends
// it without the form around it).
func DecodeInteractionJSON(payload []byte) (*slack.InteractionCallback, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: no payload", errBadPayload)
	}
	var ic slack.InteractionCallback
	if err := json.Unmarshal(payload, &ic); err != nil {
		return nil, fmt.Errorf("%w: the payload is not an interaction", errBadPayload)
	}
	if ic.Type == "" || ic.User.ID == "" {
		return nil, fmt.Errorf("%w: an interaction needs a type and a user", errBadPayload)
	}
	return &ic, nil
}

// DecodeEvent decodes an Events API body with slack-go's parser. The
// request's signature was checked, so the deprecated verification token
// is not. An event relbot does not know is no error: Slack may send any
// the app's subscriptions allow, and relbot acknowledges and ignores it.
func DecodeEvent(body []byte) (slackevents.EventsAPIEvent, error) {
	e, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		var outer struct {
			Type  string `json:"type"`
			Event struct {
				Type string `json:"type"`
			} `json:"event"`
		}
		if json.Unmarshal(body, &outer) == nil && outer.Type == slackevents.CallbackEvent && outer.Event.Type != "" {
			return slackevents.EventsAPIEvent{Type: slackevents.CallbackEvent, InnerEvent: slackevents.EventsAPIInnerEvent{Type: outer.Event.Type}}, nil
		}
		return slackevents.EventsAPIEvent{}, fmt.Errorf("%w: the event does not parse", errBadPayload)
	}
	if e.Type == "" {
		return slackevents.EventsAPIEvent{}, fmt.Errorf("%w: an event needs a type", errBadPayload)
	}
	return e, nil
}

// eventID is a callback event's ID, for dedupe ("" for others).
func eventID(e slackevents.EventsAPIEvent) string {
	if cb, ok := e.Data.(*slackevents.EventsAPICallbackEvent); ok {
		return cb.EventID
	}
	return ""
}

// releaseID checks a button's value: a release ID as relbot renders it.
func releaseID(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 || strings.ContainsAny(v, " \t\r\n") {
		return "", fmt.Errorf("%w: the button carries no release", errBadPayload)
	}
	return v, nil
}

// viewValue is the value a modal's input holds.
func viewValue(ic *slack.InteractionCallback, block, action string) string {
	if ic.View.State == nil || ic.View.State.Values == nil {
		return ""
	}
	return ic.View.State.Values[block][action].Value
}

// Dedupe keys: the same delivery (a retry) maps to the same key.

func commandKey(sc slack.SlashCommand, timestamp string) string {
	if sc.TriggerID != "" {
		return "cmd:" + sc.TriggerID
	}
	h := sha256.Sum256([]byte(sc.TeamID + "\x00" + sc.UserID + "\x00" + sc.Text + "\x00" + timestamp))
	return "cmd:" + hex.EncodeToString(h[:16])
}

func interactionKey(ic *slack.InteractionCallback) string {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		actionID, ts := "", ic.ActionTs
		if a := firstAction(ic); a != nil {
			actionID = a.ActionID
			if a.ActionTs != "" {
				ts = a.ActionTs
			}
		}
		return "act:" + ts + ":" + ic.User.ID + ":" + actionID
	case slack.InteractionTypeViewSubmission:
		return "view:" + ic.View.ID + ":" + ic.View.Hash + ":" + ic.User.ID
	}
	return "int:" + string(ic.Type) + ":" + ic.TriggerID + ":" + ic.User.ID
}

// firstAction is the button a block_actions payload is about, or nil.
func firstAction(ic *slack.InteractionCallback) *slack.BlockAction {
	for _, a := range ic.ActionCallback.BlockActions {
		if a != nil {
			return a
		}
	}
	return nil
}
