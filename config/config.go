// Package config reads ragparity's YAML config: strict (an unknown key is
// an error naming it and its line), ${ENV} expansion in string values, then
// validation with errors naming the field and line.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"github.com/ragparity/ragparity/internal/inputerr"
	"github.com/ragparity/ragparity/internal/urlsafe"
	"github.com/ragparity/ragparity/probe"
)

// Config is a whole config file.
type Config struct {
	// Release names what is being verified (e.g. r2026-11-26).
	Release string `yaml:"release"`
	// Timeout bounds each region's scan (default 10m).
	Timeout time.Duration `yaml:"timeout"`
	// Hash holds hash-format parameters; every region must use the same.
	Hash Hash `yaml:"hash"`
	// Settings declares what a store cannot say (model tag, analyzer,
	// chunker); they are hashed into every region's settings digest.
	Settings map[string]any `yaml:"settings"`
	Regions  []Region       `yaml:"regions"`

	// Embedder is the embedder spec used by rebuilds and probes: "glove"
	// (the offline default), "openai://?model=...&base_url=...", or "hash"
	// (tests only). Its model tag becomes the hashed setting model_tag.
	Embedder string `yaml:"embedder"`
	// Analyzer is how rebuilds chunk text; its version becomes the hashed
	// setting analyzer. A region may override it.
	Analyzer *Analyzer `yaml:"analyzer"`
	// Index is what rebuilds create.
	Index Index `yaml:"index"`
	// Fence configures the idempotency fence.
	Fence Fence `yaml:"fence"`
	// Probe holds the gold-set probe settings and thresholds.
	Probe probe.Config `yaml:"probe"`
	// Gate configures `verify` and `serve`.
	Gate Gate `yaml:"gate"`
	// Blobs configures the blob manifest check.
	Blobs Blobs `yaml:"blobs"`
	// Agent configures `ragparity agent`, the regional agent that scans
	// one region next to its stores and serves signed leaves.
	Agent AgentServer `yaml:"agent"`
	// CacheDir holds the embedding cache, fallback fence files and rebuild
	// checkpoints (default ~/.cache/ragparity).
	CacheDir string `yaml:"cache_dir"`

	// File is the path the config was read from.
	File string `yaml:"-"`
	src  []byte
}

// Analyzer mirrors replicate.Analyzer.
type Analyzer struct {
	ChunkSize int    `yaml:"chunk_size"`
	Overlap   int    `yaml:"overlap"`
	Normalize string `yaml:"normalize"`
	Lowercase bool   `yaml:"lowercase"`
}

// Index is the collection a rebuild creates.
type Index struct {
	Metric         string `yaml:"metric"`
	M              int    `yaml:"m"`
	EfConstruction int    `yaml:"ef_construction"`
}

// Fence settings: claims are kept failover_window + 24 h; a dead writer's
// pending claim blocks others for lease.
type Fence struct {
	FailoverWindow time.Duration `yaml:"failover_window"`
	Lease          time.Duration `yaml:"lease"`
}

// Gate settings.
type Gate struct {
	// Thresholds override, for the gate only, the probe: thresholds that
	// `ragparity probe` also uses (a field left out keeps probe:'s value).
	Thresholds Thresholds `yaml:"thresholds"`
	// Timeouts per check (index_hash, blobs, health, probes, dedupe_kv);
	// a check that runs out of time is inconclusive.
	Timeouts map[string]time.Duration `yaml:"timeouts"`
	// VerdictTTL is how long a verdict admits traffic (default 15m).
	VerdictTTL time.Duration `yaml:"verdict_ttl"`
	// Schedule re-verifies every interval under `serve` (0: only on POST
	// /v1/verify and at start).
	Schedule time.Duration `yaml:"schedule"`
	// SigningKey is an Ed25519 private key: a file path (PEM PKCS#8 or a
	// base64 seed) or env:NAME.
	SigningKey string `yaml:"signing_key"`
	// Token is the bearer token mutating endpoints require (use ${ENV}).
	Token string `yaml:"token"`
	// Routing maps a client region to the regions to route it to, in order
	// of preference.
	Routing map[string][]string `yaml:"routing"`
	// Primary is the reference without a baseline when no strict majority
	// of the regions agrees (and it is reachable).
	Primary string `yaml:"primary"`
	// Baseline is a release baseline file (as `baseline export` writes
	// it); without it, verify and serve use the verdict store's newest
	// baseline of the release, and without one of those the agreeing
	// majority of the regions.
	Baseline string `yaml:"baseline"`
	// BaselineKeys are PEM public-key files whose baselines are trusted
	// besides those signed with signing_key.
	BaselineKeys []string `yaml:"baseline_keys"`
	// EngineParity is warn (default: regions that differ only in engine
	// settings pass with a warning) or strict (they fail).
	EngineParity string `yaml:"engine_parity"`
	// Store is where verdicts are kept: sqlite:///path (default, under
	// cache_dir) or postgres://... (shared by replicas).
	Store string `yaml:"store"`
	// Skip names checks deliberately not run (blobs, health, probes,
	// dedupe_kv); they show as skipped. A check that is neither configured
	// nor skipped makes the verdict inconclusive.
	Skip []string `yaml:"skip"`
	// TLSCert and TLSKey enable TLS for serve.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// GRPCAddr, when set, is where serve also answers Envoy's gRPC
	// external authorization (envoy.service.auth.v3.Authorization/Check),
	// e.g. 127.0.0.1:9001; off by default. serve --grpc-addr overrides it.
	GRPCAddr string `yaml:"grpc_addr"`
}

