package gate

import (
	"context"
	"fmt"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
)

// dedupeCheck: each region's fence store answers and its warm marker is
// present.
func dedupeCheck(ctx context.Context, cfg *config.Config) Check {
	c := Check{Threshold: "every region's dedupe KV reachable and warm"}
	res := newResults(cfg)
	var hits, misses int64
	for _, r := range cfg.Regions {
		if r.DedupeKV == "" {
			res.inconclusive(r.Name, "no dedupe_kv configured")
			continue
		}
		f, err := fence.Open(r.DedupeKV, "")
		if err != nil {
			res.inconclusive(r.Name, err.Error())
			continue
		}
		ws, err := f.Warm(ctx)
		f.Close()
		if err != nil {
			res.inconclusive(r.Name, err.Error())
			continue
		}
		c.Measures = append(c.Measures,
			Measure{Name: MeasureDedupeHits, Region: r.Name, Value: float64(ws.Hits)},
			Measure{Name: MeasureDedupeMisses, Region: r.Name, Value: float64(ws.Misses)})
		if !ws.Warm {
			res.fail(r.Name, "fence is cold")
			c.Evidence = append(c.Evidence, r.Name+": fence is cold (no warm marker: run `ragparity rebuild` against this region's dedupe_kv)")
			continue
		}
		res.pass(r.Name)
		hits += ws.Hits
		misses += ws.Misses
	}
	res.apply(&c)
	c.Figure = fmt.Sprintf("%d of %d regions warm (dedupe hits %d, misses %d, over their rebuilds)", countStatus(c.Regions, Pass), len(cfg.Regions), hits, misses)
	return c
}
