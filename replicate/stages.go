package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/adapters"
)

// StageEntry is one stage of a region, as `ragparity stages list` shows
// it.
type StageEntry struct {
	Region string `json:"region"`
	// RunID is the rebuild run the stage belongs to (the stage's name).
	RunID  string `json:"run_id"`
	Points int64  `json:"points"`
	// Created is when the stage's current generation began (zero when the
	// region's fence does not know the stage); Age is the time since.
	Created time.Time `json:"created,omitzero"`
	AgeSec  int64     `json:"age_s,omitempty"`
	// Promotable: a rebuild found the stage to hold exactly the content
	// its source says, and its point count has not changed since.
	Promotable bool   `json:"promotable"`
	Why        string `json:"why,omitempty"`
}

// listStages lists a store's stages; listed is false when the store
// cannot list them.
func listStages(ctx context.Context, s adapters.Stager) (stages []adapters.StageInfo, listed bool, err error) {
	l, ok := s.(adapters.StageLister)
	if !ok {
		return nil, false, nil
	}
	stages, err = l.Stages(ctx)
	return stages, true, err
}

// ListStages lists the stages of every target region with what the
// region's fence remembers of them.
func ListStages(ctx context.Context, targets []Target) ([]StageEntry, error) {
	out := []StageEntry{}
	now := time.Now()
	for _, t := range targets {
		stager, ok := t.Store.(adapters.Stager)
		if !ok {
			continue
		}
		l, ok := stager.(adapters.StageLister)
		if !ok {
			return nil, fmt.Errorf("region %s: its store cannot list stages", t.Region)
		}
		stages, err := l.Stages(ctx)
		if err != nil {
			return nil, fmt.Errorf("region %s: %w", t.Region, err)
		}
		for _, s := range stages {
			e := StageEntry{Region: t.Region, RunID: s.Name, Points: s.Points}
			var info stageInfo
			v, found, err := t.Fence.Note(ctx, stageNote(t.Region, s.Name))
			if err != nil {
				return nil, fmt.Errorf("region %s: %w", t.Region, err)
			}
			switch {
			case !found || json.Unmarshal([]byte(v), &info) != nil:
				e.Why = "unknown to the region's fence (made elsewhere, or its record expired)"
			default:
				e.Created = info.Created
				e.AgeSec = int64(now.Sub(info.Created).Seconds())
				switch {
				case !info.Checked:
					e.Why = "never checked against its source (interrupted or failed run)"
				case info.Points != s.Points:
					e.Why = fmt.Sprintf("checked with %d points, holds %d now", info.Points, s.Points)
				default:
					e.Promotable = true
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// DropStage drops the stage of run in the region's store.
func DropStage(ctx context.Context, t Target, run string) error {
	stager, ok := t.Store.(adapters.Stager)
	if !ok {
		return fmt.Errorf("region %s: its store cannot stage writes", t.Region)
	}
	if err := stager.DropStage(ctx, run); err != nil {
		return fmt.Errorf("region %s: %w", t.Region, err)
	}
	return nil
}

// DropStages drops, in each target region that no run is rebuilding right
// now, the stages of list of run (every stage when run is ""); a busy
// region's stages are left alone and reported in the error. A run named
// but found nowhere is an error.
func DropStages(ctx context.Context, targets []Target, list []StageEntry, run string) ([]StageEntry, error) {
	var errs []error
	var dropped []StageEntry
	for _, t := range targets {
		if err := Busy(ctx, []Target{t}, ""); err != nil {
			errs = append(errs, fmt.Errorf("%w: its stages are left alone", err))
			continue
		}
		for _, s := range list {
			if s.Region != t.Region || (run != "" && s.RunID != run) {
				continue
			}
			if err := DropStage(ctx, t, s.RunID); err != nil {
				errs = append(errs, err)
				continue
			}
			dropped = append(dropped, s)
		}
	}
	if run != "" && len(dropped) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no stage of run %s in the selected regions", run))
	}
	return dropped, errors.Join(errs...)
}
