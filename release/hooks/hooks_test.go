package hooks

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/httpspec"
)

func envWith(hooks map[string]release.Hook) *release.Environment {
	return &release.Environment{Name: "production", Hooks: hooks}
}

func run(t *testing.T, r *Runner, h release.Hook) (string, error) {
	t.Helper()
	out, ran, err := r.Run(context.Background(), envWith(map[string]release.Hook{"scale_down": h}), "scale_down")
	if !ran {
		t.Fatalf("hook did not run")
	}
	return out, err
}

func TestUndefinedHook(t *testing.T) {
	r := &Runner{}
	out, ran, err := r.Run(context.Background(), envWith(nil), "maintenance_on")
	if ran || err != nil || out != "" {
		t.Fatalf("got %q %v %v, want not ran", out, ran, err)
	}
}

func TestExecSuccessCapturesOutput(t *testing.T) {
	out, err := run(t, &Runner{}, release.Hook{Exec: []string{"sh", "-c", "echo to-stdout; echo to-stderr >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "to-stdout") || !strings.Contains(out, "to-stderr") {
		t.Fatalf("output %q lacks stdout and stderr", out)
	}
}

func TestExecNoShellInterpretation(t *testing.T) {
	arg := "$HOME; rm -rf / `id` $(id) | cat > x"
	out, err := run(t, &Runner{}, release.Hook{Exec: []string{"echo", arg}})
	if err != nil {
		t.Fatal(err)
	}
	if out != arg+"\n" {
		t.Fatalf("output %q, want the argument printed literally", out)
	}
}

func TestExecFailureNamesHookStatusAndLastLine(t *testing.T) {
	out, err := run(t, &Runner{}, release.Hook{Exec: []string{"sh", "-c", "echo first; echo 'deployment not found' >&2; exit 3"}})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{"scale_down", "exit status 3", "deployment not found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "first") {
		t.Errorf("error %q should carry only the last line", msg)
	}
	if !strings.Contains(out, "first") {
		t.Errorf("output %q lost on failure", out)
	}
	if release.ErrorCode(err) != release.CodeUnavailable {
		t.Errorf("code %s", release.ErrorCode(err))
	}
}

func TestExecTimeout(t *testing.T) {
	start := time.Now()
	_, err := run(t, &Runner{}, release.Hook{Exec: []string{"sleep", "5"}, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestExecTimeoutKillsChildren(t *testing.T) {
	// The shell's child keeps the output pipe open; the group kill must end it.
	start := time.Now()
	_, err := run(t, &Runner{}, release.Hook{Exec: []string{"sh", "-c", "sleep 5; echo done"}, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("took %s", d)
	}
}

func TestExecProgramNotFound(t *testing.T) {
	_, err := run(t, &Runner{}, release.Hook{Exec: []string{"relbot-no-such-program"}})
	if err == nil || !strings.Contains(err.Error(), "relbot-no-such-program") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecOutputBounded(t *testing.T) {
	// 200 KiB of output, then a final marker line.
	out, err := run(t, &Runner{}, release.Hook{Exec: []string{"sh", "-c", "head -c 204800 /dev/zero | tr '\\0' a; echo; echo THE-END"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > MaxOutput+100 {
		t.Fatalf("output is %d bytes", len(out))
	}
	if !strings.HasSuffix(out, "THE-END\n") || !strings.Contains(out, "dropped") {
		t.Fatalf("output should keep the tail and say what it dropped: %q…%q", out[:60], out[len(out)-20:])
	}
}

// An exec hook's environment is PATH, HOME, LANG, TZ and what its
// definition lists: not relbot's keys, not Slack's tokens, not the other
// environments' database URLs, nothing else relbot was started with.
func TestExecSeesOnlyWhatItsDefinitionNames(t *testing.T) {
	t.Setenv("RELBOT_SECRET_KEY", "s3cr3t-key")
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-s3cr3t")
	t.Setenv("CRM_PROD_DATABASE_URL", "postgres://app:s3cr3t-prod@db/crm")
	t.Setenv("CRM_DEV_DATABASE_URL", "postgres://app:s3cr3t-dev@db/crm_dev")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-aws")
	t.Setenv("KUBECONFIG", "/etc/kube/prod.yaml")
	t.Setenv("HOME", "/home/relbot")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "Europe/Berlin")
	out, err := run(t, &Runner{}, release.Hook{Exec: []string{"env"}, Env: []string{"KUBECONFIG", "NOT_SET_ANYWHERE", "PATH"}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(out)
	sort.Strings(got)
	want := []string{"HOME=/home/relbot", "KUBECONFIG=/etc/kube/prod.yaml", "LANG=C.UTF-8", "PATH=" + os.Getenv("PATH"), "TZ=Europe/Berlin"}
	if !slices.Equal(got, want) {
		t.Fatalf("hook environment:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without a list, only the four.
	out, err = run(t, &Runner{}, release.Hook{Exec: []string{"env"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "KUBECONFIG") || len(strings.Fields(out)) != 4 {
		t.Fatalf("hook without env: %q", out)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ij", "0123456789AB", "x"} {
		b.Write([]byte(s))
	}
	if got := string(b.buf); got != "56789ABx" {
		t.Fatalf("buf %q", got)
	}
	if b.dropped != 23-8 {
		t.Fatalf("dropped %d", b.dropped)
	}
}

func TestHTTPOK(t *testing.T) {
	var (
		mu                 sync.Mutex
		gotMethod, gotPath string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotMethod, gotPath = r.Method, r.URL.Path
		mu.Unlock()
		io.WriteString(w, "maintenance is on")
	}))
	defer srv.Close()
	for _, m := range httpspec.Methods {
		out, err := run(t, &Runner{Client: srv.Client()}, release.Hook{HTTP: m + " " + srv.URL + "/internal/maintenance/on"})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		mu.Lock()
		gm, gp := gotMethod, gotPath
		mu.Unlock()
		if gm != m || gp != "/internal/maintenance/on" {
			t.Fatalf("server saw %s %s, want %s", gm, gp, m)
		}
		if out != "maintenance is on" {
			t.Fatalf("output %q", out)
		}
	}
}

func TestHTTPFailureStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, "boom\ndatabase unreachable\n")
	}))
	defer srv.Close()
	out, err := run(t, &Runner{}, release.Hook{HTTP: "POST " + srv.URL + "/x"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"scale_down", "500", "database unreachable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(out, "boom") {
		t.Errorf("output %q", out)
	}
}

func TestHTTPTimeout(t *testing.T) {
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(unblock)
	start := time.Now()
	_, err := run(t, &Runner{}, release.Hook{HTTP: "POST " + srv.URL + "/slow", Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestHTTPBodyBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("z"), 3*MaxOutput))
	}))
	defer srv.Close()
	out, err := run(t, &Runner{}, release.Hook{HTTP: "GET " + srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != MaxOutput {
		t.Fatalf("output is %d bytes, want %d", len(out), MaxOutput)
	}
}

func TestHTTPSecretsNotLoggedOrReported(t *testing.T) {
	var logBuf bytes.Buffer
	r := &Runner{Log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	// Nothing listens on port 1: the request fails and the error is reported.
	_, err := run(t, r, release.Hook{HTTP: "POST http://admin:hunter2@127.0.0.1:1/hook?token=tok-s3cr3t"})
	if err == nil {
		t.Fatal("want an error")
	}
	all := err.Error() + logBuf.String()
	for _, secret := range []string{"hunter2", "tok-s3cr3t", "admin"} {
		if strings.Contains(all, secret) {
			t.Fatalf("%q leaked: %s", secret, all)
		}
	}
	if !strings.Contains(all, "127.0.0.1:1/hook") {
		t.Fatalf("the target should still be named: %s", all)
	}
}

func TestHTTPHookSpec(t *testing.T) {
	r := &Runner{}
	_, err := run(t, r, release.Hook{HTTP: "FETCH https://x"})
	if release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("err = %v", err)
	}
	_, err = run(t, r, release.Hook{})
	if release.ErrorCode(err) != release.CodeInvalid {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, ran, err := (&Runner{}).Run(ctx, envWith(map[string]release.Hook{"scale_up": {Exec: []string{"sleep", "5"}}}), "scale_up")
	if !ran || err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("ran=%v err=%v", ran, err)
	}
}
