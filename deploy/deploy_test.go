// Package deploy_test holds deploy/ to what relbot and Kubernetes accept:
// the kustomize base builds, every object decodes strictly into the API's
// own types (an unknown or misplaced field fails), the pieces refer to one
// another, and the apps.yaml and settings it carries load in relbot.
package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/relbot/relbot/config"
)

type objects struct {
	deployment appsv1.Deployment
	service    corev1.Service
	pdb        policyv1.PodDisruptionBudget
	configMap  corev1.ConfigMap
	secret     corev1.Secret
	account    corev1.ServiceAccount
	namespace  corev1.Namespace
}

func build(t *testing.T) objects {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "kubernetes")
	if err != nil {
		t.Fatalf("kustomize build deploy/kubernetes: %v", err)
	}
	var o objects
	seen := map[string]bool{}
	for _, r := range res.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var into any
		switch r.GetKind() {
		case "Deployment":
			into = &o.deployment
		case "Service":
			into = &o.service
		case "PodDisruptionBudget":
			into = &o.pdb
		case "ConfigMap":
			into = &o.configMap
		case "Secret":
			into = &o.secret
		case "ServiceAccount":
			into = &o.account
		case "Namespace":
			into = &o.namespace
		default:
			t.Fatalf("unexpected %s %s", r.GetKind(), r.GetName())
		}
		if seen[r.GetKind()] {
			t.Fatalf("two of kind %s", r.GetKind())
		}
		seen[r.GetKind()] = true
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Errorf("%s %s does not decode as the API defines it: %v", r.GetKind(), r.GetName(), err)
		}
	}
	if len(seen) != 7 {
		t.Fatalf("built %d kinds, want 7: %v", len(seen), seen)
	}
	return o
}

func TestKubernetesBase(t *testing.T) {
	o := build(t)
	d := o.deployment
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	matches := func(what string, sel map[string]string) {
		t.Helper()
		if len(sel) == 0 {
			t.Errorf("%s selects every pod", what)
		}
		for k, v := range sel {
			if pod.Labels[k] != v {
				t.Errorf("%s selects %s=%s, which relbot's pods lack (%v)", what, k, v, pod.Labels)
			}
		}
	}
	matches("the deployment", d.Spec.Selector.MatchLabels)
	matches("the service", o.service.Spec.Selector)
	matches("the disruption budget", o.pdb.Spec.Selector.MatchLabels)
	if o.pdb.Spec.MinAvailable == nil || o.pdb.Spec.MinAvailable.IntValue() < 1 || o.pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("the disruption budget keeps %v of %d", o.pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}
	if pod.Spec.ServiceAccountName != o.account.Name {
		t.Errorf("pods run as %q, the account is %q", pod.Spec.ServiceAccountName, o.account.Name)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args %v, want serve", c.Args)
	}
	probe := func(what string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: %+v, want GET %s on the http port", what, p, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || o.service.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("ports %v, service targets %v", c.Ports, o.service.Spec.Ports)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v: requests and a memory limit are needed", c.Resources)
	}
	// 150 MiB is relbot's own peak (a backup into a bucket), beside pg_dump's.
	if lim := c.Resources.Limits.Memory().Value(); lim < 256<<20 {
		t.Errorf("memory limit %d bytes is below a backup's peak with pg_dump", lim)
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds <= 25 {
		t.Errorf("termination grace %v: relbot waits 25 s for its work on SIGTERM", pod.Spec.TerminationGracePeriodSeconds)
	}

	// The settings relbot serve needs load from the pod's environment, and
	// the apps.yaml it mounts parses with every ${NAME} set.
	env := map[string]string{}
	for k, v := range o.secret.StringData {
		env[k] = placeholder(k, v)
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != o.secret.Name {
		t.Errorf("the environment comes from %+v, not the secret %s", c.EnvFrom, o.secret.Name)
	}
	if _, err := config.LoadSettings(func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		config.EnvDatabaseURL, config.EnvSlackBotToken, config.EnvSlackSigningSecret, config.EnvSecretKey); err != nil {
		t.Errorf("relbot serve's settings from the pod's environment: %v", err)
	}
	mount := ""
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == o.configMap.Name {
				mount = m.MountPath
			}
		}
	}
	if mount == "" || env[config.EnvAppsFile] != mount+"/apps.yaml" {
		t.Fatalf("RELBOT_APPS_FILE %q is not the mounted config map (%q)", env[config.EnvAppsFile], mount)
	}
	text := o.configMap.Data["apps.yaml"]
	apps, err := config.ParseApps([]byte(text), func(k string) string {
		v, ok := env[k]
		if !ok && strings.Contains(text, "${"+k+"}") {
			t.Errorf("apps.yaml references ${%s}, which the secret lacks", k)
		}
		return v
	})
	if err != nil || len(apps) == 0 {
		t.Fatalf("apps.yaml: %v", err)
	}
}

// placeholder makes a secret's CHANGE-ME value one that has the shape
// relbot checks, so the test checks the keys and their use.
func placeholder(key, value string) string {
	if !strings.Contains(value, "CHANGE-ME") {
		return value
	}
	switch key {
	case config.EnvSecretKey:
		return strings.Repeat("ab", 32)
	case config.EnvBackupKey:
		return "a backup passphrase of some length"
	}
	return strings.ReplaceAll(value, "CHANGE-ME", fmt.Sprintf("x%d", len(key)))
}
