package bot

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"

	"github.com/relbot/relbot/commands"
	"github.com/relbot/relbot/release"
)

// Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxBlocks      = 50   // blocks in one message
	maxText        = 3000 // characters in one section's text
	maxFieldText   = 2000 // characters in one section field
	maxFields      = 10   // fields in one section
	maxHeaderText  = 150  // characters in a header block
	maxFallback    = 3000 // the notification text we send beside blocks
	maxLogInList   = 150  // a step's log in the checklist; the rest goes to the thread
	maxReasonShown = 1000 // an outcome's reason in the message; the rest goes to the thread
	maxModalTitle  = 24
	maxButtonValue = 2000 // a button's value: the action's arguments
)

// Action IDs of the buttons relbot renders; the value is the release ID.
const (
	ActionApprove = "relbot_approve"
	ActionReject  = "relbot_reject"
	// ActionRollback requests the default rollback: targeted for a deploy
	// that kept a release snapshot (refused if it no longer can be), full
	// otherwise. ActionRollbackFull always restores the backup.
	ActionRollback     = "relbot_rollback"
	ActionRollbackFull = "relbot_rollback_full"
	ActionSwitch       = "relbot_switch"
)

// Action IDs of buttons whose value is not a release ID but JSON: the
// restart offered after a variable change (restartValue) and the deploy
// confirmed despite new plugins (deployValue).
const (
	ActionRestart          = "relbot_restart"
	ActionDeployNewPlugins = "relbot_deploy_new_plugins"
	// ActionSupplyVariables opens the missing-variables form from a button
	// (variablesValue) when the command's own trigger had expired.
	ActionSupplyVariables = "relbot_supply_variables"
)

// variablesValue is the value of a supply-variables button.
type variablesValue struct {
	App       string   `json:"app"`
	Env       string   `json:"env"`
	Migration string   `json:"migration"`
	Names     []string `json:"names"`
}

// VariablesButton offers the missing-variables form by a click, whose
// trigger is fresh: for a deploy whose check outlasted the command's
// trigger (Slack's last 3 seconds). Nil when the names do not fit a
// button's value; the refusal's text names them for var set.
func VariablesButton(m release.MissingVariables) []slack.Block {
	value := metadata(variablesValue{App: m.App, Env: m.Env, Migration: m.Migration, Names: m.Names})
	if len(value) > maxButtonValue {
		return nil
	}
	btn := slack.NewButtonBlockElement(ActionSupplyVariables, value, plain("Enter the variables", 75))
	btn.Style = slack.StylePrimary
	return []slack.Block{slack.NewActionBlock("variables_actions", btn)}
}

// restartValue is the value of a restart button.
type restartValue struct {
	App string `json:"app"`
	Env string `json:"env"`
}

// deployValue is the value of a deploy-with-new-plugins button.
type deployValue struct {
	Migration string `json:"migration"`
	Env       string `json:"env"`
	At        string `json:"at,omitempty"`
}

// Callback IDs of relbot's modals.
const (
	CallbackReject = "relbot_reject"
	CallbackSecret = "relbot_secret"
	// CallbackVariables is the form that supplies the variables a refused
	// deploy found missing.
	CallbackVariables = "relbot_variables"
)

// Message is one Slack message: the notification text and the blocks.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// MarshalJSON renders the message as the Web API receives it.
func (m Message) MarshalJSON() ([]byte, error) {
	blocks := m.Blocks
	if blocks == nil {
		blocks = []slack.Block{}
	}
	return json.Marshal(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{m.Text, blocks})
}

func (m Message) options() []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
}

// escape makes user text safe in mrkdwn: slack-go's own escaping of
// Slack's three control characters, so "<!channel>" typed in a reason is
// shown, not obeyed.
var escape = slackutilsx.EscapeMessage

// message builds a Message from its plain notification text (escaped here,
// so whatever a user typed in it cannot ping or link) and its blocks.
func message(fallback string, blocks ...slack.Block) Message {
	// Cut before escaping, so no entity is cut in half; cut more while the
	// entities make it too long.
	text := escape(truncate(fallback, maxFallback))
	for n := maxFallback; utf8.RuneCountInString(text) > maxFallback && n > 0; {
		// Entities grow the text by up to 5 times: shrink in proportion
		// (an overshoot subtracted could take n below zero).
		n = n*maxFallback/utf8.RuneCountInString(text) - 1
		text = escape(truncate(fallback, n))
	}
	return Message{Text: text, Blocks: blocks}
}

