package release

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Role is a permission apps.yaml's `roles` grants, per app and per
// environment.
type Role string

const (
	RoleDeploy   Role = "deploy"
	RoleApprove  Role = "approve"
	RoleReject   Role = "reject" // reject or cancel a release someone else requested
	RoleRollback Role = "rollback"
	// RoleRestore is needed on the environment a backup is restored into,
	// and on the one it was taken from: its data belongs there.
	RoleRestore        Role = "restore"
	RoleSwitch         Role = "switch"
	RoleLock           Role = "lock" // lock and unlock
	RoleVariables      Role = "variables"
	RoleSecrets        Role = "secrets"
	RoleBackup         Role = "backup" // backup create and verify
	RoleMigration      Role = "migration"
	RoleVersion        Role = "version"
	RoleVersionRestore Role = "version_restore"
	RoleRestart        Role = "restart" // run the restart hook by hand
	// RoleActAs lets a terminal user whom terminal_users maps to a Slack ID
	// act with --as as someone else.
	RoleActAs Role = "act_as"
)

// RoleNames lists the roles apps.yaml may state, in the order users read them.
var RoleNames = []Role{RoleDeploy, RoleApprove, RoleReject, RoleRollback, RoleRestore, RoleSwitch, RoleLock,
	RoleVariables, RoleSecrets, RoleBackup, RoleMigration, RoleVersion, RoleVersionRestore, RoleRestart, RoleActAs}

// Valid reports whether r is one of RoleNames.
func (r Role) Valid() bool {
	for _, k := range RoleNames {
		if r == k {
			return true
		}
	}
	return false
}

// Roles maps a role to its members: Slack user IDs (or terminal names),
// Slack user groups (IsGroup), or Anyone. A role absent from the map is
// not stated; one stated with no members is held by nobody.
type Roles map[Role][]string

// Anyone, as a role's member, lets every user of the channel hold it.
const Anyone = "*"

var subteamID = regexp.MustCompile(`^S[0-9A-Z]{2,}$`)

// IsGroup reports whether a role member names a Slack user group: by its
// handle ("@release-managers") or its subteam ID ("S0123ABCD").
func IsGroup(member string) bool {
	return strings.HasPrefix(member, "@") || subteamID.MatchString(member)
}

