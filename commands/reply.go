package commands

import (
	"context"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/relbot/relbot/release"
)

// Request is one command as a transport received it.
type Request struct {
	User    string // who: Slack user ID, or the terminal's --as / OS user
	Channel string // where from; empty in a terminal
	Text    string // the words after "/relbot" or "relbot"
	JSON    bool   // the caller prints Reply.Data as JSON
	// Secret reads a secret's value out of band (the terminal: stdin
	// without echo). Nil when the transport must ask in a form of its own:
	// secret set then answers with Reply.Prompt.
	Secret func(ctx context.Context, prompt string) (string, error)
	// OpenFile opens a file the user names (the terminal: a path on its
	// host). Nil where the user has no files of this host to name (Slack).
	OpenFile func(path string) (io.ReadCloser, error)
}

// Reply is a transport-neutral result. Text is always complete on its own
// (a terminal prints only it); Title, Fields and Table repeat it in
// structured form for richer renderings such as Slack blocks.
type Reply struct {
	Text   string
	Title  string
	Fields []Field
	Table  *Table
	Notes  []string // the lines Text has after the table
	Data   any      // what --json prints
	Public bool     // about shared state: post in the channel, not only to the user
	// Prompt asks the transport to collect a secret's value privately (a
	// Slack modal) and run secret set with it; nothing was changed yet.
	Prompt *SecretPrompt
	// Missing, with a refused deploy, names the variables the target
	// lacks, so a transport can ask the requester for them.
	Missing *release.MissingVariables
	// Restart, after a variable or secret change, offers to run the
	// environment's restart hook (Slack shows a button).
	Restart *RestartOffer
	// NewPlugins, with a deploy refused for plugins the target lacks,
	// lets a transport offer to go on anyway (Slack: a confirmed button).
	NewPlugins *NewPluginsOffer
}

// RestartOffer names the environment whose restart hook is offered.
type RestartOffer struct{ App, Env string }

// NewPluginsOffer is the refused deploy, to repeat with --allow-new-plugins.
type NewPluginsOffer struct {
	Migration, Env, At string
	Plugins            []release.NewPlugin
}

// SecretPrompt names the secret a transport should ask the user for.
type SecretPrompt struct{ App, Env, Var string }

// Field is one key/value line.
type Field struct{ Name, Value string }

// Table is rows under column headings; every row has len(Columns) cells.
type Table struct {
	Columns []string
	Rows    [][]string
}

// ErrorData is what --json prints for a failed command.
type ErrorData struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the code and message of a failed command; Code is "usage"
// for a usage error, else a release.Code.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Usage   string `json:"usage,omitempty"`
}

// ErrorReply renders an error from Parse or Handle for the user: the
// message of a *UsageError with its usage, or the user-facing message of a
// release error (internal causes are hidden; they belong in logs).
func ErrorReply(err error) Reply {
	var ue *UsageError
	if errors.As(err, &ue) {
		return Reply{Text: ue.Error(), Data: ErrorData{ErrorBody{Code: "usage", Message: ue.Message, Usage: ue.Usage}}}
	}
	msg := release.ErrorMessage(err)
	return Reply{Text: msg, Data: ErrorData{ErrorBody{Code: string(release.ErrorCode(err)), Message: msg}}}
}

// newReply builds a Reply whose Text renders the title, fields and table,
// followed by any extra lines.
func newReply(title string, fields []Field, table *Table, data any, extra ...string) Reply {
	var b strings.Builder
	if title != "" {
		b.WriteString(title + "\n")
	}
	width := 0
	for _, f := range fields {
		width = max(width, utf8.RuneCountInString(f.Name)+1)
	}
	for _, f := range fields {
		b.WriteString("  " + pad(f.Name+":", width) + " " + f.Value + "\n")
	}
	if table != nil {
		if len(fields) > 0 {
			b.WriteString("\n")
		}
		writeTable(&b, table)
	}
	for _, line := range extra {
		b.WriteString(line + "\n")
	}
	return Reply{Text: strings.TrimRight(b.String(), "\n"), Title: title, Fields: fields, Table: table, Notes: extra, Data: data}
}

func writeTable(b *strings.Builder, t *Table) {
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = utf8.RuneCountInString(c)
	}
	for _, row := range t.Rows {
		for i, cell := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(cell))
			}
		}
	}
	line := func(cells []string) {
		var parts []string
		for i := range widths {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			parts = append(parts, pad(cell, widths[i]))
		}
		b.WriteString(strings.TrimRight(strings.Join(parts, "  "), " ") + "\n")
	}
	line(t.Columns)
	for _, row := range t.Rows {
		line(row)
	}
}

func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}
