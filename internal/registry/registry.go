// Package registry is the one scheme → opener registry that vector
// stores, blob stores and embedders register themselves in (from init()),
// as rclone's fs registry and litestream's replica URLs do.
package registry

import (
	"slices"
	"strings"
	"sync"
)

// Registry maps a lower-case URL scheme to an opener of type T. The zero
// value is ready to use and safe for concurrent use.
type Registry[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

// Register registers an opener for a scheme (case-insensitive); a later
// registration of the same scheme replaces the earlier one.
func (r *Registry[T]) Register(scheme string, o T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]T{}
	}
	r.m[strings.ToLower(scheme)] = o
}

// Lookup returns the opener of a scheme (case-insensitive).
func (r *Registry[T]) Lookup(scheme string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, ok := r.m[strings.ToLower(scheme)]
	return o, ok
}

// Schemes lists the registered schemes, sorted.
func (r *Registry[T]) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.m))
	for k := range r.m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}
