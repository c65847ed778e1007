package release

import (
	"strings"
	"testing"
)

func TestChangesLinesHeadlineAndSince(t *testing.T) {
	c := &Changes{Against: "production", Items: []Change{
		{Kind: ChangePage, Action: "added", Name: "“Contracts”", Detail: "in “CRM”"},
		{Kind: ChangePage, Action: "removed", Name: "“Reports”"},
		{Kind: ChangeRole, Action: "menu access", Name: "“Sales” (sales)", Detail: "now sees “Contracts”"},
	}, Partial: []string{"cannot read mobileRoutes"}}
	if got, want := strings.Join(c.Lines(2), "\n"), "page added: “Contracts” — in “CRM”\npage removed: “Reports”\n… and 1 more\nnot summarized: cannot read mobileRoutes"; got != want {
		t.Fatalf("Lines(2):\n%s\nwant\n%s", got, want)
	}
	if got := len(c.Lines(0)); got != 4 {
		t.Fatalf("Lines(0) gives %d lines, want every change and the partial note", got)
	}
	if got := c.Headline(); got != "2 pages, 1 role" {
		t.Fatalf("headline %q", got)
	}
	if got := (&Changes{}).Headline(); got != "no configuration changes" {
		t.Fatalf("empty headline %q", got)
	}
	now := &Changes{Against: "production", Items: []Change{c.Items[0], {Kind: ChangePage, Action: "renamed", Name: "“Customers” → “Clients”"}, c.Items[2]}}
	if got, want := strings.Join(c.Since(now), "\n"), "+ page renamed: “Customers” → “Clients”\n- page removed: “Reports”"; got != want {
		t.Fatalf("Since:\n%s\nwant\n%s", got, want)
	}
	var none *Changes
	if none.Since(now) != nil || c.Since(nil) != nil || none.Lines(3) != nil || c.Since(c) != nil {
		t.Fatal("a missing summary, or the same one, differs in nothing")
	}
}