// truncate cuts s to at most n characters (runes), marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	const mark = " …"
	r := []rune(s)
	if n <= utf8.RuneCountInString(mark) {
		return string(r[:max(n, 0)])
	}
	return string(r[:n-utf8.RuneCountInString(mark)]) + mark
}

// chunks splits s into pieces of at most n runes, preferring line breaks;
// one pass over the runes, whatever the length of s.
func chunks(s string, n int) []string {
	r := []rune(s)
	var out []string
	for len(r) > n {
		cut := n
		for i := n - 1; i > 0; i-- {
			if r[i] == '\n' {
				cut = i + 1
				break
			}
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
	}
	if len(r) > 0 || len(out) == 0 {
		out = append(out, string(r))
	}
	return out
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxText), false, false)
}

func plain(s string, n int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(s, n), true, false)
}

func section(s string) *slack.SectionBlock { return slack.NewSectionBlock(mrkdwn(s), nil, nil) }

// codeSections renders text as preformatted sections, each within the
// text limit, using at most max blocks; what does not fit is summarised.
func codeSections(text string, max int) []slack.Block {
	const fence = "```"
	parts := chunks(escape(text), maxText-2*len(fence)-2)
	var out []slack.Block
	for i, p := range parts {
		if i == max-1 && len(parts) > max {
			rest := 0
			for _, q := range parts[i:] {
				rest += strings.Count(q, "\n") + 1
			}
			out = append(out, section(fmt.Sprintf("_… %d more lines not shown (run the command in a terminal, or with --json, for everything)_", rest)))
			break
		}
		out = append(out, section(fence+"\n"+strings.TrimRight(p, "\n")+"\n"+fence))
	}
	return out
}

// user shows a person: a Slack mention for a Slack user ID, else the name
// (a terminal user).
func user(id string) string {
	switch {
	case isSlackUser(id):
		return "<@" + id + ">"
	case id == release.Anyone:
		return "anyone in the channel"
	case release.IsGroup(id) && !strings.HasPrefix(id, "@"):
		return "<!subteam^" + id + ">" // a user group by its ID
	}
	return escape(id)
}

func isSlackUser(id string) bool {
	if len(id) < 3 || len(id) > 32 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func users(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = user(id)
	}
	return release.List(out)
}

// date renders a time in each reader's own zone, with a UTC fallback.
func date(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
}

var stateIcon = map[release.State]string{
	release.StateAwaitingApproval: ":hourglass_flowing_sand:",
	release.StateScheduled:        ":calendar:",
	release.StateRunning:          ":arrows_counterclockwise:",
	release.StateSucceeded:        ":white_check_mark:",
	release.StateFailed:           ":x:",
	release.StateRolledBack:       ":rewind:",
	release.StateRejected:         ":no_entry:",
	release.StateCancelled:        ":heavy_multiplication_x:",
	release.StateExpired:          ":hourglass:",
	release.StateInterrupted:      ":warning:",
}

var stepIcon = map[release.StepState]string{
	release.StepPending: ":white_large_square:",
	release.StepRunning: ":arrows_counterclockwise:",
	release.StepDone:    ":white_check_mark:",
	release.StepFailed:  ":x:",
	release.StepSkipped: ":heavy_minus_sign:",
}

// subject says in a few words what a release does.
func subject(r *release.Release) string {
	switch r.Kind {
	case release.KindDeploy:
		return fmt.Sprintf("deploy %s to %s %s", r.Migration, r.App, r.Env)
	case release.KindRollback:
		if r.Targeted() {
			return fmt.Sprintf("targeted rollback of %s in %s %s", r.RollbackOf, r.App, r.Env)
		}
		return fmt.Sprintf("full rollback of %s into %s %s", r.RollbackOf, r.App, r.Env)
	case release.KindSwitch:
		return fmt.Sprintf("move users of %s %s to %s", r.App, r.Env, release.RecoveryEnv)
	}
	return fmt.Sprintf("restore %s into %s %s", r.Backup, r.App, r.Env)
}

// final reports whether a release has reached an end (nothing will move it
// again by itself).
func final(s release.State) bool {
	switch s {
	case release.StateSucceeded, release.StateFailed, release.StateRolledBack, release.StateRejected, release.StateCancelled, release.StateExpired:
		return true
	}
	return false
}

// RenderRelease renders a release's one channel message: header,
// approvals with buttons while awaiting, the checklist of steps and the
// outcome. p is the approval policy of its environment.
func RenderRelease(r *release.Release, p release.ApprovalPolicy) Message {
	return RenderReleaseLinked(r, p, "")
}

