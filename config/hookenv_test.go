package config

import (
	"reflect"
	"strings"
	"testing"
)

// A hook's env lists the variables it is given; names that are not names,
// relbot's own settings and env on an http hook are refused, naming the
// field.
func TestHookEnv(t *testing.T) {
	apps, err := ParseApps([]byte(prod(`hooks:
  scale_down: {exec: [kubectl, scale], env: [KUBECONFIG, AWS_PROFILE]}
  scale_up: {exec: [kubectl, scale]}`)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	hooks := apps[0].Environments[1].Hooks
	if got := hooks["scale_down"].Env; !reflect.DeepEqual(got, []string{"KUBECONFIG", "AWS_PROFILE"}) {
		t.Fatalf("env = %v", got)
	}
	if got := hooks["scale_up"].Env; got != nil {
		t.Fatalf("no env listed: %v", got)
	}
	for _, tc := range []struct{ yaml, field, want string }{
		{`hooks: {scale_up: {exec: [up], env: [RELBOT_DATABASE_URL]}}`, "hooks.scale_up.env[0]", "RELBOT_DATABASE_URL is relbot's own setting"},
		{`hooks: {scale_up: {exec: [up], env: [KUBECONFIG, slack_bot_token]}}`, "hooks.scale_up.env[1]", "never given RELBOT_* or SLACK_*"},
		{`hooks: {scale_up: {exec: [up], env: ["A=B"]}}`, "hooks.scale_up.env[0]", `"A=B" is not a variable name`},
		{`hooks: {scale_up: {exec: [up], env: ["9LIVES"]}}`, "hooks.scale_up.env[0]", "is not a variable name"},
		{`hooks: {scale_up: {exec: [up], env: KUBECONFIG}}`, "hooks.scale_up.env", "must be a list"},
		{`hooks: {scale_up: {http: "POST https://x.example/up", env: [KUBECONFIG]}}`, "hooks.scale_up.env", "only an exec hook takes env"},
	} {
		_, err := ParseApps([]byte(prod(tc.yaml)), noEnv)
		if err == nil || !strings.Contains(err.Error(), "apps.crm.environments[1]."+tc.field) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s: %s", tc.yaml, err, tc.field, tc.want)
		}
	}
}

// A refusal never quotes a value the environment gave through ${NAME}
// (found by FuzzParseApps: a password in an unknown preset's name).
func TestRefusalDoesNotQuoteEnvironmentValues(t *testing.T) {
	env := map[string]string{"PRESET": "p4ss-from-env", "TZ_NAME": "Mars/Olympus_Mons"}
	getenv := func(k string) string { return env[k] }
	for yaml, want := range map[string]string{
		app("builtin: ${PRESET}"):    `unknown preset "${PRESET}"`,
		app("time_zone: ${TZ_NAME}"): `unknown time zone "${TZ_NAME}"`,
	} {
		_, err := ParseApps([]byte(yaml), getenv)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "p4ss") || strings.Contains(err.Error(), "Olympus") {
			t.Errorf("%v, want %s", err, want)
		}
	}
}
