package bot

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/relbot/relbot/release"
)

// groupCalls records the usergroups calls a fake Slack answered.
type groupCalls struct {
	mu    sync.Mutex
	calls []call
}

func (g *groupCalls) Calls(method string) []call {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []call
	for _, c := range g.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// usergroupsEndpoints registers usergroups.list and usergroups.users.list
// on slacktest: @release-managers (S0RELMGRS) holds members; any other
// group ID answers Slack's no_such_subteam.
func usergroupsEndpoints(rec *groupCalls, members ...string) slacktest.Binder {
	return func(c slacktest.Customize) {
		handle := func(method string, answer func(url.Values) any) {
			c.Handle("/"+method, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				rec.mu.Lock()
				rec.calls = append(rec.calls, call{Method: method, Form: form, Body: string(body)})
				rec.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(answer(form))
			})
		}
		handle("usergroups.list", func(url.Values) any {
			return map[string]any{"ok": true, "usergroups": []map[string]any{
				{"id": "S0RELMGRS", "handle": "release-managers", "name": "Release managers"},
				{"id": "S0OTHER", "handle": "support", "name": "Support"},
			}}
		})
		handle("usergroups.users.list", func(form url.Values) any {
			if form.Get("usergroup") != "S0RELMGRS" {
				return map[string]any{"ok": false, "error": "no_such_subteam"}
			}
			return map[string]any{"ok": true, "users": members}
		})
	}
}

func TestGroupsReadsCachesAndRefreshes(t *testing.T) {
	rec := &groupCalls{}
	fs := newFakeSlack(t, usergroupsEndpoints(rec, "U06GRP", "U07GRP"))
	f := rec
	g := NewGroups(fs.api(), time.Minute)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return now }
	ctx := context.Background()

	for _, name := range []string{"@release-managers", "S0RELMGRS", "@release-managers"} {
		users, err := g.GroupMembers(ctx, name)
		if err != nil || !slices.Equal(users, []string{"U06GRP", "U07GRP"}) {
			t.Fatalf("%s: %v %v", name, users, err)
		}
	}
	if n, m := len(f.Calls("usergroups.list")), len(f.Calls("usergroups.users.list")); n != 1 || m != 1 {
		t.Fatalf("within the refresh interval: %d usergroups.list and %d usergroups.users.list calls, want 1 and 1", n, m)
	}
	if got := f.Calls("usergroups.users.list")[0].Form.Get("usergroup"); got != "S0RELMGRS" {
		t.Fatalf("asked for %q", got)
	}
	now = now.Add(time.Minute)
	if _, err := g.GroupMembers(ctx, "@release-managers"); err != nil {
		t.Fatal(err)
	}
	if n, m := len(f.Calls("usergroups.list")), len(f.Calls("usergroups.users.list")); n != 2 || m != 2 {
		t.Fatalf("after the refresh interval: %d and %d calls, want 2 and 2", n, m)
	}

	// Failures are errors, never an empty group, and are not remembered.
	if _, err := g.GroupMembers(ctx, "@nobody-here"); release.ErrorCode(err) != release.CodeNotFound || !strings.Contains(err.Error(), "no user group @nobody-here") {
		t.Fatalf("unknown handle: %v", err)
	}
	for range 2 {
		if users, err := g.GroupMembers(ctx, "S0OTHER"); err == nil || !strings.Contains(err.Error(), "no_such_subteam") {
			t.Fatalf("Slack's error: %v %v", users, err)
		}
	}
	if n := len(f.Calls("usergroups.users.list")); n != 4 {
		t.Fatalf("a failed read was cached: %d calls", n)
	}
}
