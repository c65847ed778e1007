package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/relbot/relbot/release"
)

// DefaultGroupRefresh is how long a user group's members are trusted
// before they are read again.
const DefaultGroupRefresh = 5 * time.Minute

// Groups reads the members of the Slack user groups that apps.yaml's roles
// name (release.GroupMembers), with usergroups.users.list, and handles
// ("@release-managers") through usergroups.list; both need the
// usergroups:read scope. Answers are cached for Refresh. A failed read is
// an error, never an old or empty answer: the caller refuses.
type Groups struct {
	api     *slack.Client
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	members map[string]cached[[]string] // by subteam ID
	handles cached[map[string]string]   // handle (without @) -> subteam ID
}

type cached[T any] struct {
	v  T
	at time.Time
	ok bool
}

// NewGroups reads groups through api; refresh <= 0 means DefaultGroupRefresh.
func NewGroups(api *slack.Client, refresh time.Duration) *Groups {
	if refresh <= 0 {
		refresh = DefaultGroupRefresh
	}
	return &Groups{api: api, refresh: refresh, now: time.Now, members: map[string]cached[[]string]{}}
}

var _ release.GroupMembers = (*Groups)(nil)

// GroupMembers returns the user IDs in group, named by handle or subteam ID.
func (g *Groups) GroupMembers(ctx context.Context, group string) ([]string, error) {
	id := group
	if handle, ok := strings.CutPrefix(group, "@"); ok {
		var err error
		if id, err = g.groupID(ctx, handle); err != nil {
			return nil, err
		}
	}
	g.mu.Lock()
	c := g.members[id]
	g.mu.Unlock()
	if c.ok && g.now().Sub(c.at) < g.refresh {
		return c.v, nil
	}
	users, err := g.api.GetUserGroupMembersContext(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list %s: %w", id, err)
	}
	g.mu.Lock()
	g.members[id] = cached[[]string]{v: users, at: g.now(), ok: true}
	g.mu.Unlock()
	return users, nil
}

// groupID finds a handle's subteam ID, reading every group's handle at
// most once per refresh interval.
func (g *Groups) groupID(ctx context.Context, handle string) (string, error) {
	g.mu.Lock()
	c := g.handles
	g.mu.Unlock()
	if !c.ok || g.now().Sub(c.at) >= g.refresh {
		list, err := g.api.GetUserGroupsContext(ctx)
		if err != nil {
			return "", fmt.Errorf("usergroups.list: %w", err)
		}
		byHandle := make(map[string]string, len(list))
		for _, ug := range list {
			byHandle[ug.Handle] = ug.ID
		}
		c = cached[map[string]string]{v: byHandle, at: g.now(), ok: true}
		g.mu.Lock()
		g.handles = c
		g.mu.Unlock()
	}
	id := c.v[handle]
	if id == "" {
		return "", release.Errorf(release.CodeNotFound, "Slack has no user group @%s", handle)
	}
	return id, nil
}
