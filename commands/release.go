package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relbot/relbot/release"
)

// ReleaseView is what --json prints for a release.
type ReleaseView struct {
	ID        string              `json:"id"`
	App       string              `json:"app"`
	Env       string              `json:"env"`
	Kind      release.ReleaseKind `json:"kind"`
	Migration string              `json:"migration,omitempty"`
	FileHash  string              `json:"file_hash,omitempty"`
	Backup    string              `json:"backup,omitempty"`
	// Snapshot: a deploy's kept release snapshot; a targeted rollback's.
	Snapshot   string `json:"snapshot,omitempty"`
	RollbackOf string `json:"rollback_of,omitempty"`
	// Rollback is a rollback's mode, "targeted" or "full"; RollbackMode
	// says in words what it does.
	Rollback     string         `json:"rollback,omitempty"`
	RollbackMode string         `json:"rollback_mode,omitempty"`
	SwitchTo     string         `json:"switch_to,omitempty"`
	RequestedBy  string         `json:"requested_by"`
	RequestedAt  time.Time      `json:"requested_at"`
	At           *time.Time     `json:"at,omitempty"`
	State        release.State  `json:"state"`
	Reason       string         `json:"reason,omitempty"`
	Approvals    []ApprovalView `json:"approvals"`
	Steps        []StepView     `json:"steps"`
	Checks       []CheckView    `json:"checks,omitempty"`

	// AllowNewPlugins: the requester chose to go on with plugins the
	// target did not have.
	AllowNewPlugins bool `json:"allow_new_plugins,omitempty"`
	// NoAnalyze: the requester chose a restore without ANALYZE.
	NoAnalyze bool `json:"no_analyze,omitempty"`
	// Changes: a deploy's change summary, against the target at the
	// request.
	Changes *release.Changes `json:"changes,omitempty"`
	// ApprovalsLeft is how many more approvals an awaiting release needs
	// (the environment's policy says; set where the reply knows it).
	ApprovalsLeft int `json:"approvals_left,omitempty"`
}

// ApprovalView is one approval.
type ApprovalView struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// StepView is one step of a release.
type StepView struct {
	Name       string            `json:"name"`
	State      release.StepState `json:"state"`
	Started    *time.Time        `json:"started,omitempty"`
	Ended      *time.Time        `json:"ended,omitempty"`
	Log        string            `json:"log,omitempty"`
	DurationMS *int64            `json:"duration_ms,omitempty"` // once ended
	// Took is the duration for people ("1.6s"); --json has DurationMS.
	Took string `json:"-"`
}

// MarshalJSON prints the kind and state as JSONWord does (awaiting_approval,
// switch_traffic); the Go values keep the words the text shows.
func (v ReleaseView) MarshalJSON() ([]byte, error) {
	type plain ReleaseView // without this method
	return json.Marshal(struct {
		plain
		Kind  string `json:"kind"`
		State string `json:"state"`
	}{plain(v), JSONWord(v.Kind), JSONWord(v.State)})
}

// MarshalJSON prints the state as JSONWord does (not_run).
func (s StepView) MarshalJSON() ([]byte, error) {
	type plain StepView
	return json.Marshal(struct {
		plain
		State string `json:"state"`
	}{plain(s), JSONWord(s.State)})
}

// CheckView is one validation check's result.
type CheckView struct {
	Name       string `json:"name"`
	OK         bool   `json:"ok"`
	DurationMS int64  `json:"duration_ms"`
	Detail     string `json:"detail,omitempty"`
}

func releaseView(r *release.Release) ReleaseView {
	v := ReleaseView{ID: r.ID, App: r.App, Env: r.Env, Kind: r.Kind, Migration: r.Migration, FileHash: r.FileHash, Backup: r.Backup,
		RollbackOf: r.RollbackOf, SwitchTo: r.SwitchTo, RequestedBy: r.RequestedBy, RequestedAt: r.RequestedAt, At: r.At, State: r.State, Reason: r.Reason,
		Approvals: []ApprovalView{}, Steps: []StepView{}}
	v.AllowNewPlugins, v.NoAnalyze, v.Changes = r.AllowNewPlugins, r.NoAnalyze, r.Changes
	v.Snapshot, v.RollbackMode = r.Snapshot, r.RollbackMode()
	if r.Kind == release.KindRollback {
		v.Rollback, _, _ = strings.Cut(v.RollbackMode, ":")
	}
	for _, a := range r.Approvals {
		v.Approvals = append(v.Approvals, ApprovalView{a.By, a.At})
	}
	for _, s := range r.Steps {
		// A step that never ran in a release that ended is not pending.
		sv := StepView{Name: s.Name, State: ShownStepState(r.State, s.State), Started: s.Started, Ended: s.Ended, Log: s.Log}
		if s.Started != nil && s.Ended != nil {
			d := s.Ended.Sub(*s.Started)
			ms := d.Milliseconds()
			sv.DurationMS, sv.Took = &ms, humanDuration(d)
		}
		v.Steps = append(v.Steps, sv)
	}
	for _, c := range r.Checks {
		v.Checks = append(v.Checks, CheckView{Name: c.Name, OK: c.OK, DurationMS: c.Duration.Milliseconds(), Detail: c.Detail})
	}
	return v
}

