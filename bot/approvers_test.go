package bot

import (
	"strings"
	"testing"

	"github.com/relbot/relbot/release"
)

// The approval request names the approve role's holders however apps.yaml
// states them: the approvers, roles.approve of the environment or of the
// app, or anyone.
func TestPolicyNamesApproveRoleHolders(t *testing.T) {
	cases := []struct {
		name string
		app  func(prod *release.Environment, a *release.App)
		want string
	}{
		{"approvers", func(*release.Environment, *release.App) {}, "more approval needed (<@U02BBB> and <@U03CCC> may approve"},
		{"environment's roles", func(p *release.Environment, _ *release.App) {
			p.Approvals.Approvers = nil
			p.Roles = release.Roles{release.RoleApprove: {"U05DAN", "@release-managers", "S0OPS1234"}}
		}, "more approval needed (<@U05DAN>, @release-managers and <!subteam^S0OPS1234> may approve"},
		{"app's roles", func(p *release.Environment, a *release.App) {
			p.Approvals.Approvers = nil
			a.Roles = release.Roles{release.RoleApprove: {"U06ERIN"}}
		}, "more approval needed (<@U06ERIN> may approve"},
		{"anyone", func(p *release.Environment, _ *release.App) {
			p.Roles = release.Roles{release.RoleApprove: {release.Anyone}}
		}, "more approval needed (anyone in the channel may approve"},
	}
	for _, tc := range cases {
		prod := &release.Environment{Name: "production", Approvals: release.ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}}}
		a := &release.App{Name: "crm", Environments: []*release.Environment{{Name: "staging"}, prod}}
		tc.app(prod, a)
		policies := PolicyFunc(func(string) (*release.App, error) { return a, nil })
		r := releaseIn("awaiting") // approved by U01AAA
		got := blocksText(t, RenderRelease(r, policies("crm", "production")))
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: want %q in\n%s", tc.name, tc.want, got)
		}
	}
}
