package main

import (
	"context"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
)

// blobGateCheck returns the blob manifest check for the gate, or nil when
// blob parity is not available.
var blobGateCheck = func(cfg *config.Config) func(ctx context.Context) (gate.Check, map[string]string) {
	return nil
}

// probeGateCheck returns the probe check for the gate.
var probeGateCheck = func(cfg *config.Config, goldset string) func(ctx context.Context) gate.Check {
	return nil
}

// writeReport writes the report of a verdict (format by extension).
var writeReport func(path string, v *gate.Verdict) error