// RenderReleaseLinked is RenderRelease with a link to the release's page
// (its whole logs, approvals, validation and change summary) beside its
// state.
func RenderReleaseLinked(r *release.Release, p release.ApprovalPolicy, link string) Message {
	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(plain(fmt.Sprintf("%s · %s", r.ID, subject(r)), maxHeaderText)))

	var fields []*slack.TextBlockObject
	field := func(name, value string) {
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, truncate("*"+name+"*\n"+value, maxFieldText), false, false))
	}
	field("App", escape(r.App))
	field("Environment", escape(r.Env))
	switch r.Kind {
	case release.KindDeploy:
		m := escape(r.Migration)
		if r.FileHash != "" {
			h := r.FileHash
			if len(h) > 12 {
				h = h[:12]
			}
			m += fmt.Sprintf(" (`%s`)", escape(h))
		}
		field("Migration", m)
		if r.Backup != "" {
			field("Pre-release backup", escape(r.Backup))
		} else {
			field("Pre-release backup", "taken before the migration")
		}
		if r.Snapshot != "" {
			field("Release snapshot", escape(r.Snapshot)+": what the apply changed, for a targeted rollback")
		}
	case release.KindRollback:
		field("Rollback", escape(r.RollbackMode()))
		if r.Targeted() {
			field("Puts back", "snapshot "+escape(r.Snapshot))
		} else {
			field("Restores", escape(r.Backup))
		}
		field("Rolls back", escape(r.RollbackOf))
	case release.KindSwitch:
		field("Moves users to", fmt.Sprintf("%s (restored by %s from %s)", release.RecoveryEnv, escape(r.SwitchTo), escape(r.Backup)))
	default:
		field("Restores", escape(r.Backup))
	}
	if r.SecretsTravel() {
		field("Secrets", escape(release.SecretsTravelNote))
	}
	field("Requested by", fmt.Sprintf("%s, %s", user(r.RequestedBy), date(r.RequestedAt)))
	if r.At != nil {
		field("Starts", date(*r.At))
	}
	if r.AllowNewPlugins {
		field("New plugins", "allowed by the requester")
	}
	if r.NoAnalyze {
		field("Statistics", "not gathered after the restore (--no-analyze)")
	}
	if len(fields) > maxFields {
		fields = fields[:maxFields]
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	if r.Kind == release.KindDeploy && r.Changes != nil {
		blocks = append(blocks, section(changesText(r)))
	}
	state := release.State(commands.StateWords(r.State, r.At, time.Now()))
	stateLine := fmt.Sprintf("%s *%s*", stateIcon[state], capital(string(state)))
	if link != "" && len(link) < maxText/2 {
		stateLine += fmt.Sprintf(" · <%s|Release page>", link) // a signed URL: nothing in it to escape
	}
	blocks = append(blocks, section(stateLine))

	if p.Required > 0 || len(r.Approvals) > 0 {
		blocks = append(blocks, section(approvalsText(r, p)))
	}
	if r.State == release.StateAwaitingApproval && p.Required > 0 {
		approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve", 75))
		approve.Style = slack.StylePrimary
		reject := slack.NewButtonBlockElement(ActionReject, r.ID, plain("Reject", 75))
		reject.Style = slack.StyleDanger
		blocks = append(blocks, slack.NewActionBlock("release_actions", approve, reject))
	}
	if showSteps(r.State) && len(r.Steps) > 0 {
		blocks = append(blocks, slack.NewDividerBlock(), section(stepsText(r)))
	}
	if out := outcome(r); out != "" {
		blocks = append(blocks, section(out))
	}
	text := fmt.Sprintf("%s %s: %s", r.ID, r.State, subject(r))
	return message(text, blocks...)
}

// maxChangesShown is how many lines of a change summary the release
// message shows; the plan lists them all.
const maxChangesShown = 8

