package commands

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RestartView is what --json prints for a restart.
type RestartView struct {
	App        string `json:"app"`
	Env        string `json:"env"`
	By         string `json:"by"`
	Output     string `json:"output,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

func (d *Dispatcher) restart(ctx context.Context, req Request, c Restart) (Reply, error) {
	res, err := d.Releases.Restart(ctx, req.User, c.App, c.Env)
	if err != nil {
		return Reply{}, err
	}
	view := RestartView{App: res.App, Env: res.Env, By: res.By, Output: res.Output, DurationMS: res.Duration.Milliseconds()}
	var extra []string
	if out := strings.TrimSpace(res.Output); out != "" {
		extra = append(extra, "", "Output of the restart hook:", out)
	}
	r := newReply(fmt.Sprintf("%s %s restarted by %s (its restart hook, %s): the app now runs with its current variables and configuration",
		res.App, res.Env, res.By, humanDuration(res.Duration.Round(time.Millisecond))), nil, nil, view, extra...)
	r.Public = true
	return r, nil
}

// restartNote is the line a variable or secret change ends with: a running
// NocoBase reads its variables at start, so the change is seen only after
// a restart. With a restart hook, it is offered. inApp says whether the
// change reached the app's own variables table; a change relbot alone
// keeps needs no restart, unless the environment defines one anyway.
func (d *Dispatcher) restartNote(r *Reply, app, env string, inApp bool) {
	a, err := d.Core.App(app)
	if err != nil {
		return
	}
	e, err := a.Env(env)
	if err != nil {
		return
	}
	var line string
	switch {
	case e.HasRestartHook():
		line = fmt.Sprintf("The app must be restarted to see the change (it reads its variables at start): restart %s %s runs its restart hook.", a.Name, e.Name)
		r.Restart = &RestartOffer{App: a.Name, Env: e.Name}
	case inApp:
		line = fmt.Sprintf("The app must be restarted to see the change (it reads its variables at start); %s %s has no restart hook in apps.yaml, so restart it yourself.", a.Name, e.Name)
	default:
		return
	}
	r.Text += "\n" + line
}
