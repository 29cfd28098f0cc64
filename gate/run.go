package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// Check names, in verdict order.
const (
	CheckIndexHash = "index_hash"
	CheckBlobs     = "blobs"
	CheckHealth    = "health"
	CheckProbes    = "probes"
	CheckDedupeKV  = "dedupe_kv"
)

// RegionHash is what the index check found for one region; later checks
// (health) compare against it.
type RegionHash struct {
	IndexHash string
	ModelTag  string
}

// Options wire a gate run.
type Options struct {
	// Goldset is the gold set (YAML/JSONL, or a BEIR folder) for the
	// probe check; "" leaves it inconclusive unless skipped.
	Goldset string
	// Signer signs the verdict (required; LoadSigner).
	Signer *Signer
	// HTTPClient fetches health URLs (default: a client with no redirects
	// to other hosts and the check's timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	// MaxEvidence bounds the ids or keys listed per region (default 20).
	MaxEvidence int
}

// Run runs every check of the failover gate concurrently, each under its
// own timeout, and returns the signed verdict and the detail behind it
// (for reports). Any check that errors or times out makes the verdict
// inconclusive; inconclusive admits nothing.
func Run(ctx context.Context, cfg *config.Config, o Options) (*Verdict, *Detail, error) {
	if o.Signer == nil || o.Signer.Key == nil {
		return nil, nil, errors.New("gate: no signing key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEvidence == 0 {
		o.MaxEvidence = defaultMaxEvidence
	}
	det := &Detail{}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	start := o.Now()
	var (
		wg                 sync.WaitGroup
		idx, blobs, health Check
		probes, dedupe     Check
		hashes             map[string]RegionHash
		manifests          map[string]string
		contracts          map[string]map[string]string
		healthDone         = make(chan struct{})
	)
	timed := func(name string, fn func(ctx context.Context) Check) Check {
		c, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(name))
		defer cancel()
		t0 := time.Now()
		ch := fn(c)
		ch.Name = name
		ch.ElapsedMS = time.Since(t0).Milliseconds()
		if ch.Status == "" {
			ch.Status = Inconclusive
		}
		if ch.Evidence == nil {
			ch.Evidence = []string{}
		}
		if c.Err() != nil && ch.Status != Pass && ch.Status != Fail {
			ch.Status = Inconclusive
			if ch.Error == "" {
				ch.Error = fmt.Sprintf("timed out after %v", cfg.CheckTimeout(name))
			}
		}
		return ch
	}
	wg.Add(4)
	go func() {
		defer wg.Done()
		idx = timed(CheckIndexHash, func(ctx context.Context) Check {
			var c Check
			c, hashes = indexCheck(ctx, cfg, o, det)
			return c
		})
	}()
	go func() {
		defer wg.Done()
		blobs = timed(CheckBlobs, func(ctx context.Context) Check {
			if cfg.Skipped(CheckBlobs) {
				return Check{Status: Skipped, Figure: "skipped by gate.skip"}
			}
			var c Check
			c, manifests = blobCheck(ctx, cfg, o, det)
			return c
		})
	}()
	go func() {
		defer wg.Done()
		defer close(healthDone)
		if cfg.Skipped(CheckHealth) {
			return
		}
		c, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(CheckHealth))
		defer cancel()
		contracts = fetchContracts(c, cfg, o.HTTPClient)
	}()
	go func() {
		defer wg.Done()
		probes = timed(CheckProbes, func(ctx context.Context) Check {
			if cfg.Skipped(CheckProbes) {
				return Check{Status: Skipped, Figure: "skipped by gate.skip"}
			}
			if o.Goldset == "" {
				return Check{Status: Inconclusive, Error: "no gold set (pass --goldset, or gate.skip: [probes])"}
			}
			return probeCheck(ctx, cfg, o.Goldset, det)
		})
	}()
	dedupe = timed(CheckDedupeKV, func(ctx context.Context) Check { return dedupeCheck(ctx, cfg) })
	wg.Wait()
	<-healthDone
	if cfg.Skipped(CheckHealth) {
		health = Check{Name: CheckHealth, Status: Skipped, Figure: "skipped by gate.skip", Evidence: []string{}}
	} else {
		health = healthCheck(cfg, contracts, hashes, idx.Status)
	}

	v := &Verdict{
		ID:        newID(start),
		Release:   cfg.Release,
		CreatedAt: start.UTC().Truncate(time.Millisecond),
		Checks:    []Check{idx, blobs, health, probes, dedupe},
	}
	v.ExpiresAt = v.CreatedAt.Add(cfg.Gate.VerdictTTL)
	v.Decision = Pass
	for _, c := range v.Checks {
		switch c.Status {
		case Inconclusive:
			v.Decision = Inconclusive
		case Fail:
			if v.Decision == Pass {
				v.Decision = Fail
			}
		}
	}
	failed := map[string][]string{}
	for _, c := range v.Checks {
		for _, r := range c.FailedRegions {
			failed[r] = append(failed[r], c.Name)
		}
	}
	for _, r := range cfg.Regions {
		rv := RegionVerdict{Name: r.Name, IndexHash: hashes[r.Name].IndexHash, ManifestHash: manifests[r.Name], ModelTag: hashes[r.Name].ModelTag}
		if ct := contracts[r.Name]; ct != nil {
			rv.SchemaRev, rv.SecretsRev = ct["schema_rev"], ct["secrets_rev"]
			if rv.ModelTag == "" {
				rv.ModelTag = ct["model_tag"]
			}
		}
		switch {
		case v.Decision == Inconclusive:
			rv.Reasons = []string{"verdict inconclusive"}
		case len(failed[r.Name]) > 0:
			for _, c := range failed[r.Name] {
				rv.Reasons = append(rv.Reasons, "failed "+c)
			}
		default:
			rv.Admit = true
		}
		v.Regions = append(v.Regions, rv)
	}
	if v.Decision == Fail {
		// A failed check that names no region (it could not single one
		// out) blocks every region.
		for _, c := range v.Checks {
			if c.Status == Fail && len(c.FailedRegions) == 0 {
				for i := range v.Regions {
					v.Regions[i].Admit = false
					v.Regions[i].Reasons = append(v.Regions[i].Reasons, "failed "+c.Name)
				}
			}
		}
	}
	d, err := inputsDigest(cfg, v)
	if err != nil {
		return nil, nil, err
	}
	v.InputsDigest = d
	if err := o.Signer.Sign(v); err != nil {
		return nil, nil, err
	}
	return v, det, nil
}

