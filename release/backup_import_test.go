package release

import (
	"reflect"
	"testing"
)

// An imported backup's secrets are those of the environment it was taken
// of, whatever list it was imported into: a restore elsewhere keeps the
// target's own, as for a backup made here.
func TestImportedBackupsKeepSecretsWhereTheyWereTaken(t *testing.T) {
	imported := func(into, takenOf string) *Backup {
		return &Backup{Env: into, Kind: BackupImported, Manifest: BackupSummary{Origin: &BackupOrigin{Env: takenOf}}}
	}
	cases := []struct {
		b      *Backup
		target string
		want   RestoreOptions
	}{
		{&Backup{Env: "production"}, "production", RestoreOptions{}},
		{&Backup{Env: "production"}, "staging", keepSecrets},
		{imported("production", "production"), "production", RestoreOptions{}},
		{imported("staging", "production"), "staging", keepSecrets}, // production's secrets do not land in staging
		{imported("production", "prod"), "production", keepSecrets}, // another installation's name: not this one's
		{imported("staging", "production"), RecoveryEnv, RestoreOptions{}},
	}
	for _, c := range cases {
		if got := restoreOptions(c.b, c.target); !reflect.DeepEqual(got, c.want) {
			t.Errorf("backup of %s (origin %+v) into %s: %+v, want %+v", c.b.Env, c.b.Manifest.Origin, c.target, got, c.want)
		}
	}
}
