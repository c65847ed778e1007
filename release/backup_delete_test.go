package release_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/artifacts"
	"github.com/relbot/relbot/storage/memory"
)

// A pre-release backup is kept while its release is open and while that
// release is its environment's latest deploy (a rollback restores it);
// once a newer deploy ends it may go like any other backup. The newest
// verified backup and a non-approver's deletion are refused.
func TestBackupDeleteKeepsWhatARollbackNeeds(t *testing.T) {
	ctx := context.Background()
	app := &release.App{Name: "crm", Environments: []*release.Environment{{Name: "development"},
		{Name: "production", Approvals: release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB"}}}}}
	store := memory.NewStore()
	arts, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	core := release.NewCore([]*release.App{app}, store, memory.NewLocker(), nil)
	svc := &release.BackupService{Core: core, Store: store, Artifacts: arts, Releases: store}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	save := func(b *release.Backup) {
		b.App, b.Env, b.Artifact = "crm", "production", "crm/backups/"+b.ID+".relbot"
		if err := store.SaveBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	deploy := func(id string, at time.Time, state release.State) {
		if err := store.CreateRelease(ctx, &release.Release{ID: id, App: "crm", Env: "production", Kind: release.KindDeploy, State: state,
			RequestedBy: "U03CCC", RequestedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	verified := t0.Add(time.Minute)
	save(&release.Backup{ID: "crm-b1", Kind: release.BackupScheduled, CreatedAt: t0, VerifiedAt: &verified})
	save(&release.Backup{ID: "crm-b2", Kind: release.BackupPreRelease, CreatedAt: t0.Add(time.Hour), ReleaseID: "crm-r1"})
	deploy("crm-r1", t0.Add(time.Hour), release.StateRunning)

	refused := func(id, actor, says string) {
		t.Helper()
		if _, err := svc.DeleteBackup(ctx, actor, id); err == nil || !strings.Contains(release.ErrorMessage(err), says) {
			t.Fatalf("delete %s by %s: %v, want a refusal saying %q", id, actor, err, says)
		}
		if _, err := store.GetBackup(ctx, id); err != nil {
			t.Fatalf("a refused deletion removed %s: %v", id, err)
		}
	}
	refused("crm-b2", "U01AAA", "crm-b2 is kept: its release crm-r1 is running")
	if err := store.MoveRelease(ctx, "crm-r1", release.StateRunning, release.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	refused("crm-b2", "U01AAA", "the pre-release backup of crm-r1, the latest deploy of crm production, which a rollback restores")
	refused("crm-b1", "U01AAA", "crm-b1 is the newest verified backup of crm production")
	refused("crm-b2", "U09MALLORY", "U09MALLORY may not delete backups of crm production")

	// A newer deploy that failed still is the latest deploy: crm-r1's
	// backup is no longer what a rollback restores.
	save(&release.Backup{ID: "crm-b3", Kind: release.BackupPreRelease, CreatedAt: t0.Add(2 * time.Hour), ReleaseID: "crm-r2"})
	deploy("crm-r2", t0.Add(2*time.Hour), release.StateFailed)
	if _, err := svc.DeleteBackup(ctx, "U01AAA", "crm-b2"); err != nil {
		t.Fatalf("crm-b2 after a newer deploy: %v", err)
	}
	if _, err := store.GetBackup(ctx, "crm-b2"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("crm-b2 still recorded: %v", err)
	}
	refused("crm-b3", "U02BBB", "latest deploy")
	if _, err := svc.DeleteBackup(ctx, "U01AAA", "crm-b9"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("unknown backup: %v", err)
	}
}
