package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var chartDir = filepath.Join(root, "deployments", "helm", "fanline")

// render renders the chart with the Helm SDK for values (over the chart's own) as
// an install would, and returns the manifests by template.
func render(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "chat", Namespace: "im", IsInstall: true},
		common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(ch, vals)
}

// manifests is a rendering decoded strictly into the Kubernetes API types.
type manifests struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
	secrets      []corev1.Secret
	jobs         []batchv1.Job
	pdbs         []policyv1.PodDisruptionBudget
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	ingresses    []networkingv1.Ingress
	other        []string // kinds of other APIs (the ServiceMonitor)
}

// decode splits the rendered templates into documents and decodes each strictly
// (an unknown field is an error) into its kind's type.
func decode(t *testing.T, out map[string]string) manifests {
	t.Helper()
	var m manifests
	for name, text := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if head.Kind == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			strict := func(v any) {
				dec := json.NewDecoder(bytes.NewReader(js))
				dec.DisallowUnknownFields()
				if err := dec.Decode(v); err != nil {
					t.Errorf("%s: %s %s: %v", name, head.APIVersion, head.Kind, err)
				}
			}
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				add(strict, &m.deployments)
			case "apps/v1 StatefulSet":
				add(strict, &m.statefulSets)
			case "v1 Service":
				add(strict, &m.services)
			case "v1 ConfigMap":
				add(strict, &m.configMaps)
			case "v1 Secret":
				add(strict, &m.secrets)
			case "batch/v1 Job":
				add(strict, &m.jobs)
			case "policy/v1 PodDisruptionBudget":
				add(strict, &m.pdbs)
			case "autoscaling/v2 HorizontalPodAutoscaler":
				add(strict, &m.hpas)
			case "networking.k8s.io/v1 Ingress":
				add(strict, &m.ingresses)
			case "monitoring.coreos.com/v1 ServiceMonitor":
				m.other = append(m.other, head.Kind)
			default:
				t.Errorf("%s: unexpected %s %s", name, head.APIVersion, head.Kind)
			}
		}
	}
	return m
}

// add decodes one object of type T with strict and appends it to list.
func add[T any](strict func(any), list *[]T) {
	var v T
	strict(&v)
	*list = append(*list, v)
}

// TestHelmChart: the chart renders with the Helm SDK for its default values (with a
// token secret) and for the production example; every manifest decodes strictly
// into the Kubernetes API types; the workloads are what docs/operations.md
// promises; and every container's command, environment and the rendered ConfigMap
// make a configuration `serve --check-config` accepts.
func TestHelmChart(t *testing.T) {
	if _, err := render(t, nil); err == nil || !strings.Contains(err.Error(), "secrets.jwtSecret") {
		t.Errorf("rendered without a token secret: %v", err)
	}
	prod, err := os.ReadFile(filepath.Join(chartDir, "values-production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prodValues map[string]any
	if err := yaml.Unmarshal(prod, &prodValues); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"default", map[string]any{"secrets": map[string]any{"jwtSecret": testSecret, "minioSecretKey": "minio-secret"}}},
		{"production", prodValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, out)
			checkWorkloads(t, m, tc.name == "production")
			cfg := map[string]string{}
			for _, c := range m.configMaps {
				f := filepath.Join(t.TempDir(), c.Name+".yaml")
				if err := os.WriteFile(f, []byte(c.Data["fanline.yaml"]), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg[c.Name] = f
			}
			var pods []corev1.PodSpec
			for _, d := range m.deployments {
				pods = append(pods, d.Spec.Template.Spec)
			}
			for _, s := range m.statefulSets {
				pods = append(pods, s.Spec.Template.Spec)
			}
			for _, j := range m.jobs {
				pods = append(pods, j.Spec.Template.Spec)
			}
			for _, p := range pods {
				for _, c := range p.Containers {
					checkContainer(t, c, p.Volumes, cfg)
				}
			}
		})
	}
}