// changesText is the change summary approvers judge: a count by kind,
// the first changes, and where to read the rest.
func changesText(r *release.Release) string {
	c := r.Changes
	var b strings.Builder
	fmt.Fprintf(&b, "*Changes* against %s at the request: %s", escape(c.Against), escape(c.Headline()))
	lines := c.Lines(maxChangesShown)
	for _, l := range lines {
		b.WriteString("\n• " + escape(release.Cut(l, maxLogInList*2)))
	}
	if len(c.Items) > maxChangesShown {
		fmt.Fprintf(&b, "\nAll of them: `migration plan %s %s`", escape(r.Migration), escape(r.Env))
	}
	return b.String()
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func showSteps(s release.State) bool {
	switch s {
	case release.StateAwaitingApproval, release.StateRejected, release.StateCancelled, release.StateExpired:
		return false
	}
	return true
}

func approvalsText(r *release.Release, p release.ApprovalPolicy) string {
	var names []string
	for _, a := range r.Approvals {
		names = append(names, a.By)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Approvals:* %d of %d", len(r.Approvals), p.Required)
	if len(names) > 0 {
		b.WriteString(" — " + users(names))
	}
	if r.State == release.StateAwaitingApproval {
		if left := p.Required - len(r.Approvals); left > 0 {
			var eligible []string
			for _, a := range p.Approvers {
				if !slices.Contains(names, a) && (p.AllowSelf || a != r.RequestedBy) {
					eligible = append(eligible, user(a))
				}
			}
			b.WriteString("\n" + commands.ApprovalsNeeded(len(r.Approvals), left, eligible, "", !p.AllowSelf))
		}
	}
	return b.String()
}

func stepsText(r *release.Release) string {
	var b strings.Builder
	b.WriteString("*Steps*")
	for _, s := range r.Steps {
		if commands.ShownStepState(r.State, s.State) == commands.StepNotRun {
			fmt.Fprintf(&b, "\n%s %s — not run", stepIcon[release.StepSkipped], escape(s.Name))
			continue
		}
		fmt.Fprintf(&b, "\n%s %s", stepIcon[s.State], escape(s.Name))
		switch {
		case s.State == release.StepRunning && s.Started != nil:
			b.WriteString(" — running since " + date(*s.Started))
		case s.State == release.StepSkipped:
			b.WriteString(" — skipped")
		case s.Started != nil && s.Ended != nil:
			b.WriteString(" — " + duration(s.Ended.Sub(*s.Started)))
		}
		log := s.Log // release.Cut keeps its first line
		if s.State == release.StepFailed {
			log = release.CutTail(s.Log, maxLogInList) // the error is appended to the step's output
		}
		if log != "" && s.State != release.StepPending {
			b.WriteString(" — _" + escape(release.Cut(log, maxLogInList)) + "_")
		}
	}
	return b.String()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// runTime is how long a release ran: from its first step's start to its
// last step's end.
func runTime(r *release.Release) (time.Duration, bool) {
	var first, last *time.Time
	for _, s := range r.Steps {
		if s.Started != nil && (first == nil || s.Started.Before(*first)) {
			first = s.Started
		}
		if s.Ended != nil && (last == nil || s.Ended.After(*last)) {
			last = s.Ended
		}
	}
	if first == nil || last == nil {
		return 0, false
	}
	return last.Sub(*first), true
}

func outcome(r *release.Release) string {
	reason := escape(truncate(r.Reason, maxReasonShown))
	switch r.State {
	case release.StateSucceeded:
		s := ":white_check_mark: *Succeeded*"
		if d, ok := runTime(r); ok {
			s += " in " + duration(d)
		}
		if note := r.RestartNeeded(); note != "" {
			s += "\n:warning: " + escape(note)
		}
		return s
	case release.StateFailed:
		s := ":x: *Failed*"
		if reason != "" {
			s += ": " + reason
		}
		if r.Rollbackable() {
			s += "\nDetails and the rollback buttons are in the thread."
		}
		return s
	case release.StateInterrupted:
		return ":warning: *Interrupted*: " + reason + "\nWays out: " + escape(r.WaysOut()) + "."
	case release.StateRejected, release.StateCancelled, release.StateExpired, release.StateRolledBack:
		s := stateIcon[r.State] + " *" + capital(string(r.State)) + "*"
		if reason != "" {
			s += ": " + reason
		}
		return s
	case release.StateScheduled:
		if !commands.RunsNow(r.State, r.At, time.Now()) {
			return ":calendar: Starts at " + date(*r.At)
		}
		return ":arrows_counterclockwise: Approved: it is running"
	}
	return ""
}

// RenderChecks renders validation results as a table for the thread.
func RenderChecks(r *release.Release) Message {
	rows := [][]string{{"", "Check", "Took", "Detail"}}
	failed := 0
	for _, c := range r.Checks {
		mark := "pass"
		if !c.OK {
			mark = "FAIL"
			failed++
		}
		rows = append(rows, []string{mark, c.Name, duration(c.Duration), strings.ReplaceAll(c.Detail, "\n", " ")})
	}
	title := fmt.Sprintf("*Validation of %s %s* (%s): %d of %d passed", escape(r.App), escape(r.Env), r.ID, len(r.Checks)-failed, len(r.Checks))
	blocks := []slack.Block{section(title)}
	blocks = append(blocks, codeSections(table(rows), maxBlocks-1)...)
	return message(fmt.Sprintf("Validation of %s: %d of %d checks passed", r.ID, len(r.Checks)-failed, len(r.Checks)), blocks...)
}

// table aligns rows in columns.
func table(rows [][]string) string {
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// RenderFailure renders the thread message of a failed or interrupted
// release: the failed step's log and the ways out, with a Rollback button
// when there is a backup to go back to.
func RenderFailure(r *release.Release, step string) Message {
	var log string
	for _, s := range r.Steps {
		if s.Name == step || (step == "" && s.State == release.StepFailed) {
			log = strings.TrimSpace(s.Log)
			step = s.Name
		}
	}
	head := fmt.Sprintf(":x: *%s failed at %s*", r.ID, escape(step))
	if r.State == release.StateInterrupted {
		head = fmt.Sprintf(":warning: *%s was interrupted during %s*", r.ID, escape(step))
	}
	blocks := []slack.Block{section(head + "\n" + escape(truncate(r.Reason, maxText-len(head)-10)))}
	if log != "" {
		blocks = append(blocks, codeSections(log, maxBlocks-4)...)
	}
	if r.Rollbackable() {
		btns, text := rollbackButtons(r)
		blocks = append(blocks, section(text), slack.NewActionBlock("failure_actions", btns...))
	}
	return message(fmt.Sprintf("%s failed at %s: %s", r.ID, step, r.Reason), blocks...)
}

// rollbackButtons are the ways back from deploy r, each labelled with what
// it does, and the text that explains them: the targeted rollback where
// its apply kept a snapshot, the full one where it took a backup.
func rollbackButtons(r *release.Release) ([]slack.BlockElement, string) {
	var btns []slack.BlockElement
	var lines []string
	if r.Snapshot != "" {
		btn := slack.NewButtonBlockElement(ActionRollback, r.ID, plain("Targeted rollback", 75))
		btn.Style = slack.StyleDanger
		btn.Confirm = slack.NewConfirmationBlockObject(plain("Targeted rollback?", 100),
			plain(fmt.Sprintf("Put back what %s changed in %s %s; rows written since to other tables are kept. The environment's approvals apply.", r.ID, r.App, r.Env), 300),
			plain("Roll back", 30), plain("Cancel", 30))
		btns = append(btns, btn)
		lines = append(lines, fmt.Sprintf("*Targeted rollback* puts back what %s changed, keeps rows written since (`rollback %s` in a terminal).", r.ID, r.ID))
	}
	if r.Backup != "" {
		action, flag := ActionRollback, ""
		if r.Snapshot != "" {
			action, flag = ActionRollbackFull, " --full"
		}
		btn := slack.NewButtonBlockElement(action, r.ID, plain("Full rollback (restore "+r.Backup+")", 75))
		btn.Style = slack.StyleDanger
		btn.Confirm = slack.NewConfirmationBlockObject(plain("Full rollback?", 100),
			plain(fmt.Sprintf("Restore backup %s, taken before %s, into %s %s: what users wrote since is lost. The environment's approvals apply.", r.Backup, r.ID, r.App, r.Env), 300),
			plain("Restore", 30), plain("Cancel", 30))
		btns = append(btns, btn)
		lines = append(lines, fmt.Sprintf("*Full rollback* restores the pre-release backup %s taken before %s (`rollback %s%s` in a terminal).", escape(r.Backup), r.ID, r.ID, flag))
	}
	return btns, strings.Join(lines, "\n")
}

// RenderSwitchOffer renders the thread message of a rollback or restore
// into recovery that passed its checks: moving users there is offered, as
// a separate release approved where they leave.
func RenderSwitchOffer(r *release.Release) Message {
	text := fmt.Sprintf(":arrows_counterclockwise: *%s %s* passed its checks after %s. Users can be moved to it: that runs its switch_traffic hook, "+
		"as a release of the environment they leave, approved there (`switch %s` in a terminal).", escape(r.App), escape(r.Env), r.ID, r.ID)
	btn := slack.NewButtonBlockElement(ActionSwitch, r.ID, plain("Switch traffic", 75))
	btn.Style = slack.StylePrimary
	btn.Confirm = slack.NewConfirmationBlockObject(plain("Switch traffic?", 100),
		plain(fmt.Sprintf("Request moving users to %s %s. The environment they leave must approve it.", r.App, r.Env), 300),
		plain("Request", 30), plain("Cancel", 30))
	return message(fmt.Sprintf("%s %s passed its checks after %s: users can be moved to it (switch %s)", r.App, r.Env, r.ID, r.ID),
		section(text), slack.NewActionBlock("switch_actions", btn))
}

// RenderLog renders a step's whole output for the thread.
func RenderLog(r *release.Release, step, log string) Message {
	blocks := []slack.Block{section(fmt.Sprintf("Output of *%s* (%s):", escape(step), r.ID))}
	blocks = append(blocks, codeSections(log, maxBlocks-1)...)
	return message(fmt.Sprintf("Output of %s (%s)", step, r.ID), blocks...)
}

// RenderDM renders the direct message to a release's requester.
func RenderDM(r *release.Release, e release.Event) Message {
	var what string
	switch e.Kind {
	case release.EventSucceeded:
		what = "succeeded"
	case release.EventFailed:
		what = "failed and needs you: roll it back or fix forward"
	case release.EventInterrupted:
		what = "was interrupted and needs you: " + escape(r.WaysOut())
	case release.EventRejected:
		what = "was rejected"
	case release.EventExpired:
		what = "expired without enough approvals"
	case release.EventCancelled:
		what = "was cancelled by " + user(e.Actor)
	default:
		what = string(r.State)
	}
	text := fmt.Sprintf("Your release %s (%s) %s.", r.ID, escape(subject(r)), what)
	if r.Reason != "" && e.Kind != release.EventSucceeded {
		text += "\n> " + escape(truncate(r.Reason, maxReasonShown))
	}
	if note := r.RestartNeeded(); note != "" && e.Kind == release.EventSucceeded {
		text += "\n:warning: " + escape(note)
	}
	if r.Channel != "" {
		text += fmt.Sprintf("\nProgress is in <#%s>.", r.Channel)
	}
	return message(fmt.Sprintf("Your release %s %s", r.ID, r.State), section(text))
}

// RenderReply renders a command's reply: its title, then the terminal
// text preformatted (it is complete on its own), within Block Kit limits.
func RenderReply(rep commands.Reply) Message {
	body := rep.Text
	var blocks []slack.Block
	if rep.Title != "" {
		body = strings.TrimPrefix(strings.TrimPrefix(body, rep.Title), "\n")
		blocks = append(blocks, section("*"+escape(rep.Title)+"*"))
	}
	if strings.TrimSpace(body) != "" {
		if rep.Title == "" && !strings.Contains(body, "\n") {
			blocks = append(blocks, section(escape(body)))
		} else {
			blocks = append(blocks, codeSections(body, maxBlocks-len(blocks))...)
		}
	}
	return message(firstLine(rep.Text), blocks...)
}

// RenderError renders a refused or failed command for the user.
func RenderError(err error) Message {
	text := commands.ErrorReply(err).Text
	return message(text, section(":warning: "+escape(text)))
}

// RenderResult renders a command's outcome: the reply, the error, or both
// (a reply may hold the details of a failure), with the buttons the reply
// offers: a restart after a variable change, a deploy confirmed despite
// new plugins.
func RenderResult(rep commands.Reply, err error) Message {
	var m Message
	if err == nil {
		m = RenderReply(rep)
	} else {
		m = RenderError(err)
		if rep.Text != "" {
			r := RenderReply(rep)
			m.Blocks = append(m.Blocks, r.Blocks...)
		}
	}
	body := len(m.Blocks)
	if rep.Restart != nil {
		value := metadata(restartValue{App: rep.Restart.App, Env: rep.Restart.Env})
		if len(value) > maxButtonValue {
			m.Blocks = append(m.Blocks, section(truncate(fmt.Sprintf("Restart the app with `/relbot restart %s %s` (its names are too long for a button).",
				escape(rep.Restart.App), escape(rep.Restart.Env)), maxText)))
		} else {
			btn := slack.NewButtonBlockElement(ActionRestart, value, plain("Restart "+rep.Restart.Env, 75))
			btn.Confirm = slack.NewConfirmationBlockObject(plain("Restart the app?", 100),
				plain(fmt.Sprintf("Run the restart hook of %s %s now. Users may see it restart.", rep.Restart.App, rep.Restart.Env), 300),
				plain("Restart", 30), plain("Cancel", 30))
			m.Blocks = append(m.Blocks, slack.NewActionBlock("restart_actions", btn))
		}
	}
	if o := rep.NewPlugins; o != nil && err != nil {
		var list strings.Builder
		for _, p := range o.Plugins {
			list.WriteString("\n• " + escape(p.String()))
		}
		m.Blocks = append(m.Blocks,
			section(truncate(fmt.Sprintf("*Plugins %s does not have:*%s\nGo on only if %s can run them (`deploy %s %s --allow-new-plugins` in a terminal).",
				escape(o.Env), list.String(), escape(o.Env), escape(o.Migration), escape(o.Env)), maxText)))
		// A button's value holds the deploy; one too long for Slack is
		// left to the command the text gives.
		if value := metadata(deployValue{Migration: o.Migration, Env: o.Env, At: o.At}); len(value) <= maxButtonValue {
			btn := slack.NewButtonBlockElement(ActionDeployNewPlugins, value, plain("Deploy with new plugins", 75))
			btn.Style = slack.StyleDanger
			btn.Confirm = slack.NewConfirmationBlockObject(plain("Deploy anyway?", 100),
				plain(fmt.Sprintf("Request %s to %s although %s lacks these plugins. The release records your choice.", o.Migration, o.Env, o.Env), 300),
				plain("Deploy", 30), plain("Cancel", 30))
			m.Blocks = append(m.Blocks, slack.NewActionBlock("new_plugins_actions", btn))
		}
	}
	if len(m.Blocks) > maxBlocks {
		// The offers come last: cut the body, keep them.
		offers := m.Blocks[body:]
		m.Blocks = append(m.Blocks[:maxBlocks-len(offers):maxBlocks-len(offers)], offers...)
	}
	return m
}

// ReplyTo is where a form's answer goes: the response_url of the command
// or click that opened it, which works in direct messages and in private
// channels without the bot; failing that, a direct message. Channel is
// where an answer everyone should see is posted.
type ReplyTo struct {
	Channel     string `json:"channel,omitempty"`
	ResponseURL string `json:"response_url,omitempty"`
}

// maxResponseURL: Slack's are about 100 characters; a longer one would
// crowd the metadata and is dropped (the answer then goes by DM).
const maxResponseURL = 500

func replyTo(channel, responseURL string) ReplyTo {
	if len(responseURL) > maxResponseURL {
		responseURL = ""
	}
	return ReplyTo{Channel: channel, ResponseURL: responseURL}
}

// modal metadata travels through Slack in private_metadata.
type rejectMeta struct {
	Release string `json:"release"`
	ReplyTo
}

type secretMeta struct {
	App string `json:"app"`
	Env string `json:"env"`
	Var string `json:"var"`
	ReplyTo
}

func metadata(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rejectMetadata names the release (IDs are short), and where to answer
// if that fits.
func rejectMetadata(id string, to ReplyTo) string {
	if meta := metadata(rejectMeta{Release: id, ReplyTo: to}); len(meta) <= maxMetadata {
		return meta
	}
	return metadata(rejectMeta{Release: id, ReplyTo: ReplyTo{Channel: to.Channel}})
}

// RejectModal asks for the reason of a rejection.
func RejectModal(id string, to ReplyTo) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("Why is it rejected?", 150), "reason")
	input.Multiline = true
	input.MaxLength = 1000
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackReject,
		Title:           plain("Reject "+id, maxModalTitle),
		Submit:          plain("Reject", 24),
		Close:           plain("Cancel", 24),
		PrivateMetadata: rejectMetadata(id, to),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(fmt.Sprintf("Reject release *%s*: it will not run, and its requester is told why.", escape(id))),
			slack.NewInputBlock("reason", plain("Reason", 2000), nil, input),
		}},
	}
}

