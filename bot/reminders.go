package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/release"
)

// RenderReminder is the direct message to an approver of a release that
// has waited half its approval window: what it is, how long it has left,
// and the buttons to approve or reject it from there.
func RenderReminder(rem release.Reminder, link string, now time.Time) Message {
	r := rem.Release
	left := rem.ExpiresAt.Sub(now).Round(time.Minute)
	text := fmt.Sprintf(":bell: %s asks for your approval of *%s* (%s): it needs %s more and expires in %s, at %s.",
		user(r.RequestedBy), escape(r.ID), escape(subject(r)), release.Count(rem.Missing, "approval"), humanLeft(left), rem.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	if r.Channel != "" {
		text += fmt.Sprintf(" It is in <#%s>.", r.Channel)
	}
	if link != "" && len(link) < maxText/2 {
		text += fmt.Sprintf(" <%s|Release page>", link)
	}
	approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve", 75))
	approve.Style = slack.StylePrimary
	reject := slack.NewButtonBlockElement(ActionReject, r.ID, plain("Reject", 75))
	reject.Style = slack.StyleDanger
	return message(fmt.Sprintf("%s waits for your approval", r.ID), section(truncate(text, maxText)), slack.NewActionBlock("release_actions", approve, reject))
}

func humanLeft(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	return fmt.Sprint(d)
}

// RemindApprovers sends each reminder's approvers a direct message, once
// per release and approver however many replicas ask (the dedupe store is
// shared), and says how many it sent.
func (b *Bot) RemindApprovers(ctx context.Context, rems []release.Reminder) int {
	if b.cfg.Dedupe == nil {
		return 0 // without a memory of what was sent, every pass would send again
	}
	sent := 0
	for _, rem := range rems {
		link := ""
		if b.cfg.ReleaseLink != nil {
			link = b.cfg.ReleaseLink(rem.Release.ID)
		}
		for _, u := range rem.Approvers {
			if !isSlackUser(u) {
				continue
			}
			// Remembered past the release's expiry, so it is never sent twice.
			key := "remind:" + rem.Release.ID + ":" + u
			ttl := time.Until(rem.ExpiresAt) + time.Hour
			if first, err := b.cfg.Dedupe.First(ctx, key, ttl); err != nil || !first {
				if err != nil {
					b.log.Warn("approval reminder: dedupe store", "release", rem.Release.ID, "err", err)
				}
				continue
			}
			if err := b.dm(ctx, u, RenderReminder(rem, link, time.Now())); err != nil {
				b.log.Warn("approval reminder not sent", "release", rem.Release.ID, "user", u, "err", err)
				continue
			}
			sent++
			b.log.Info("approval reminder sent", "release", rem.Release.ID, "user", u)
		}
	}
	return sent
}
