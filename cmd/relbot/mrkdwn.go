package main

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// mrkdwnRenderer shows Slack's mrkdwn in a terminal the way Slack shows
// it: bold, italics and code styled (with ANSI escapes on a TTY, plain
// text otherwise), code blocks indented, links, mentions and dates
// resolved, and the &amp; &lt; &gt; escapes undone. The demo prints
// relbot's Slack messages through it, so what a reader sees is what the
// channel would.
type mrkdwnRenderer struct {
	tty bool
	// names maps Slack user IDs to the names shown for <@ID>; an ID not
	// in it is shown as @ID.
	names map[string]string
	// loc is the zone dates are shown in (nil: UTC).
	loc *time.Location
}

const (
	ansiBold   = "\x1b[1m"
	ansiItalic = "\x1b[3m"
	ansiStrike = "\x1b[9m"
	ansiCode   = "\x1b[36m"
	ansiReset  = "\x1b[0m"
)

// emoji are the short codes relbot's messages use, as Slack draws them.
var emoji = map[string]string{
	"white_check_mark": "✅", "x": "❌", "hourglass_flowing_sand": "⏳", "calendar": "📅",
	"arrows_counterclockwise": "🔄", "rewind": "⏪", "no_entry": "⛔", "heavy_multiplication_x": "✖",
	"hourglass": "⌛", "warning": "⚠️", "white_large_square": "⬜", "heavy_minus_sign": "➖",
	"loudspeaker": "📢", "rotating_light": "🚨", "no_entry_sign": "🚫", "rocket": "🚀",
	"lock": "🔒", "bell": "🔔",
}

// Render turns one mrkdwn text into terminal text.
func (m mrkdwnRenderer) Render(s string) string {
	var b strings.Builder
	// Code blocks first: nothing inside them is formatting.
	for i, part := range strings.Split(s, "```") {
		if i%2 == 1 {
			b.WriteString(m.codeBlock(part))
			continue
		}
		b.WriteString(m.inline(part))
	}
	return b.String()
}

func (m mrkdwnRenderer) codeBlock(code string) string {
	code = strings.Trim(unescapeEntities(code), "\n")
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		lines[i] = "    " + m.style(ansiCode, l)
	}
	return "\n" + strings.Join(lines, "\n") + "\n"
}

// inline renders text outside code blocks: `code` spans are kept as they
// are; the rest has its tokens, styles and escapes resolved.
func (m mrkdwnRenderer) inline(s string) string {
	s = quoteLine.ReplaceAllString(s, "│ ")
	var b strings.Builder
	parts := strings.Split(s, "`")
	for i, part := range parts {
		if i%2 == 1 && i < len(parts)-1 {
			b.WriteString(m.style(ansiCode, unescapeEntities(part)))
			continue
		}
		if i%2 == 1 { // an unpaired backtick is a backtick
			b.WriteString("`")
		}
		b.WriteString(m.prose(part))
	}
	return b.String()
}

var (
	controlToken = regexp.MustCompile(`<([^<>]*)>`)
	emojiCode    = regexp.MustCompile(`:([a-z0-9_+-]+):`)
	quoteLine    = regexp.MustCompile(`(?m)^(&gt;|>) ?`)
)

// styleSpan matches a mrkdwn span of marker c as Slack reads it: the
// marker after the start, a space or punctuation, the text not starting
// with a space, the closing marker before the end, a space or punctuation.
func styleSpan(c string) *regexp.Regexp {
	q := regexp.QuoteMeta(c)
	return regexp.MustCompile(`(^|[\s(\[{"'—–-])` + q + `([^\s` + q + `](?:[^` + q + `\n]*[^\s` + q + `])?)` + q + `($|[\s)\]}.,;:!?"'—–-])`)
}

var (
	boldSpan   = styleSpan("*")
	italicSpan = styleSpan("_")
	strikeSpan = styleSpan("~")
)

func (m mrkdwnRenderer) prose(s string) string {
	s = emojiCode.ReplaceAllStringFunc(s, func(x string) string {
		if e, ok := emoji[x[1:len(x)-1]]; ok {
			return e
		}
		return x
	})
	s = controlToken.ReplaceAllStringFunc(s, func(tok string) string { return m.token(tok[1 : len(tok)-1]) })
	for _, span := range []struct {
		re   *regexp.Regexp
		code string
	}{{boldSpan, ansiBold}, {italicSpan, ansiItalic}, {strikeSpan, ansiStrike}} {
		// Twice: a span's closing boundary may be the next one's opening.
		for range 2 {
			s = span.re.ReplaceAllStringFunc(s, func(x string) string {
				g := span.re.FindStringSubmatch(x)
				return g[1] + m.style(span.code, g[2]) + g[3]
			})
		}
	}
	return unescapeEntities(s)
}

// token resolves one <…> control sequence: a mention, a channel, a date
// or a link.
func (m mrkdwnRenderer) token(t string) string {
	body, label, hasLabel := strings.Cut(t, "|")
	switch {
	case strings.HasPrefix(body, "@"):
		id := body[1:]
		if n, ok := m.names[id]; ok {
			return "@" + n
		}
		if hasLabel {
			return "@" + strings.TrimPrefix(label, "@")
		}
		return "@" + id
	case strings.HasPrefix(body, "#"):
		if hasLabel {
			return "#" + label
		}
		return body
	case strings.HasPrefix(body, "!date^"):
		return m.date(body, label)
	case strings.HasPrefix(body, "!subteam^"):
		if hasLabel {
			return label
		}
		return "@" + strings.TrimPrefix(body, "!subteam^")
	case body == "!here" || body == "!channel" || body == "!everyone":
		return "@" + body[1:]
	}
	if hasLabel && label != body {
		return label + " (" + body + ")"
	}
	return strings.TrimPrefix(body, "mailto:")
}

// date renders <!date^UNIX^FORMAT|fallback> as a date in the renderer's
// zone; the fallback when the time does not parse.
func (m mrkdwnRenderer) date(body, fallback string) string {
	f := strings.Split(body, "^")
	if len(f) < 2 {
		return fallback
	}
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return fallback
	}
	loc := m.loc
	if loc == nil {
		loc = time.UTC
	}
	return time.Unix(sec, 0).In(loc).Format("2006-01-02 15:04 MST")
}

func (m mrkdwnRenderer) style(code, s string) string {
	if !m.tty || s == "" {
		return s
	}
	return code + s + ansiReset
}

var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func unescapeEntities(s string) string { return entities.Replace(s) }
