package migrate

import (
	"context"

	"github.com/relbot/relbot/release"
)

// The window engine (release.WindowEngine) is being built on the
// window-engine branch; until it lands each method says so.

func notBuilt(what string) error {
	return release.Errorf(release.CodeInternal, "%s is not built yet", what)
}

func (e *Engine) Prepare(context.Context, release.ArchiveReader, *release.App, *release.Environment, release.PrepareOptions) (*release.Preparation, error) {
	return nil, notBuilt("prepare")
}

func (e *Engine) Unprepare(context.Context, *release.App, *release.Environment, string) error {
	return nil
}

func (e *Engine) Revert(context.Context, *release.App, *release.Environment, string, release.RevertOptions) (*release.ApplyResult, error) {
	return nil, notBuilt("targeted rollback")
}

func (e *Engine) Reverted(context.Context, *release.App, *release.Environment, string) (bool, error) {
	return false, notBuilt("targeted rollback")
}

func (e *Engine) Snapshots(context.Context, *release.App, *release.Environment) ([]release.SnapshotInfo, error) {
	return nil, nil
}

func (e *Engine) DropSnapshot(context.Context, *release.App, *release.Environment, string) error {
	return nil
}
