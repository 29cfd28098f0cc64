package gate

import (
	"context"
	"fmt"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// The tolerant root is computed when the command asks (ScanOptions) or
// the config does (hash.tolerant), and only then.
func TestScanRegionsTolerantOnRequest(t *testing.T) {
	dir := t.TempDir()
	u := fmt.Sprintf("embedded://%s?collection=c", dir)
	s, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 30, 1))
	for _, c := range []struct {
		yaml      string
		opt, want bool
	}{{"", false, false}, {"", true, true}, {"hash: {tolerant: true}\n", false, true}, {"hash: {tolerant: false}\n", false, false}} {
		cfg, err := config.Parse("cfg.yaml", []byte(c.yaml+fmt.Sprintf("release: r\nregions:\n  - name: a\n    vectors: %q\n", u)))
		if err != nil {
			t.Fatal(err)
		}
		res := ScanRegions(context.Background(), cfg, []*config.Region{&cfg.Regions[0]}, ScanOptions{Tolerant: c.opt})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		if got := res[0].Scan.HasTolerant(); got != c.want {
			t.Errorf("config %q, option %v: tolerant root %v, want %v", c.yaml, c.opt, got, c.want)
		}
	}
}
