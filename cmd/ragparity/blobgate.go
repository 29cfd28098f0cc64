package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/reports"
	"github.com/ragparity/ragparity/verifier/blob"
)

func init() {
	blobGateCheck = blobCheck
}

// blobCheck is the gate's blob manifest parity check: content mode, as the
// playbook requires (ETags are not content hashes).
func blobCheck(cfg *config.Config) func(ctx context.Context) (gate.Check, map[string]string) {
	var with, without []string
	for _, r := range cfg.Regions {
		if r.Blobs != "" {
			with = append(with, r.Name)
		} else {
			without = append(without, r.Name)
		}
	}
	if len(with) == 0 {
		return nil
	}
	return func(ctx context.Context) (gate.Check, map[string]string) {
		c := gate.Check{Threshold: "every region's blob manifest (key, size, sha256 of content) equal"}
		if len(without) > 0 {
			c.Status = gate.Inconclusive
			c.Error = "regions without a blobs URL: " + strings.Join(without, ", ")
			return c, nil
		}
		regions, _ := selectRegions(cfg, nil)
		bf := &blobFlags{mode: string(blob.ModeContent), workers: 16, cacheDir: filepath.Join(cfg.CacheRoot(), "blobs")}
		ms := buildBlobManifests(ctx, cfg, regions, blob.ModeContent, bf, io.Discard, true)
		hashes := map[string]string{}
		var errs []string
		for _, m := range ms {
			if m.Err != nil {
				errs = append(errs, m.Err.Error())
				continue
			}
			hashes[m.Region.Name] = m.M.Hash().Hex()
		}
		if len(errs) > 0 {
			c.Status = gate.Inconclusive
			c.Error = strings.Join(errs, "; ")
			return c, hashes
		}
		ref := gateReference(cfg, hashes)
		var refM *blob.BlobManifest
		var refName string
		for _, m := range ms {
			if hashes[m.Region.Name] == ref && refM == nil {
				refM, refName = m.M, m.Region.Name
			}
		}
		agree := 0
		for _, m := range ms {
			if hashes[m.Region.Name] == ref {
				agree++
				continue
			}
			c.FailedRegions = append(c.FailedRegions, m.Region.Name)
			d := blob.DiffManifests(refName, m.Region.Name, refM, m.M)
			bd := reports.BlobDiff{From: d.From, To: d.To, OnlyInFrom: d.OnlyInFrom, OnlyInTo: d.OnlyInTo}
			for _, ch := range d.Changed {
				bd.Changed = append(bd.Changed, reports.BlobChange{Key: ch.Key, Reason: ch.Reason})
			}
			addBlobDiff(bd)
			n := 0
			add := func(s string) {
				if n < 20 {
					c.Evidence = append(c.Evidence, m.Region.Name+": "+s)
				}
				n++
			}
			for _, k := range d.OnlyInFrom {
				add(fmt.Sprintf("key %q missing (present in %s)", k, refName))
			}
			for _, k := range d.OnlyInTo {
				add(fmt.Sprintf("key %q extra", k))
			}
			for _, ch := range d.Changed {
				add(fmt.Sprintf("key %q differs (%s)", ch.Key, ch.Reason))
			}
			if n > 20 {
				c.Evidence = append(c.Evidence, fmt.Sprintf("%s: ... and %d more keys (ragparity diff --blobs --from %s --to %s)", m.Region.Name, n-20, refName, m.Region.Name))
			}
		}
		c.Figure = fmt.Sprintf("%d of %d regions agree (manifest %s)", agree, len(ms), short(ref))
		c.Status = gate.Pass
		if len(c.FailedRegions) > 0 {
			c.Status = gate.Fail
		}
		return c, hashes
	}
}

// gateReference picks the largest group sharing a value (primary, then
// config order, breaks ties), as the gate does for INDEX_HASH.
func gateReference(cfg *config.Config, val map[string]string) string {
	return gate.Reference(cfg, val)
}
