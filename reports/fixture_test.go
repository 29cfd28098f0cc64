package reports

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
)

// fixtureKey signs the fixtures: a fixed seed, so signatures (Ed25519 is
// deterministic) are stable in the goldens.
var fixtureKey = ed25519.NewKeyFromSeed([]byte("ragparity-reports-fixture-key-32"))

var fixtureTime = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// failingModel is a verdict in which region ap fails index_hash, blobs
// and probes, with every kind of detail: 12 questions × 3 regions × 2
// seeds, a Merkle bucket map and a blob diff.
func failingModel(t testing.TB) *Model {
	t.Helper()
	v := &gate.Verdict{
		ID:        "v20250314T092653.589Z-5eed0001",
		Release:   "2025.03.1",
		CreatedAt: fixtureTime,
		ExpiresAt: fixtureTime.Add(6 * time.Hour),
		Decision:  gate.Degraded,
		Reference: "majority: every region is compared with the largest group of regions that agree, when it is a strict majority of the configured regions (or gate.primary)",
		Regions: []gate.RegionVerdict{
			{Name: "eu", Status: gate.Pass, Admit: true, IndexHash: "3f2a9c0d41be77a05c1e3b9d8f60a2c4e51d9b0f7a6e3c2d1b0a998877665544", ManifestHash: "aa01bb02cc03dd04ee05ff0600112233445566778899aabbccddeeff00112233", SchemaRev: "s42", ModelTag: "bge-small-en-v1.5", SecretsRev: "k7"},
			{Name: "us", Status: gate.Pass, Admit: true, IndexHash: "3f2a9c0d41be77a05c1e3b9d8f60a2c4e51d9b0f7a6e3c2d1b0a998877665544", ManifestHash: "aa01bb02cc03dd04ee05ff0600112233445566778899aabbccddeeff00112233", SchemaRev: "s42", ModelTag: "bge-small-en-v1.5", SecretsRev: "k7"},
			{Name: "ap", Status: gate.Fail, Admit: false, IndexHash: "9b7c11e0f3d2a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f901234567", ManifestHash: "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff", SchemaRev: "s42", ModelTag: "bge-small-en-v1.5", SecretsRev: "k7",
				Reasons: []string{"failed index_hash: INDEX_HASH 9b7c11e0f3d2, the reference is 3f2a9c0d41be: 1 missing, 1 extra, 2 changed ids against eu",
					"failed blobs: manifest 0f1e2d3c4b5a, the reference is aa01bb02cc03: 1 missing, 0 extra, 1 changed keys against eu",
					"failed probes: drift 0.0410 > 0.03 against eu"}},
		},
		Checks: []gate.Check{
			{Name: gate.CheckIndexHash, Status: gate.Fail, Figure: "2 of 3 regions agree (INDEX_HASH 3f2a9c0d41be)", Threshold: "every region's INDEX_HASH equal",
				Evidence: []string{
					"ap: id doc-00042 differs in text",
					"ap: id doc-00107 missing (present in eu)",
					"ap: id doc-00311 differs in vector, payload",
					"ap: id doc-01024 extra (absent from eu)",
				}, FailedRegions: []string{"ap"}, Regions: checkRegions("ap", gate.Fail, "INDEX_HASH 9b7c11e0f3d2, the reference is 3f2a9c0d41be"), ElapsedMS: 1843},
			{Name: gate.CheckBlobs, Status: gate.Fail, Figure: "2 of 3 regions agree (manifest aa01bb02cc03)", Threshold: "every region's blob manifest equal",
				Evidence:      []string{"ap: docs/2024/handbook.pdf missing (present in eu)", "ap: docs/faq.md differs: sha256 (size 1204 vs 1210)"},
				FailedRegions: []string{"ap"}, Regions: checkRegions("ap", gate.Fail, "manifest 0f1e2d3c4b5a, the reference is aa01bb02cc03"), ElapsedMS: 912},
			{Name: gate.CheckHealth, Status: gate.Pass, Figure: "3 of 3 regions healthy", Threshold: "every region answers {schema_rev, model_tag, secrets_rev, index_hash}, all agree, index_hash = computed",
				Evidence: []string{}, Regions: checkRegions("", gate.Pass, ""), ElapsedMS: 41},
			{Name: gate.CheckProbes, Status: gate.Fail, Figure: "max ΔS drift 0.041 on 12 questions (q-07 over)", Threshold: "max drift <= 0.03 on >= 10 questions; λ convergent on 2 seeds",
				Evidence: []string{"ap: q-07 drift 0.041 > 0.03 (ΔS 0.352 vs 0.311 in eu)", "ap: q-11 λ recursive on seed 2"}, FailedRegions: []string{"ap"}, Regions: checkRegions("ap", gate.Fail, "drift 0.0410 > 0.03 against eu"), ElapsedMS: 5120},
			{Name: gate.CheckDedupeKV, Status: gate.Skipped, Figure: "skipped by gate.skip", Evidence: []string{}},
		},
		InputsDigest: "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc",
	}
	if err := v.Sign(fixtureKey); err != nil {
		t.Fatal(err)
	}
	regions := []string{"eu", "us", "ap"}
	pd := &ProbeDetail{DriftThreshold: 0.03, DeltaSMax: 0.45, Seeds: []uint64{1, 2}}
	for i := range 12 {
		q := QuestionDetail{ID: fmt.Sprintf("q-%02d", i+1), DeltaS: map[string]float64{}, Lambda: map[string][]string{}}
		base := 0.22 + 0.015*float64((i*7)%11)
		lo, hi := math.Inf(1), math.Inf(-1)
		for ri, r := range regions {
			d := base + 0.002*float64(ri)
			if r == "ap" && i == 6 {
				d = base + 0.041
			}
			d = math.Round(d*1e4) / 1e4
			q.DeltaS[r] = d
			lo, hi = math.Min(lo, d), math.Max(hi, d)
			q.Lambda[r] = []string{LambdaConvergent, LambdaConvergent}
		}
		q.Drift = math.Round((hi-lo)*1e4) / 1e4
		if i == 10 {
			q.Lambda["ap"][1] = LambdaRecursive
		}
		if i == 6 {
			q.Lambda["ap"] = []string{LambdaDivergent, LambdaDivergent}
		}
		pd.Questions = append(pd.Questions, q)
	}
	return &Model{
		Verdict:    v,
		Probes:     pd,
		BucketMaps: []BucketMap{{From: "eu", To: "ap", Buckets: 4096, Differing: []int{17, 630, 2048, 3001}}},
		BlobDiffs: []BlobDiff{{From: "eu", To: "ap",
			OnlyInFrom: []string{"docs/2024/handbook.pdf"}, OnlyInTo: []string{},
			Changed: []BlobChange{{Key: "docs/faq.md", Reason: "sha256 differs (size 1204 vs 1210)"}}}},
	}
}