// Blobs configures the blob manifest check.
type Blobs struct {
	// RehashEvery is how often the gate re-reads every object whatever its
	// cached identity says (default 24h), like a scrub: each object is due
	// at its own point in the period, so the work spreads over the runs.
	RehashEvery time.Duration `yaml:"rehash_every"`
}

// Thresholds are the gate's probe thresholds (metrics.md); see
// probe.Config for each one's meaning.
type Thresholds struct {
	DriftMax           *float64 `yaml:"drift_max"`
	MinQuestions       *int     `yaml:"min_questions"`
	DeltaSMax          *float64 `yaml:"delta_s_max"`
	CoverageMin        *float64 `yaml:"coverage_min"`
	ConvergentShareMin *float64 `yaml:"convergent_share_min"`
	LambdaAgreementMin *float64 `yaml:"lambda_agreement_min"`
}

// GateProbe is the probe configuration the gate runs with: probe: with
// gate.thresholds applied.
func (c *Config) GateProbe() probe.Config {
	pc := c.Probe
	t := c.Gate.Thresholds
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&pc.DriftMax, t.DriftMax)
	set(&pc.DeltaSMax, t.DeltaSMax)
	set(&pc.CoverageMin, t.CoverageMin)
	set(&pc.ConvergentShareMin, t.ConvergentShareMin)
	set(&pc.LambdaAgreementMin, t.LambdaAgreementMin)
	if t.MinQuestions != nil {
		pc.MinQuestions = *t.MinQuestions
	}
	return pc
}

// Hash parameters.
type Hash struct {
	Buckets   int     `yaml:"buckets"`
	Tolerance float64 `yaml:"tolerance"`
	// Tolerant makes hash report content_root_tolerant (as --tolerant does).
	Tolerant bool `yaml:"tolerant"`
}

// Region is one region's stores.
type Region struct {
	Name    string `yaml:"name"`
	Vectors string `yaml:"vectors"`
	// Blobs is the region's blob store: s3://bucket/prefix?endpoint=... or
	// file:///path.
	Blobs string `yaml:"blobs"`
	// Settings overrides or extends the top-level settings for this region.
	Settings map[string]any `yaml:"settings"`
	// Health is the region's contract health URL: it must answer JSON with
	// schema_rev, model_tag, secrets_rev and index_hash.
	Health string `yaml:"health"`
	// DedupeKV is the region's fence store (redis://host:port/db); without
	// it an embedded bbolt file under cache_dir.
	DedupeKV string `yaml:"dedupe_kv"`
	// Analyzer overrides the top-level analyzer for this region.
	Analyzer *Analyzer `yaml:"analyzer"`
	// AllowEmpty lets the region pass the index check while it holds 0
	// points; without it an empty region fails (two empty regions are
	// equal, but an empty copy is rarely the intended one).
	AllowEmpty bool `yaml:"allow_empty"`
	// Agent, when set, is the region's regional agent: hash, diff, verify
	// and serve read the region's leaves from it instead of scanning
	// vectors (which, when also set, probes still search).
	Agent *RegionAgent `yaml:"agent"`
}

