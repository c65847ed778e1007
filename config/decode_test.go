package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// A mapping's own keys win over merged ones wherever << is written, and
// aliases work inside lists and for whole environments.
func TestMergeKeysAndAliases(t *testing.T) {
	doc := `apps:
  crm:
    environments:
      - &dev {name: development, database: 'dbname=dev'}
      - name: staging
        database: dbname=staging
        hooks:
          scale_up: &up {exec: [up, &ctx "--context=k8s"], timeout: 1m}
      - name: production
        database: dbname=prod
        hooks:
          scale_up: {timeout: 2m, <<: *up}
          scale_down: {exec: [down, *ctx]}
  tickets:
    environments:
      - *dev
      - {<<: *dev, name: production}
`
	apps, err := ParseApps([]byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := apps[0].Environments[2].Hooks
	if h["scale_up"].Timeout != 2*time.Minute || !reflect.DeepEqual(h["scale_up"].Exec, []string{"up", "--context=k8s"}) {
		t.Errorf("own key after << lost: %+v", h["scale_up"])
	}
	if !reflect.DeepEqual(h["scale_down"].Exec, []string{"down", "--context=k8s"}) {
		t.Errorf("alias in a list: %+v", h["scale_down"])
	}
	tk := apps[1].Environments
	if tk[0].Name != "development" || tk[1].Name != "production" || tk[1].Database != "dbname=dev" {
		t.Errorf("aliased environments: %+v %+v", tk[0], tk[1])
	}
}

// The YAML library reports some unknown key of a mapping; the error is
// always the first one the file writes, with its own line.
func TestUnknownKeyIsTheFirst(t *testing.T) {
	doc := prod("zeta: 1\ndatabse: x\nalpha: 2\nbeta: 3")
	for range 20 {
		_, err := ParseApps([]byte(doc), noEnv)
		var ce *Error
		if !errors.As(err, &ce) || ce.Field != "apps.crm.environments[1].zeta" || ce.Line != 9 || ce.Problem != "unknown key (known keys: name, database, storage, storage_exclude, approvals, checks, freeze, notice, backup, hooks, roles, nocobase)" {
			t.Fatalf("err = %v (%+v)", err, ce)
		}
	}
}

// Errors of the decoding library are put in the same form as the
// validator's: line, field, and what the value must be.
func TestDecodeErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{app("channel: C2"), "line 9: apps.crm.channel: duplicate key"},
		{"apps:\n  crm:\n    environments: development\n", "line 3: apps.crm.environments: must be a list, not a string"},
		{prod("approvals:\n  - 1"), "line 9: apps.crm.environments[1].approvals: must be a mapping of keys to values, not a list"},
		{prod("hooks:\n  scale_up:"), "line 10: apps.crm.environments[1].hooks.scale_up: must be a mapping of keys to values, not empty"},
		{prod("checks:\n  - name: x\n    sql:\n      a: 1"), "line 11: apps.crm.environments[1].checks[0].sql: must be a string, not a mapping"},
		{prod("hooks: {scale_up: {exec: [up], tiemout: 1m}}"), `line 9: apps.crm.environments[1].hooks.scale_up.tiemout: unknown key (did you mean "timeout"?)`},
		{"apps:\n  crm:\n", "line 2: apps.crm: must be a mapping of keys to values, not empty"},
	} {
		_, err := ParseApps([]byte(tc.yaml), noEnv)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
}