// CheckingModal is a form opened at once, before the slow work that
// decides what it shows (views.update fills it).
func CheckingModal(callback, title, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: callback, Title: plain(title, maxModalTitle), Close: plain("Close", 24),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section(":hourglass_flowing_sand: " + escape(truncate(text, maxText/2)))}}}
}

// NoticeModal is a form that only tells something (a refusal): no input,
// nothing to submit.
func NoticeModal(callback, title, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: callback, Title: plain(title, maxModalTitle), Close: plain("Close", 24),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section(escape(truncate(text, maxText/2)))}}}
}

// SecretModal asks for a secret's value. The value goes only to the
// submission; it is never shown or logged.
func SecretModal(p commands.SecretPrompt, to ReplyTo) slack.ModalViewRequest {
	meta := metadata(secretMeta{App: p.App, Env: p.Env, Var: p.Var, ReplyTo: to})
	if len(meta) > maxMetadata { // without the response_url, the answer goes by DM
		meta = metadata(secretMeta{App: p.App, Env: p.Env, Var: p.Var, ReplyTo: ReplyTo{Channel: to.Channel}})
	}
	if len(meta) > maxMetadata {
		// The form could not say which secret it sets: no form, the way
		// that works instead.
		return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: CallbackSecret, Title: plain("Set a secret", maxModalTitle), Close: plain("Close", 24),
			Blocks: slack.Blocks{BlockSet: []slack.Block{section(truncate(fmt.Sprintf("The names of %s %s %s are too long for a Slack form: set it from a terminal with `relbot secret set %s %s %s`.",
				escape(p.App), escape(p.Env), escape(p.Var), escape(p.App), escape(p.Env), escape(p.Var)), maxText))}}}
	}
	input := slack.NewPlainTextInputBlockElement(plain("value", 150), "value")
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackSecret,
		Title:           plain("Set a secret", maxModalTitle),
		Submit:          plain("Save", 24),
		Close:           plain("Cancel", 24),
		PrivateMetadata: meta,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(fmt.Sprintf("Value of secret *%s* for %s %s. It is stored encrypted and never shown again.", escape(p.Var), escape(p.App), escape(p.Env))),
			slack.NewInputBlock("value", plain(p.Var, 2000), nil, input),
		}},
	}
}