// RegionAgent is how the gate reaches a region's agent.
type RegionAgent struct {
	// URL is the agent's base URL (https://host:8443; http:// only for
	// tests on one host).
	URL string `yaml:"url"`
	// Token is the bearer token the agent requires (use ${ENV}).
	Token string `yaml:"token"`
	// PublicKeys are the agent's Ed25519 public keys the gate trusts: file
	// paths (PEM PKIX) or the base64 of the 32 raw bytes. Answers signed
	// by any other key make the region inconclusive.
	PublicKeys []string `yaml:"public_keys"`
	// MaxAge is the oldest scan the gate accepts (default 30m).
	MaxAge time.Duration `yaml:"max_age"`
	// CA is a PEM file of the CA that signed the agent's certificate
	// (default: the system roots).
	CA string `yaml:"ca"`
	// Cert and Key are the gate's client certificate for mTLS.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// AgentServer configures `ragparity agent`.
type AgentServer struct {
	// Region is the region the agent scans (default: the only one).
	Region string `yaml:"region"`
	// SigningKey is the agent's Ed25519 private key: env:NAME, file:PATH,
	// ${NAME} or a path (as gate.signing_key).
	SigningKey string `yaml:"signing_key"`
	// Token is the bearer token every request must carry (use ${ENV}).
	Token string `yaml:"token"`
	// Interval rescans at least this often (default 10m).
	Interval time.Duration `yaml:"interval"`
	// CheckEvery is how often the store's change marker is read (pgvector
	// relation identity and WAL position, Qdrant counts); a change
	// rescans (default 15s; stores without a marker rescan on Interval).
	CheckEvery time.Duration `yaml:"check_every"`
	// MaxAge: a scan older than this is never served (503 instead;
	// default 30m).
	MaxAge time.Duration `yaml:"max_age"`
	// TLSCert and TLSKey enable TLS; ClientCA additionally requires a
	// client certificate signed by it (mTLS).
	TLSCert  string `yaml:"tls_cert"`
	TLSKey   string `yaml:"tls_key"`
	ClientCA string `yaml:"client_ca"`
}

// Error is a config error naming the file, line and field. It is an alias of
// inputerr.Error, shared with the other input loaders.
type Error = inputerr.Error

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, b)
}

// Parse parses and validates config text; name is used in messages.
func Parse(name string, src []byte) (c *Config, err error) {
	// goccy/go-yaml v1.19.2 panics on some malformed input (found by
	// FuzzParse, corpus in testdata/fuzz): report it as a config error.
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, &Error{File: name, Err: fmt.Errorf("malformed YAML (parser failed: %v)", r)}
		}
	}()
	c = &Config{File: name, src: src, Probe: probe.Defaults()}
	if len(strings.TrimSpace(string(src))) == 0 {
		return nil, &Error{File: name, Err: errors.New("empty config")}
	}
	if err := yaml.UnmarshalWithOptions(src, c, yaml.Strict(), yaml.CustomUnmarshaler(unmarshalDuration)); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			return nil, &Error{File: name, Line: ye.GetToken().Position.Line, Err: errors.New(ye.GetMessage())}
		}
		var de *durationError
		if errors.As(err, &de) {
			return nil, &Error{File: name, Line: lineWith(src, de.text), Err: de}
		}
		return nil, &Error{File: name, Err: err}
	}
	// A document that is only comments decodes as null and zeroes c.
	c.File, c.src = name, src
	if err := expand(reflect.ValueOf(c).Elem(), "$", c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// durationError is a duration value that does not parse; Parse finds its
// line (the decoder does not report one for a custom unmarshaler's error).
type durationError struct {
	text string
	err  error
}

func (e *durationError) Error() string {
	return fmt.Sprintf("duration %q: %v (want e.g. 30s, 5m, 24h; at most about 2562047h)", e.text, e.err)
}

// unmarshalDuration reads a duration: a Go duration string, or a bare 0.
func unmarshalDuration(d *time.Duration, b []byte) error {
	text := strings.TrimSpace(string(b))
	if i := strings.Index(text, " #"); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	text = strings.Trim(text, `"'`)
	if text == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		if _, nerr := fmt.Sscanf(text, "%d", new(int64)); nerr == nil && !strings.ContainsAny(text, "hmsuµn") {
			err = errors.New("a number needs a unit")
		} else {
			err = errors.Unwrap(err)
			if err == nil {
				err = errors.New("not a duration")
			}
		}
		return &durationError{text: text, err: err}
	}
	*d = v
	return nil
}

