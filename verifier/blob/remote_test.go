package blob

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

// localSource serves a local manifest as a BucketSource, recording the
// buckets asked for; lie, when set, alters what it serves.
type localSource struct {
	m     *BlobManifest
	asked []int
	calls int
	lie   func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry)
}

func (s *localSource) Leaves(context.Context) ([]parity.Leaf, error) {
	ls := append([]parity.Leaf(nil), s.m.Leaves...)
	if s.lie != nil {
		ls, _ = s.lie(ls, nil)
	}
	return ls, nil
}

func (s *localSource) Entries(_ context.Context, buckets []int) ([]BlobEntry, error) {
	s.calls++
	s.asked = append(s.asked, buckets...)
	var es []BlobEntry
	for _, b := range buckets {
		for _, e := range s.m.bucket(b) {
			es = append(es, BlobEntry{Key: e.Key, Size: e.Size, SHA256: e.SHA256})
		}
	}
	if s.lie != nil {
		_, es = s.lie(nil, es)
	}
	return es, nil
}

func remoteOf(m *BlobManifest, src *localSource) *BlobManifest {
	return NewRemoteManifest("agent", m.Hash(), m.Objects, m.Bytes, src)
}

func remoteObjs(n int) map[string][]byte {
	objs := map[string][]byte{}
	for i := 0; i < n; i++ {
		objs[fmt.Sprintf("docs/%04d.txt", i)] = []byte(fmt.Sprintf("content %d", i))
	}
	return objs
}

// A remote manifest moves only its hash until a diff needs more; a diff
// fetches its leaves and the entries of the differing buckets only, and
// names the same keys as a diff of the two local manifests.
func TestRemoteManifestDiff(t *testing.T) {
	objs := remoteObjs(500)
	a := build(t, newMem("a", objs), ManifestOptions{Mode: ModeContent})
	changed := remoteObjs(500)
	changed["docs/0007.txt"] = []byte("other")
	delete(changed, "docs/0100.txt")
	changed["docs/new.txt"] = []byte("new")
	b := build(t, newMem("b", changed), ManifestOptions{Mode: ModeContent})

	src := &localSource{m: b}
	rb := remoteOf(b, src)
	if rb.Hash() != b.Hash() || !rb.Partial() || rb.Objects != b.Objects {
		t.Fatalf("remote manifest: hash %s objects %d, want %s %d", rb.Hash().Hex(), rb.Objects, b.Hash().Hex(), b.Objects)
	}
	want := DiffManifests("a", "b", a, b)
	got, err := Diff(t.Context(), "a", "b", a, rb)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.OnlyInFrom, got.OnlyInTo, got.Changed, got.Verdict) != fmt.Sprint(want.OnlyInFrom, want.OnlyInTo, want.Changed, want.Verdict) {
		t.Errorf("remote diff %v %v %v %s, local diff %v %v %v %s", got.OnlyInFrom, got.OnlyInTo, got.Changed, got.Verdict,
			want.OnlyInFrom, want.OnlyInTo, want.Changed, want.Verdict)
	}
	if len(src.asked) != want.BucketsDiffering || want.BucketsDiffering > 3 {
		t.Errorf("asked for %d buckets' entries (%v), %d differ", len(src.asked), src.asked, want.BucketsDiffering)
	}
	// Both remote, equal: nothing but leaves is fetched and they are equal.
	sa, sb := &localSource{m: a}, &localSource{m: a}
	d, err := Diff(t.Context(), "x", "y", remoteOf(a, sa), remoteOf(a, sb))
	if err != nil || d.Verdict != VerdictEqual || sa.calls+sb.calls != 0 {
		t.Errorf("equal remotes: %v, verdict %v, entry requests %d", err, d, sa.calls+sb.calls)
	}
	// A second diff reuses the buckets already loaded.
	calls := src.calls
	if _, err := Diff(t.Context(), "a", "b", a, rb); err != nil || src.calls != calls {
		t.Errorf("second diff: %v, %d more entry requests", err, src.calls-calls)
	}
	// Without Diff's fetching, a remote manifest never passes as equal.
	if d := DiffManifests("a", "r", a, remoteOf(a, &localSource{m: a})); d.Verdict != VerdictInconclusive {
		t.Errorf("DiffManifests of an unfetched remote: %s, want inconclusive", d.Verdict)
	}
}

// A source that does not serve the manifest it was opened with is caught
// before anything is diffed.
func TestRemoteManifestRefusesLies(t *testing.T) {
	objs := remoteObjs(300)
	a := build(t, newMem("a", objs), ManifestOptions{Mode: ModeContent})
	changed := remoteObjs(300)
	changed["docs/0001.txt"] = []byte("changed")
	b := build(t, newMem("b", changed), ManifestOptions{Mode: ModeContent})
	var bucket int
	for bk := range a.Leaves {
		if a.Leaves[bk] != b.Leaves[bk] {
			bucket = bk
		}
	}
	for name, c := range map[string]struct {
		lie  func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry)
		want string
	}{
		"LeafChanged": {func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry) {
			if ls != nil {
				ls[5].Count++
			}
			return ls, es
		}, "not the manifest hash"},
		"EntryChanged": {func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry) {
			if len(es) > 0 {
				es[0].Size++
			}
			return ls, es
		}, fmt.Sprintf("bucket %d do not match its leaf", bucket)},
		"EntryDropped": {func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry) {
			if len(es) > 0 {
				es = es[1:]
			}
			return ls, es
		}, "do not match its leaf"},
		"EntryFromElsewhere": {func(ls []parity.Leaf, es []BlobEntry) ([]parity.Leaf, []BlobEntry) {
			if ls == nil {
				es = append(es, BlobEntry{Key: "docs/0200.txt", Size: 3})
			}
			return ls, es
		}, "which was not asked for"},
	} {
		t.Run(name, func(t *testing.T) {
			rb := remoteOf(b, &localSource{m: b, lie: c.lie})
			if _, err := Diff(t.Context(), "a", "b", a, rb); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Diff: %v, want an error saying %q", err, c.want)
			}
		})
	}
	// Totals that do not match the leaves.
	rb := NewRemoteManifest("agent", b.Hash(), b.Objects+1, b.Bytes, &localSource{m: b})
	if _, err := Diff(t.Context(), "a", "b", a, rb); err == nil || !strings.Contains(err.Error(), "its summary") {
		t.Fatalf("Diff with wrong totals: %v", err)
	}
}
