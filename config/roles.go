package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/relbot/relbot/release"
)

var roleKeys = func() []string {
	out := make([]string, len(release.RoleNames))
	for i, r := range release.RoleNames {
		out[i] = string(r)
	}
	return out
}()

// Slack handles are lowercase letters, digits, periods, hyphens and underscores.
var groupHandle = regexp.MustCompile(`^@[a-z0-9][a-z0-9._-]*$`)

// memberProblem says what is wrong with one member of a role or approver
// list, or "". Members are compared exactly, so look-alikes are refused.
func memberProblem(m string) string {
	switch {
	case m == release.Anyone:
		return ""
	case strings.HasPrefix(m, "@") && !groupHandle.MatchString(m):
		return fmt.Sprintf("%q is not a Slack user group handle (lowercase letters, digits, '.', '-' or '_' after the @)", m)
	case len(m) > 64:
		return "a member is a Slack user ID, a user group (@handle or S… ID) or a terminal user name of at most 64 bytes"
	case strings.IndexFunc(m, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Sprintf("%q: a member has no spaces or control characters", m)
	}
	return ""
}

// roles validates a roles mapping: role -> list of members.
func (c *checker) roles(m map[string]*[]scalar, p path) release.Roles {
	out := release.Roles{}
	for _, name := range checkKeys(c, p, m, roleKeys) {
		if c.failed() {
			break
		}
		rp := p.key(name)
		list := m[name]
		if list == nil {
			c.failf(rp, "list who holds the role: Slack user IDs, user groups (@handle), or \"*\" for anyone; [] for nobody")
			break
		}
		members := []string{}
		seen := map[string]bool{}
		for i, it := range *list {
			at := rp.index(i)
			s := strings.TrimSpace(c.str(it, at))
			switch {
			case c.failed():
			case s == "":
				c.failf(at, "must not be empty")
			case seen[s]:
				c.failf(at, "%q is listed twice", s)
			default:
				if problem := memberProblem(s); problem != "" {
					c.failf(at, "%s", problem)
				}
			}
			seen[s] = true
			members = append(members, s)
		}
		out[release.Role(name)] = members
	}
	return out
}

// terminalUsers validates terminal_users: OS user name -> the Slack user
// ID they act as in a terminal.
func (c *checker) terminalUsers(m map[string]scalar, p path) map[string]string {
	out := map[string]string{}
	for _, name := range checkKeys(c, p, m, nil) {
		if c.failed() {
			break
		}
		up := p.key(name)
		id := strings.TrimSpace(c.str(m[name], up))
		switch {
		case c.failed():
		case strings.TrimSpace(name) == "":
			c.failf(up, "the OS user name must not be empty")
		case id == "":
			c.failf(up, "must be the Slack user ID %s acts as", name)
		case id == release.Anyone || release.IsGroup(id):
			c.failf(up, "%q is not one user: map %s to a Slack user ID", id, name)
		default:
			if problem := memberProblem(id); problem != "" {
				c.failf(up, "%s", problem)
			}
		}
		out[name] = id
	}
	return out
}
