// Package hooks runs an environment's hooks (maintenance on/off, scale
// down/up, switch traffic) as defined in apps.yaml: an `exec` hook runs a
// program with its argv directly (never through a shell), an `http` hook
// sends one request. Hook definitions come only from apps.yaml — the
// Environment — never from user input.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/httpspec"
)

const (
	// DefaultTimeout bounds a hook whose definition sets no timeout.
	DefaultTimeout = 5 * time.Minute
	// MaxOutput is how much of a hook's output is kept: the last MaxOutput
	// bytes of an exec hook's combined stdout and stderr, the first
	// MaxOutput bytes of an http hook's response body.
	MaxOutput = httpspec.MaxBody
	// waitDelay is how long an exec hook's pipes may stay open after the
	// process was killed (a grandchild holding them) before Wait gives up.
	waitDelay = 2 * time.Second
)

// Runner runs hooks. The zero value is usable: a nil Client means
// http.DefaultClient, a nil Log discards.
type Runner struct {
	Client *http.Client
	Log    *slog.Logger
}

var _ release.Hooks = (*Runner)(nil)

// Run runs hook name of env and returns its output. A hook env does not
// define is not an error: ran is false. A failed hook returns what output
// it produced together with an error naming the hook.
func (r *Runner) Run(ctx context.Context, env *release.Environment, name string) (output string, ran bool, err error) {
	if env == nil {
		return "", false, nil
	}
	h, ok := env.Hooks[name]
	if !ok {
		return "", false, nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	log := r.logger().With("env", env.Name, "hook", name)
	start := time.Now()
	switch {
	case len(h.Exec) > 0 && h.HTTP != "":
		return "", true, release.Errorf(release.CodeInvalid, "hook %s of %s defines both exec and http", name, env.Name)
	case len(h.Exec) > 0:
		log = log.With("exec", h.Exec[0])
		log.Info("hook started")
		output, err = r.runExec(ctx, name, h.Exec, hookEnv(os.Getenv, h.Env), timeout)
	case h.HTTP != "":
		method, u, perr := httpspec.Parse(h.HTTP)
		if perr != nil {
			return "", true, release.Errorf(release.CodeInvalid, "hook %s of %s: %s", name, env.Name, perr)
		}
		log = log.With("http", method+" "+httpspec.Redact(u))
		log.Info("hook started")
		output, err = r.runHTTP(ctx, name, method, u, timeout)
	default:
		return "", true, release.Errorf(release.CodeInvalid, "hook %s of %s defines neither exec nor http", name, env.Name)
	}
	if err != nil {
		log.Warn("hook failed", "duration", time.Since(start), "err", err)
		return output, true, err
	}
	log.Info("hook finished", "duration", time.Since(start))
	return output, true, nil
}

func (r *Runner) logger() *slog.Logger {
	if r == nil || r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Runner) client() *http.Client {
	if r == nil || r.Client == nil {
		return http.DefaultClient
	}
	return r.Client
}

// runExec runs argv directly (no shell) with the timeout, capturing the
// last MaxOutput bytes of its combined stdout and stderr.
func (r *Runner) runExec(ctx context.Context, name string, argv, env []string, timeout time.Duration) (string, error) {
	if argv[0] == "" {
		return "", release.Errorf(release.CodeInvalid, "hook %s: exec has an empty program name", name)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	out := &tailBuffer{max: MaxOutput}
	cmd := exec.CommandContext(tctx, argv[0], argv[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = nil // /dev/null
	cmd.Env = env
	cmd.WaitDelay = waitDelay
	setProcessGroup(cmd) // a timeout kills the hook's children too

	err := cmd.Run()
	output := out.String()
	if err == nil {
		return output, nil
	}
	if ctx.Err() != nil {
		return output, release.Errorf(release.CodeUnavailable, "hook %s (%s) cancelled: %s", name, argv[0], ctx.Err())
	}
	if tctx.Err() != nil {
		return output, release.Errorf(release.CodeUnavailable, "hook %s (%s) timed out after %s%s", name, argv[0], timeout, lastLineSuffix(output))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return output, release.Errorf(release.CodeUnavailable, "hook %s (%s) failed: %s%s", name, argv[0], ee.ProcessState, lastLineSuffix(output))
	}
	// Could not start (program not found, not executable…) or lost its pipes.
	return output, release.Errorf(release.CodeUnavailable, "hook %s: cannot run %s: %s", name, argv[0], oneLine(err.Error()))
}

// runHTTP sends one request with no body and reads at most MaxOutput bytes
// of the response as output. A status outside 2xx fails.
func (r *Runner) runHTTP(ctx context.Context, name, method string, u *url.URL, timeout time.Duration) (string, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := method + " " + httpspec.Redact(u)

	req, err := http.NewRequestWithContext(tctx, method, u.String(), nil)
	if err != nil {
		return "", release.Errorf(release.CodeInvalid, "hook %s: %s: %s", name, target, oneLine(unwrapURLError(err).Error()))
	}
	req.Header.Set("User-Agent", "relbot")
	resp, err := r.client().Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return "", release.Errorf(release.CodeUnavailable, "hook %s (%s) cancelled: %s", name, target, ctx.Err())
		case tctx.Err() != nil:
			return "", release.Errorf(release.CodeUnavailable, "hook %s (%s) timed out after %s", name, target, timeout)
		}
		return "", release.Errorf(release.CodeUnavailable, "hook %s (%s) failed: %s", name, target, oneLine(unwrapURLError(err).Error()))
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxOutput))
	output := string(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return output, release.Errorf(release.CodeUnavailable, "hook %s (%s) failed: status %s%s", name, target, resp.Status, lastLineSuffix(output))
	}
	if rerr != nil {
		if tctx.Err() != nil && ctx.Err() == nil {
			return output, release.Errorf(release.CodeUnavailable, "hook %s (%s) timed out after %s reading the response", name, target, timeout)
		}
		return output, release.Errorf(release.CodeUnavailable, "hook %s (%s): reading the response: %s", name, target, oneLine(unwrapURLError(rerr).Error()))
	}
	return output, nil
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text carries the
// full URL (query included).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// baseHookEnv is what every exec hook is given from relbot's environment:
// enough to find programs and run them in the operator's locale and zone.
var baseHookEnv = []string{"PATH", "HOME", "LANG", "TZ"}

// hookEnv is a hook's whole environment: baseHookEnv and the variables its
// definition names, each only when set. Nothing else of relbot's
// environment (other environments' database URLs, relbot's keys, Slack
// tokens) reaches it.
func hookEnv(getenv func(string) string, names []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, k := range append(append([]string{}, baseHookEnv...), names...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// lastLineSuffix is ": <last non-empty line of s>" (shortened), or "".
func lastLineSuffix(s string) string {
	l := LastLine(s)
	if l == "" {
		return ""
	}
	return ": " + l
}

// LastLine returns the last non-empty line of s, at most 300 characters.
func LastLine(s string) string {
	l := strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(l, '\n'); i >= 0 {
		l = l[i+1:]
	}
	// Only an over-long line is marked: the earlier lines are the
	// output's, not part of the message.
	if r := []rune(strings.TrimSpace(l)); len(r) > 300 {
		return release.CutTail(l, 301)
	}
	return strings.TrimSpace(l)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if n >= b.max {
		b.dropped += int64(len(b.buf) + n - b.max)
		b.buf = append(b.buf[:0], p[n-b.max:]...)
		return n, nil
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		copy(b.buf, b.buf[over:])
		b.buf = b.buf[:b.max]
		b.dropped += int64(over)
	}
	return n, nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return string(b.buf)
	}
	var s bytes.Buffer
	fmt.Fprintf(&s, "[%d earlier bytes of output dropped]\n", b.dropped)
	s.Write(b.buf)
	return s.String()
}