// variablesMeta travels with the missing-variables form.
type variablesMeta struct {
	App       string   `json:"app"`
	Env       string   `json:"env"`
	Migration string   `json:"migration"`
	Names     []string `json:"names"`
	ReplyTo
}

// maxFormVariables bounds the inputs of one form: two per block row is
// Slack's 100 blocks with room to spare, and beyond it the terminal's
// var set is the better way.
const maxFormVariables = 40

// Limits of the form's parts (Block Kit): a block_id, an option's value,
// the view's private_metadata.
const (
	maxBlockID  = 255
	maxOptValue = 150
	maxMetadata = 3000
)

// VariablesModal asks the requester of a refused deploy for the variables
// the target lacks: a value each, and which of them are secrets. It asks
// for as many as fit Slack's limits (their number, a name's length in a
// block_id and an option, the names together in private_metadata) and
// names the others, to be set from the terminal or with var set.
func VariablesModal(m release.MissingVariables, to ReplyTo) slack.ModalViewRequest {
	// The names come first; the response_url only if it still fits.
	meta := variablesMeta{App: m.App, Env: m.Env, Migration: m.Migration, ReplyTo: ReplyTo{Channel: to.Channel}}
	var left []string
	for _, n := range m.Names {
		meta.Names = append(meta.Names, n)
		if len(meta.Names) > maxFormVariables || len("var:"+n) > maxBlockID || len(n) > maxOptValue || len(metadata(meta)) > maxMetadata {
			meta.Names = meta.Names[:len(meta.Names)-1]
			left = append(left, n)
		}
	}
	withURL := meta
	withURL.ResponseURL = to.ResponseURL
	if len(metadata(withURL)) <= maxMetadata {
		meta = withURL
	}
	intro := fmt.Sprintf("%s %s lacks %s that %s references. Give their values for %s; secrets are stored encrypted and never shown again.",
		escape(m.App), escape(m.Env), release.Count(len(m.Names), "variable"), escape(m.Migration), escape(m.Env))
	if len(left) > 0 {
		intro += fmt.Sprintf("\n*This form asks for %d of them.* Set the other %s with `/relbot var set %s %s NAME=VALUE` (`secret set` for a secret): %s",
			len(meta.Names), release.Count(len(left), "variable"), escape(m.App), escape(m.Env), escape(release.List(left)))
	}
	blocks := []slack.Block{section(intro)}
	var options []*slack.OptionBlockObject
	for _, n := range meta.Names {
		input := slack.NewPlainTextInputBlockElement(plain("value", 150), "value")
		blocks = append(blocks, slack.NewInputBlock("var:"+n, plain(n, 2000), nil, input))
		options = append(options, slack.NewOptionBlockObject(n, plain(n, 75), nil))
	}
	if len(options) > 0 {
		// A multi-select takes up to 100 options where checkboxes take 10.
		secrets := slack.NewOptionsMultiSelectBlockElement(slack.MultiOptTypeStatic, plain("none", 150), "secrets", options...)
		secretsBlock := slack.NewInputBlock("secrets", plain("Which are secrets?", 2000), nil, secrets)
		secretsBlock.Optional = true
		blocks = append(blocks, secretsBlock)
	}
	view := slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackVariables,
		Title:           plain("Missing variables", maxModalTitle),
		Close:           plain("Cancel", 24),
		PrivateMetadata: metadata(meta),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
	if len(meta.Names) > 0 {
		view.Submit = plain("Save", 24) // a form with nothing to fill has no Save
	}
	return view
}
