// Package layout holds the test that keeps the import graph pointing one
// way (layout_test.go); it has no code of its own.
//
// From the top down, a package may import only packages of a lower layer,
// or of its own family (the same top-level folder):
//
//	cmd/...                       flags, printing, exit codes
//	demo                          `ragparity demo`, driven through the CLI
//	reports                       renders a verdict and its detail
//	gate (gate/...)               the five checks, verdicts, serve
//	agent                         the regional agent and its client
//	config                        the application config
//	probe, replicate, storetest   gold-set probes; rebuild and blob copy; conformance suites
//	verifier (verifier/...)       HashStore, merkle, shard, diff; blob manifests
//	adapters, embed, goldset, fence   stores, embedders, gold sets, the fence
//	parity, internal/...          the hash format; imports nothing of ours
//
// storetest/... and the *test helper packages are for tests only.
package layout
