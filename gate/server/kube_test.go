package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/ragparity/ragparity/gate"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// decodeKube decodes one YAML document strictly into the Kubernetes API
// type of its kind: an unknown (misspelt) field is an error.
func decodeKube(doc string) (any, error) {
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		return nil, err
	}
	var head struct{ APIVersion, Kind string }
	json.Unmarshal(js, &head)
	var obj any
	switch head.APIVersion + "/" + head.Kind {
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "batch/v1/CronJob":
		obj = &batchv1.CronJob{}
	case "batch/v1/Job":
		obj = &batchv1.Job{}
	case "v1/PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	default:
		return nil, fmt.Errorf("unexpected kind %s %s", head.APIVersion, head.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func TestRenderKube(t *testing.T) {
	out, err := RenderKube(KubeConfig{Image: "registry.example/ragparity:v1", Port: "8080", Host: "10.96.0.80", Regions: []string{"eu-west-1", "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 9 {
		t.Fatalf("%d documents, want 9 (deployment, service, cronjob, hash and merge jobs, two claims, one patch per region)", len(docs))
	}
	var probes []string
	for i, d := range docs {
		obj, err := decodeKube(d)
		if err != nil {
			t.Fatalf("document %d does not decode strictly: %v\n%s", i, err, d)
		}
		switch o := obj.(type) {
		case *batchv1.Job:
			if o.Name == "ragparity-hash" && (*o.Spec.CompletionMode != batchv1.IndexedCompletion || *o.Spec.Completions != 4 ||
				!strings.Contains(o.Spec.Template.Spec.Containers[0].Args[0], `--shard "$(JOB_COMPLETION_INDEX)/4"`)) {
				t.Errorf("hash job: %+v", o.Spec)
			}
		case *batchv1.CronJob:
			if args := o.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args; args[0] != "verify" || !strings.Contains(strings.Join(args, " "), "--report") {
				t.Errorf("cronjob args %v", args)
			}
		}
		dep, ok := obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		c := dep.Spec.Template.Spec.Containers[0]
		if dep.Name == "ragparity" {
			if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("serve probes: readiness %+v liveness %+v", c.ReadinessProbe, c.LivenessProbe)
			}
			if c.Env[0].ValueFrom.SecretKeyRef.Name != "ragparity" || c.Env[1].Name != "RAGPARITY_SIGNING_KEY" {
				t.Errorf("secrets: %+v", c.Env)
			}
			continue
		}
		g := c.ReadinessProbe.HTTPGet
		probes = append(probes, fmt.Sprintf("%s %s:%s%s", dep.Name, g.Host, g.Port.String(), g.Path))
	}
	if got, want := strings.Join(probes, ", "), "search-eu-west-1 10.96.0.80:8080/v1/regions/eu-west-1/ready, search-us-east-1 10.96.0.80:8080/v1/regions/us-east-1/ready"; got != want {
		t.Errorf("region probes = %s, want %s", got, want)
	}
	t.Run("ATypoIsRefused", func(t *testing.T) {
		if _, err := decodeKube(strings.Replace(docs[0], "readinessProbe:", "readinesProbe:", 1)); err == nil {
			t.Fatal("a misspelt field decoded: the strict decoding proves nothing")
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		for _, c := range []KubeConfig{
			{Image: "i", Port: "80", Host: "h", Regions: []string{"EU_West"}},
			{Image: "i", Port: "http", Host: "h"},
			{Image: "", Port: "80", Host: "h"},
		} {
			if _, err := RenderKube(c); err == nil {
				t.Errorf("RenderKube(%+v) accepted", c)
			}
		}
	})
}

// argoMetric is the part of an Argo Rollouts AnalysisTemplate metric the
// template uses; strict decoding refuses anything else.
type argoMetric struct {
	Name              string `yaml:"name"`
	Count             int    `yaml:"count"`
	Interval          string `yaml:"interval"`
	FailureLimit      int    `yaml:"failureLimit"`
	InconclusiveLimit int    `yaml:"inconclusiveLimit"`
	SuccessCondition  string `yaml:"successCondition"`
	FailureCondition  string `yaml:"failureCondition"`
	Provider          struct {
		Web struct {
			URL            string `yaml:"url"`
			TimeoutSeconds int    `yaml:"timeoutSeconds"`
			JSONPath       string `yaml:"jsonPath"`
		} `yaml:"web"`
	} `yaml:"provider"`
}

type argoTemplateDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Args []struct {
			Name string `yaml:"name"`
		} `yaml:"args"`
		Metrics []argoMetric `yaml:"metrics"`
	} `yaml:"spec"`
}

// evalJSONPath evaluates the subset of Kubernetes JSONPath the template
// uses: {$.field.field...} on a JSON object, to the value as Argo passes
// it to conditions (a string stays a string).
func evalJSONPath(t *testing.T, path string, doc []byte) any {
	t.Helper()
	if !strings.HasPrefix(path, "{$.") || !strings.HasSuffix(path, "}") {
		t.Fatalf("jsonPath %q is outside the subset tested ({$.a.b})", path)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(path[3:len(path)-1], ".") {
		m, ok := v.(map[string]any)
		if !ok || f == "" || strings.ContainsAny(f, "[]()?@*") {
			t.Fatalf("jsonPath %q: %q is outside the subset tested", path, f)
		}
		if v, ok = m[f]; !ok {
			t.Fatalf("jsonPath %q: no field %q in the verdict", path, f)
		}
	}
	return v
}

// evalCondition evaluates the subset of Argo's (expr) conditions the
// template uses: result == "lit" / result != "lit", joined by || or &&
// (not both).
func evalCondition(t *testing.T, cond string, result any) bool {
	t.Helper()
	or := strings.Contains(cond, "||")
	if or && strings.Contains(cond, "&&") {
		t.Fatalf("condition %q mixes || and &&", cond)
	}
	sep := "&&"
	if or {
		sep = "||"
	}
	acc := !or
	for _, term := range strings.Split(cond, sep) {
		lhs, lit, op := "", "", ""
		for _, o := range []string{"==", "!="} {
			if l, r, ok := strings.Cut(term, o); ok {
				lhs, lit, op = strings.TrimSpace(l), strings.TrimSpace(r), o
				break
			}
		}
		if lhs != "result" || len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
			t.Fatalf("condition %q: term %q is outside the subset tested", cond, term)
		}
		s, ok := result.(string)
		v := ok && s == lit[1:len(lit)-1]
		if op == "!=" {
			v = !v
		}
		if or {
			acc = acc || v
		} else {
			acc = acc && v
		}
	}
	return acc
}

// argoPhase is Argo Rollouts' rule for a measurement with both
// conditions set: failure first, then success, else inconclusive.
func argoPhase(t *testing.T, m argoMetric, result any) string {
	t.Helper()
	if m.SuccessCondition == "" || m.FailureCondition == "" {
		t.Fatalf("metric %s: both successCondition and failureCondition must be set (else Argo never answers Inconclusive)", m.Name)
	}
	switch {
	case evalCondition(t, m.FailureCondition, result):
		return "Failed"
	case evalCondition(t, m.SuccessCondition, result):
		return "Successful"
	}
	return "Inconclusive"
}

// TestRenderArgo evaluates the AnalysisTemplate's jsonPath and conditions
// on the verdict JSON that GET /v1/verdicts/latest really serves.
func TestRenderArgo(t *testing.T) {
	out, err := RenderArgo(KubeConfig{URL: "http://ragparity.gate.svc:8080"})
	if err != nil {
		t.Fatal(err)
	}
	var doc argoTemplateDoc
	if err := yaml.UnmarshalWithOptions([]byte(out), &doc, yaml.Strict()); err != nil {
		t.Fatalf("AnalysisTemplate: %v\n%s", err, out)
	}
	if doc.APIVersion != "argoproj.io/v1alpha1" || doc.Kind != "AnalysisTemplate" || len(doc.Spec.Metrics) != 2 || doc.Spec.Args[0].Name != "release" {
		t.Fatalf("template: %+v", doc)
	}
	served := func(t *testing.T, release string, d gate.Status) []byte {
		s := newTestServer(t, ServerOptions{})
		v := testVerdict("v-"+string(d), time.Now(), region("a"), region("b"))
		v.Release, v.Decision = release, d
		s.Install(v, "local")
		rec := do(t, s.Handler(), "GET", "/v1/verdicts/latest", nil, nil)
		if rec.Code != 200 {
			t.Fatalf("/v1/verdicts/latest: %d", rec.Code)
		}
		return rec.Body.Bytes()
	}
	for _, tc := range []struct {
		release               string
		decision              gate.Status
		wantRelease, wantDeci string
	}{
		{"r2", gate.Pass, "Successful", "Successful"},
		{"r2", gate.Fail, "Successful", "Failed"},
		{"r2", gate.Degraded, "Successful", "Inconclusive"},
		{"r2", gate.Inconclusive, "Successful", "Inconclusive"},
		{"r1", gate.Pass, "Failed", "Successful"},
	} {
		t.Run(tc.release+"/"+string(tc.decision), func(t *testing.T) {
			body := served(t, tc.release, tc.decision)
			for _, m := range doc.Spec.Metrics {
				if !strings.HasSuffix(m.Provider.Web.URL, "/v1/verdicts/latest") {
					t.Errorf("metric %s url %q", m.Name, m.Provider.Web.URL)
				}
				m.SuccessCondition = strings.ReplaceAll(m.SuccessCondition, "{{args.release}}", "r2")
				m.FailureCondition = strings.ReplaceAll(m.FailureCondition, "{{args.release}}", "r2")
				got := argoPhase(t, m, evalJSONPath(t, m.Provider.Web.JSONPath, body))
				want := map[string]string{"ragparity-release": tc.wantRelease, "ragparity-decision": tc.wantDeci}[m.Name]
				if got != want {
					t.Errorf("metric %s on release %s, decision %s: %s, want %s", m.Name, tc.release, tc.decision, got, want)
				}
			}
		})
	}
	if _, err := RenderArgo(KubeConfig{URL: "ragparity:8080"}); err == nil {
		t.Error("a URL without a scheme was accepted")
	}
}
