package pgsnap

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/archive"
)

// A backup's manifest records the NocoBase layout and the core and plugin
// versions in every layout; a stated layout the database contradicts is a
// warning naming both, and the backup is still taken.
func TestBackupManifestInEveryLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			want := release.Layout{Schema: tc.Layout.Schema, TablePrefix: tc.Layout.Prefix, Underscored: tc.Layout.Underscored}
			_, dsn := testenv.NewDatabase(t, "nbsnap")
			if err := fixtures.LoadNocoBase(ctxT(t), dsn, tc.Layout, fixtures.Production); err != nil {
				t.Fatal(err)
			}
			wrong := want
			wrong.TablePrefix = "zz_"
			for _, stated := range []*release.Layout{nil, &wrong} {
				env := &release.Environment{Name: "production", Database: dsn, Layout: stated}
				var buf bytes.Buffer
				sum, err := (&Engine{Workers: 2}).Create(ctxT(t), env, release.ArchiveHeader{ID: "crm-b1", App: "crm", Env: env.Name, Kind: release.BackupManual, CreatedBy: "tester", CreatedAt: time.Now().UTC()}, &buf)
				if err != nil {
					t.Fatal(err)
				}
				if sum.CoreVersion != fixtures.NocoBaseCore || len(sum.Plugins) != fixtures.NocoBasePlugins {
					t.Fatalf("manifest versions: %q %v", sum.CoreVersion, sum.Plugins)
				}
				ar, err := archive.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "")
				if err != nil {
					t.Fatal(err)
				}
				var m Meta
				if err := json.Unmarshal(ar.Meta(), &m); err != nil {
					t.Fatal(err)
				}
				if m.Layout == nil || *m.Layout != want {
					t.Fatalf("manifest layout %v, want %s", m.Layout, want)
				}
				text := strings.Join(sum.Warnings, "\n")
				if stated != nil && (!strings.Contains(text, wrong.String()) || !strings.Contains(text, want.String())) {
					t.Fatalf("a contradicting apps.yaml layout is not warned about: %q", text)
				}
				if stated == nil && strings.Contains(text, "layout") {
					t.Fatalf("warnings: %q", text)
				}
			}
		})
	}
}
