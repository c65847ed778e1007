package release

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeGroups answers group lookups from a map; a group missing from it
// fails, as a Slack error would.
type fakeGroups struct {
	members map[string][]string
	asked   []string
}

func (g *fakeGroups) GroupMembers(_ context.Context, group string) ([]string, error) {
	g.asked = append(g.asked, group)
	m, ok := g.members[group]
	if !ok {
		return nil, errors.New("slack: missing_scope")
	}
	return m, nil
}

// permApp is the shape of fixtures/apps.yaml: an open development, a
// staging without approvals, a production with three approvers, and a
// recovery environment.
func permApp() *App {
	return &App{Name: "crm", Environments: []*Environment{
		{Name: "development"},
		{Name: "staging"},
		{Name: "production", Approvals: ApprovalPolicy{Required: 2, Approvers: []string{"U01AAA", "U02BBB", "U03CCC"}}},
	}, Recovery: &Environment{Name: RecoveryEnv}}
}

func permService(a *App, g GroupMembers) *Core {
	s := NewCore([]*App{a}, nil, nil, nil)
	s.Groups = g
	return s
}

// Every action of the table, with nothing stated in apps.yaml: production
// keeps variables, secrets, locks, restores, approvals and others' releases
// to its approvers; everything else, and every other environment, is open.
func TestDefaultRoles(t *testing.T) {
	a := permApp()
	s := permService(a, nil)
	ctx := context.Background()
	approversOnly := map[Action]bool{ActApprove: true, ActReject: true, ActCancel: true, ActRestore: true, ActRestoreFrom: true,
		ActLock: true, ActUnlock: true, ActVarSet: true, ActVarUnset: true, ActSecretSet: true, ActSecretUnset: true, ActRestart: true,
		ActBackupDelete: true, ActBackupDownload: true, ActBackupImport: true}
	for act, p := range permissions {
		for _, e := range append(a.Environments, a.Recovery) {
			err := s.authorize(ctx, "U09MALLORY", act, a, e)
			restricted := e.Name == "production" && approversOnly[act]
			switch {
			case restricted && err == nil:
				t.Errorf("%s on %s: a non-approver was let through", act, e.Name)
			case restricted && (ErrorCode(err) != CodeForbidden || !strings.Contains(err.Error(), "the "+string(p.role)+" role") ||
				!strings.Contains(err.Error(), "the approvers of crm production: U01AAA, U02BBB, U03CCC")):
				t.Errorf("%s on %s: refusal does not name the role and who holds it: %v", act, e.Name, err)
			case !restricted && err != nil:
				t.Errorf("%s on %s: refused by default: %v", act, e.Name, err)
			}
			if err := s.authorize(ctx, "U02BBB", act, a, e); err != nil {
				t.Errorf("%s on %s: an approver of production was refused: %v", act, e.Name, err)
			}
		}
	}
	// The default follows the approvals: production without any to give
	// (required: 0) is open.
	a.Environments[2].Approvals.Required = 0
	if err := s.authorize(ctx, "U09MALLORY", ActVarSet, a, a.Environments[2]); err != nil {
		t.Errorf("no approvals required, still restricted: %v", err)
	}
}

