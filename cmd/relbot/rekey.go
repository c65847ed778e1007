package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/postgres"
)

// runRekey is "relbot rekey-secrets": it re-encrypts every secret with
// RELBOT_SECRET_KEY, opening those sealed with the old key through
// RELBOT_SECRET_KEY_PREVIOUS. It needs no apps.yaml.
func runRekey(ctx context.Context, args []string, std Stdio, getenv func(string) string) int {
	if len(args) > 0 {
		fmt.Fprintln(std.Err, "relbot: rekey-secrets takes no arguments (the keys come from RELBOT_SECRET_KEY and RELBOT_SECRET_KEY_PREVIOUS)")
		return exitUsage
	}
	settings, err := loadSettings(getenv, config.EnvDatabaseURL, config.EnvSecretKey)
	if err != nil {
		fmt.Fprintln(std.Err, configMessage(err))
		return exitFailed
	}
	log := newLogger(std.Err, getenv, slog.LevelWarn)
	store, err := postgres.Open(ctx, settings.DatabaseURL, log)
	if err != nil {
		return report(std, commands.Reply{}, err, false)
	}
	defer store.Close()
	svc, err := newVariables(release.NewCore(nil, store, nil, log), store, settings)
	if err != nil {
		fmt.Fprintln(std.Err, "relbot: "+oneLine(err.Error()))
		return exitFailed
	}
	n, total, err := svc.RekeySecrets(ctx)
	if err != nil {
		return report(std, commands.Reply{}, err, false)
	}
	id := release.KeyID(svc.SecretKey)
	switch {
	case total == 0:
		fmt.Fprintf(std.Out, "No secrets to re-encrypt; new ones are sealed with RELBOT_SECRET_KEY (key id %s).\n", id)
	case n == 0:
		fmt.Fprintf(std.Out, "Every secret (%s) is already encrypted with RELBOT_SECRET_KEY (key id %s); RELBOT_SECRET_KEY_PREVIOUS is not needed.\n", release.Count(total, "secret"), id)
	default:
		fmt.Fprintf(std.Out, "Re-encrypted %d of %s with RELBOT_SECRET_KEY (key id %s). RELBOT_SECRET_KEY_PREVIOUS can now be removed.\n", n, release.Count(total, "secret"), id)
	}
	return exitOK
}
