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
// catalog is the truth, and a config that contradicts it is wrong. A
// declared key the store reports as an engine setting stays one; any other
// declared key is semantic (hashed).
func MergeSettings(store Settings, declared map[string]any) (Settings, error) {
	out := NewSettings()
	for k, v := range store.Hashed {
		out.Hashed[k] = v
	}
	for k, v := range store.Engine {
		out.Engine[k] = v
	}
	for k, v := range store.Info {
		out.Info[k] = v
	}
	for k, v := range declared {
		if sv, ok := store.Engine[k]; ok {
			if !sameJSON(sv, v) {
				return out, fmt.Errorf("settings.%s: config declares %v but the store reports %v", k, v, sv)
			}
			continue
		}
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

// SettingsDigest = SHA-256("ragparity/settings/v2" || JCS(semantic
// settings)): Settings.Hashed, the part INDEX_HASH covers.
func SettingsDigest(hashed map[string]any) (Digest, error) {
	return settingsDigest(tagSettings, hashed)
}

// EngineDigest = SHA-256("ragparity/engine/v1" || JCS(engine settings)):
// Settings.Engine, reported and compared beside INDEX_HASH, never in it.
func EngineDigest(engine map[string]any) (Digest, error) {
	if engine == nil {
		engine = map[string]any{}
	}
	return settingsDigest(tagEngine, engine)
}

func settingsDigest(tag string, m map[string]any) (Digest, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return Digest{}, fmt.Errorf("settings: %w", err)
	}
	c, err := CanonicalPayload(js)
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(append([]byte(tag), c...)), nil
}

// SettingDiff is one setting that differs between two regions. Hashed:
// a semantic setting (INDEX_HASH differs); Engine: an engine setting (the
// engine digest differs, INDEX_HASH does not); neither: reported only.
type SettingDiff struct {
	Key    string `json:"key"`
	From   any    `json:"from"`
	To     any    `json:"to"`
	Hashed bool   `json:"hashed"`
	Engine bool   `json:"engine,omitempty"`
}

// DiffSettings lists every setting whose value differs (absent on one side
// shows as null), semantic (hashed) ones first, then engine ones, then
// info, each group sorted by key.
func DiffSettings(a, b Settings) []SettingDiff {
	var out []SettingDiff
	for _, g := range []struct {
		x, y           map[string]any
		hashed, engine bool
	}{{a.Hashed, b.Hashed, true, false}, {a.Engine, b.Engine, false, true}, {a.Info, b.Info, false, false}} {
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
			if !g.hashed && !g.engine && (k == "points_count" || k == "engine") {
				continue // differs by nature across regions and engines
			}
			va, oka := g.x[k]
			vb, okb := g.y[k]
			if oka && okb && sameJSON(va, vb) {
				continue
			}
			out = append(out, SettingDiff{Key: k, From: va, To: vb, Hashed: g.hashed, Engine: g.engine})
		}
	}
	return out
}
