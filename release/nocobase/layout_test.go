package nocobase

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

func relLayout(l fixtures.Layout) release.Layout {
	return release.Layout{Schema: l.Schema, TablePrefix: l.Prefix, Underscored: l.Underscored}
}

// layoutEnv is a NocoBase-shaped database in layout l with the staging key
// file in its storage.
func layoutEnv(t *testing.T, l fixtures.Layout) *release.Environment {
	t.Helper()
	_, dsn := testenv.NewDatabase(t, "nblayout")
	if err := fixtures.LoadNocoBase(context.Background(), dsn, l, fixtures.Staging); err != nil {
		t.Fatal(err)
	}
	storage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(storage, "apps", "main"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, KeyFile), fixtures.AESKey(fixtures.Staging), 0o600); err != nil {
		t.Fatal(err)
	}
	return &release.Environment{Name: "staging", Database: dsn, Storage: storage}
}

func TestUnderscoreIsNocoBases(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"uiSchemas": "ui_schemas", "createdAt": "created_at", "x-uid": "x-uid", "flow_nodes": "flow_nodes",
		"main_desktopRoutes_path": "main_desktop_routes_path", "dataSourcesRolesResourcesActions": "data_sources_roles_resources_actions",
		"environmentVariables": "environment_variables", "rolesUischemas": "roles_uischemas", "verifications_providers": "verifications_providers",
	} {
		if got := release.Underscore(in); got != want {
			t.Errorf("Underscore(%q) = %q, want %q", in, got, want)
		}
	}
	all := release.Layout{Schema: "nocobase", TablePrefix: "nb_", Underscored: true}
	if got := all.Key("main_desktopRoutes_path"); got != "nocobase.nb_main_desktop_routes_path" {
		t.Fatalf("all three: %s", got)
	}
}

// Every layout is detected from the database, by the full inspection and
// by the cheap catalogue read, and a stated layout is checked against it.
func TestDetectEveryLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			want := relLayout(tc.Layout)
			env := layoutEnv(t, tc.Layout)
			conn := testenv.Connect(t, env.Database)
			s, err := pgschema.Inspect(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			full, err := LayoutOf(s, env)
			if err != nil || !full.Found || full.Layout != want || full.How != "detected" {
				t.Fatalf("from the schema: %+v, %v; want %s", full, err, want)
			}
			light, err := Layouts{}.Layout(ctx, env)
			if err != nil || !reflect.DeepEqual(light, full) {
				t.Fatalf("from the catalogue: %+v, %v; want %+v", light, err, full)
			}
			core, plugins, err := AppVersions(ctx, conn, s, want)
			if err != nil || core != fixtures.NocoBaseCore || len(plugins) != fixtures.NocoBasePlugins || plugins["plugin-1"] != fixtures.NocoBaseCore {
				t.Fatalf("versions under %s: %q %v %v", want, core, plugins, err)
			}

			stated := *env
			stated.Layout = &want
			if r, err := (Layouts{}).Layout(ctx, &stated); err != nil || r.How != "stated in apps.yaml and detected" {
				t.Fatalf("stated as it is: %+v, %v", r, err)
			}
			wrong := want
			wrong.Underscored = !wrong.Underscored
			stated.Layout = &wrong
			_, err = Layouts{}.Layout(ctx, &stated)
			if release.ErrorCode(err) != release.CodeConflict || !strings.Contains(err.Error(), wrong.String()) || !strings.Contains(err.Error(), want.String()) ||
				!strings.Contains(err.Error(), "DB_UNDERSCORED") {
				t.Fatalf("contradicting statement: %v", err)
			}
		})
	}
}

// A database with two installations cannot be decided without apps.yaml;
// with it, it can. An empty one takes the stated layout or the default.
func TestUndecidableAndEmptyDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := layoutEnv(t, fixtures.Layout{})
	if err := fixtures.LoadNocoBase(ctx, env.Database, fixtures.Layouts[4].Layout, fixtures.Staging); err != nil {
		t.Fatal(err)
	}
	_, err := Layouts{}.Layout(ctx, env)
	if release.ErrorCode(err) != release.CodeInvalid || !strings.Contains(err.Error(), "2 layouts") || !strings.Contains(err.Error(), "nocobase: {schema") {
		t.Fatalf("two installations: %v", err)
	}
	all := relLayout(fixtures.Layouts[4].Layout)
	env.Layout = &all
	if r, err := (Layouts{}).Layout(ctx, env); err != nil || r.Layout != all {
		t.Fatalf("two installations, one stated: %+v, %v", r, err)
	}
	other := release.Layout{TablePrefix: "x_"}
	env.Layout = &other
	if _, err := (Layouts{}).Layout(ctx, env); err == nil || !strings.Contains(err.Error(), "which is none of them") {
		t.Fatalf("two installations, a third stated: %v", err)
	}

	_, dsn := testenv.NewDatabase(t, "nbempty")
	empty := &release.Environment{Name: "recovery", Database: dsn}
	if r, err := (Layouts{}).Layout(ctx, empty); err != nil || r.Found || r.Layout != (release.Layout{}) || !strings.Contains(r.How, "no NocoBase tables") {
		t.Fatalf("empty: %+v, %v", r, err)
	}
	empty.Layout = &all
	if r, err := (Layouts{}).Layout(ctx, empty); err != nil || r.Found || r.Layout != all {
		t.Fatalf("empty, stated: %+v, %v", r, err)
	}
}

// The variables table is read and written where the layout puts it, with
// its real column names, in the form NocoBase decrypts.
func TestVariablesInEveryLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			l := tc.Layout
			env := layoutEnv(t, l)
			now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
			v := &Variables{Now: func() time.Time { return now }}
			names, err := v.Names(ctx, env)
			if err != nil || len(names) != 2 || names["API_URL"] || !names["API_TOKEN"] {
				t.Fatalf("the app's own variables: %v, %v", names, err)
			}
			if err := v.Put(ctx, env, "SMTP_PASSWORD", true, "hunter2-hunter2"); err != nil {
				t.Fatal(err)
			}
			if err := v.Put(ctx, env, "API_URL", false, "https://new.example"); err != nil {
				t.Fatal(err)
			}
			q := fmt.Sprintf(`SELECT %q, %q || ' ' || %q || ' ' || (%q = $1)::text FROM %s`,
				"name", "type", "value", l.Column("updatedAt"), l.Ident(VariablesTable))
			conn := testenv.Connect(t, env.Database)
			rows, err := conn.Query(ctx, q, now)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var n, r string
				if err := rows.Scan(&n, &r); err != nil {
					t.Fatal(err)
				}
				got[n] = r
			}
			if rows.Err() != nil || got["API_URL"] != "default https://new.example true" {
				t.Fatalf("rows of %s: %v %v", l.Ident(VariablesTable), got, rows.Err())
			}
			parts := strings.Fields(got["SMTP_PASSWORD"])
			if len(parts) != 3 || parts[0] != "secret" || parts[2] != "true" {
				t.Fatalf("secret row: %q", got["SMTP_PASSWORD"])
			}
			if plain, err := fixtures.DecryptSecret(fixtures.AESKey(fixtures.Staging), parts[1]); err != nil || plain != "hunter2-hunter2" {
				t.Fatalf("NocoBase decrypts %q, %v", plain, err)
			}
			if err := v.Delete(ctx, env, "SMTP_PASSWORD"); err != nil {
				t.Fatal(err)
			}
			if names, err := v.Names(ctx, env); err != nil || len(names) != 2 || names["SMTP_PASSWORD"] {
				t.Fatalf("after delete: %v, %v", names, err)
			}
		})
	}
}
