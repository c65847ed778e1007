package config

import (
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/release"
)

// The restart hook takes the same forms as the other hooks, and the same
// refusals.
func TestRestartHook(t *testing.T) {
	apps, err := ParseApps([]byte(prod(`hooks:
  restart: {http: "POST https://crm.example.com/internal/restart", timeout: 10m}`)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := apps[0].Env("production")
	if h, ok := e.Hooks[release.HookRestart]; !ok || h.HTTP != "POST https://crm.example.com/internal/restart" || h.Timeout != 10*time.Minute || !e.HasRestartHook() {
		t.Fatalf("restart hook: %+v", e.Hooks)
	}
	apps, err = ParseApps([]byte(prod(`hooks: {restart: {exec: [kubectl, rollout, restart, deploy/crm]}}`)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := apps[0].Env("production"); strings.Join(e.Hooks[release.HookRestart].Exec, " ") != "kubectl rollout restart deploy/crm" {
		t.Fatalf("exec restart hook: %+v", e.Hooks)
	}
	if dev, _ := apps[0].Env("development"); dev.HasRestartHook() {
		t.Fatal("development has no restart hook")
	}
	for doc, want := range map[string]string{
		`hooks: {restart: {exec: []}}`:                                    "must list the program",
		`hooks: {restart: {http: "POST https://x.example/r", exec: [r]}}`: "has both http and exec",
		`hooks: {restrat: {exec: [true]}}`:                                "restart",
	} {
		if _, err := ParseApps([]byte(prod(doc)), noEnv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
