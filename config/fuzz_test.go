package config

import (
	"os"
	"strings"
	"testing"
)

// apps.yaml is parsed without panicking whatever it holds, and a refusal
// is one line that never repeats a password from the file. Seeds are the
// sample app's, the documented example and the tests' own.
func FuzzParseApps(f *testing.F) {
	for _, name := range []string{"../fixtures/apps.yaml", "../deploy/apps.example.yaml", "testdata/apps.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Add([]byte(prod("hooks: {scale_up: {exec: [up], env: [KUBECONFIG]}}")))
	// Anchors, aliases and merge keys, which the YAML library resolves.
	f.Add([]byte(base + indent("hooks: &h\n  scale_up: &up {exec: [up, &c x], timeout: 1m}\n  scale_down: {<<: *up, exec: [*c]}\nroles: {deploy: [U1], lock: *h}", "        ")))
	getenv := func(k string) string {
		if strings.HasPrefix(k, "RELBOT_") {
			return ""
		}
		return "postgres://relbot:" + secretPW + "@localhost/" + strings.ToLower(k)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		apps, err := ParseApps(b, getenv)
		if err == nil {
			for _, a := range apps {
				if a == nil || a.Name == "" {
					t.Fatalf("accepted an app without a name: %+v", apps)
				}
			}
			return
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("refusal spans lines: %q", msg)
		}
		if strings.Contains(msg, secretPW) && !strings.Contains(string(b), secretPW) {
			t.Fatalf("refusal shows a password from the environment: %q", msg)
		}
	})
}
