package commands

import (
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/relbot/relbot/release"
)

// textField is one piece of free text a command carries: words a person
// typed that relbot stores and shows others (in Slack, in terminals, in
// migration files).
type textField struct{ what, text string }

// freeText lists the free-text fields of cmd. Every command with one is
// here, so checkFreeText holds them all to the same rules whichever
// transport built the command (a slash command, a modal, the terminal).
func freeText(cmd Command) []textField {
	switch c := cmd.(type) {
	case Lock:
		return []textField{{"the lock reason", c.Reason}}
	case Reject:
		return []textField{{"the reject reason", c.Reason}}
	case VersionCreate:
		return []textField{{"the version description", c.Description}}
	case MigrationCreate:
		return []textField{{"the migration note", c.Note}}
	}
	return nil
}

// checkFreeText refuses free text that holds control characters (a NUL
// the database cannot store, an escape sequence that would drive a
// reader's terminal) or the value of a secret relbot knows.
func (d *Dispatcher) checkFreeText(ctx context.Context, cmd Command) error {
	for _, f := range freeText(cmd) {
		if f.text == "" {
			continue
		}
		if err := PlainText(f.what, f.text); err != nil {
			return err
		}
		if err := d.Variables.RefuseSecretIn(ctx, f.what, f.text); err != nil {
			return err
		}
	}
	return nil
}

// PlainText refuses text that is not valid UTF-8 or holds a control
// character other than tab and line breaks, or a bidirectional override
// (which makes text read differently from what it is); what names the
// text in the message.
func PlainText(what, text string) error {
	for i, r := range text {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(text[i:]); size == 1 {
				return release.Errorf(release.CodeInvalid, "%s is not valid UTF-8 text (byte %d); type plain text", what, i+1)
			}
		case r == '\t' || r == '\n' || r == '\r':
		case ControlRune(r):
			return release.Errorf(release.CodeInvalid, "%s holds the control character %s at byte %d; type plain text without it", what, runeName(r), i+1)
		}
	}
	return nil
}

// ControlRune reports whether r drives a terminal or a text layout rather
// than being text: a C0 or C1 control character or DEL (which start escape
// sequences), or a bidirectional override. Tab and line breaks are
// controls too; callers that keep them test for them first.
func ControlRune(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200E || r == 0x200F || r == 0x061C
}

func runeName(r rune) string {
	switch r {
	case 0:
		return "NUL (U+0000)"
	case 0x1b:
		return "ESC (U+001B)"
	}
	return fmt.Sprintf("U+%04X", r)
}
