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

// roles decodes a roles mapping: role -> list of members.
func (d *decoder) roles(v val) release.Roles {
	m := d.mapping(v, roleKeys)
	out := release.Roles{}
	for _, name := range m.keys {
		if d.failed() {
			break
		}
		rv := m.vals[name]
		if d.isNull(rv) {
			d.failf(rv, "list who holds the role: Slack user IDs, user groups (@handle), or \"*\" for anyone; [] for nobody")
			break
		}
		members := []string{}
		seen := map[string]bool{}
		for _, it := range d.list(rv) {
			s := strings.TrimSpace(d.str(it))
			switch {
			case d.failed():
			case s == "":
				d.failf(it, "must not be empty")
			case seen[s]:
				d.failf(it, "%q is listed twice", s)
			default:
				if problem := memberProblem(s); problem != "" {
					d.failf(it, "%s", problem)
				}
			}
			seen[s] = true
			members = append(members, s)
		}
		out[release.Role(name)] = members
	}
	return out
}

// terminalUsers decodes terminal_users: OS user name -> the Slack user ID
// they act as in a terminal.
func (d *decoder) terminalUsers(v val) map[string]string {
	m := d.mapping(v, nil)
	out := map[string]string{}
	for _, name := range m.keys {
		if d.failed() {
			break
		}
		uv := m.vals[name]
		id := strings.TrimSpace(d.str(uv))
		switch {
		case d.failed():
		case strings.TrimSpace(name) == "":
			d.failf(uv, "the OS user name must not be empty")
		case id == "":
			d.failf(uv, "must be the Slack user ID %s acts as", name)
		case id == release.Anyone || release.IsGroup(id):
			d.failf(uv, "%q is not one user: map %s to a Slack user ID", id, name)
		default:
			if problem := memberProblem(id); problem != "" {
				d.failf(uv, "%s", problem)
			}
		}
		out[name] = id
	}
	return out
}