// maxLogCell is how much of a step's log the release view shows.
const maxLogCell = 100

// quoteStep writes a step name as the grammar reads it back.
func quoteStep(name string) string {
	if strings.ContainsAny(name, " \t") {
		return `"` + name + `"`
	}
	return name
}

// What says in a few words what a release does.
func What(r *release.Release) string {
	switch r.Kind {
	case release.KindDeploy:
		return fmt.Sprintf("deploy %s to %s %s", r.Migration, r.App, r.Env)
	case release.KindRollback:
		return fmt.Sprintf("rollback of %s in %s %s, %s", r.RollbackOf, r.App, r.Env, r.RollbackMode())
	case release.KindSwitch:
		return fmt.Sprintf("move users of %s %s to %s, restored by %s", r.App, r.Env, release.RecoveryEnv, r.SwitchTo)
	}
	return fmt.Sprintf("restore %s into %s %s", r.Backup, r.App, r.Env)
}

// releaseReply renders a release's whole story: the same view everywhere.
func (d *Dispatcher) releaseReply(r *release.Release, title string, extra ...string) Reply {
	fields := []Field{
		{"Release", r.ID + " — " + What(r)},
		{"State", StateWords(r.State, r.At, d.now())},
		{"Requested", fmt.Sprintf("by %s, %s", r.RequestedBy, d.when(r.RequestedAt))},
	}
	if r.At != nil {
		fields = append(fields, Field{"Starts", d.when(*r.At)})
	}
	if r.FileHash != "" {
		fields = append(fields, Field{"File", r.FileHash})
	}
	if len(r.Approvals) > 0 {
		var names []string
		for _, a := range r.Approvals {
			names = append(names, a.By)
		}
		fields = append(fields, Field{"Approved by", release.List(names)})
	}
	if r.State == release.StateAwaitingApproval {
		if who := d.mayApprove(r); who != "" {
			fields = append(fields, Field{"Approvals", who})
		}
	}
	if r.Backup != "" && r.Kind == release.KindDeploy {
		fields = append(fields, Field{"Pre-release backup", r.Backup})
	}
	if r.Snapshot != "" && r.Kind == release.KindDeploy {
		fields = append(fields, Field{"Release snapshot", r.Snapshot + " (what its apply changed, for a targeted rollback)"})
	}
	if r.Kind == release.KindRollback {
		fields = append(fields, Field{"Rollback", r.RollbackMode()})
	}
	if r.SecretsTravel() {
		fields = append(fields, Field{"Secrets", release.SecretsTravelNote})
	}
	if r.AllowNewPlugins {
		fields = append(fields, Field{"New plugins", "allowed by the requester (--allow-new-plugins)"})
	}
	if r.NoAnalyze {
		fields = append(fields, Field{"Statistics", "not gathered after the restore (--no-analyze): ANALYZE before heavy use"})
	}
	if r.Reason != "" {
		fields = append(fields, Field{"Outcome", r.Reason})
	}
	if d.Links != nil {
		fields = append(fields, Field{"Page", d.Links.ReleaseLink(r.ID)})
	}
	var table *Table
	logCut := ""
	if len(r.Steps) > 0 {
		table = &Table{Columns: []string{"Step", "State", "Took", "Log"}}
		for _, s := range releaseView(r).Steps {
			whole := strings.ReplaceAll(strings.TrimSpace(s.Log), "\n", " | ")
			log := release.Cut(whole, maxLogCell)
			// The hint names the failed step when its log is cut (what the
			// reader wants next), else the first cut one.
			if log != whole && (logCut == "" || s.State == release.StepFailed) {
				logCut = s.Name
			}
			shown := ShownStepState(r.State, s.State)
			table.Rows = append(table.Rows, []string{s.Name, StepMark(shown) + " " + string(shown), s.Took, log})
		}
	}
	if logCut != "" {
		extra = append([]string{"", fmt.Sprintf("Logs are cut to a line; a step's whole log: release show %s --step %s", r.ID, quoteStep(logCut))}, extra...)
	}
	if c := r.Changes; c != nil && r.Kind == release.KindDeploy {
		extra = append(extra, "", fmt.Sprintf("Changes against %s at the request: %s", c.Against, c.Headline()))
		for _, l := range c.Lines(0) {
			extra = append(extra, "  - "+l)
		}
	}
	if len(r.Checks) > 0 {
		extra = append(extra, "", "Validation:")
		for _, c := range r.Checks {
			mark := "pass"
			if !c.OK {
				mark = "FAIL"
			}
			extra = append(extra, fmt.Sprintf("  %s  %s (%s) %s", mark, c.Name, humanDuration(c.Duration), c.Detail))
		}
	}
	if note := r.RestartNeeded(); note != "" {
		extra = append(extra, "", note)
	}
	if r.Switchable() {
		extra = append(extra, "", fmt.Sprintf("Users can be moved to %s with: switch %s (a release of the environment they leave, approved there)", r.Env, r.ID))
	}
	view := releaseView(r)
	view.ApprovalsLeft = d.ApprovalsLeft(r)
	reply := newReply(title, fields, table, view, extra...)
	reply.Public = true
	return reply
}