func newID(t time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "v" + t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
}

func inputsDigest(cfg *config.Config, v *Verdict) (string, error) {
	type in struct {
		Name, Vectors, Blobs, Health, DedupeKV, IndexHash, ManifestHash string
	}
	var ins []in
	for i, r := range cfg.Regions {
		ins = append(ins, in{r.Name, adapters.Redact(r.Vectors), adapters.Redact(r.Blobs), adapters.Redact(r.Health), adapters.Redact(r.DedupeKV), v.Regions[i].IndexHash, v.Regions[i].ManifestHash})
	}
	b, err := json.Marshal(map[string]any{"release": cfg.Release, "regions": ins, "settings": cfg.Settings, "embedder": cfg.Embedder, "skip": cfg.Gate.Skip})
	if err != nil {
		return "", err
	}
	c, err := parity.CanonicalPayload(b)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(parity.SHA256(c)), nil
}

// Reference picks the largest group of regions sharing a value; ties go
// to the group holding gate.primary, then to config order.
func Reference(cfg *config.Config, val map[string]string) string { return reference(cfg, val) }

func reference(cfg *config.Config, val map[string]string) string {
	count := map[string]int{}
	for _, v := range val {
		count[v]++
	}
	best, bestN := "", -1
	order := make([]string, 0, len(cfg.Regions))
	if cfg.Gate.Primary != "" {
		order = append(order, cfg.Gate.Primary)
	}
	for _, r := range cfg.Regions {
		order = append(order, r.Name)
	}
	for _, name := range order {
		v, ok := val[name]
		if ok && count[v] > bestN {
			best, bestN = v, count[v]
		}
	}
	return best
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// indexCheck hashes every region, compares INDEX_HASHes with the reference
// group and, for regions that differ, names the differing ids.
func indexCheck(ctx context.Context, cfg *config.Config, o Options, det *Detail) (Check, map[string]RegionHash) {
	regions, _ := SelectRegions(cfg, nil)
	out := ScanRegions(ctx, cfg, regions, ScanOptions{Spill: true})
	defer func() {
		for i := range out {
			out[i].Close()
		}
	}()
	hashes := map[string]RegionHash{}
	var errs []string
	vals := map[string]string{}
	for _, r := range out {
		name := r.Region.Name
		if r.Err != nil {
			errs = append(errs, r.Err.Error())
			continue
		}
		ih := r.Scan.IndexHash().Hex()
		mt, _ := r.Scan.Settings.Hashed["model_tag"].(string)
		hashes[name] = RegionHash{IndexHash: ih, ModelTag: mt}
		vals[name] = ih
	}
	c := Check{Threshold: "every region's INDEX_HASH equal"}
	if len(errs) > 0 {
		c.Status = Inconclusive
		c.Error = strings.Join(errs, "; ")
		return c, hashes
	}
	ref := reference(cfg, vals)
	refIdx := -1
	for i, r := range out {
		if vals[r.Region.Name] == ref {
			refIdx = i
			break
		}
	}
	refName := out[refIdx].Region.Name
	agree := 0
	for i, r := range out {
		name := r.Region.Name
		if vals[name] == ref {
			agree++
			continue
		}
		c.FailedRegions = append(c.FailedRegions, name)
		a, b := out[refIdx].Scan, r.Scan
		var differing []int
		for k := range a.Leaves {
			if a.Leaves[k] != b.Leaves[k] {
				differing = append(differing, k)
			}
		}
		det.addBucketMap(BucketMap{From: refName, To: name, Buckets: a.Buckets, Differing: differing})
		d, err := verifier.Diff(refName, name, a, b, out[refIdx].Spill, out[i].Spill)
		if err != nil {
			c.Evidence = append(c.Evidence, fmt.Sprintf("%s: INDEX_HASH %s differs from %s (diff failed: %v)", name, short(vals[name]), short(ref), err))
			continue
		}
		c.Evidence = append(c.Evidence, diffEvidence(name, d, o.MaxEvidence)...)
	}
	c.Figure = fmt.Sprintf("%d of %d regions agree (INDEX_HASH %s)", agree, len(cfg.Regions), short(ref))
	c.Status = Pass
	if len(c.FailedRegions) > 0 {
		c.Status = Fail
	}
	return c, hashes
}

func diffEvidence(region string, d *verifier.DiffResult, max int) []string {
	var ev []string
	for _, s := range d.SettingsDiff {
		if s.Hashed {
			ev = append(ev, fmt.Sprintf("%s: setting %s: %v -> %v", region, s.Key, s.From, s.To))
		}
	}
	var items []string
	for _, id := range d.OnlyInFrom {
		items = append(items, fmt.Sprintf("id %s missing (present in %s)", id, d.From))
	}
	for _, id := range d.OnlyInTo {
		items = append(items, fmt.Sprintf("id %s extra (absent from %s)", id, d.From))
	}
	for _, c := range d.Changed {
		items = append(items, fmt.Sprintf("id %s differs in %s", c.ID, strings.Join(c.Fields, ", ")))
	}
	return append(ev, capEvidence(region, items, max, fmt.Sprintf("ids (run ragparity diff --from %s --to %s)", d.From, region))...)
}

// contract fields every health answer must carry.
var contractFields = []string{"schema_rev", "model_tag", "secrets_rev", "index_hash"}

// fetchContracts GETs every region's health URL. A transport error,
// timeout or 5xx is an error (inconclusive); a 200 that is not the
// contract is recorded as a failure in the map under "_error".
func fetchContracts(ctx context.Context, cfg *config.Config, hc *http.Client) map[string]map[string]string {
	out := map[string]map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range cfg.Regions {
		wg.Add(1)
		go func(r config.Region) {
			defer wg.Done()
			m := map[string]string{}
			defer func() { mu.Lock(); out[r.Name] = m; mu.Unlock() }()
			if r.Health == "" {
				m["_inconclusive"] = "no health URL configured"
				return
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Health, nil)
			if err != nil {
				m["_inconclusive"] = "bad health URL: " + adapters.RedactErr(err).Error()
				return
			}
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				m["_inconclusive"] = "health URL did not answer: " + adapters.RedactErr(err).Error()
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				m["_inconclusive"] = "reading health answer: " + err.Error()
				return
			}
			if resp.StatusCode >= 500 || resp.StatusCode == 429 {
				m["_inconclusive"] = fmt.Sprintf("health URL answered %d", resp.StatusCode)
				return
			}
			if resp.StatusCode != 200 {
				m["_fail"] = fmt.Sprintf("health URL answered %d", resp.StatusCode)
				return
			}
			var obj map[string]any
			if err := json.Unmarshal(body, &obj); err != nil {
				if len(strings.TrimSpace(string(body))) == 0 {
					m["_fail"] = "health answered a bare 200 (empty body), not the contract"
				} else {
					m["_fail"] = "health answer is not a JSON object"
				}
				return
			}
			var missing []string
			for _, f := range contractFields {
				s, ok := obj[f].(string)
				if !ok || s == "" {
					missing = append(missing, f)
					continue
				}
				m[f] = s
			}
			if len(missing) > 0 {
				m["_fail"] = "health contract missing " + strings.Join(missing, ", ")
			}
		}(r)
	}
	wg.Wait()
	return out
}

