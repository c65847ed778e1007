package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
)

var fakeVersion = &release.Version{ID: "crm-v1", App: "crm", Env: "development", Description: "Contracts page", CreatedBy: "alice", CreatedAt: t0,
	CoreVersion: "2.2.15", Tables: []release.VersionTable{{Table: "uiSchemas", Rows: 90}, {Table: "roles", Rows: 3}}}

func (f *fakeService) CreateVersion(_ context.Context, actor, app, description string) (*release.Version, error) {
	f.record("create version %s by %s %q", app, actor, description)
	if _, err := f.App(app); err != nil {
		return nil, err
	}
	return fakeVersion, nil
}

func (f *fakeService) ListVersions(_ context.Context, app string) ([]*release.Version, error) {
	if app != "crm" {
		return nil, nil
	}
	return []*release.Version{fakeVersion}, nil
}

func (f *fakeService) DiffVersion(_ context.Context, app, from, to string) (*release.VersionDiff, error) {
	if from != fakeVersion.ID {
		return nil, release.Errorf(release.CodeNotFound, "no version %s", from)
	}
	return &release.VersionDiff{App: app, From: from, To: "development (live)", Unchanged: 40, Tables: []release.TableDiff{
		{Table: "uiSchemas", Added: 1, Changed: 25, Entries: []release.DiffEntry{{Key: "x-uid=abc", Kind: release.DiffChanged, Columns: []string{"schema", "sort"}}, {Key: "x-uid=new", Kind: release.DiffAdded}}},
		{Table: "main_desktopRoutes_path", Removed: 1, Entries: []release.DiffEntry{{Key: "(7,/7)", Kind: release.DiffRemoved}}, Note: "no primary key: rows compared as a whole"},
	}}, nil
}

func (f *fakeService) RestoreVersion(_ context.Context, actor, app, id string) (*release.Version, *release.Version, *release.VersionRestoreReport, error) {
	f.record("restore version %s %s by %s", app, id, actor)
	before := *fakeVersion
	before.ID, before.Description, before.Auto = "crm-v2", "before restore of crm-v1", true
	return fakeVersion, &before, &release.VersionRestoreReport{Tables: 2, Rows: 93, Notes: []string{"table gone no longer exists: skipped"}}, nil
}

func (f *fakeService) Drift(_ context.Context, app, from, to string) (*release.Drift, error) {
	return &release.Drift{App: app, From: from, To: to,
		Schema: []release.SchemaDrift{
			{Table: "contracts", Differences: []string{"table only in development (missing in production)"}},
			{Table: "customers", Differences: []string{"column segment (text) only in development", "index customers_segment_idx only in development"}},
		},
		Versions:         []string{"core: 2.2.15 in development, 2.2.12 in production"},
		VariablesOnlyIn:  map[string][]string{from: {"CONTRACTS_SIGN_URL"}, to: {}},
		VariablesChecked: true,
	}, nil
}

func TestVersionReplies(t *testing.T) {
	f := newFake()
	d := &Dispatcher{Services: all(f)}
	ctx := context.Background()
	r, err := d.Handle(ctx, Request{User: "alice", Text: `version create crm Contracts page and segment`})
	if err != nil || !r.Public || !strings.Contains(r.Text, "Version crm-v1 saved from crm development") || !strings.Contains(r.Text, "93 rows") {
		t.Fatalf("create: %v\n%s", err, r.Text)
	}
	if got := f.calls[len(f.calls)-1]; got != `create version crm by alice "Contracts page and segment"` {
		t.Fatalf("call: %s", got)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "version list crm"})
	if err != nil || !strings.Contains(r.Text, "1 version of crm") || !strings.Contains(r.Text, "Contracts page") {
		t.Fatalf("list: %v\n%s", err, r.Text)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "version list tickets"})
	if err != nil || !strings.Contains(r.Text, "No versions of tickets yet") {
		t.Fatalf("empty list: %v\n%s", err, r.Text)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "version diff crm crm-v1"})
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(r.Text, "\n", 2)[0]
	if !strings.Contains(first, "2 tables differ (rows: 1 added, 1 removed, 25 changed); 40 unchanged") {
		t.Fatalf("diff summary must come first:\n%s", r.Text)
	}
	for _, want := range []string{"changed x-uid=abc: schema, sort", "added   x-uid=new", "... and 24 more", "no primary key"} {
		if !strings.Contains(r.Text, want) {
			t.Fatalf("diff lacks %q:\n%s", want, r.Text)
		}
	}
	if _, err := d.Handle(ctx, Request{User: "alice", Text: "version diff crm crm-v9"}); release.ErrorCode(err) != release.CodeNotFound {
		t.Fatalf("unknown version: %v", err)
	}
	r, err = d.Handle(ctx, Request{User: "alice", Text: "version restore crm crm-v1"})
	if err != nil || !r.Public || !strings.Contains(r.Text, "version restore crm crm-v2") || !strings.Contains(r.Text, "no longer exists") {
		t.Fatalf("restore: %v\n%s", err, r.Text)
	}
}

func TestDriftReply(t *testing.T) {
	d := &Dispatcher{Services: all(newFake())}
	r, err := d.Handle(context.Background(), Request{User: "alice", Text: "drift crm development production"})
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(r.Text, "\n", 2)[0]
	if !strings.Contains(first, "2 tables differ, 1 version difference, 1 variable name") {
		t.Fatalf("summary first:\n%s", r.Text)
	}
	for _, want := range []string{"contracts: table only in development", "column segment (text) only in development", "core: 2.2.15", "only in development: CONTRACTS_SIGN_URL"} {
		if !strings.Contains(r.Text, want) {
			t.Fatalf("drift lacks %q:\n%s", want, r.Text)
		}
	}
}
