package nocobase

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/pgschema"
)

func execDSN(t *testing.T, dsn, sql string) {
	t.Helper()
	if _, err := testenv.Connect(t, dsn).Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// COLLECTION_MANAGER_SCHEMA is read from where the tables of the
// collections listed in the collections table live, in every layout, by
// the catalogue read, the full inspection and a backup's reading; a
// stated value is checked against it.
func TestCollectionSchemaDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			env := layoutEnv(t, tc.Layout)
			// orders and a collection with its own tableName in user_data;
			// an SQL collection has no table; a table of a collection's name
			// that also sits in the system schema tells nothing.
			execDSN(t, env.Database, fixtures.UserCollectionsSQL(tc.Layout, "user_data", "orders", "dueOrders:ordersDue", "report!")+
				fixtures.UserCollectionsSQL(tc.Layout, "", "notes")+
				`CREATE SCHEMA other; CREATE TABLE other.`+pgschema.QuoteIdent(tc.Layout.Table("notes"))+` (id bigint);`)
			want := relLayout(tc.Layout)
			want.CollectionSchema = "user_data"
			rep, err := Layouts{}.Layout(ctx, env)
			if err != nil || rep.Layout != want || rep.How != "detected" || !strings.HasSuffix(rep.Text(), ", collections in schema user_data (detected)") {
				t.Fatalf("catalogue read: %+v, %v; want %s", rep, err, want)
			}
			conn := testenv.Connect(t, env.Database)
			s, err := pgschema.Inspect(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if full, err := LayoutOfDB(ctx, conn, s, env); err != nil || full.Layout != want {
				t.Fatalf("inspection: %+v, %v", full, err)
			}
			if info, err := ReadApp(ctx, conn, s, env); err != nil || info.Layout == nil || *info.Layout != want || len(info.Warnings) != 0 {
				t.Fatalf("backup's reading: %+v, %v", info, err)
			}
			// Without rows, the inspection alone cannot know it.
			if plain, err := LayoutOf(s, env); err != nil || plain.Layout.CollectionSchema != "" {
				t.Fatalf("schema only: %+v, %v", plain, err)
			}

			stated := *env
			stated.Layout = &want
			if r, err := (Layouts{}).Layout(ctx, &stated); err != nil || r.Layout != want || r.How != "stated in apps.yaml and detected" {
				t.Fatalf("stated as it is: %+v, %v", r, err)
			}
			if r, err := LayoutOf(s, &stated); err != nil || r.Layout != want {
				t.Fatalf("stated, schema only: %+v, %v", r, err)
			}
			wrong := relLayout(tc.Layout)
			stated.Layout = &wrong
			_, err = Layouts{}.Layout(ctx, &stated)
			if release.ErrorCode(err) != release.CodeConflict || !strings.Contains(err.Error(), "COLLECTION_MANAGER_SCHEMA is unset ("+wrong.SchemaName()+") in apps.yaml, user_data in the database") {
				t.Fatalf("stated without collection_schema: %v", err)
			}
		})
	}
}

// Collections in the system schema, or none, are NocoBase's default; their
// tables spread over several schemas cannot be decided without apps.yaml.
func TestCollectionSchemaDefaultAndUndecidable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := fixtures.Layouts[4].Layout
	env := layoutEnv(t, l)
	if rep, err := (Layouts{}).Layout(ctx, env); err != nil || rep.Layout != relLayout(l) {
		t.Fatalf("no user collections: %+v, %v", rep, err)
	}
	execDSN(t, env.Database, fixtures.UserCollectionsSQL(l, "", "orders"))
	if rep, err := (Layouts{}).Layout(ctx, env); err != nil || rep.Layout != relLayout(l) || strings.Contains(rep.Text(), "collections in") {
		t.Fatalf("collections beside the system tables: %+v, %v", rep, err)
	}
	execDSN(t, env.Database, fixtures.UserCollectionsSQL(l, "a", "deals")+fixtures.UserCollectionsSQL(l, "b", "leads"))
	_, err := Layouts{}.Layout(ctx, env)
	if release.ErrorCode(err) != release.CodeInvalid || !strings.Contains(err.Error(), "cannot tell COLLECTION_MANAGER_SCHEMA of staging") || !strings.Contains(err.Error(), "(a, b)") ||
		!strings.Contains(err.Error(), "collection_schema") {
		t.Fatalf("two schemas: %v", err)
	}
	b := relLayout(l)
	b.CollectionSchema = "b"
	env.Layout = &b
	if rep, err := (Layouts{}).Layout(ctx, env); err != nil || rep.Layout != b {
		t.Fatalf("two schemas, one stated: %+v, %v", rep, err)
	}
}

// Sub-apps kept in schemas of their own (USE_DB_SCHEMA_IN_SUBAPP) are told
// from the main app by its applications table, and said loudly: relbot
// handles the main app's tables only.
func TestSubAppSchemasDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	main := fixtures.Layouts[4].Layout
	env := layoutEnv(t, main)
	sub := main
	sub.Schema = "a1"
	execDSN(t, env.Database, fixtures.NocoBaseSQL(sub, fixtures.Staging))
	if _, err := (Layouts{}).Layout(ctx, env); err == nil || !strings.Contains(err.Error(), "2 layouts") {
		t.Fatalf("two installations not said to be one app's: %v", err)
	}
	execDSN(t, env.Database, `CREATE TABLE nocobase.nb_applications (name varchar(255) PRIMARY KEY, display_name text); INSERT INTO nocobase.nb_applications VALUES ('a1', 'sub-app one'), ('a2', 'without a schema yet');`)
	rep, err := Layouts{}.Layout(ctx, env)
	if err != nil || rep.Layout != relLayout(main) || strings.Join(rep.SubAppSchemas, ",") != "a1" ||
		!strings.Contains(rep.Text(), "WARNING: sub-apps keep their tables in schemas of their own (USE_DB_SCHEMA_IN_SUBAPP: a1), which relbot does not support") {
		t.Fatalf("sub-app: %+v, %v", rep, err)
	}
	conn := testenv.Connect(t, env.Database)
	s, err := pgschema.Inspect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := ReadApp(ctx, conn, s, env); err != nil || info.Layout == nil || *info.Layout != relLayout(main) || !strings.Contains(strings.Join(info.Warnings, "\n"), "USE_DB_SCHEMA_IN_SUBAPP: a1") {
		t.Fatalf("backup's reading: %+v, %v", info, err)
	}
}