// lineWith is the 1-based line of the first line whose value holds text
// (0 if none).
func lineWith(src []byte, text string) int {
	for i, l := range strings.Split(string(src), "\n") {
		if j := strings.Index(l, ":"); j >= 0 && strings.Contains(l[j:], text) {
			return i + 1
		}
	}
	return 0
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandString replaces ${NAME} and ${NAME:-default}; $$ is a literal $.
func expandString(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := envRef.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(sub[1]); ok && v != "" {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing = append(missing, sub[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (referenced as ${%s})", missing[0], missing[0])
	}
	return out, nil
}

// expand walks every string in the decoded config and expands it.
func expand(v reflect.Value, path string, c *Config) error {
	switch v.Kind() {
	case reflect.String:
		s, err := expandString(v.String())
		if err != nil {
			return c.errAt(path, err)
		}
		v.SetString(s)
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if !f.IsExported() || tag == "-" {
				continue
			}
			if err := expand(v.Field(i), path+"."+tag, c); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := expand(v.Index(i), fmt.Sprintf("%s[%d]", path, i), c); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if e.Kind() == reflect.Interface {
				e = e.Elem()
			}
			if e.Kind() == reflect.String {
				s, err := expandString(e.String())
				if err != nil {
					return c.errAt(fmt.Sprintf("%s.%v", path, k), err)
				}
				v.SetMapIndex(k, reflect.ValueOf(s))
			}
		}
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() && v.Elem().Kind() != reflect.String {
			return expand(v.Elem(), path, c)
		}
	}
	return nil
}

// lineOf finds the line of a YAML path such as $.regions[1].vectors.
func (c *Config) lineOf(path string) int {
	if c.src == nil {
		return 0
	}
	f, err := parser.ParseBytes(c.src, 0)
	if err != nil {
		return 0
	}
	for p := path; p != "$" && p != ""; {
		yp, err := yaml.PathString(p)
		if err == nil {
			if n, err := yp.FilterFile(f); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		// Fall back to the parent (e.g. a missing field's region).
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (c *Config) errAt(path string, err error) error {
	return &Error{File: c.File, Line: c.lineOf(path), Field: strings.TrimPrefix(path, "$."), Err: err}
}

// Validate checks required fields and values, naming the field and line.
func (c *Config) Validate() error {
	if err := c.Probe.Validate(); err != nil {
		var pe *probe.ConfigError
		if errors.As(err, &pe) {
			return c.errAt("$.probe."+pe.Field, pe.Err)
		}
		return c.errAt("$.probe", err)
	}
	gp := c.GateProbe()
	if err := gp.Validate(); err != nil {
		var pe *probe.ConfigError
		if errors.As(err, &pe) {
			return c.errAt("$.gate.thresholds."+pe.Field, pe.Err)
		}
		return c.errAt("$.gate.thresholds", err)
	}
	if c.Timeout < 0 {
		return c.errAt("$.timeout", errors.New("must be positive"))
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if b := c.Hash.Buckets; b != 0 && (b < 2 || b > 1<<16 || b&(b-1) != 0) {
		return c.errAt("$.hash.buckets", fmt.Errorf("%d is not a power of two in [2, 65536]", b))
	}
	if t := c.Hash.Tolerance; math.IsNaN(t) || math.IsInf(t, 0) {
		return c.errAt("$.hash.tolerance", fmt.Errorf("%v: must be a finite number >= 0", t))
	}
	if c.Hash.Tolerance < 0 {
		return c.errAt("$.hash.tolerance", errors.New("must be positive"))
	}
	switch c.Index.Metric {
	case "", "cosine", "l2", "dot", "l1":
	default:
		return c.errAt("$.index.metric", fmt.Errorf("%q: want cosine, l2, dot or l1", c.Index.Metric))
	}
	if c.Index.M < 0 || c.Index.EfConstruction < 0 {
		return c.errAt("$.index", errors.New("m and ef_construction must be positive"))
	}
	if c.Fence.FailoverWindow < 0 || c.Fence.Lease < 0 {
		return c.errAt("$.fence", errors.New("durations must be positive"))
	}
	if len(c.Regions) == 0 {
		return c.errAt("$.regions", errors.New("at least one region is required"))
	}
	for k, d := range c.Gate.Timeouts {
		switch k {
		case "index_hash", "blobs", "health", "probes", "dedupe_kv":
		default:
			return c.errAt("$.gate.timeouts."+k, fmt.Errorf("unknown check %q (index_hash, blobs, health, probes, dedupe_kv)", k))
		}
		if d <= 0 {
			return c.errAt("$.gate.timeouts."+k, fmt.Errorf("%v: must be positive (leave the check out for its default)", d))
		}
	}
	for i, k := range c.Gate.Skip {
		switch k {
		case "blobs", "health", "probes", "dedupe_kv":
		default:
			return c.errAt(fmt.Sprintf("$.gate.skip[%d]", i), fmt.Errorf("%q cannot be skipped (blobs, health, probes, dedupe_kv can)", k))
		}
	}
	if c.Gate.VerdictTTL < 0 || c.Gate.Schedule < 0 {
		return c.errAt("$.gate", errors.New("durations must be positive"))
	}
	if a := c.Gate.GRPCAddr; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return c.errAt("$.gate.grpc_addr", fmt.Errorf("%q: want host:port (e.g. 127.0.0.1:9001)", a))
		}
	}
	if c.Blobs.RehashEvery < 0 {
		return c.errAt("$.blobs.rehash_every", fmt.Errorf("%v: must be positive", c.Blobs.RehashEvery))
	}
	if c.Blobs.RehashEvery == 0 {
		c.Blobs.RehashEvery = 24 * time.Hour
	}
	if c.Gate.VerdictTTL == 0 {
		c.Gate.VerdictTTL = 15 * time.Minute
	}
	names := map[string]bool{}
	for _, r := range c.Regions {
		names[r.Name] = true
	}
	for client, prefs := range c.Gate.Routing {
		for _, p := range prefs {
			if !names[p] {
				return c.errAt("$.gate.routing."+client, fmt.Errorf("unknown region %q", p))
			}
		}
	}
	if c.Gate.Primary != "" && !names[c.Gate.Primary] {
		return c.errAt("$.gate.primary", fmt.Errorf("unknown region %q", c.Gate.Primary))
	}
	switch c.Gate.EngineParity {
	case "":
		c.Gate.EngineParity = "warn"
	case "warn", "strict":
	default:
		return c.errAt("$.gate.engine_parity", fmt.Errorf("%q: want warn or strict", c.Gate.EngineParity))
	}
	seen := map[string]int{}
	for i, r := range c.Regions {
		p := fmt.Sprintf("$.regions[%d]", i)
		if strings.TrimSpace(r.Name) == "" {
			return c.errAt(p, errors.New("name is required"))
		}
		if j, dup := seen[r.Name]; dup {
			return c.errAt(p+".name", fmt.Errorf("region %q is also regions[%d]", r.Name, j))
		}
		seen[r.Name] = i
		if r.Vectors != "" {
			if err := CheckURL(r.Vectors); err != nil {
				return c.errAt(p+".vectors", err)
			}
		}
		if r.Health != "" {
			if err := CheckURL(r.Health); err != nil {
				return c.errAt(p+".health", err)
			}
		}
		if r.DedupeKV != "" {
			if err := CheckURL(r.DedupeKV); err != nil {
				return c.errAt(p+".dedupe_kv", err)
			}
		}
		if r.Blobs != "" {
			if err := CheckURL(r.Blobs); err != nil {
				return c.errAt(p+".blobs", err)
			}
		}
		if r.Agent != nil {
			if err := c.validateRegionAgent(p+".agent", r.Agent); err != nil {
				return err
			}
		}
	}
	return c.validateAgentServer()
}

func (c *Config) validateRegionAgent(p string, a *RegionAgent) error {
	u, err := urlsafe.Parse(a.URL)
	if err != nil {
		return c.errAt(p+".url", err)
	}
	if a.URL == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return c.errAt(p+".url", errors.New("want the agent's https://host:port"))
	}
	if u.User != nil || u.RawQuery != "" {
		return c.errAt(p+".url", errors.New("the agent URL takes no user, password or query (put the token in token:)"))
	}
	if len(a.PublicKeys) == 0 {
		return c.errAt(p+".public_keys", errors.New("at least one trusted agent public key is required (ragparity agent keygen writes one)"))
	}
	if a.MaxAge < 0 {
		return c.errAt(p+".max_age", errors.New("must be positive"))
	}
	if a.MaxAge == 0 {
		a.MaxAge = 30 * time.Minute
	}
	if (a.Cert == "") != (a.Key == "") {
		return c.errAt(p+".cert", errors.New("cert and key go together (the gate's client certificate for mTLS)"))
	}
	return nil
}

func (c *Config) validateAgentServer() error {
	a := &c.Agent
	if a.Region != "" {
		found := false
		for _, r := range c.Regions {
			found = found || r.Name == a.Region
		}
		if !found {
			return c.errAt("$.agent.region", fmt.Errorf("unknown region %q", a.Region))
		}
	}
	if a.Interval < 0 || a.CheckEvery < 0 || a.MaxAge < 0 {
		return c.errAt("$.agent", errors.New("durations must be positive"))
	}
	if a.Interval == 0 {
		a.Interval = 10 * time.Minute
	}
	if a.CheckEvery == 0 {
		a.CheckEvery = 15 * time.Second
	}
	if a.MaxAge == 0 {
		a.MaxAge = max(30*time.Minute, 3*a.Interval)
	}
	if a.MaxAge < a.Interval {
		return c.errAt("$.agent.max_age", fmt.Errorf("%v is shorter than interval %v: every scan would expire before the next", a.MaxAge, a.Interval))
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return c.errAt("$.agent.tls_cert", errors.New("tls_cert and tls_key go together"))
	}
	if a.ClientCA != "" && a.TLSCert == "" {
		return c.errAt("$.agent.client_ca", errors.New("client certificates (mTLS) need TLS: set tls_cert and tls_key"))
	}
	return nil
}

// CheckURL checks that a store URL parses and has a scheme.
func CheckURL(raw string) error {
	u, err := urlsafe.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "" {
		return errors.New("URL has no scheme (want e.g. postgres://, qdrant://, embedded://)")
	}
	return nil
}

// Region returns the region with that name.
func (c *Config) Region(name string) (*Region, error) {
	for i := range c.Regions {
		if c.Regions[i].Name == name {
			return &c.Regions[i], nil
		}
	}
	names := make([]string, len(c.Regions))
	for i, r := range c.Regions {
		names[i] = r.Name
	}
	return nil, fmt.Errorf("%s: no region %q (regions: %s)", c.File, name, strings.Join(names, ", "))
}

// AnalyzerFor returns the region's analyzer (its own, else the top-level
// one, else nil).
func (c *Config) AnalyzerFor(r *Region) *Analyzer {
	if r.Analyzer != nil {
		return r.Analyzer
	}
	return c.Analyzer
}

// CacheRoot returns cache_dir or ~/.cache/ragparity.
func (c *Config) CacheRoot() string {
	if c.CacheDir != "" {
		return c.CacheDir
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ragparity")
	}
	return filepath.Join(os.TempDir(), "ragparity-cache")
}

// DeclaredSettings merges the top-level settings with a region's own.
func (c *Config) DeclaredSettings(r *Region) map[string]any {
	out := map[string]any{}
	for k, v := range c.Settings {
		out[k] = v
	}
	for k, v := range r.Settings {
		out[k] = v
	}
	return out
}

// Skipped reports whether a gate check is deliberately skipped.
func (c *Config) Skipped(check string) bool {
	for _, s := range c.Gate.Skip {
		if s == check {
			return true
		}
	}
	return false
}

// CheckTimeout returns the timeout of a gate check (default: the config's
// timeout, 5 s for health and dedupe_kv).
func (c *Config) CheckTimeout(check string) time.Duration {
	if d, ok := c.Gate.Timeouts[check]; ok && d > 0 {
		return d
	}
	switch check {
	case "health", "dedupe_kv":
		return 5 * time.Second
	}
	return c.Timeout
}

// SourceDigest is the SHA-256 (hex) of the config file's text as written
// (before ${ENV} expansion, so it holds no secret): a verdict records it
// among its inputs, so that a changed config is never served a verdict
// computed over another.
func (c *Config) SourceDigest() string {
	h := sha256.Sum256(c.src)
	return hex.EncodeToString(h[:])
}
