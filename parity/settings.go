package parity

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// MergeSettings overlays declared settings (from config: model tag,
// analyzer, chunker, ...) on what the store reports. A declared key that
// the store also reports with a different value is an error: the store's
// catalog is the truth, and a config that contradicts it is wrong.
func MergeSettings(store Settings, declared map[string]any) (Settings, error) {
	out := NewSettings()
	for k, v := range store.Hashed {
		out.Hashed[k] = v
	}
	for k, v := range store.Info {
		out.Info[k] = v
	}
	for k, v := range declared {
		if sv, ok := store.Hashed[k]; ok && !sameJSON(sv, v) {
			return out, fmt.Errorf("settings.%s: config declares %v but the store reports %v", k, v, sv)
		}
		out.Hashed[k] = v
	}
	return out, nil
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	ca, err1 := CanonicalPayload(ja)
	cb, err2 := CanonicalPayload(jb)
	return err1 == nil && err2 == nil && string(ca) == string(cb)
}

// SettingsDigest = SHA-256("ragparity/settings/v1" || JCS(hashed settings)).
func SettingsDigest(hashed map[string]any) (Digest, error) {
	js, err := json.Marshal(hashed)
	if err != nil {
		return Digest{}, fmt.Errorf("settings: %w", err)
	}
	c, err := CanonicalPayload(js)
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(append([]byte(tagSettings), c...)), nil
}

// SettingDiff is one setting that differs between two regions.
type SettingDiff struct {
	Key    string `json:"key"`
	From   any    `json:"from"`
	To     any    `json:"to"`
	Hashed bool   `json:"hashed"`
}

// DiffSettings lists every setting whose value differs (absent on one side
// shows as null), hashed ones first, each group sorted by key.
func DiffSettings(a, b Settings) []SettingDiff {
	var out []SettingDiff
	for _, g := range []struct {
		x, y   map[string]any
		hashed bool
	}{{a.Hashed, b.Hashed, true}, {a.Info, b.Info, false}} {
		keys := map[string]bool{}
		for k := range g.x {
			keys[k] = true
		}
		for k := range g.y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if !g.hashed && (k == "points_count" || k == "engine") {
				continue // differs by nature across regions and engines
			}
			va, oka := g.x[k]
			vb, okb := g.y[k]
			if oka && okb && sameJSON(va, vb) {
				continue
			}
			out = append(out, SettingDiff{Key: k, From: va, To: vb, Hashed: g.hashed})
		}
	}
	return out
}