// mayApprove says how many approvals r still needs and who may give them:
// the approve role's holders (however apps.yaml states them) who have not
// approved it yet, and not its requester unless the environment allows
// self-approval.
func (d *Dispatcher) mayApprove(r *release.Release) string {
	a, err := d.Core.App(r.App)
	if err != nil {
		return ""
	}
	e, err := a.Env(r.Env)
	if err != nil {
		return ""
	}
	left := approvalsLeft(r, e)
	if left <= 0 {
		return ""
	}
	members, restricted, from := a.Holders(e, release.ActApprove)
	if !restricted {
		return ApprovalsNeeded(len(r.Approvals), left, []string{"anyone"}, "", !e.Approvals.AllowSelf)
	}
	done := map[string]bool{}
	for _, ap := range r.Approvals {
		done[ap.By] = true
	}
	var who []string
	for _, m := range members {
		if !done[m] && (e.Approvals.AllowSelf || m != r.RequestedBy) {
			who = append(who, m)
		}
	}
	return ApprovalsNeeded(len(r.Approvals), left, who, from, !e.Approvals.AllowSelf)
}

// approvalsLeft is how many more approvals r needs in e.
func approvalsLeft(r *release.Release, e *release.Environment) int {
	if r.State != release.StateAwaitingApproval {
		return 0
	}
	return max(e.Approvals.Required-len(r.Approvals), 0)
}

// ApprovalsLeft is how many more approvals r needs, 0 when it needs none
// or its app or environment is unknown.
func (d *Dispatcher) ApprovalsLeft(r *release.Release) int {
	a, err := d.Core.App(r.App)
	if err != nil {
		return 0
	}
	e, err := a.Env(r.Env)
	if err != nil {
		return 0
	}
	return approvalsLeft(r, e)
}

// runIfRunnable runs a scheduled release in the foreground when this
// transport has no server behind it.
func (d *Dispatcher) runIfRunnable(ctx context.Context, r *release.Release, title string) (Reply, error) {
	if r.State != release.StateScheduled || !d.Foreground {
		hint := ""
		switch r.State {
		case release.StateAwaitingApproval:
			hint = fmt.Sprintf("Waiting for approval: approve %s", r.ID)
		case release.StateScheduled:
			hint = "The server runs it."
		}
		return d.releaseReply(r, title, "", hint), nil
	}
	done, err := d.Releases.Run(ctx, r.ID)
	if done == nil {
		done = r
	}
	if err != nil {
		if cur, gerr := d.Releases.GetRelease(ctx, r.ID); gerr == nil {
			done = cur
		}
		var hint []string
		switch {
		case done.State == release.StateInterrupted:
			hint = []string{"", "Ways out: " + done.WaysOut()}
		case done.Rollbackable():
			hint = []string{"", "Roll back: " + done.RollbackWays()}
		}
		return d.releaseReply(done, fmt.Sprintf("Release %s %s", r.ID, done.State), hint...), err
	}
	if cur, gerr := d.Releases.GetRelease(ctx, r.ID); gerr == nil {
		done = cur
	}
	return d.releaseReply(done, fmt.Sprintf("Release %s %s", r.ID, done.State)), nil
}

