package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// Home bounds: a home tab takes 100 blocks; what does not fit is counted.
const (
	maxHomeApprovals = 15
	maxHomeApps      = 40
)

// RenderHome is a user's App Home tab: releases waiting for their approval
// (each with an Approve button), their open releases, and each app's
// environments at a glance.
func RenderHome(h *commands.Home, now time.Time) slack.HomeTabViewRequest {
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Waiting for your approval", 150))}
	if len(h.ToApprove) == 0 {
		blocks = append(blocks, section("Nothing waits for you."))
	}
	for i, r := range h.ToApprove {
		if i == maxHomeApprovals {
			blocks = append(blocks, section(fmt.Sprintf("… and %d more: `/relbot status APP` lists them.", len(h.ToApprove)-i)))
			break
		}
		text := fmt.Sprintf("*%s* %s, asked by %s %s · %s", escape(r.ID), escape(subject(r)), user(r.RequestedBy), commands.Ago(r.RequestedAt, now),
			release.Count(len(r.Approvals), "approval"))
		approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve", 75))
		approve.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(text), nil, slack.NewAccessory(approve)))
	}

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain("Your open releases", 150)))
	var mine []string
	for _, r := range h.Mine {
		mine = append(mine, fmt.Sprintf("%s *%s* %s: %s", stateIcon[r.State], escape(r.ID), escape(subject(r)), r.State))
	}
	if len(mine) == 0 {
		mine = []string{"None."}
	}
	blocks = append(blocks, section(fitLines(mine, maxText)))

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain("Apps", 150)))
	for i, a := range h.Apps {
		if i == maxHomeApps {
			blocks = append(blocks, section(fmt.Sprintf("… and %d more apps: `/relbot apps` lists them.", len(h.Apps)-i)))
			break
		}
		lines := []string{"*" + escape(a.App) + "*"}
		for _, e := range a.Envs {
			line := "• " + escape(e.Env) + ": "
			var parts []string
			if e.Open != nil {
				parts = append(parts, fmt.Sprintf("%s %s %s", stateIcon[e.Open.State], escape(e.Open.ID), e.Open.State))
			}
			if e.Last != nil {
				parts = append(parts, fmt.Sprintf("last %s %s %s", escape(e.Last.ID), e.Last.State, commands.Ago(e.Last.RequestedAt, now)))
			}
			if e.Hold != nil {
				parts = append(parts, fmt.Sprintf(":lock: locked by %s: %s", user(e.Hold.By), escape(e.Hold.Reason)))
			}
			if len(parts) == 0 {
				parts = []string{"no release yet"}
			}
			lines = append(lines, line+strings.Join(parts, " · "))
		}
		blocks = append(blocks, section(fitLines(lines, maxText)))
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// fitLines joins lines, as many as fit in n characters, and counts the rest.
func fitLines(lines []string, n int) string {
	var b strings.Builder
	for i, l := range lines {
		more := fmt.Sprintf("\n… and %d more", len(lines)-i)
		if b.Len()+len(l)+1+len(more) > n && i > 0 {
			b.WriteString(more)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	return b.String()
}

// acceptEvent acts on the Events API events relbot subscribes to: the App
// Home tab opened is (re)published with the user's releases and apps.
func (b *Bot) acceptEvent(ctx context.Context, e slackevents.EventsAPIEvent) {
	if ev, ok := e.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok && ev.Tab == "home" && ev.User != "" {
		b.accept(ctx, "", "home", func(ctx context.Context) { b.publishHome(ctx, ev.User) })
	}
}

func (b *Bot) publishHome(ctx context.Context, user string) {
	h, err := b.cfg.Dispatcher.Home(ctx, user)
	if err != nil {
		b.log.Warn("app home not gathered", "user", user, "err", err)
		return
	}
	if _, err := b.cfg.API.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: RenderHome(h, time.Now())}); err != nil {
		b.log.Warn("app home not published", "user", user, "err", err)
	}
}
