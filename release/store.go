package release

import (
	"context"
	"time"
)

// Store keeps the bot's own records. Implementations translate "no such
// record" into an *Error with CodeNotFound.
type Store interface {
	// NextID allocates the next short ID of a kind for an app: kind "b"
	// gives crm-b1, crm-b2, ...
	NextID(ctx context.Context, app, kind string) (string, error)

	SaveBackup(ctx context.Context, b *Backup) error
	GetBackup(ctx context.Context, id string) (*Backup, error)
	// ListBackups returns an environment's backups, newest first.
	ListBackups(ctx context.Context, app, env string) ([]*Backup, error)
	DeleteBackup(ctx context.Context, id string) error
	// MarkBackupVerified records a verify that passed.
	MarkBackupVerified(ctx context.Context, id string, at time.Time) error
}