func (d *Dispatcher) deploy(ctx context.Context, req Request, c Deploy) (Reply, error) {
	var at *time.Time
	if c.At != "" {
		loc := d.Location
		if loc == nil {
			loc = time.Local
		}
		t, err := ParseAt(c.At, d.now(), loc)
		if err != nil {
			return Reply{}, err // a *UsageError already
		}
		at = &t
	}
	r, err := d.Releases.RequestDeploy(ctx, req.User, c.Migration, c.Env, at, c.AllowNewPlugins)
	var missing *release.MissingVariables
	if errors.As(err, &missing) {
		if perr := d.mayFill(ctx, req.User, missing); perr != nil {
			// No form for someone who may not fill it in: say who may.
			return Reply{}, &release.Error{Code: release.ErrorCode(err), Err: perr,
				Message: fmt.Sprintf("%s lacks variables %s references: %s; %s: ask them to supply the variables, then deploy again",
					missing.Env, missing.Migration, release.List(missing.Names), release.ErrorMessage(perr))}
		}
		return Reply{Missing: missing}, err
	}
	var plugins *release.NewPluginsRefusal
	if errors.As(err, &plugins) {
		return Reply{NewPlugins: &NewPluginsOffer{Migration: plugins.Migration, Env: plugins.Env, At: c.At, Plugins: plugins.Plugins}}, err
	}
	if err != nil {
		return Reply{}, err
	}
	return d.runIfRunnable(ctx, r, fmt.Sprintf("Release %s requested: %s", r.ID, What(r)))
}

// mayFill says whether actor may supply m's variables: the form asks for
// each as a variable or a secret, so both roles are needed.
func (d *Dispatcher) mayFill(ctx context.Context, actor string, m *release.MissingVariables) error {
	if err := d.Core.Permit(ctx, actor, release.ActVarSet, m.App, m.Env); err != nil {
		return err
	}
	return d.Core.Permit(ctx, actor, release.ActSecretSet, m.App, m.Env)
}

func (d *Dispatcher) approve(ctx context.Context, req Request, c Approve) (Reply, error) {
	r, runnable, err := d.Releases.Approve(ctx, req.User, c.Release)
	if err != nil {
		return Reply{}, err
	}
	title := fmt.Sprintf("%s approved %s", req.User, r.ID)
	if !runnable {
		if left := d.ApprovalsLeft(r); left > 0 {
			title += "; it still needs " + release.Count(left, "more approval|more approvals")
		}
		return d.releaseReply(r, title), nil
	}
	return d.runIfRunnable(ctx, r, title)
}

func (d *Dispatcher) reject(ctx context.Context, req Request, c Reject) (Reply, error) {
	r, err := d.Releases.Reject(ctx, req.User, c.Release, c.Reason)
	if err != nil {
		return Reply{}, err
	}
	return d.releaseReply(r, fmt.Sprintf("Release %s rejected", r.ID)), nil
}

func (d *Dispatcher) cancel(ctx context.Context, req Request, c Cancel) (Reply, error) {
	r, err := d.Releases.Cancel(ctx, req.User, c.Release)
	if err != nil {
		return Reply{}, err
	}
	return d.releaseReply(r, fmt.Sprintf("Release %s cancelled", r.ID)), nil
}

func (d *Dispatcher) resume(ctx context.Context, req Request, c Resume) (Reply, error) {
	r, err := d.Releases.Resume(ctx, req.User, c.Release)
	if r == nil {
		if err != nil {
			return Reply{}, err
		}
	}
	if cur, gerr := d.Releases.GetRelease(ctx, c.Release); gerr == nil {
		r = cur
	}
	return d.releaseReply(r, fmt.Sprintf("Release %s %s", r.ID, r.State)), err
}

func (d *Dispatcher) rollback(ctx context.Context, req Request, c Rollback) (Reply, error) {
	r, err := d.Releases.RequestRollback(ctx, req.User, c.Release, c.Into, c.Full, c.NoAnalyze)
	if err != nil {
		return Reply{}, err
	}
	return d.runIfRunnable(ctx, r, fmt.Sprintf("Rollback %s requested: %s", r.ID, What(r)))
}

func (d *Dispatcher) switchTraffic(ctx context.Context, req Request, c Switch) (Reply, error) {
	r, err := d.Releases.RequestSwitch(ctx, req.User, c.Release)
	if err != nil {
		return Reply{}, err
	}
	return d.runIfRunnable(ctx, r, fmt.Sprintf("Switch %s requested: %s", r.ID, What(r)))
}

