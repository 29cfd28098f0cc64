package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
)

// DedupeRateMin is the playbook's target dedupe rate of replayed writes
// over a failover window (metrics.md "Idempotency fence").
const DedupeRateMin = 0.999

// MeasureDedupeRate is a region's dedupe rate over the current window.
const MeasureDedupeRate = "dedupe_rate"

// dedupeCheck: each region's fence store answers, its warm marker is
// present, and over the current failover window the fence stopped at
// least 99.9 % of the writes that were replayed (every write path:
// rebuilds and the application's writers through the fence API).
func dedupeCheck(ctx context.Context, cfg *config.Config) Check {
	c := Check{Threshold: fmt.Sprintf("every region's dedupe KV reachable and warm; dedupe rate of replayed writes >= %g over the current window", DedupeRateMin)}
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
		var win fence.WindowStat
		if err == nil {
			win, err = f.Window(ctx, r.Name, cfg.Fence.FailoverWindow)
		}
		f.Close()
		if err != nil {
			res.inconclusive(r.Name, err.Error())
			continue
		}
		c.Measures = append(c.Measures, Measure{Name: MeasureDedupeRate, Region: r.Name, Value: win.Rate})
		c.Measures = append(c.Measures,
			Measure{Name: MeasureDedupeHits, Region: r.Name, Value: float64(ws.Hits)},
			Measure{Name: MeasureDedupeMisses, Region: r.Name, Value: float64(ws.Misses)})
		if !ws.Warm {
			res.fail(r.Name, "fence is cold")
			c.Evidence = append(c.Evidence, r.Name+": fence is cold (no warm marker: run `ragparity rebuild` against this region's dedupe_kv)")
			continue
		}
		if win.Replayed > 0 && win.Rate < DedupeRateMin {
			why := fmt.Sprintf("dedupe rate %.4f < %g: %d of %d replayed writes were applied again in the window from %s", win.Rate, DedupeRateMin, win.Replayed-win.Hits, win.Replayed, win.Start.UTC().Format(time.RFC3339))
			res.fail(r.Name, why)
			c.Evidence = append(c.Evidence, r.Name+": "+why)
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