func TestStatedRoles(t *testing.T) {
	a := permApp()
	prod, dev := a.Environments[2], a.Environments[0]
	a.Roles = Roles{RoleDeploy: {"U05DEV", "@release-managers"}, RoleVariables: {Anyone}, RoleVersion: {}}
	prod.Roles = Roles{RoleDeploy: {"S0RELMGRS"}, RoleSecrets: {"U04ALICE"}}
	g := &fakeGroups{members: map[string][]string{"@release-managers": {"U06GRP"}, "S0RELMGRS": {"U07PROD"}}}
	s := permService(a, g)
	ctx := context.Background()
	tests := []struct {
		actor string
		act   Action
		env   *Environment
		want  string // "" allowed, else in the refusal
	}{
		{"U05DEV", ActDeploy, dev, ""},
		{"U06GRP", ActDeploy, dev, ""}, // through the app's group
		{"U09MALLORY", ActDeploy, dev, "needs the deploy role (roles.deploy of crm: U05DEV, @release-managers)"},
		// The environment's own roles replace the app's there.
		{"U05DEV", ActDeploy, prod, "needs the deploy role (roles.deploy of crm production: S0RELMGRS)"},
		{"U07PROD", ActDeploy, prod, ""},
		// "*" opens even production's safe default; [] is nobody.
		{"U09MALLORY", ActVarSet, prod, ""},
		{"U01AAA", ActVersionCreate, dev, "needs the version role (roles.version of crm: nobody)"},
		// A role stated for secrets replaces the approvers default.
		{"U04ALICE", ActSecretSet, prod, ""},
		{"U01AAA", ActSecretSet, prod, "needs the secrets role (roles.secrets of crm production: U04ALICE)"},
		// Unstated roles keep their defaults.
		{"U09MALLORY", ActLock, prod, "needs the lock role (by default the approvers of crm production"},
	}
	for _, tc := range tests {
		err := s.authorize(ctx, tc.actor, tc.act, a, tc.env)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s on %s: refused: %v", tc.actor, tc.act, tc.env.Name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %s on %s: got %v, want a refusal saying %q", tc.actor, tc.act, tc.env.Name, err, tc.want)
		}
	}
}

// A group that cannot be read admits nobody, and the refusal says why; a
// user listed directly does not need the lookup.
func TestGroupLookupFailureRefuses(t *testing.T) {
	a := permApp()
	a.Roles = Roles{RoleDeploy: {"U05DEV", "@release-managers"}}
	g := &fakeGroups{members: map[string][]string{}}
	s := permService(a, g)
	ctx := context.Background()
	err := s.authorize(ctx, "U06GRP", ActDeploy, a, a.Environments[0])
	if ErrorCode(err) != CodeForbidden || !strings.Contains(err.Error(), "members of Slack user group @release-managers could not be read") ||
		!strings.Contains(err.Error(), "deploy role") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(ErrorMessage(err), "missing_scope") {
		t.Errorf("the user is shown Slack's internal error: %q", ErrorMessage(err))
	}
	g.asked = nil
	if err := s.authorize(ctx, "U05DEV", ActDeploy, a, a.Environments[0]); err != nil || len(g.asked) != 0 {
		t.Fatalf("a listed user: %v (groups asked: %v)", err, g.asked)
	}
	s.Groups = nil
	if err := s.authorize(ctx, "U06GRP", ActDeploy, a, a.Environments[0]); err == nil || !strings.Contains(err.Error(), "no Slack connection to read user group @release-managers") {
		t.Fatalf("without Slack: %v", err)
	}
}

// A restore needs the restore role of the environment the backup came
// from besides the target's: production's data does not reach
// development (nor recovery) through a development user.
func TestRestoreNeedsTheSourcesRole(t *testing.T) {
	a := permApp()
	dev := a.Environments[0]
	dev.Roles = Roles{RoleRestore: {"U05DEV"}}
	s := permService(a, nil)
	ctx := context.Background()
	err := s.authorizeRestore(ctx, "U05DEV", ActRestore, a, dev, "production")
	if err == nil || !strings.Contains(err.Error(), "U05DEV may not restore the data of crm production (the backup was taken there): that needs the restore role") {
		t.Fatalf("production into development by a development user: %v", err)
	}
	if err := s.authorizeRestore(ctx, "U01AAA", ActRestore, a, dev, "production"); err == nil || !strings.Contains(err.Error(), "restore backups into crm development") {
		t.Fatalf("the target's own policy still holds: %v", err)
	}
	if err := s.authorizeRestore(ctx, "U05DEV", ActRestore, a, dev, "development"); err != nil {
		t.Fatalf("development's own backup: %v", err)
	}
	// Rollback: in place it is a restore of production's own data; into
	// recovery the data is production's too.
	for _, target := range []*Environment{a.Environments[2], a.Recovery} {
		if err := s.authorizeRestore(ctx, "U09MALLORY", ActRollback, a, target, "production"); err == nil || !strings.Contains(err.Error(), "restore role") {
			t.Errorf("rollback into %s by a non-approver: %v", target.Name, err)
		}
		if err := s.authorizeRestore(ctx, "U03CCC", ActRollback, a, target, "production"); err != nil {
			t.Errorf("rollback into %s by an approver: %v", target.Name, err)
		}
	}
	if err := s.authorizeRestore(ctx, "U05DEV", ActRestore, a, dev, "qa"); err == nil || !strings.Contains(err.Error(), "no longer defines") {
		t.Fatalf("a backup of a removed environment: %v", err)
	}
}

