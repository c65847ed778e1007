package commands

import (
	"errors"
	"strings"
)

// UsageError is a malformed command: one sentence saying what is wrong, and
// the usage of the command it was meant to be (empty when unknown).
type UsageError struct {
	Command string // grammar name, e.g. "backup create"; empty when unknown
	Message string // one sentence, never echoing a secret
	Usage   string // "backup create APP ENV"; several lines for a group
	// Flag is the name (without "--") of the flag the command does not
	// take, when that is the error: a transport may know flags of its own.
	Flag string
}

func (e *UsageError) Error() string {
	if e.Usage == "" {
		return e.Message
	}
	return e.Message + "\nusage: " + strings.ReplaceAll(e.Usage, "\n", "\n       ")
}

// ExitCode is the terminal's exit status for the outcome of a command:
// 0 success, 2 usage error, 1 anything refused or failed.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
