package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/config"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/artifacts"
)

// runArtifactsMigrate is "relbot artifacts migrate --to STORE": every
// artifact of RELBOT_ARTIFACT_DIR copied into STORE and checked there.
func runArtifactsMigrate(ctx context.Context, args []string, std Stdio, getenv func(string) string) int {
	fs, to := artifactsMigrateFlags()
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *to == "" {
		return usageError(std, "artifacts migrate", "artifacts migrate needs --to STORE (a directory, or s3://bucket/prefix?endpoint=…) and nothing else")
	}
	settings, err := loadSettings(getenv)
	if err != nil {
		fmt.Fprintln(std.Err, configMessage(err))
		return exitFailed
	}
	if settings.ArtifactDir == *to {
		return usageError(std, "artifacts migrate", fmt.Sprintf("--to names %s itself", config.EnvArtifactDir))
	}
	src, err := openArtifacts(ctx, settings.ArtifactDir)
	if err != nil {
		return report(std, commands.Reply{}, err, false)
	}
	defer closeStore(src)
	dst, err := openArtifacts(ctx, *to)
	if err != nil {
		return report(std, commands.Reply{}, err, false)
	}
	defer closeStore(dst)
	from, ok := src.(artifacts.Lister)
	if !ok {
		return report(std, commands.Reply{}, release.Errorf(release.CodeInternal, "the artifact store %s cannot list its artifacts", settings.ArtifactDir), false)
	}
	start := time.Now()
	rep, err := artifacts.Migrate(ctx, from, dst, func(name string, size int64, what string) {
		fmt.Fprintf(std.Out, "%-60s %10s  %s\n", name, release.Bytes(size), what)
	})
	took := time.Since(start).Round(10 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(std.Out, "Stopped after %s of the source's artifacts (%d copied, %d present) in %s.\n", release.Number(rep.Artifacts), rep.Copied, rep.Present, took)
		return report(std, commands.Reply{}, err, false)
	}
	fmt.Fprintf(std.Out, "%s: %d copied (%s), %d already there, every one read back with the source's SHA-256, in %s. Point %s at the new store to use it.\n",
		release.Count(rep.Artifacts, "artifact"), rep.Copied, release.Bytes(rep.Bytes), rep.Present, took, config.EnvArtifactDir)
	return exitOK
}

func artifactsMigrateFlags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("artifacts migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("to", "", "")
}

func closeStore(s release.Artifacts) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}