// The terminal: a user terminal_users maps acts as their Slack ID; --as
// another needs act_as. Relbot's own work checks nothing.
func TestTerminalActAsAndSystem(t *testing.T) {
	a := permApp()
	dev := a.Environments[0]
	s := permService(a, nil)
	ctx := FromTerminal(context.Background(), "alice", "U04ALICE")
	if err := s.authorize(ctx, "U04ALICE", ActDeploy, a, dev); err != nil {
		t.Fatalf("as herself: %v", err)
	}
	err := s.authorize(ctx, "U01AAA", ActDeploy, a, dev)
	if err == nil || !strings.Contains(err.Error(), "alice is U04ALICE in terminal_users and may not act as U01AAA on crm development: --as another identity needs the act_as role") {
		t.Fatalf("--as another: %v", err)
	}
	a.Roles = Roles{RoleActAs: {"U04ALICE"}}
	if err := s.authorize(ctx, "U01AAA", ActVarSet, a, a.Environments[2]); err != nil {
		t.Fatalf("act_as held: %v", err)
	}
	// act_as lends an identity, not more than it holds.
	if err := s.authorize(ctx, "U09MALLORY", ActVarSet, a, a.Environments[2]); err == nil || !strings.Contains(err.Error(), "variables role") {
		t.Fatalf("act_as as a non-approver: %v", err)
	}
	// An unmapped operator is trusted as whoever they say.
	if err := s.authorize(FromTerminal(context.Background(), "root", ""), "U01AAA", ActVarSet, a, a.Environments[2]); err != nil {
		t.Fatalf("unmapped: %v", err)
	}
	if err := s.authorize(AsSystem(context.Background()), "scheduler", ActBackupCreate, a, a.Environments[2]); err != nil {
		t.Fatalf("system: %v", err)
	}
	a.Environments[2].Roles = Roles{RoleBackup: {"U01AAA"}}
	if err := s.authorize(AsSystem(context.Background()), "scheduler", ActBackupCreate, a, a.Environments[2]); err != nil {
		t.Fatalf("system with a stated backup role: %v", err)
	}
	if err := s.authorize(context.Background(), "scheduler", ActBackupCreate, a, a.Environments[2]); err == nil {
		t.Fatal("a user calling themselves scheduler got through")
	}
}

// Resuming a release needs the role its kind needed when requested.
func TestResumeNeedsTheKindsRole(t *testing.T) {
	a := permApp()
	prod := a.Environments[2]
	prod.Roles = Roles{RoleDeploy: {"U05DEV"}, RoleRollback: {"U01AAA"}, RoleSwitch: {"U02BBB"}}
	s := permService(a, nil)
	ctx := context.Background()
	for kind, role := range map[ReleaseKind]Role{KindDeploy: RoleDeploy, KindRollback: RoleRollback, KindRestore: RoleRestore, KindSwitch: RoleSwitch} {
		act, ok := resumeActions[kind]
		if !ok {
			t.Fatalf("no action resumes a %s", kind)
		}
		err := s.authorizeOnRelease(ctx, "U09MALLORY", act, &Release{App: "crm", Env: "production", Kind: kind})
		if err == nil || !strings.Contains(err.Error(), "the "+string(role)+" role") {
			t.Errorf("resume of a %s: %v", kind, err)
		}
	}
	if err := s.authorizeOnRelease(ctx, "U05DEV", resumeActions[KindDeploy], &Release{App: "crm", Env: "production", Kind: KindDeploy}); err != nil {
		t.Errorf("the deployer resumes their deploy: %v", err)
	}
}
