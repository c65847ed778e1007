package migrate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/nocobase"
)

// COLLECTION_MANAGER_SCHEMA is recorded in the file and compared like the
// other settings: a migration between installations whose user collections
// live in different schemas is refused at the plan and at the apply, as by
// the layout read the deploy request makes; one between alike
// installations goes through.
func TestCollectionSchemaCompared(t *testing.T) {
	t.Parallel()
	l := fixtures.Layouts[4].Layout
	for _, tc := range []struct {
		name, dev, prod string
		refused         []string // at the plan and the apply
	}{
		{name: "alike", dev: "user_data", prod: "user_data"},
		{name: "to the default", dev: "user_data", prod: "", refused: []string{"COLLECTION_MANAGER_SCHEMA is user_data in development, unset (nocobase) in production"}},
		{name: "from the default", dev: "", prod: "user_data", refused: []string{"COLLECTION_MANAGER_SCHEMA is unset (nocobase) in development, user_data in production"}},
		{name: "another schema", dev: "user_data", prod: "crm_data", refused: []string{"COLLECTION_MANAGER_SCHEMA is user_data in development"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev := nocobaseEnv(t, l, fixtures.Development)
			prod := nocobaseEnv(t, l, fixtures.Production)
			for _, e := range []struct {
				env    *release.Environment
				schema string
			}{{dev, tc.dev}, {prod, tc.prod}} {
				sql := fixtures.UserCollectionsSQL(l, e.schema, "orders", "leads")
				if e.schema == "" {
					// A schema of that name with other tables, which is
					// not where NocoBase keeps collections.
					sql += `CREATE SCHEMA user_data; CREATE TABLE user_data.archive (id bigint);`
				}
				if _, err := testenv.Connect(t, e.env.Database).Exec(ctxT(t), sql); err != nil {
					t.Fatal(err)
				}
			}
			app := nocobaseApp(dev, prod)
			e := &Engine{SigningKey: testKey}
			var buf bytes.Buffer
			sum, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			want := relLayout(l)
			if tc.dev != "" {
				want.CollectionSchema = tc.dev
			}
			if sum.Layout == nil || *sum.Layout != want {
				t.Fatalf("the file records %v, want %s", sum.Layout, want)
			}
			read, err := nocobase.Layouts{}.Layout(ctxT(t), prod)
			if err != nil {
				t.Fatal(err)
			}
			diff := strings.Join(sum.Layout.Differences(read.Layout, dev.Name, prod.Name), "; ")
			before := take(t, prod.Database)
			_, perr := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, map[string]bool{"API_URL": true})
			_, aerr := e.Apply(ctxT(t), reader(buf.Bytes()), app, prod, release.ApplyOptions{By: "alice"})
			switch {
			case len(tc.refused) > 0:
				for _, err := range []error{perr, aerr} {
					if release.ErrorCode(err) != release.CodeIncompatible {
						t.Fatalf("want a refusal, got %v", err)
					}
					for _, w := range tc.refused {
						if !strings.Contains(err.Error(), w) || !strings.Contains(diff, w) {
							t.Fatalf("refusal does not say %q: %v (read: %s)", w, err, diff)
						}
					}
				}
				after := take(t, prod.Database)
				if after.schema != before.schema || fmt.Sprint(after.rows) != fmt.Sprint(before.rows) {
					t.Fatal("the refused apply changed production")
				}
			default:
				if perr != nil || aerr != nil || diff != "" {
					t.Fatalf("alike installations: plan %v, apply %v, read %q", perr, aerr, diff)
				}
			}
		})
	}
}
