package appdb

import (
	"testing"

	"github.com/relbot/relbot/fixtures"
)

func TestEmbeddedTableListIsTheFixtures(t *testing.T) {
	if nocobaseTSV != fixtures.NocoBaseTablesTSV {
		t.Fatal("fixtures/nocobase-2.2.15-tables.tsv differs from the preset's copy in release/appdb")
	}
}

func TestPluginChanges(t *testing.T) {
	got := PluginChanges(map[string][]string{
		"2.2.14 -> 2.2.15": {"workflow", "acl"},
		"(none) -> 1.0.0":  {"map"},
	})
	want := []string{"plugin map: (none) -> 1.0.0", "2 plugins 2.2.14 -> 2.2.15: acl, workflow"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("PluginChanges = %q, want %q", got, want)
	}
}

func TestFirstLine(t *testing.T) {
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'x'
	}
	for in, want := range map[string]string{
		"SELECT 1":          "SELECT 1",
		"UPDATE t\nSET a=1": "UPDATE t…",
		string(long):        string(long[:199]) + "…",
	} {
		if got := FirstLine(in); got != want {
			t.Errorf("FirstLine(%.20q) = %.30q, want %.30q", in, got, want)
		}
	}
}