func healthCheck(cfg *config.Config, contracts map[string]map[string]string, hashes map[string]RegionHash, idxStatus Status) Check {
	c := Check{Name: CheckHealth, Threshold: "every region answers {schema_rev, model_tag, secrets_rev, index_hash}, all agree, index_hash = computed", Evidence: []string{}}
	var incon []string
	failed := map[string]bool{}
	for _, r := range cfg.Regions {
		m := contracts[r.Name]
		switch {
		case m == nil:
			incon = append(incon, r.Name+": no answer")
		case m["_inconclusive"] != "":
			incon = append(incon, r.Name+": "+m["_inconclusive"])
		case m["_fail"] != "":
			failed[r.Name] = true
			c.Evidence = append(c.Evidence, r.Name+": "+m["_fail"])
		}
	}
	if len(incon) > 0 {
		c.Status = Inconclusive
		c.Error = strings.Join(incon, "; ")
		return c
	}
	// Agreement of schema_rev, model_tag, secrets_rev with the reference.
	for _, f := range contractFields[:3] {
		vals := map[string]string{}
		for _, r := range cfg.Regions {
			if !failed[r.Name] {
				vals[r.Name] = contracts[r.Name][f]
			}
		}
		ref := reference(cfg, vals)
		for _, r := range cfg.Regions {
			if v, ok := vals[r.Name]; ok && v != ref {
				failed[r.Name] = true
				c.Evidence = append(c.Evidence, fmt.Sprintf("%s: %s %q disagrees with %q", r.Name, f, v, ref))
			}
		}
	}
	// The claimed index_hash must be the computed one.
	for _, r := range cfg.Regions {
		m := contracts[r.Name]
		if failed[r.Name] {
			continue
		}
		h, ok := hashes[r.Name]
		if !ok {
			if idxStatus != Pass && idxStatus != Fail {
				c.Status = Inconclusive
				c.Error = "index_hash could not be computed for " + r.Name
				return c
			}
			continue
		}
		if m["index_hash"] != h.IndexHash {
			failed[r.Name] = true
			c.Evidence = append(c.Evidence, fmt.Sprintf("%s: health claims index_hash %s, ragparity computed %s", r.Name, short(m["index_hash"]), short(h.IndexHash)))
		}
	}
	for _, r := range cfg.Regions {
		if failed[r.Name] {
			c.FailedRegions = append(c.FailedRegions, r.Name)
		}
	}
	c.Figure = fmt.Sprintf("%d of %d regions healthy", len(cfg.Regions)-len(c.FailedRegions), len(cfg.Regions))
	c.Status = Pass
	if len(c.FailedRegions) > 0 {
		c.Status = Fail
	}
	return c
}

