package probe

import (
	"errors"
	"fmt"
)

// Config holds the probe's parameters and thresholds (the config file's
// top-level `probe:` section). Every threshold is printed in reports.
// Start from Defaults(): a zero value is a valid, strict threshold (drift_max
// 0 demands identical ΔS), not "use the default".
type Config struct {
	// K is the number of hits retrieved per probe (recall@k, MRR@k,
	// Jaccard of the top k; the λ trajectory has k steps).
	K int `yaml:"k" json:"k"`
	// Seeds is the number of probe seeds; each re-runs every search.
	Seeds int `yaml:"seeds" json:"seeds"`
	// MinQuestions is the smallest gold set the drift gate accepts.
	MinQuestions int `yaml:"min_questions" json:"min_questions"`
	// DriftMax bounds max over questions of drift(q).
	DriftMax float64 `yaml:"drift_max" json:"drift_max"`
	// DeltaSMax is the quality floor: ΔS per question, per region.
	DeltaSMax float64 `yaml:"delta_s_max" json:"delta_s_max"`
	// CoverageMin is the quality floor: share of questions with a gold id
	// in the top k, per region.
	CoverageMin float64 `yaml:"coverage_min" json:"coverage_min"`
	// JaccardWarn and KendallWarn warn (never fail) below them.
	JaccardWarn float64 `yaml:"jaccard_warn" json:"jaccard_warn"`
	KendallWarn float64 `yaml:"kendall_warn" json:"kendall_warn"`
	// ConvergentShareMin is the share of questions whose λ must be
	// convergent, per region and seed.
	ConvergentShareMin float64 `yaml:"convergent_share_min" json:"convergent_share_min"`
	// LambdaAgreementMin is the share of questions whose λ state must be
	// identical across seeds and regions.
	LambdaAgreementMin float64 `yaml:"lambda_agreement_min" json:"lambda_agreement_min"`
	// EfSearch and Probes pin the ANN effort of the serving searches (the
	// ANN-health probe, and the parity probes with search: ann); 0: the
	// store's default. EfSearch (default 100) must be at least K.
	EfSearch int `yaml:"ef_search" json:"ef_search"`
	Probes   int `yaml:"probes" json:"probes"`
	// Search is how the parity probes search: "exact" (default; brute
	// force, no index, so identical content gives drift 0 exactly) or
	// "ann" (the serving index with EfSearch/Probes; for indexes too large
	// to scan per question, where two index builds may differ).
	Search string `yaml:"search" json:"search"`
	// ANNRecallMin is the ANN-health floor: mean recall@10 of a region's
	// serving search against its own exact search, over the gold set.
	ANNRecallMin float64 `yaml:"ann_recall_min" json:"ann_recall_min"`
	// ANNDriftMax bounds drift instead of DriftMax when Search is "ann":
	// two HNSW graphs built separately from the same rows answer a few
	// questions differently (pgvector issue 786), which measured up to
	// 0.074 on the SciFact subset with the offline embedder, so an ANN
	// parity probe needs headroom that an exact one does not.
	ANNDriftMax float64 `yaml:"ann_drift_max" json:"ann_drift_max"`
	// The λ rule's thresholds (metrics.md "λ"): a step above
	// LambdaChaosStep is chaotic; a net move of −LambdaNetMove or less is
	// convergent (if E_res never rises by more than LambdaEresRise), a net
	// move under LambdaNetMove recursive (if E_res spans less than
	// LambdaEresFlat); E_res is the mean of the last LambdaWindow steps.
	LambdaChaosStep float64 `yaml:"lambda_chaos_step" json:"lambda_chaos_step"`
	LambdaNetMove   float64 `yaml:"lambda_net_move" json:"lambda_net_move"`
	LambdaEresRise  float64 `yaml:"lambda_eres_rise" json:"lambda_eres_rise"`
	LambdaEresFlat  float64 `yaml:"lambda_eres_flat" json:"lambda_eres_flat"`
	LambdaWindow    int     `yaml:"lambda_window" json:"lambda_window"`
	// ChaoticRunsMax is the release floor's allowance of chaotic runs per
	// region and seed (metrics.md: none).
	ChaoticRunsMax int `yaml:"chaotic_runs_max" json:"chaotic_runs_max"`
	// NewChaoticMax is a region's allowance of chaotic runs where the
	// reference's run of the same question and seed was not chaotic.
	NewChaoticMax int `yaml:"new_chaotic_max" json:"new_chaotic_max"`
}

// Search modes.
const (
	SearchExact = "exact"
	SearchANN   = "ann"
)