// inconclusiveModel is a verdict with no detail: health could not run, a
// check timed out, one was skipped.
func inconclusiveModel(t testing.TB) *Model {
	t.Helper()
	v := &gate.Verdict{
		ID:        "v20250314T092653.589Z-5eed0002",
		Release:   "2025.03.2",
		CreatedAt: fixtureTime,
		ExpiresAt: fixtureTime.Add(6 * time.Hour),
		Decision:  gate.Inconclusive,
		Reference: "majority: every region is compared with the largest group of regions that agree, when it is a strict majority of the configured regions (or gate.primary)",
		Regions: []gate.RegionVerdict{
			{Name: "eu", Status: gate.Inconclusive, IndexHash: "3f2a9c0d41be77a05c1e3b9d8f60a2c4e51d9b0f7a6e3c2d1b0a998877665544",
				Reasons: []string{"could not verify health: no reference for schema_rev: 1 of 2 configured regions agree (1 on s42); a strict majority, gate.primary, or a release baseline is needed (ragparity baseline create --config gate.yaml --from REGION)", "could not verify probes: no gold set (pass --goldset, or gate.skip: [probes])"}},
			{Name: "us", Status: gate.Inconclusive, IndexHash: "3f2a9c0d41be77a05c1e3b9d8f60a2c4e51d9b0f7a6e3c2d1b0a998877665544",
				Reasons: []string{"could not verify health: health URL did not answer: connection refused", "could not verify probes: no gold set (pass --goldset, or gate.skip: [probes])"}},
		},
		Checks: []gate.Check{
			{Name: gate.CheckIndexHash, Status: gate.Pass, Figure: "2 of 2 regions agree (INDEX_HASH 3f2a9c0d41be)", Threshold: "every region's INDEX_HASH equal", Evidence: []string{}, ElapsedMS: 702},
			{Name: gate.CheckBlobs, Status: gate.Skipped, Figure: "skipped by gate.skip", Evidence: []string{}},
			{Name: gate.CheckHealth, Status: gate.Inconclusive, Threshold: "every region answers {schema_rev, model_tag, secrets_rev, index_hash}, all agree, index_hash = computed",
				Error: "us: health URL did not answer: connection refused", Evidence: []string{}, ElapsedMS: 3000},
			{Name: gate.CheckProbes, Status: gate.Inconclusive, Error: "no gold set (pass --goldset, or gate.skip: [probes])", Evidence: []string{}},
			{Name: gate.CheckDedupeKV, Status: gate.Pass, Figure: "2 of 2 regions warm", Threshold: "every region's dedupe KV reachable and warm", Evidence: []string{}, ElapsedMS: 12},
		},
		InputsDigest: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	}
	if err := v.Sign(fixtureKey); err != nil {
		t.Fatal(err)
	}
	return &Model{Verdict: v}
}

// checkRegions is a check's per-region results over eu, us, ap: region
// (if any) gets status s and reason why, the others pass.
func checkRegions(region string, s gate.Status, why string) []gate.CheckRegion {
	var out []gate.CheckRegion
	for _, r := range []string{"eu", "us", "ap"} {
		if r == region {
			out = append(out, gate.CheckRegion{Name: r, Status: s, Reason: why})
			continue
		}
		out = append(out, gate.CheckRegion{Name: r, Status: gate.Pass})
	}
	return out
}

// fixtures are the golden cases.
var fixtures = []struct {
	name  string
	model func(testing.TB) *Model
}{
	{"degraded", failingModel},
	{"inconclusive", inconclusiveModel},
}
