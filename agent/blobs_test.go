package agent

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// manifestAnswer serves the parts of a manifest a query asks for, and
// refuses queries it cannot answer.
func TestManifestAnswerViews(t *testing.T) {
	m := &blob.BlobManifest{Location: "file:///x", Mode: blob.ModeContent}
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("k%03d", i)
		m.Entries = append(m.Entries, blob.BlobEntry{Key: k, Size: int64(i), SHA256: parity.Digest{byte(i)}, Basis: blob.BasisContent})
		m.Objects++
		m.Bytes += int64(i)
	}
	if err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	ask := func(q string) (*Manifest, error) {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		return manifestAnswer(m, v)
	}
	full, err := ask("")
	if err != nil {
		t.Fatal(err)
	}
	if es, err := decodeEntries(full.Entries); err != nil || len(es) != 300 || full.Leaves != nil {
		t.Errorf("full view: %d entries (%v), leaves %v", len(es), err, full.Leaves != nil)
	}
	sum, err := ask("view=summary")
	if err != nil || sum.Entries != nil || sum.Leaves != nil || sum.Hash != m.Hash().Hex() || sum.Objects != 300 {
		t.Errorf("summary: %+v, %v", sum, err)
	}
	lv, err := ask("view=leaves")
	if err != nil || lv.Leaves == nil || lv.Entries != nil {
		t.Fatalf("leaves view: %+v, %v", lv, err)
	}
	if ls, err := lv.Leaves.decode(); err != nil || parity.Root(ls) != parity.Root(m.Leaves) {
		t.Errorf("leaves view: leaves do not match (%v)", err)
	}
	bk := parity.BucketOf("k007", blob.ManifestBuckets)
	one, err := ask(fmt.Sprintf("b=%d", bk))
	if err != nil {
		t.Fatal(err)
	}
	es, err := decodeEntries(one.Entries)
	if err != nil || fmt.Sprint(one.EntryBuckets) != fmt.Sprint([]int{bk}) || len(es) != len(m.Bucket(bk)) || len(es) == 0 {
		t.Errorf("b=%d: buckets %v, %d entries (%v), want %d", bk, one.EntryBuckets, len(es), err, len(m.Bucket(bk)))
	}
	for _, e := range es {
		if parity.BucketOf(e.Key, blob.ManifestBuckets) != bk {
			t.Errorf("b=%d served %q of another bucket", bk, e.Key)
		}
	}
	for q, want := range map[string]string{
		"view=all":              "view",
		"b=4096":                "not a bucket",
		"b=-1":                  "not a bucket",
		"b=x":                   "not a bucket",
		"b=1&view=leaves":       "not with view",
		"b=" + manyBuckets(513): "at most",
	} {
		if _, err := ask(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: %v, want an error saying %q", q, err, want)
		}
	}
}

func manyBuckets(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return strings.Join(s, ",")
}
