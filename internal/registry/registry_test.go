package registry

import (
	"slices"
	"testing"
)

func TestRegistry(t *testing.T) {
	var r Registry[func() int]
	if _, ok := r.Lookup("x"); ok {
		t.Fatal("empty registry finds x")
	}
	r.Register("B", func() int { return 2 })
	r.Register("a", func() int { return 1 })
	if got, want := r.Schemes(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Schemes() = %v, want %v", got, want)
	}
	o, ok := r.Lookup("b")
	if !ok || o() != 2 {
		t.Errorf("Lookup(b): ok=%v", ok)
	}
	r.Register("b", func() int { return 3 })
	if o, _ := r.Lookup("B"); o() != 3 {
		t.Errorf("re-registration did not replace the opener")
	}
}
