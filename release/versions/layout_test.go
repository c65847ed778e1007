package versions

import (
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

func layoutEnv(t *testing.T, l fixtures.Layout, env string) *release.Environment {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "nbver")
	if err := fixtures.LoadNocoBase(ctxT(t), dsn, l, env); err != nil {
		t.Fatal(err)
	}
	return &release.Environment{Name: env, Database: dsn}
}

// Versions hold the preset's configuration tables and read the versions
// tables in every layout; a diff and a restore find them; drift sees the
// core and plugin versions and says when two layouts differ.
func TestVersionsAndDriftInEveryLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			l := tc.Layout
			dev := layoutEnv(t, l, fixtures.Development)
			prod := layoutEnv(t, l, fixtures.Production)
			app := &release.App{Name: "crm", Builtin: "nocobase", Rules: map[string]release.Rule{},
				VersionTables: []string{"tickets"}, Environments: []*release.Environment{dev, prod}}
			e := &Engine{}
			blobs := newBlobs()
			v1, snap := snapshot(t, e, app, blobs, "crm-v1")
			carried := 0
			for _, nt := range fixtures.NocoBaseTables() {
				if nt.Carried() {
					carried++
					if v1.Table(l.Key(nt.Name)) == nil {
						t.Fatalf("version lacks %s", l.Key(nt.Name))
					}
				}
			}
			// tickets is a user table listed by its plain name.
			if len(v1.Tables) != carried+1 || v1.Table(l.Key("tickets")) == nil || v1.Table(l.Key("environmentVariables")) != nil {
				t.Fatalf("version holds %d tables, want the %d configuration tables and tickets", len(v1.Tables), carried)
			}
			if snap.CoreVersion != fixtures.NocoBaseCore || len(snap.Plugins) != fixtures.NocoBasePlugins {
				t.Fatalf("version's core %q, plugins %v", snap.CoreVersion, snap.Plugins)
			}
			exec(t, dev.Database, `UPDATE `+l.Ident("uiSchemas")+` SET "name" = 'edited' WHERE "x-uid" = 'uid-1'`)
			d, err := e.Diff(ctxT(t), app, dev, v1, nil, blobs)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Tables) != 1 || d.Tables[0].Table != l.Key("uiSchemas") || d.Tables[0].Changed != 1 {
				t.Fatalf("diff: %+v", d.Tables)
			}
			if _, err := e.Restore(ctxT(t), app, dev, v1, blobs); err != nil {
				t.Fatal(err)
			}
			equalsVersion(t, dev.Database, v1)

			dr, err := e.Drift(ctxT(t), app, dev, prod)
			if err != nil {
				t.Fatal(err)
			}
			if len(dr.Versions) != 0 {
				t.Fatalf("drift between two 2.2.15 installs: %v", dr.Versions)
			}
			exec(t, prod.Database,
				`UPDATE `+l.Ident("applicationVersion")+` SET "value" = '2.2.14'`,
				`UPDATE `+l.Ident("applicationPlugins")+` SET "version" = '2.2.14' WHERE "name" = 'plugin-2'`)
			dr, err = e.Drift(ctxT(t), app, dev, prod)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(dr.Versions, "\n")
			if !strings.Contains(text, "core: 2.2.15 in development, 2.2.14 in production") || !strings.Contains(text, "plugin plugin-2: 2.2.15 in development, 2.2.14 in production") {
				t.Fatalf("drift does not see the versions:\n%s", text)
			}
		})
	}
}

func TestDriftNamesDifferentLayouts(t *testing.T) {
	t.Parallel()
	dev := layoutEnv(t, fixtures.Layout{}, fixtures.Development)
	prod := layoutEnv(t, fixtures.Layouts[4].Layout, fixtures.Production)
	app := &release.App{Name: "crm", Builtin: "nocobase", Environments: []*release.Environment{dev, prod}}
	dr, err := (&Engine{}).Drift(ctxT(t), app, dev, prod)
	if err != nil {
		t.Fatal(err)
	}
	if len(dr.Versions) == 0 || !strings.Contains(dr.Versions[0], "NocoBase layout differs") || !strings.Contains(dr.Versions[0], "DB_SCHEMA is public in development, nocobase in production") {
		t.Fatalf("drift: %v", dr.Versions)
	}
}
