package server

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// kubeTemplate is printed by serve --print-k8s: ragparity serve as a
// Deployment and Service, the nightly verify as a CronJob, sharded hashing
// as an Indexed Job and its merge, and for each region a patch giving its
// search pods a readiness probe on ragparity's /v1/regions/NAME/ready.
// TestRenderKube decodes every document strictly with the Kubernetes API
// types.
var kubeTemplate = template.Must(template.New("k8s").Parse(`# ragparity serve in Kubernetes, and each region's readiness on ragparity.
# The config comes from a ConfigMap made from your file:
#   kubectl create configmap ragparity-config --from-file=ragparity.yaml
# with gate.token: ${RAGPARITY_TOKEN} and gate.signing_key:
# env:RAGPARITY_SIGNING_KEY, both read from the Secret "ragparity":
#   kubectl create secret generic ragparity --from-literal=token=... \
#     --from-file=signing-key=ragparity-signing.pem
# Replicas share verdicts through gate.store (postgres://...).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ragparity
  labels: {app.kubernetes.io/name: ragparity}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: ragparity}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ragparity}
    spec:
      containers:
      - name: ragparity
        image: {{.Image}}
        args: ["serve", "--config", "/etc/ragparity/ragparity.yaml", "--addr", "0.0.0.0:{{.Port}}", "--json"]
        ports:
        - {name: http, containerPort: {{.Port}}}
        env:
        - name: RAGPARITY_TOKEN
          valueFrom: {secretKeyRef: {name: ragparity, key: token}}
        - name: RAGPARITY_SIGNING_KEY
          valueFrom: {secretKeyRef: {name: ragparity, key: signing-key}}
        # Ready once a verdict is held (also a failed or expired one: the
        # server answers, refusing); live while the process answers.
        readinessProbe:
          httpGet: {path: /readyz, port: http}
          periodSeconds: 5
        livenessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 10
          failureThreshold: 3
        volumeMounts:
        - {name: config, mountPath: /etc/ragparity, readOnly: true}
      volumes:
      - name: config
        configMap: {name: ragparity-config}
---
apiVersion: v1
kind: Service
metadata:
  name: ragparity
spec:
  selector: {app.kubernetes.io/name: ragparity}
  ports:
  - {name: http, port: {{.Port}}, targetPort: http}
---
# Nightly verification: exit 1 (a region failed) or 2 (undecided) fails the
# Job, which is what alerting on failed Jobs wants; the report goes to the
# volume "ragparity-reports".
apiVersion: batch/v1
kind: CronJob
metadata:
  name: ragparity-verify
spec:
  schedule: "17 2 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: verify
            image: {{.Image}}
            args: ["verify", "--config", "/etc/ragparity/ragparity.yaml", "--report", "/reports/verify.html", "--json"]
            env:
            - name: RAGPARITY_TOKEN
              valueFrom: {secretKeyRef: {name: ragparity, key: token}}
            - name: RAGPARITY_SIGNING_KEY
              valueFrom: {secretKeyRef: {name: ragparity, key: signing-key}}
            volumeMounts:
            - {name: config, mountPath: /etc/ragparity, readOnly: true}
            - {name: reports, mountPath: /reports}
          volumes:
          - name: config
            configMap: {name: ragparity-config}
          - name: reports
            persistentVolumeClaim: {claimName: ragparity-reports}
---
# Sharded hashing of an index one pod cannot scan in time: {{.Shards}} pods,
# pod i runs 'hash --shard i/{{.Shards}}' and writes its JSON to the shared
# volume (exit 1, regions differ, is an answer, not a failure: the image
# needs /bin/sh for that). Then run ragparity-merge below (kubectl wait
# --for=condition=complete job/ragparity-hash first).
apiVersion: batch/v1
kind: Job
metadata:
  name: ragparity-hash
spec:
  completionMode: Indexed
  completions: {{.Shards}}
  parallelism: {{.Shards}}
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: hash
        image: {{.Image}}
        command: ["/bin/sh", "-c"]
        env:
        # The config's ${...} references must be set wherever it is loaded.
        - name: RAGPARITY_TOKEN
          valueFrom: {secretKeyRef: {name: ragparity, key: token}}
        - name: RAGPARITY_SIGNING_KEY
          valueFrom: {secretKeyRef: {name: ragparity, key: signing-key}}
        args:
        - ragparity hash --config /etc/ragparity/ragparity.yaml --shard "$(JOB_COMPLETION_INDEX)/{{.Shards}}" --json > "/shards/shard-$(JOB_COMPLETION_INDEX).json"; rc=$?; [ "$rc" -le 1 ]
        volumeMounts:
        - {name: config, mountPath: /etc/ragparity, readOnly: true}
        - {name: shards, mountPath: /shards}
      volumes:
      - name: config
        configMap: {name: ragparity-config}
      - name: shards
        persistentVolumeClaim: {claimName: ragparity-shards}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: ragparity-merge
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: merge
        image: {{.Image}}
        command: ["/bin/sh", "-c"]
        args: ["ragparity merge --json /shards/shard-*.json"]
        volumeMounts:
        - {name: shards, mountPath: /shards, readOnly: true}
      volumes:
      - name: shards
        persistentVolumeClaim: {claimName: ragparity-shards}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ragparity-shards
spec:
  accessModes: [ReadWriteMany]
  resources:
    requests: {storage: 1Gi}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ragparity-reports
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 1Gi}
{{range .Regions}}---
# Region {{.Name}}: patch its search Deployment (kubectl patch deployment
# search-{{.Name}} --patch-file ...; rename the container to yours). Its
# pods are Ready only while ragparity admits the region: 503 (blocked,
# verdict expired) or ragparity unreachable takes them out of their
# Service's endpoints after failureThreshold checks. The kubelet makes the
# probe from the node, which resolves names with the node's DNS: set host
# to the ragparity Service's cluster IP (or a name the nodes resolve).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: search-{{.Name}}
spec:
  template:
    spec:
      containers:
      - name: search
        readinessProbe:
          httpGet: {host: {{$.Host}}, port: {{$.Port}}, path: /v1/regions/{{.Name}}/ready}
          periodSeconds: 5
          timeoutSeconds: 2
          failureThreshold: 2
          successThreshold: 1
{{end}}`))

