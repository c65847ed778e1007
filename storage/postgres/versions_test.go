package postgres

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

func TestVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	v1 := &release.Version{ID: "crm-v1", App: "crm", Env: "development", Description: "first", CreatedBy: "alice", CreatedAt: at,
		CoreVersion: "2.2.15", Plugins: map[string]string{"acl": "2.2.15"},
		Tables: []release.VersionTable{{Table: "uiSchemas", Rule: "overwrite", Blob: "ab", Rows: 3, Checksum: "cd", Columns: []string{"x-uid"}, Schema: json.RawMessage(`{"name": "uiSchemas"}`)}}}
	v2 := &release.Version{ID: "crm-v2", App: "crm", Env: "development", Description: "before restore of crm-v1", CreatedBy: "bob", CreatedAt: at.Add(time.Minute), Auto: true,
		Tables: []release.VersionTable{}}
	other := &release.Version{ID: "shop-v1", App: "shop", Env: "development", Description: "x", CreatedBy: "c", CreatedAt: at, Tables: []release.VersionTable{}}
	for _, v := range []*release.Version{v1, v2, other} {
		if err := s.SaveVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveVersion(ctx, v1); err == nil {
		t.Fatalf("saving an ID twice: %v", err)
	}
	got, err := s.GetVersion(ctx, "crm-v1")
	if err != nil || !reflect.DeepEqual(got, v1) {
		t.Fatalf("get: %v\n%+v\n%+v", err, got, v1)
	}
	list, err := s.ListVersions(ctx, "crm")
	if err != nil || len(list) != 2 || list[0].ID != "crm-v2" || !list[0].Auto {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := s.DeleteVersion(ctx, "crm-v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVersion(ctx, "crm-v1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("deleted: %v", err)
	}
	if err := s.DeleteVersion(ctx, "crm-v1"); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("delete twice: %v", err)
	}
}
