package server

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

var updateDeploy = flag.Bool("update-deploy", false, "rewrite deploy/k8s/hash-shards.yaml and merge-shards.yaml from RenderKube")

const deployHeader = `# Sharded hashing as a Kubernetes Indexed Job (README, "Indexes one machine
# cannot scan in time: shards"): hash-shards.yaml runs 4 pods, pod i runs
#   ragparity hash --shard i/4 --json > /shards/shard-i.json
# on a shared volume; merge-shards.yaml then combines them into the whole
# run's INDEX_HASH. The config comes from the ConfigMap ragparity-config
# (kubectl create configmap ragparity-config --from-file=ragparity.yaml);
# the Secret "ragparity" holds what its ${...} references need. The merge
# must start after every shard is done:
#   kubectl apply -f deploy/k8s/hash-shards.yaml
#   kubectl wait --for=condition=complete --timeout=6h job/ragparity-hash
#   kubectl apply -f deploy/k8s/merge-shards.yaml
#   kubectl wait --for=condition=complete job/ragparity-merge && kubectl logs job/ragparity-merge
# Generated from the template of 'ragparity serve --print-k8s'
# (gate/server/kube.go); TestDeployShardManifests keeps them equal:
#   go test ./gate/server -run TestDeployShardManifests -update-deploy
`

// deployShards is what deploy/k8s/hash-shards.yaml (the shards claim and
// the Indexed hash Job) and merge-shards.yaml (the merge Job) must hold:
// those documents of RenderKube.
func deployShards(t *testing.T) (hash, merge string) {
	out, err := RenderKube(KubeConfig{Image: "ragparity:latest", Port: "8080", Host: "ragparity.default.svc"})
	if err != nil {
		t.Fatal(err)
	}
	var claim, job, mjob string
	for _, d := range strings.Split(out, "\n---\n") {
		d = strings.TrimRight(d, "\n")
		switch {
		case strings.Contains(d, "name: ragparity-hash\n"):
			job = d
		case strings.Contains(d, "name: ragparity-merge\n"):
			mjob = d
		case strings.Contains(d, "name: ragparity-shards\n") && strings.Contains(d, "kind: PersistentVolumeClaim"):
			claim = d
		}
	}
	if claim == "" || job == "" || mjob == "" {
		t.Fatalf("RenderKube lacks the hash job, the merge job or the shards claim")
	}
	return deployHeader + "---\n" + claim + "\n---\n" + job + "\n", deployHeader + "---\n" + mjob + "\n"
}

// TestDeployShardManifests: deploy/k8s/hash-shards.yaml decodes strictly
// with the Kubernetes API types, runs every shard i of N once as an
// Indexed Job writing where the merge reads, and is what RenderKube prints.
func TestDeployShardManifests(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "k8s")
	wantHash, wantMerge := deployShards(t)
	var all []string
	for name, want := range map[string]string{"hash-shards.yaml": wantHash, "merge-shards.yaml": wantMerge} {
		path := filepath.Join(dir, name)
		if *updateDeploy {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s differs from RenderKube's shard jobs: regenerate with -update-deploy", path)
		}
		all = append(all, strings.Split(string(b), "\n---\n")[1:]...)
	}
	var hash, merge *batchv1.Job
	var claim *corev1.PersistentVolumeClaim
	for i, d := range all {
		obj, err := decodeKube(d)
		if err != nil {
			t.Fatalf("document %d does not decode strictly: %v\n%s", i+1, err, d)
		}
		switch o := obj.(type) {
		case *batchv1.Job:
			if o.Name == "ragparity-hash" {
				hash = o
			} else {
				merge = o
			}
		case *corev1.PersistentVolumeClaim:
			claim = o
		}
	}
	if hash == nil || merge == nil || claim == nil {
		t.Fatalf("want the hash job, the merge job and a claim; got %v %v %v", hash != nil, merge != nil, claim != nil)
	}
	n := *hash.Spec.Completions
	if *hash.Spec.CompletionMode != batchv1.IndexedCompletion || *hash.Spec.Parallelism != n {
		t.Errorf("hash job: completion mode %v, parallelism %d, completions %d: want Indexed, all at once", *hash.Spec.CompletionMode, *hash.Spec.Parallelism, n)
	}
	args := strings.Join(hash.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, `--shard "$(JOB_COMPLETION_INDEX)/`+strconv.Itoa(int(n))+`"`) || !strings.Contains(args, `> "/shards/shard-$(JOB_COMPLETION_INDEX).json"`) {
		t.Errorf("hash job args %q: want --shard $(JOB_COMPLETION_INDEX)/%d writing /shards/shard-i.json", args, n)
	}
	margs := strings.Join(merge.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(margs, "ragparity merge") || !strings.Contains(margs, "/shards/shard-*.json") {
		t.Errorf("merge job args %q", margs)
	}
	for _, j := range []*batchv1.Job{hash, merge} {
		found := false
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name {
				found = true
			}
		}
		if !found {
			t.Errorf("job %s does not mount claim %s", j.Name, claim.Name)
		}
	}
}