// argoTemplate is printed by serve --print-argo: an Argo Rollouts
// AnalysisTemplate whose web metrics read /v1/verdicts/latest.
var argoTemplate = template.Must(template.New("argo").Parse(`# Argo Rollouts analysis on ragparity's verdict (web metric provider).
# Each metric sets both successCondition and failureCondition: a result
# that meets neither leaves the measurement Inconclusive and the rollout
# paused for a person (with only one of them set, Argo takes the other as
# its negation and an inconclusive verdict would fail or pass it; Argo
# Rollouts issue 3850).
#   release:  the verdict is about args.release, else Failed (ragparity
#             is verifying another release than the one rolled out).
#   decision: pass -> Successful, fail -> Failed, degraded (some regions
#             blocked) and inconclusive -> Inconclusive.
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: ragparity-verdict
spec:
  args:
  - name: release
  metrics:
  - name: ragparity-release
    count: 1
    successCondition: result == "{{"{{"}}args.release{{"}}"}}"
    failureCondition: result != "{{"{{"}}args.release{{"}}"}}"
    provider:
      web:
        url: {{.URL}}/v1/verdicts/latest
        timeoutSeconds: 5
        jsonPath: "{$.release}"
  - name: ragparity-decision
    interval: 1m
    count: 5
    failureLimit: 0
    inconclusiveLimit: 1
    successCondition: result == "pass"
    failureCondition: result == "fail"
    provider:
      web:
        url: {{.URL}}/v1/verdicts/latest
        timeoutSeconds: 5
        jsonPath: "{$.decision}"
`))

// KubeConfig fills kubeTemplate and argoTemplate.
type KubeConfig struct {
	Image   string // ragparity's container image
	Port    string // ragparity's port in the cluster
	Host    string // what the kubelet reaches ragparity at (readiness probes)
	Shards  int    // pods of the sharded hash Job (default 4)
	URL     string // ragparity's base URL from Argo's controller
	Regions []string
}

type kubeRegion struct{ Name string }

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?$`)

// RenderKube renders the Kubernetes manifests of c.
func RenderKube(c KubeConfig) (string, error) {
	if c.Image == "" || c.Host == "" || strings.ContainsAny(c.Image+c.Host, " \n\"{}") {
		return "", fmt.Errorf("k8s: image %q and probe host %q must be set, without spaces, quotes or braces", c.Image, c.Host)
	}
	if c.Port == "" || len(c.Port) > 5 || strings.Trim(c.Port, "0123456789") != "" {
		return "", fmt.Errorf("k8s: port %q: want a number", c.Port)
	}
	if c.Shards <= 0 {
		c.Shards = 4
	}
	var rs []kubeRegion
	for _, r := range c.Regions {
		// A DNS-1123 label: the region names a Deployment.
		if !dns1123.MatchString(r) {
			return "", fmt.Errorf("k8s: region name %q cannot name a Deployment (lower-case letters, digits, '-')", r)
		}
		rs = append(rs, kubeRegion{r})
	}
	var b strings.Builder
	err := kubeTemplate.Execute(&b, struct {
		KubeConfig
		Regions []kubeRegion
	}{c, rs})
	return b.String(), err
}

// RenderArgo renders the Argo Rollouts AnalysisTemplate of c.
func RenderArgo(c KubeConfig) (string, error) {
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") || strings.ContainsAny(c.URL, " \n\"{}") {
		return "", fmt.Errorf("argo: ragparity URL %q: want http(s)://host:port", c.URL)
	}
	var b strings.Builder
	err := argoTemplate.Execute(&b, c)
	return b.String(), err
}
