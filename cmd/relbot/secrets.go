package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/nocobase"
	"github.com/relbot/relbot/storage/postgres"
)

// newVariables builds the variables service: its store, the NocoBase
// engine for apps' own tables, and the keys. A missing RELBOT_SECRET_KEY is
// not an error here: only reading or writing a secret needs it, and says so.
func newVariables(core *release.Core, store *postgres.Store, s *config.Settings) (*release.VariableService, error) {
	svc := &release.VariableService{Core: core, Store: store}
	svc.AppVariables = &nocobase.Variables{KeyFor: svc.AppAESKey}
	if s.SecretKey != "" {
		key, err := s.SecretKeyBytes()
		if err != nil {
			return nil, err
		}
		svc.SecretKey = key
	}
	prev, err := s.PreviousSecretKeyBytes()
	if err != nil {
		return nil, err
	}
	svc.PreviousSecretKey = prev
	return svc, nil
}

// secretReader reads one secret value from the terminal's stdin: without
// echo when it is a TTY, else one line (a pipe: echo -n "$X" | relbot ...).
// The trailing newline is not part of the value.
func secretReader(std Stdio) func(ctx context.Context, prompt string) (string, error) {
	return func(_ context.Context, prompt string) (string, error) {
		if f, ok := std.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(std.Err, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(std.Err)
			if err != nil {
				return "", errors.New("the terminal could not be read")
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if std.In == nil {
			return "", errors.New("there is no stdin")
		}
		line, err := bufio.NewReader(std.In).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", errors.New("stdin could not be read")
		}
		return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
	}
}
