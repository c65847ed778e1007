package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relbot/relbot/fixtures"
)

const benchSigningSecret = "relbot-bench-signing-secret"

// benchSlack measures how fast relbot serve acknowledges Slack: it starts
// the server on the sample app with a stand-in Slack, then a separate
// process sends signed slash commands and button clicks at a fixed rate
// and reports the ack latency.
func benchSlack(ctx context.Context, io Stdio, admin, dir string, rate, seconds int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	prefix := "relbot_bench_slack"
	sample, err := fixtures.Create(ctx, admin, prefix, dir)
	if err != nil {
		return err
	}
	defer fixtures.Drop(context.Background(), admin, prefix)
	botDSN, err := recreateDatabase(ctx, admin, prefix+"_bot")
	if err != nil {
		return err
	}
	defer dropDatabase(context.Background(), admin, prefix+"_bot")
	appsFile := filepath.Join(dir, "apps.yaml")
	if err := os.WriteFile(appsFile, []byte(fixtures.AppsYAML(sample)), 0o600); err != nil {
		return err
	}
	// The stand-in answers every Web API call the work after an ack makes,
	// and the response_url posts: nothing leaves the machine.
	stand := newStandIn()
	defer stand.Stop()

	env := map[string]string{
		"RELBOT_DATABASE_URL": botDSN, "RELBOT_APPS_FILE": appsFile, "RELBOT_ARTIFACT_DIR": filepath.Join(dir, "artifacts"),
		"RELBOT_HTTP_ADDR": "127.0.0.1:0", "RELBOT_SLACK_API_URL": stand.GetAPIURL(), "SLACK_BOT_TOKEN": "xoxb-bench",
		"SLACK_SIGNING_SECRET": benchSigningSecret, "RELBOT_LOG_LEVEL": "error",
	}
	for _, kv := range fixtures.Env(sample) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := &lineWatcher{want: listeningOn + "=", found: make(chan string, 1)}
	done := make(chan int, 1)
	go func() {
		done <- Run(serveCtx, []string{"serve"}, Stdio{In: strings.NewReader(""), Out: io.Out, Err: errs}, func(k string) string { return env[k] })
	}()
	var addr string
	select {
	case addr = <-errs.found:
	case code := <-done:
		return fmt.Errorf("relbot serve exited %d before listening", code)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("relbot serve did not start")
	}
	fmt.Fprintf(io.Out, "relbot serve on %s (sample app, stand-in Slack); load: %d requests/s for %ds from another process, half slash commands, half Approve clicks\n\n", addr, rate, seconds)
	load := exec.CommandContext(ctx, self, benchWorker, "slackload", "http://"+addr, strconv.Itoa(rate), strconv.Itoa(seconds), stand.responseURL())
	load.Stderr = io.Err
	out, err := load.Output()
	stop()
	<-done
	if err != nil {
		return fmt.Errorf("load: %v", err)
	}
	var res map[string]latency
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("load output: %v", err)
	}
	fmt.Fprintf(io.Out, "%-22s %8s %8s %8s %8s %8s\n", "endpoint", "requests", "p50", "p99", "max", "non-200")
	for _, k := range []string{"/slack/commands", "/slack/interactions"} {
		l := res[k]
		fmt.Fprintf(io.Out, "%-22s %8d %8s %8s %8s %8d\n", k, l.N, l.P50, l.P99, l.Max, l.Failed)
	}
	fmt.Fprintln(io.Out, "\ntarget: p99 under 20ms (Slack's limit is 3s)")
	return nil
}

// lineWatcher reports the address a server prints.
type lineWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan string
	sent  bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		for sc.Scan() {
			if i := strings.Index(sc.Text(), w.want); i >= 0 {
				w.sent = true
				w.found <- strings.TrimSpace(sc.Text()[i+len(w.want):])
				break
			}
		}
	}
	return len(p), nil
}

type latency struct {
	N      int    `json:"n"`
	Failed int    `json:"failed"`
	P50    string `json:"p50"`
	P99    string `json:"p99"`
	Max    string `json:"max"`
}

// slackLoad sends signed requests at rate per second for seconds, each
// one unique (Slack retries and double clicks are deduplicated), and
// prints the latency to the response per endpoint as JSON.
func slackLoad(ctx context.Context, base string, rate, seconds int, responseURL string) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	approve, err := fixtures.SlackPayload("block_actions_approve.json")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	failed := map[string]int{}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	total := rate * seconds
	for i := 0; i < total; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		path, body := "/slack/commands", url.Values{
			"team_id": {"T0001"}, "channel_id": {"C0CRMRELEASE"}, "user_id": {"U01AAA"}, "user_name": {"ana"},
			"command": {"/relbot"}, "text": {"help deploy"}, "response_url": {responseURL}, "trigger_id": {fmt.Sprintf("bench.%d", i)},
		}.Encode()
		if i%2 == 1 {
			p := strings.Replace(string(approve), `"1700000012.345678"`, fmt.Sprintf(`"1700000012.%06d"`, i), 1)
			p = strings.Replace(p, "https://hooks.slack.com/actions/T0001/1234567890/AbCdEfGhIjKlMnOp", responseURL, 1)
			if strings.Contains(p, "hooks.slack.com") {
				return fmt.Errorf("the recorded payload's response_url changed: the load would reach out of this machine")
			}
			path, body = "/slack/interactions", url.Values{"payload": {p}}.Encode()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := signedPost(ctx, client, base+path, benchSigningSecret, body)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || resp.StatusCode != http.StatusOK {
				failed[path]++
			}
			if err == nil {
				resp.Body.Close()
			}
			lat[path] = append(lat[path], d)
		}()
	}
	wg.Wait()
	out := map[string]latency{}
	for path, ds := range lat {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		q := func(p float64) string {
			return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(10 * time.Microsecond).String()
		}
		out[path] = latency{N: len(ds), Failed: failed[path], P50: q(0.50), P99: q(0.99), Max: ds[len(ds)-1].Round(10 * time.Microsecond).String()}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
