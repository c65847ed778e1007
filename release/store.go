package release

import (
	"context"
	"time"
)

// Store keeps the bot's records of backups (BackupService's store), and
// numbers them. Implementations translate "no such record" into an *Error
// with CodeNotFound.
type Store interface {
	IDs
	SaveBackup(ctx context.Context, b *Backup) error
	GetBackup(ctx context.Context, id string) (*Backup, error)
	// ListBackups returns an environment's backups, newest first.
	ListBackups(ctx context.Context, app, env string) ([]*Backup, error)
	DeleteBackup(ctx context.Context, id string) error
	// MarkBackupVerified records a verify that passed.
	MarkBackupVerified(ctx context.Context, id string, at time.Time) error
}