// dedupeCheck: each region's fence store answers and its warm marker is
// present.
func dedupeCheck(ctx context.Context, cfg *config.Config) Check {
	c := Check{Threshold: "every region's dedupe KV reachable and warm"}
	if cfg.Skipped(CheckDedupeKV) {
		return Check{Status: Skipped, Figure: "skipped by gate.skip"}
	}
	var incon []string
	warm := 0
	var hits, misses int64
	for _, r := range cfg.Regions {
		if r.DedupeKV == "" {
			incon = append(incon, r.Name+": no dedupe_kv configured")
			continue
		}
		f, err := fence.Open(r.DedupeKV, "")
		if err != nil {
			incon = append(incon, r.Name+": "+err.Error())
			continue
		}
		ws, err := f.Warm(ctx)
		f.Close()
		if err != nil {
			incon = append(incon, r.Name+": "+err.Error())
			continue
		}
		c.Measures = append(c.Measures,
			Measure{Name: MeasureDedupeHits, Region: r.Name, Value: float64(ws.Hits)},
			Measure{Name: MeasureDedupeMisses, Region: r.Name, Value: float64(ws.Misses)})
		if !ws.Warm {
			c.FailedRegions = append(c.FailedRegions, r.Name)
			c.Evidence = append(c.Evidence, r.Name+": fence is cold (no warm marker: run `ragparity rebuild` against this region's dedupe_kv)")
			continue
		}
		warm++
		hits += ws.Hits
		misses += ws.Misses
	}
	if len(incon) > 0 {
		sort.Strings(incon)
		c.Status = Inconclusive
		c.Error = strings.Join(incon, "; ")
		return c
	}
	c.Figure = fmt.Sprintf("%d of %d regions warm (dedupe hits %d, misses %d, over their rebuilds)", warm, len(cfg.Regions), hits, misses)
	c.Status = Pass
	if len(c.FailedRegions) > 0 {
		c.Status = Fail
	}
	return c
}