// GroupMembers reads who belongs to a Slack user group, named as in
// apps.yaml (handle or subteam ID). bot/ implements it; when it fails, the
// action that needed it is refused.
type GroupMembers interface {
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// Action is something a user asks relbot to do that changes state.
// Read-only commands are no actions: they stay open to the channel.
type Action string

const (
	ActDeploy          Action = "deploy"
	ActApprove         Action = "approve"
	ActReject          Action = "reject"
	ActCancel          Action = "cancel"
	ActRollback        Action = "rollback"
	ActRestore         Action = "restore"
	ActRestoreFrom     Action = "restore from"
	ActSwitch          Action = "switch"
	ActLock            Action = "lock"
	ActUnlock          Action = "unlock"
	ActVarSet          Action = "var set"
	ActVarUnset        Action = "var unset"
	ActSecretSet       Action = "secret set"
	ActSecretUnset     Action = "secret unset"
	ActBackupCreate    Action = "backup create"
	ActBackupVerify    Action = "backup verify"
	ActBackupDelete    Action = "backup delete"
	ActBackupDownload  Action = "backup download"
	ActBackupImport    Action = "backup import"
	ActMigrationCreate Action = "migration create"
	ActVersionCreate   Action = "version create"
	ActVersionRestore  Action = "version restore"
	ActRestart         Action = "restart"
)

// byDefault says who holds a role apps.yaml does not state.
type byDefault int

const (
	defaultAnyone byDefault = iota
	// defaultApprovers: on an environment that needs approvals from named
	// approvers, only they; elsewhere anyone.
	defaultApprovers
)

// permission is one row of the table: the role an action needs, what the
// refusal says the user may not do ("%s" is the environment), and who
// holds the role when apps.yaml does not say.
type permission struct {
	role    Role
	doing   string
	holders byDefault
}

// permissions is the one table of who may do what; every entry point of
// a service that changes state checks it through authorize (Core).
var permissions = map[Action]permission{
	ActDeploy:       {RoleDeploy, "deploy to %s", defaultAnyone},
	ActApprove:      {RoleApprove, "approve releases to %s", defaultApprovers},
	ActReject:       {RoleReject, "reject others' releases to %s", defaultApprovers},
	ActCancel:       {RoleReject, "cancel others' releases to %s", defaultApprovers},
	ActRollback:     {RoleRollback, "roll back into %s", defaultAnyone},
	ActRestore:      {RoleRestore, "restore backups into %s", defaultApprovers},
	ActRestoreFrom:  {RoleRestore, "restore the data of %s (the backup was taken there)", defaultApprovers},
	ActSwitch:       {RoleSwitch, "move the users of %s", defaultAnyone},
	ActLock:         {RoleLock, "lock %s", defaultApprovers},
	ActUnlock:       {RoleLock, "unlock %s", defaultApprovers},
	ActVarSet:       {RoleVariables, "set variables of %s", defaultApprovers},
	ActVarUnset:     {RoleVariables, "unset variables of %s", defaultApprovers},
	ActSecretSet:    {RoleSecrets, "set secrets of %s", defaultApprovers},
	ActSecretUnset:  {RoleSecrets, "unset secrets of %s", defaultApprovers},
	ActBackupCreate: {RoleBackup, "back up %s", defaultAnyone},
	ActBackupVerify: {RoleBackup, "verify backups of %s", defaultAnyone},
	ActBackupDelete: {RoleBackup, "delete backups of %s", defaultApprovers},
	// A backup holds the environment's data and secrets: taking it away
	// is for those who may restore it.
	ActBackupDownload:  {RoleBackup, "download backups of %s", defaultApprovers},
	ActBackupImport:    {RoleBackup, "import backups into %s", defaultApprovers},
	ActMigrationCreate: {RoleMigration, "create migrations from %s", defaultAnyone},
	ActVersionCreate:   {RoleVersion, "create versions of %s", defaultAnyone},
	ActVersionRestore:  {RoleVersionRestore, "restore versions into %s", defaultAnyone},
	// Restarting stops the running app: as for changing its variables.
	ActRestart: {RoleRestart, "restart the app of %s", defaultApprovers},
}

// resumeActions: resuming a release needs the role its kind needed.
var resumeActions = map[ReleaseKind]Action{KindDeploy: ActDeploy, KindRollback: ActRollback, KindRestore: ActRestore, KindSwitch: ActSwitch}

// holders is who holds role on e: the environment's own roles, then (for
// approve) its approvers, then the app's roles; stated reports whether
// apps.yaml said so anywhere, from says where.
func holders(a *App, e *Environment, role Role) (members []string, stated bool, from string) {
	if m, ok := e.Roles[role]; ok {
		return m, true, fmt.Sprintf("roles.%s of %s %s", role, a.Name, e.Name)
	}
	if role == RoleApprove && len(e.Approvals.Approvers) > 0 {
		return e.Approvals.Approvers, true, fmt.Sprintf("the approvers of %s %s", a.Name, e.Name)
	}
	if m, ok := a.Roles[role]; ok {
		return m, true, fmt.Sprintf("roles.%s of %s", role, a.Name)
	}
	return nil, false, ""
}

// Holders says who may do act on a's e, exactly as authorize judges it:
// members (Slack user IDs or terminal names, user groups, Anyone) and from
// where apps.yaml (or the default) says so; restricted=false means anyone
// may. Refusals and the approval request's "from whom" both read it.
func (a *App) Holders(e *Environment, act Action) (members []string, restricted bool, from string) {
	p, ok := permissions[act]
	if !ok {
		return nil, true, "" // no such action: nobody
	}
	return effectiveHolders(a, e, p)
}

// effectiveHolders applies the table's default to a role apps.yaml does
// not state; nil members with restricted=false means anyone.
func effectiveHolders(a *App, e *Environment, p permission) (members []string, restricted bool, from string) {
	if m, stated, from := holders(a, e, p.role); stated {
		return m, !slices.Contains(m, Anyone), from
	}
	if p.holders == defaultApprovers && e.Approvals.Required > 0 {
		if m, stated, from := holders(a, e, RoleApprove); stated && !slices.Contains(m, Anyone) {
			return m, true, "by default " + from
		}
	}
	return nil, false, ""
}

type ctxKey int

const (
	systemKey ctxKey = iota
	terminalKey
)

// AsSystem marks ctx as relbot's own work (the scheduler's backups and
// verifies): no user acts, so no role is checked. Transports never use it.
func AsSystem(ctx context.Context) context.Context { return context.WithValue(ctx, systemKey, true) }

// terminalUser is who runs a terminal command: the OS user and the Slack
// ID apps.yaml's terminal_users maps them to.
type terminalUser struct{ osUser, mapped string }

// FromTerminal records that ctx's command was typed in a terminal by
// osUser, whom terminal_users maps to mapped (empty: not mapped). Acting
// as another identity than mapped then needs the act_as role.
func FromTerminal(ctx context.Context, osUser, mapped string) context.Context {
	return context.WithValue(ctx, terminalKey, terminalUser{osUser, mapped})
}

// Permit checks, without doing anything, that actor may do act on app's
// env: for a transport that asks for input (a secret's value) only once
// the user may give it.
func (s *Core) Permit(ctx context.Context, actor string, act Action, app, env string) error {
	a, e, err := s.appEnv(app, env)
	if err != nil {
		return err
	}
	return s.authorize(ctx, actor, act, a, e)
}

// authorize is the one check of the permissions table: nil when actor
// holds the role act needs on a's e, else a refusal naming the role.
func (s *Core) authorize(ctx context.Context, actor string, act Action, a *App, e *Environment) error {
	if ctx.Value(systemKey) != nil {
		return nil
	}
	p, ok := permissions[act]
	if !ok {
		return Errorf(CodeInternal, "no permission is defined for %q", act)
	}
	if tu, ok := ctx.Value(terminalKey).(terminalUser); ok && tu.mapped != "" && actor != tu.mapped {
		if err := s.authorizeActAs(ctx, tu, actor, a, e); err != nil {
			return err
		}
	}
	members, restricted, from := a.Holders(e, act)
	if !restricted {
		return nil
	}
	held, lookupErr := s.holds(ctx, actor, members)
	if held {
		return nil
	}
	s.Log.Info("refused: role not held", "app", a.Name, "env", e.Name, "by", actor, "action", string(act), "role", string(p.role))
	what := fmt.Sprintf(p.doing, a.Name+" "+e.Name)
	who := "nobody"
	if len(members) > 0 {
		who = strings.Join(members, ", ")
	}
	if lookupErr != nil {
		s.Log.Warn("role check: group lookup failed", "app", a.Name, "env", e.Name, "role", p.role, "err", lookupErr)
		return Errorf(CodeForbidden, "%s may not %s: that needs the %s role (%s: %s), and %s, so membership could not be checked",
			actor, what, p.role, from, who, ErrorMessage(lookupErr))
	}
	return Errorf(CodeForbidden, "%s may not %s: that needs the %s role (%s: %s)", actor, what, p.role, from, who)
}

func (s *Core) authorizeActAs(ctx context.Context, tu terminalUser, actor string, a *App, e *Environment) error {
	members, stated, from := holders(a, e, RoleActAs)
	held, lookupErr := false, error(nil)
	if stated {
		held, lookupErr = s.holds(ctx, tu.mapped, members)
	}
	if held {
		return nil
	}
	msg := fmt.Sprintf("%s is %s in terminal_users and may not act as %s on %s %s: --as another identity needs the %s role",
		tu.osUser, tu.mapped, actor, a.Name, e.Name, RoleActAs)
	switch {
	case !stated:
		msg += " (nobody holds it: apps.yaml states no roles.act_as)"
	case lookupErr != nil:
		msg += fmt.Sprintf(" (%s: %s), and %s", from, strings.Join(members, ", "), ErrorMessage(lookupErr))
	default:
		msg += fmt.Sprintf(" (%s: %s)", from, strings.Join(members, ", "))
	}
	s.Log.Info("refused: --as another identity", "app", a.Name, "env", e.Name, "os_user", tu.osUser, "mapped", tu.mapped, "as", actor)
	return Errorf(CodeForbidden, "%s", msg)
}

// holds reports whether actor is one of members, directly or through a
// Slack user group. A group that cannot be read never admits anyone: its
// error is returned when no other member matched.
func (s *Core) holds(ctx context.Context, actor string, members []string) (bool, error) {
	for _, m := range members {
		if m == Anyone || (m == actor && !IsGroup(m)) {
			return true, nil
		}
	}
	var firstErr error
	for _, m := range members {
		if !IsGroup(m) {
			continue
		}
		if s.Groups == nil {
			if firstErr == nil {
				firstErr = Errorf(CodeUnavailable, "relbot has no Slack connection to read user group %s", m)
			}
			continue
		}
		users, err := s.Groups.GroupMembers(ctx, m)
		if err != nil {
			if firstErr == nil {
				msg := fmt.Sprintf("the members of Slack user group %s could not be read (see the bot's log)", m)
				if ErrorCode(err) != CodeInternal {
					msg = ErrorMessage(err) // e.g. no such group
				}
				firstErr = &Error{Code: CodeUnavailable, Message: msg, Err: err}
			}
			continue
		}
		if slices.Contains(users, actor) {
			return true, nil
		}
	}
	return false, firstErr
}

// authorizeOn is authorize on a's environment named env.
func (s *Core) authorizeOn(ctx context.Context, actor string, act Action, a *App, env string) error {
	e, err := a.Env(env)
	if err != nil {
		return err
	}
	return s.authorize(ctx, actor, act, a, e)
}

// authorizeOnRelease is authorize on release r's environment.
func (s *Core) authorizeOnRelease(ctx context.Context, actor string, act Action, r *Release) error {
	a, e, err := s.releaseEnv(r)
	if err != nil {
		return err
	}
	return s.authorize(ctx, actor, act, a, e)
}

// authorizeRestore checks a restore of a backup of environment from into
// target (act is ActRestore or ActRollback): the target's own policy, and
// the restore role of the environment the data belongs to.
func (s *Core) authorizeRestore(ctx context.Context, actor string, act Action, a *App, target *Environment, from string) error {
	if err := s.authorize(ctx, actor, act, a, target); err != nil {
		return err
	}
	if act == ActRollback && from == target.Name {
		// A rollback in place restores the environment's own data: its
		// restore role is needed as for any restore there.
		return s.authorize(ctx, actor, ActRestore, a, target)
	}
	if from == target.Name {
		return nil
	}
	src, err := a.Env(from)
	if err != nil {
		return Errorf(CodeForbidden, "the backup was taken in %s %s, which apps.yaml no longer defines: nobody can hold its restore role", a.Name, from)
	}
	return s.authorize(ctx, actor, ActRestoreFrom, a, src)
}

// SecretsTravelNote is what a restore into recovery tells its approvers.
const SecretsTravelNote = "secrets travel: " + RecoveryEnv + " receives the backup's variables and storage key files, so that it can take its environment's place"

// SecretsTravel reports whether r brings the backup's secrets along: a
// restore or rollback into recovery does, so recovery can replace the
// environment the backup came from.
func (r *Release) SecretsTravel() bool {
	return (r.Kind == KindRestore || r.Kind == KindRollback) && r.Env == RecoveryEnv
}