// checkWorkloads checks the rendered objects against what the chart promises.
func checkWorkloads(t *testing.T, m manifests, production bool) {
	t.Helper()
	if len(m.deployments) != 1 || len(m.statefulSets) != 1 || len(m.jobs) != 1 || len(m.hpas) != 1 || len(m.pdbs) != 1 {
		t.Fatalf("%d Deployments, %d StatefulSets, %d Jobs, %d HPAs, %d PDBs; want one each",
			len(m.deployments), len(m.statefulSets), len(m.jobs), len(m.hpas), len(m.pdbs))
	}
	gw, disp, job := m.deployments[0], m.statefulSets[0], m.jobs[0]
	if h := m.hpas[0].Spec.ScaleTargetRef; h.Kind != "Deployment" || h.Name != gw.Name {
		t.Errorf("the HPA scales %s %s, want the gateway Deployment %s", h.Kind, h.Name, gw.Name)
	}
	if len(disp.Spec.VolumeClaimTemplates) != 1 || *disp.Spec.Replicas != 1 {
		t.Errorf("the dispatch StatefulSet: %d volume claims, %d replicas; want its volume and one node",
			len(disp.Spec.VolumeClaimTemplates), *disp.Spec.Replicas)
	}
	if hook := job.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
		t.Errorf("the migrate Job's hook %q", hook)
	}
	for _, p := range []corev1.PodSpec{gw.Spec.Template.Spec, disp.Spec.Template.Spec} {
		if g := p.TerminationGracePeriodSeconds; g == nil || *g <= 10 {
			t.Errorf("terminationGracePeriodSeconds %v, want longer than the server's 10 s drain", g)
		}
		c := p.Containers[0]
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
			c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: liveness %+v, readiness %+v; want /healthz and /readyz", c.Name, c.LivenessProbe, c.ReadinessProbe)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v", c.Name, c.Resources)
		}
	}
	internal := false
	for _, s := range m.services {
		internal = internal || s.Spec.ClusterIP == "None"
	}
	if len(m.services) != 2 || !internal {
		t.Errorf("%d services, want the public one and the dispatch node's internal one", len(m.services))
	}
	if production {
		if len(m.ingresses) != 1 || m.ingresses[0].Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "" {
			t.Errorf("the production Ingress: %+v, want one with WebSocket timeouts", m.ingresses)
		}
		if !slices.Contains(m.other, "ServiceMonitor") {
			t.Error("no ServiceMonitor in production")
		}
		for _, s := range m.secrets {
			t.Errorf("the chart made Secret %s though the production values name an existing one", s.Name)
		}
	} else if len(m.secrets) != 2 { // the release's, and the migrate hook's copy
		t.Errorf("%d Secrets, want the release's and the migrate hook's", len(m.secrets))
	}
}

// checkContainer runs the container's command with --check-config, its environment
// (a Secret's value stands in for each secret, the pod's name for the downward API)
// and the ConfigMap it mounts.
func checkContainer(t *testing.T, c corev1.Container, vols []corev1.Volume, cfg map[string]string) {
	t.Helper()
	args := slices.Clone(c.Args)
	if len(args) == 0 {
		t.Fatalf("%s has no args", c.Name)
	}
	if args[0] == "migrate" {
		args[0] = "serve"
	}
	mounted := ""
	for _, m := range c.VolumeMounts {
		for _, v := range vols {
			if v.Name == m.Name && v.ConfigMap != nil && m.SubPath == "fanline.yaml" {
				mounted = m.MountPath
				for i, a := range args {
					if a == m.MountPath {
						args[i] = cfg[v.ConfigMap.Name]
					}
				}
			}
		}
	}
	if mounted == "" || slices.Contains(args, mounted) {
		t.Fatalf("%s: the config file %q is not its mounted ConfigMap (args %v)", c.Name, mounted, c.Args)
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "jwt-secret":
			env = append(env, e.Name+"="+testSecret)
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "minio-secret-key":
			env = append(env, e.Name+"=minio-secret")
		case e.ValueFrom.FieldRef != nil:
			env = append(env, e.Name+"=chat-fanline-gateway-7d9f-abcde")
		}
	}
	out := run(t, fanline(t), env, append(args, "--check-config")...)
	if !strings.Contains(out, "configuration ok") || !strings.Contains(out, "dev mode false") {
		t.Errorf("%s: check-config printed %q", c.Name, out)
	}
}
