package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// memBlobs is an in-memory BlobReader for unit tests.
type memBlobs struct {
	loc     string
	objs    map[string][]byte
	etags   map[string]string
	sums    map[string][2]string // sha256, crc64nvme
	lm      time.Time
	failKey string
	dupKey  string
	grow    string // key whose content is longer when read than listed
	mu      sync.Mutex
	opened  map[string]int
	stats   int
}

func newMem(loc string, objs map[string][]byte) *memBlobs {
	return &memBlobs{loc: loc, objs: objs, etags: map[string]string{}, sums: map[string][2]string{},
		lm: time.Unix(1_700_000_000, 0), opened: map[string]int{}}
}

func (m *memBlobs) info(k string) parity.ObjectInfo {
	etag := m.etags[k]
	if etag == "" {
		s := sha256.Sum256(m.objs[k])
		etag = fmt.Sprintf("%x", s[:16])
	}
	return parity.ObjectInfo{Key: k, Size: int64(len(m.objs[k])), ETag: etag, LastModified: m.lm}
}

func (m *memBlobs) List(ctx context.Context, fn func(parity.ObjectInfo) error) error {
	keys := make([]string, 0, len(m.objs))
	for k := range m.objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m.info(k)); err != nil {
			return err
		}
		if k == m.dupKey {
			if err := fn(m.info(k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	m.opened[key]++
	m.mu.Unlock()
	if key == m.failKey {
		return nil, fmt.Errorf("mem: open %q: boom", key)
	}
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("mem: %q: %w", key, adapters.ErrNotFound)
	}
	if key == m.grow {
		b = append(append([]byte(nil), b...), 'x')
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) Stat(ctx context.Context, key string) (parity.ObjectInfo, error) {
	m.mu.Lock()
	m.stats++
	m.mu.Unlock()
	oi := m.info(key)
	oi.ChecksumSHA256, oi.ChecksumCRC64NVME = m.sums[key][0], m.sums[key][1]
	return oi, nil
}

func (m *memBlobs) Location() string { return m.loc }
func (m *memBlobs) Close() error     { return nil }

func build(t *testing.T, r adapters.BlobReader, o ManifestOptions) *BlobManifest {
	t.Helper()
	m, err := BuildManifest(context.Background(), r, o)
	if err != nil {
		t.Fatalf("BuildManifest: %v", err)
	}
	return m
}

// TestManifestHashFormatIsPinned pins the published encoding: a change to
// any tag or field order changes these values.
func TestManifestHashFormatIsPinned(t *testing.T) {
	if got, want := BlobEntryDigest("docs/a b.txt", 5, sha256.Sum256([]byte("hello"))).Hex(),
		"4168654920e8e5cef9e44904f651d19f90eb8668ab30de73ef78eef20217300a"; got != want {
		t.Errorf("entry digest = %s, want %s", got, want)
	}
	empty := build(t, newMem("mem://empty", map[string][]byte{}), ManifestOptions{})
	if got, want := empty.Hash().Hex(), "66815bd258080e958f6259fd29bfd8dbcc16185b80aaae2179373b9a4e996259"; got != want {
		t.Errorf("empty manifest hash = %s, want %s", got, want)
	}
	two := build(t, newMem("mem://two", map[string][]byte{"docs/a b.txt": []byte("hello"), "ключ": {}}), ManifestOptions{})
	if got, want := two.Hash().Hex(), "e9af4faff433b4a530140fe6713bc7c71384d01c622615c0545d3e5dfeaa6838"; got != want {
		t.Errorf("two-object manifest hash = %s, want %s", got, want)
	}
	if !two.Exact() || two.Objects != 2 || two.Bytes != 5 || two.ObjectsRead != 2 || two.BytesRead != 5 {
		t.Errorf("manifest = exact %v objects %d bytes %d read %d/%d; want true 2 5 2/5", two.Exact(), two.Objects, two.Bytes, two.ObjectsRead, two.BytesRead)
	}
}

func TestManifestDoesNotDependOnETagsOrWorkers(t *testing.T) {
	objs := map[string][]byte{}
	for i := range 300 {
		objs[fmt.Sprintf("k/%d", i)] = []byte(strings.Repeat("z", i))
	}
	a, b := newMem("mem://a", objs), newMem("mem://b", objs)
	for k := range objs {
		b.etags[k] = "0123456789abcdef0123456789abcdef-3"
	}
	ma := build(t, a, ManifestOptions{Workers: 1})
	mb := build(t, b, ManifestOptions{Workers: 64})
	if ma.Hash() != mb.Hash() {
		t.Errorf("same bytes, different ETags/worker counts: hashes %s and %s differ", ma.Hash().Hex(), mb.Hash().Hex())
	}
	if d := DiffManifests("a", "b", ma, mb); !d.Equal || d.Verdict != VerdictEqual || d.EntriesExamined != 0 {
		t.Errorf("diff = %+v, want equal with nothing examined", d)
	}
}

func TestParseBlobMode(t *testing.T) {
	for in, want := range map[string]BlobMode{"": ModeContent, "content": ModeContent, "CHECKSUM": ModeChecksum, "etag": ModeETag} {
		if got, err := ParseBlobMode(in); err != nil || got != want {
			t.Errorf("ParseBlobMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseBlobMode("md5"); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("ParseBlobMode(md5) error = %v, want one naming --mode", err)
	}
	if _, err := BuildManifest(context.Background(), newMem("m", nil), ManifestOptions{Mode: "fast"}); err == nil {
		t.Errorf("BuildManifest with mode fast: no error")
	}
}

func TestCompareETags(t *testing.T) {
	const x, y = "0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"
	for _, tc := range []struct {
		a, b    string
		changed bool
		why     string
	}{
		{x, x, false, ""},
		{x, y, true, ""},
		{x + "-2", x + "-2", false, ""},
		{x + "-2", y + "-3", false, "different part counts"},
		{x + "-2", y + "-2", false, "part sizes are unknown"},
		{x, y + "-2", false, "single-part ETag against a multipart"},
		{"", x, false, "no ETag"},
	} {
		changed, why := CompareETags(tc.a, tc.b)
		if changed != tc.changed || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("CompareETags(%q, %q) = %v, %q; want %v, %q", tc.a, tc.b, changed, why, tc.changed, tc.why)
		}
	}
}

func TestETagModeNeverEqualAndFindsDifferences(t *testing.T) {
	objs := map[string][]byte{"a": []byte("1"), "b": []byte("22"), "c": []byte("333")}
	etag := ManifestOptions{Mode: ModeETag}
	ra, rb := newMem("mem://a", objs), newMem("mem://b", objs)
	d := DiffManifests("a", "b", build(t, ra, etag), build(t, rb, etag))
	if d.Equal || d.Verdict != VerdictInconclusive || !strings.Contains(d.Note, "no difference found by the ETag pre-filter") {
		t.Errorf("identical stores in etag mode: %+v; want not equal, inconclusive, with the pre-filter note", d)
	}
	if len(ra.opened) != 0 {
		t.Errorf("etag mode opened %d objects, want 0", len(ra.opened))
	}
	other := map[string][]byte{"a": []byte("1"), "b": []byte("2x"), "c": []byte("3333")}
	rc := newMem("mem://c", other)
	d = DiffManifests("a", "c", build(t, ra, etag), build(t, rc, etag))
	got := fmt.Sprint(d.Changed)
	if d.Verdict != VerdictDifferent || got != "[{b etag "+ra.info("b").ETag+" -> "+rc.info("b").ETag+"} {c size 3 -> 4 bytes}]" {
		t.Errorf("etag-mode diff: verdict %s changed %s", d.Verdict, got)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestChecksumModePlan(t *testing.T) {
	objs := map[string][]byte{"sha": []byte("s"), "crc": []byte("c"), "mixed": []byte("m"), "none": []byte("n"), "onlyA": []byte("o")}
	a := newMem("mem://a", objs)
	b := newMem("mem://b", map[string][]byte{"sha": []byte("s"), "crc": []byte("c"), "mixed": []byte("m"), "none": []byte("n")})
	sha := sha256.Sum256([]byte("s"))
	crc := b64([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	for _, m := range []*memBlobs{a, b} {
		m.sums["sha"] = [2]string{b64(sha[:]), crc}
		m.sums["crc"] = [2]string{"", crc}
	}
	a.sums["mixed"] = [2]string{b64(sha[:]), ""}
	b.sums["mixed"] = [2]string{"", crc}
	a.sums["onlyA"] = [2]string{"", crc}
	o := ManifestOptions{Mode: ModeChecksum}
	ms := []*BlobManifest{}
	for _, r := range []*memBlobs{a, b} {
		m, err := ListManifest(context.Background(), r, o)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	PlanBlobChecksums(ms)
	for i, r := range []*memBlobs{a, b} {
		if err := ms[i].HashPending(context.Background(), r, o); err != nil {
			t.Fatal(err)
		}
		if err := ms[i].Finish(); err != nil {
			t.Fatal(err)
		}
	}
	basis := map[string]string{}
	for _, e := range ms[0].Entries {
		basis[e.Key] = e.Basis.String()
	}
	want := map[string]string{"sha": "checksum-sha256", "crc": "checksum-crc64nvme", "mixed": "content", "none": "content", "onlyA": "checksum-crc64nvme"}
	if fmt.Sprint(basis) != fmt.Sprint(want) {
		t.Errorf("bases = %v, want %v", basis, want)
	}
	if got := fmt.Sprint(a.opened); got != "map[mixed:1 none:1]" {
		t.Errorf("objects read in a = %s, want only mixed and none", got)
	}
	if ms[0].Exact() {
		t.Errorf("a manifest with CRC entries reports Exact")
	}
	d := DiffManifests("a", "b", ms[0], ms[1])
	if d.Verdict != VerdictDifferent || fmt.Sprint(d.OnlyInFrom) != "[onlyA]" || len(d.Changed) != 0 {
		t.Errorf("diff = %+v, want only onlyA in a", d)
	}
}

func TestBuildErrors(t *testing.T) {
	objs := map[string][]byte{}
	for i := range 100 {
		objs[fmt.Sprintf("o%03d", i)] = []byte{byte(i)}
	}
	t.Run("OpenFailureNamesTheKey", func(t *testing.T) {
		r := newMem("mem://x", objs)
		r.failKey = "o042"
		_, err := BuildManifest(context.Background(), r, ManifestOptions{Workers: 4})
		if err == nil || !strings.Contains(err.Error(), `"o042"`) {
			t.Errorf("error = %v, want one naming o042", err)
		}
	})
	t.Run("KeyListedTwice", func(t *testing.T) {
		r := newMem("mem://x", objs)
		r.dupKey = "o007"
		_, err := BuildManifest(context.Background(), r, ManifestOptions{})
		if err == nil || !strings.Contains(err.Error(), `"o007" listed twice`) {
			t.Errorf("error = %v, want key listed twice", err)
		}
	})
	t.Run("ObjectChangedWhileRead", func(t *testing.T) {
		r := newMem("mem://x", objs)
		r.grow = "o013"
		_, err := BuildManifest(context.Background(), r, ManifestOptions{})
		if err == nil || !strings.Contains(err.Error(), `"o013" changed while it was read`) {
			t.Errorf("error = %v, want o013 changed while it was read", err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := BuildManifest(c, newMem("mem://x", objs), ManifestOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("TooManyWorkers", func(t *testing.T) {
		if _, err := BuildManifest(context.Background(), newMem("m", objs), ManifestOptions{Workers: 5000}); err == nil {
			t.Errorf("5000 workers: no error")
		}
	})
}

func TestDiffExaminesOnlyDifferingBuckets(t *testing.T) {
	objs := map[string][]byte{}
	for i := range 5000 {
		objs[fmt.Sprintf("doc-%05d", i)] = []byte(fmt.Sprint(i))
	}
	ma := build(t, newMem("a", objs), ManifestOptions{})
	objs2 := map[string][]byte{}
	for k, v := range objs {
		objs2[k] = v
	}
	objs2["doc-00100"] = []byte("changed")
	mb := build(t, newMem("b", objs2), ManifestOptions{})
	d := DiffManifests("a", "b", ma, mb)
	if d.BucketsDiffering != 1 || d.EntriesExamined > 12 || len(d.Changed) != 1 || d.Changed[0] != (BlobChange{Key: "doc-00100", Reason: "size", Detail: "3 -> 7 bytes"}) {
		t.Errorf("diff = buckets %d, examined %d, changed %+v; want 1 bucket, a few entries, doc-00100 size", d.BucketsDiffering, d.EntriesExamined, d.Changed)
	}
}
