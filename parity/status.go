package parity

// Status is the one outcome vocabulary of every check: the gate's checks
// and regions, the probe's checks, the verdict's decision.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Inconclusive: the check could not run or timed out; it never admits.
	Inconclusive Status = "inconclusive"
	// Skipped: the config deliberately skips the check.
	Skipped Status = "skipped"
	// Warn reports without failing (the probe's Jaccard and Kendall).
	Warn Status = "warn"
	// Degraded is a verdict's decision when some regions are admitted and
	// others are not.
	Degraded Status = "degraded"
)
