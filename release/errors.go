package release

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error for the user and the transports (exit codes,
// HTTP statuses). Adapters translate their own failures into one of these.
// A code is snake_case, as --json prints it ({"error": {"code": "not_found"}});
// people read the message, never the code.
type Code string

const (
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeForbidden    Code = "forbidden"
	CodeUnavailable  Code = "not_available"
	CodeInternal     Code = "internal"
	CodeDamaged      Code = "damaged"
	CodeIncompatible Code = "incompatible"
)

// Codes is every Code, for tests and documentation that must cover each.
var Codes = []Code{CodeInvalid, CodeNotFound, CodeConflict, CodeForbidden, CodeUnavailable, CodeInternal, CodeDamaged, CodeIncompatible}

// Error is what a user is shown: a code and one clear sentence. The wrapped
// cause goes to logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error is the message followed by the cause, for the log, with the cause
// in it once: a message that says its cause already (Errorf's %w) is all
// of it, and one that quotes its cause's own message (ErrorMessage) is
// followed only by what that cause adds.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	cause := e.Err.Error()
	if strings.Contains(e.Message, cause) || strings.Contains(e.Message, oneLine(cause)) {
		return e.Message
	}
	if inner, ok := e.Err.(*Error); ok && inner.Message != "" && strings.Contains(e.Message, inner.Message) {
		return e.Message + strings.TrimPrefix(cause, inner.Message)
	}
	return e.Message + ": " + cause
}

// oneLine folds a text's line breaks and runs of spaces into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error whose message is formatted; a %w verb keeps the
// cause. The message is one line: a cause's own line breaks (a driver
// listing each address it tried) are folded.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		msg = oneLine(msg)
	}
	return &Error{Code: code, Message: msg, Err: errors.Unwrap(err)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal for anything else.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns what the user should read: the message of the first
// *Error in err's chain, or a generic sentence that hides internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error (see the bot's log)"
}