// DefaultEfSearch is the serving search effort the probes pin by default
// (pgvector hnsw.ef_search, Qdrant hnsw_ef).
const DefaultEfSearch = 100

// LambdaRule returns the λ thresholds of c.
func (c Config) LambdaRule() LambdaRule {
	return LambdaRule{ChaosStep: c.LambdaChaosStep, NetMove: c.LambdaNetMove, EresRise: c.LambdaEresRise, EresFlat: c.LambdaEresFlat, Window: c.LambdaWindow}
}

// exact reports whether parity probes search exactly.
func (c Config) exact() bool { return c.Search != SearchANN }

// Defaults returns the thresholds of metrics.md.
func Defaults() Config {
	return Config{
		K:                  10,
		Seeds:              2,
		MinQuestions:       10,
		DriftMax:           0.03,
		DeltaSMax:          0.45,
		CoverageMin:        0.70,
		JaccardWarn:        0.6,
		KendallWarn:        0.6,
		ConvergentShareMin: 0.80,
		LambdaAgreementMin: 0.90,
		EfSearch:           DefaultEfSearch,
		Search:             SearchExact,
		ANNRecallMin:       0.90,
		ANNDriftMax:        0.10,
		LambdaChaosStep:    DefaultLambda.ChaosStep,
		LambdaNetMove:      DefaultLambda.NetMove,
		LambdaEresRise:     DefaultLambda.EresRise,
		LambdaEresFlat:     DefaultLambda.EresFlat,
		LambdaWindow:       DefaultLambda.Window,
	}
}

// ConfigError is a bad probe setting; Field is its YAML name.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("probe.%s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks ranges.
func (c Config) Validate() error {
	share := func(field string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return &ConfigError{field, fmt.Errorf("%v is not in [0, 1]", v)}
		}
		return nil
	}
	switch {
	case c.K < 1 || c.K > 1000:
		return &ConfigError{"k", fmt.Errorf("%d is not in [1, 1000]", c.K)}
	case c.Seeds < 1 || c.Seeds > 100:
		return &ConfigError{"seeds", fmt.Errorf("%d is not in [1, 100]", c.Seeds)}
	case c.MinQuestions < 1:
		return &ConfigError{"min_questions", errors.New("must be at least 1")}
	case c.EfSearch < 0:
		return &ConfigError{"ef_search", errors.New("must not be negative")}
	case c.EfSearch > 0 && c.EfSearch < c.K:
		return &ConfigError{"ef_search", fmt.Errorf("%d is below k=%d: an HNSW search returns at most ef_search hits", c.EfSearch, c.K)}
	case c.Probes < 0:
		return &ConfigError{"probes", errors.New("must not be negative")}
	case c.Search != "" && c.Search != SearchExact && c.Search != SearchANN:
		return &ConfigError{"search", fmt.Errorf("%q is neither %q nor %q", c.Search, SearchExact, SearchANN)}
	case c.LambdaWindow < 1 || c.LambdaWindow > 1000:
		return &ConfigError{"lambda_window", fmt.Errorf("%d is not in [1, 1000]", c.LambdaWindow)}
	case c.ChaoticRunsMax < 0:
		return &ConfigError{"chaotic_runs_max", errors.New("must not be negative")}
	case c.NewChaoticMax < 0:
		return &ConfigError{"new_chaotic_max", errors.New("must not be negative")}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"drift_max", c.DriftMax}, {"delta_s_max", c.DeltaSMax}, {"coverage_min", c.CoverageMin},
		{"convergent_share_min", c.ConvergentShareMin}, {"lambda_agreement_min", c.LambdaAgreementMin},
		{"ann_recall_min", c.ANNRecallMin}, {"ann_drift_max", c.ANNDriftMax}, {"lambda_chaos_step", c.LambdaChaosStep}, {"lambda_net_move", c.LambdaNetMove},
		{"lambda_eres_rise", c.LambdaEresRise}, {"lambda_eres_flat", c.LambdaEresFlat}} {
		if err := share(f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"jaccard_warn", c.JaccardWarn}, {"kendall_warn", c.KendallWarn}} {
		if !(f.v >= -1 && f.v <= 1) {
			return &ConfigError{f.name, fmt.Errorf("%v is not in [-1, 1]", f.v)}
		}
	}
	return nil
}

// DriftLimit is the drift threshold of the configured search: DriftMax for
// exact parity searches, ANNDriftMax for ANN ones.
func (c Config) DriftLimit() float64 {
	if c.Search == SearchANN {
		return c.ANNDriftMax
	}
	return c.DriftMax
}
