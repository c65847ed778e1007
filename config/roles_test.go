package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
)

func TestRolesAndTerminalUsers(t *testing.T) {
	doc := "terminal_users: {alice: U04ALICE, ops: U09OPS}\n" + base + indent(`
roles:
  deploy: ["@release-managers", U04ALICE]
  act_as: [U09OPS]
`, "        ") + indent(`
roles:
  variables: ["*"]
  restore: []
`, "    ")
	// The app's roles: goes after production's block, at the app's indentation.
	f, err := ParseAppsFile([]byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := f.Apps[0]
	if got := a.Environments[1].Roles; !reflect.DeepEqual(got, release.Roles{release.RoleDeploy: {"@release-managers", "U04ALICE"}, release.RoleActAs: {"U09OPS"}}) {
		t.Errorf("production roles = %v", got)
	}
	if got := a.Roles; !reflect.DeepEqual(got, release.Roles{release.RoleVariables: {"*"}, release.RoleRestore: {}}) {
		t.Errorf("app roles = %v", got)
	}
	if a.Environments[0].Roles != nil {
		t.Errorf("development states no roles, got %v", a.Environments[0].Roles)
	}
	if want := map[string]string{"alice": "U04ALICE", "ops": "U09OPS"}; !reflect.DeepEqual(f.TerminalUsers, want) {
		t.Errorf("terminal users = %v", f.TerminalUsers)
	}
	// A group among approvers: its size is unknown, so required is not
	// compared with the list's length.
	if _, err := ParseApps([]byte(prod("approvals: {required: 2, approvers: ['@release-managers']}")), noEnv); err != nil {
		t.Errorf("a group of approvers: %v", err)
	}
}

func TestRolesErrors(t *testing.T) {
	tests := []struct {
		name, yaml, field, want string
		line                    int
	}{
		{"unknown role", prod("roles: {deplyo: [U1]}"), "apps.crm.environments[1].roles.deplyo", `unknown key (did you mean "deploy"?)`, 9},
		{"not a list", app("roles: {deploy: U1}"), "apps.crm.roles.deploy", "must be a list", 9},
		{"null role", prod("roles:\n  lock:"), "apps.crm.environments[1].roles.lock", `"*" for anyone; [] for nobody`, 10},
		{"empty member", prod("roles: {lock: ['']}"), "apps.crm.environments[1].roles.lock[0]", "must not be empty", 9},
		{"twice", prod("roles: {lock: [U1, U1]}"), "apps.crm.environments[1].roles.lock[1]", `"U1" is listed twice`, 9},
		{"bad handle", prod("roles: {lock: ['@Release Managers']}"), "apps.crm.environments[1].roles.lock[0]", "not a Slack user group handle", 9},
		{"spaces", prod("roles: {lock: ['U1 U2']}"), "apps.crm.environments[1].roles.lock[0]", "no spaces", 9},
		{"approvers twice", prod("approvals: {approvers: [U1]}\nroles: {approve: [U2]}"), "apps.crm.environments[1].roles.approve", "give them in one place", 10},
		{"anyone approves", prod("approvals: {approvers: ['*']}"), "apps.crm.environments[1].approvals.approvers[0]", "leave approvers out", 9},
		{"terminal group", "terminal_users: {alice: '@ops'}\n" + base, "terminal_users.alice", "not one user", 1},
		{"terminal empty", "terminal_users: {alice: ''}\n" + base, "terminal_users.alice", "Slack user ID alice acts as", 1},
		{"terminal not a mapping", "terminal_users: [alice]\n" + base, "terminal_users", "must be a mapping", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseApps([]byte(tc.yaml), noEnv)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if ce.Field != tc.field || !strings.Contains(ce.Problem, tc.want) || ce.Line != tc.line {
				t.Errorf("got %q (line %d, field %q), want line %d, field %q saying %q", err, ce.Line, ce.Field, tc.line, tc.field, tc.want)
			}
		})
	}
}

// The shipped example parses, roles and terminal users included.
func TestDeployExample(t *testing.T) {
	f, err := LoadAppsFile("../deploy/apps.example.yaml", func(k string) string {
		if strings.HasSuffix(k, "_DATABASE_URL") {
			return "postgres://relbot@localhost/" + strings.ToLower(k)
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	prod := f.Apps[0].Environments[2]
	if f.TerminalUsers["alice"] != "U04ALICE" || len(f.Apps[0].Roles[release.RoleMigration]) != 1 || len(prod.Roles[release.RoleDeploy]) != 2 {
		t.Fatalf("terminal users %v, app roles %v, production roles %v", f.TerminalUsers, f.Apps[0].Roles, prod.Roles)
	}
}