func (d *Dispatcher) releaseList(ctx context.Context, _ Request, c ReleaseList) (Reply, error) {
	rs, err := d.Releases.ListReleases(ctx, c.App, c.Env)
	if err != nil {
		return Reply{}, err
	}
	views := make([]ReleaseView, 0, len(rs))
	table := &Table{Columns: []string{"ID", "Kind", "Env", "What", "State", "Requested", "By"}}
	for _, r := range rs {
		views = append(views, releaseView(r))
		subject := r.Migration
		switch {
		case r.Targeted():
			subject = "snapshot " + r.Snapshot
		case r.Kind != release.KindDeploy:
			subject = r.Backup
		}
		table.Rows = append(table.Rows, []string{r.ID, string(r.Kind), r.Env, subject, string(r.State), d.when(r.RequestedAt), r.RequestedBy})
	}
	of := c.App
	if c.Env != "" {
		of += " " + c.Env
	}
	if len(views) == 0 {
		return newReply(fmt.Sprintf("No releases of %s yet.", of), nil, nil, views), nil
	}
	return newReply(fmt.Sprintf("%s of %s, newest first", release.Count(len(views), "release"), of), nil, table, views), nil
}

func (d *Dispatcher) releaseShow(ctx context.Context, _ Request, c ReleaseShow) (Reply, error) {
	r, err := d.Releases.GetRelease(ctx, c.Release)
	if err != nil {
		return Reply{}, err
	}
	if c.Step != "" {
		return stepLog(r, c.Step)
	}
	var extra []string
	switch r.State {
	case release.StateInterrupted:
		extra = []string{"", "Ways out: " + r.WaysOut()}
	case release.StateFailed:
		if r.Rollbackable() {
			extra = []string{"", "Roll back: " + r.RollbackWays()}
		}
	}
	reply := d.releaseReply(r, fmt.Sprintf("Release %s", r.ID), extra...)
	reply.Public = false
	return reply, nil
}

// HoldView is what --json prints for a lock.
type HoldView struct {
	App    string    `json:"app"`
	Env    string    `json:"env"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

func holdView(h release.Hold) HoldView {
	return HoldView{App: h.App, Env: h.Env, Reason: h.Reason, By: h.By, At: h.At}
}

// StepLogView is what --json prints for release show --step.
type StepLogView struct {
	Release string `json:"release"`
	StepView
}

// MarshalJSON is needed as StepView's would be promoted and drop Release.
func (v StepLogView) MarshalJSON() ([]byte, error) {
	type plain StepView
	return json.Marshal(struct {
		Release string `json:"release"`
		plain
		State string `json:"state"`
	}{v.Release, plain(v.StepView), JSONWord(v.State)})
}

// stepLog is one step of r with its whole log, the log release show cuts
// to a line. The name is matched case-blind; an unknown one is refused
// with the names r's steps have.
func stepLog(r *release.Release, name string) (Reply, error) {
	view := releaseView(r)
	var names []string
	for _, s := range view.Steps {
		if !strings.EqualFold(s.Name, strings.TrimSpace(name)) {
			names = append(names, fmt.Sprintf("%q", s.Name))
			continue
		}
		title := fmt.Sprintf("Release %s, step %s: %s", r.ID, s.Name, ShownStepState(r.State, s.State))
		if s.Took != "" {
			title += ", took " + s.Took
		}
		log := strings.TrimRight(s.Log, "\n")
		if log == "" {
			log = "(the step logged nothing)"
		}
		return newReply(title, nil, nil, StepLogView{Release: r.ID, StepView: s}, log), nil
	}
	if len(names) == 0 {
		return Reply{}, release.Errorf(release.CodeNotFound, "%s has no steps yet, so no step %s", r.ID, quoteShort(name))
	}
	return Reply{}, release.Errorf(release.CodeNotFound, "%s has no step %s; its steps are %s", r.ID, quoteShort(name), strings.Join(names, ", "))
}

func (d *Dispatcher) lock(ctx context.Context, req Request, c Lock) (Reply, error) {
	h, err := d.Releases.Lock(ctx, req.User, c.App, c.Env, c.Reason)
	if err != nil {
		return Reply{}, err
	}
	r := newReply(fmt.Sprintf("%s %s is locked: no release or restore runs until unlock %s %s", h.App, h.Env, h.App, h.Env),
		[]Field{{"By", h.By}, {"Reason", h.Reason}}, nil, holdView(*h))
	r.Public = true
	return r, nil
}

func (d *Dispatcher) unlock(ctx context.Context, req Request, c Unlock) (Reply, error) {
	if err := d.Releases.Unlock(ctx, req.User, c.App, c.Env); err != nil {
		return Reply{}, err
	}
	r := newReply(fmt.Sprintf("%s %s is unlocked", c.App, c.Env), nil, nil, map[string]string{"app": c.App, "env": c.Env})
	r.Public = true
	return r, nil
}
