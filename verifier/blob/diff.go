package blob

import (
	"fmt"
	"sort"
	"strings"
)

// BlobChange is a key present in both regions whose object differs (or,
// in Inconclusive, could not be compared).
type BlobChange struct {
	Key string `json:"key"`
	// Reason: "size", "content", "checksum" (a stored checksum decided),
	// "etag" (ETag mode), or for inconclusive keys "etag-inconclusive".
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Blob diff verdicts.
const (
	VerdictEqual        = "equal"
	VerdictDifferent    = "different"
	VerdictInconclusive = "inconclusive"
)

// BlobDiff lists the keys that differ between two manifests.
type BlobDiff struct {
	From         string       `json:"from"`
	To           string       `json:"to"`
	Equal        bool         `json:"equal"`
	Mode         BlobMode     `json:"mode"`
	Verdict      string       `json:"verdict"`
	OnlyInFrom   []string     `json:"only_in_from"`
	OnlyInTo     []string     `json:"only_in_to"`
	Changed      []BlobChange `json:"changed"`
	Inconclusive []BlobChange `json:"inconclusive"`
	Note         string       `json:"note,omitempty"`
	// BucketsDiffering of ManifestBuckets; EntriesExamined counts the
	// entries of differing buckets (both sides), the only ones compared.
	BucketsDiffering int   `json:"buckets_differing"`
	EntriesExamined  int64 `json:"entries_examined"`
}

// ETagNote explains why ETag mode never says "equal".
const ETagNote = "ETag mode is a pre-filter: ETags are not content hashes, so it never reports equal; run --mode content to decide"

// DiffManifests compares two finished manifests leaf by leaf and, for
// differing buckets only, entry by entry. A remote manifest
// (NewRemoteManifest) takes part only with what Diff fetched: a bucket
// whose entries were not fetched is reported inconclusive.
func DiffManifests(from, to string, a, b *BlobManifest) *BlobDiff {
	d := &BlobDiff{From: from, To: to, Mode: a.Mode, OnlyInFrom: []string{}, OnlyInTo: []string{},
		Changed: []BlobChange{}, Inconclusive: []BlobChange{}}
	if a.Leaves == nil || b.Leaves == nil {
		d.Verdict = VerdictInconclusive
		d.Note = "a remote manifest's leaves were not fetched"
		return d
	}
	for bk := 0; bk < ManifestBuckets; bk++ {
		if a.Leaves[bk] == b.Leaves[bk] {
			continue
		}
		d.BucketsDiffering++
		if !a.hasBucket(bk) || !b.hasBucket(bk) {
			d.Inconclusive = append(d.Inconclusive, BlobChange{Key: fmt.Sprintf("(bucket %d)", bk), Reason: "not-fetched",
				Detail: "the entries of a remote manifest's bucket were not fetched"})
			continue
		}
		ea, eb := a.bucket(bk), b.bucket(bk)
		d.EntriesExamined += int64(len(ea) + len(eb))
		i, j := 0, 0
		for i < len(ea) || j < len(eb) {
			switch {
			case j == len(eb) || (i < len(ea) && ea[i].Key < eb[j].Key):
				d.OnlyInFrom = append(d.OnlyInFrom, ea[i].Key)
				i++
			case i == len(ea) || eb[j].Key < ea[i].Key:
				d.OnlyInTo = append(d.OnlyInTo, eb[j].Key)
				j++
			default:
				compareEntries(d, &ea[i], &eb[j])
				i++
				j++
			}
		}
	}
	sort.Strings(d.OnlyInFrom)
	sort.Strings(d.OnlyInTo)
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Key < d.Changed[j].Key })
	sort.Slice(d.Inconclusive, func(i, j int) bool { return d.Inconclusive[i].Key < d.Inconclusive[j].Key })
	differs := len(d.OnlyInFrom)+len(d.OnlyInTo)+len(d.Changed) > 0
	switch {
	case differs:
		d.Verdict = VerdictDifferent
	case a.Mode == ModeETag || b.Mode == ModeETag:
		d.Verdict = VerdictInconclusive
		d.Note = "no difference found by the ETag pre-filter"
		if n := len(d.Inconclusive); n > 0 {
			d.Note += fmt.Sprintf(" (%d keys could not be compared by ETag)", n)
		}
		d.Note += "; " + ETagNote
	case d.BucketsDiffering == 0:
		d.Verdict = VerdictEqual
	default:
		d.Verdict = VerdictInconclusive
	}
	d.Equal = d.Verdict == VerdictEqual
	return d
}

func compareEntries(d *BlobDiff, a, b *BlobEntry) {
	if a.digest == b.digest && a.Basis == b.Basis {
		return
	}
	if a.Size != b.Size {
		d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "size", Detail: fmt.Sprintf("%d -> %d bytes", a.Size, b.Size)})
		return
	}
	sha := func(e *BlobEntry) bool { return e.Basis == BasisContent || e.Basis == BasisChecksumSHA256 }
	switch {
	case sha(a) && sha(b):
		if a.SHA256 != b.SHA256 {
			reason := "content"
			if a.Basis == BasisChecksumSHA256 && b.Basis == BasisChecksumSHA256 {
				reason = "checksum"
			}
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: reason,
				Detail: fmt.Sprintf("sha256 %s -> %s", a.SHA256.Hex()[:16], b.SHA256.Hex()[:16])})
		}
	case a.Basis == BasisChecksumCRC && b.Basis == BasisChecksumCRC:
		if a.ChecksumCRC64NVME != b.ChecksumCRC64NVME {
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "checksum",
				Detail: fmt.Sprintf("crc64nvme %s -> %s", a.ChecksumCRC64NVME, b.ChecksumCRC64NVME)})
		}
	case a.Basis == BasisETag && b.Basis == BasisETag:
		changed, why := CompareETags(a.ETag, b.ETag)
		switch {
		case changed:
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "etag", Detail: fmt.Sprintf("%s -> %s", a.ETag, b.ETag)})
		case why != "":
			d.Inconclusive = append(d.Inconclusive, BlobChange{Key: a.Key, Reason: "etag-inconclusive", Detail: why})
		}
	default:
		d.Inconclusive = append(d.Inconclusive, BlobChange{Key: a.Key, Reason: "basis",
			Detail: fmt.Sprintf("compared on different bases (%s vs %s)", a.Basis, b.Basis)})
	}
}

// CompareETags is ETag mode's rule for two objects of the same size.
// Different single-part ETags (MD5 of the content on plain S3) mean
// different content. Multipart ETags ("-N") are never compared across
// objects whose part sizes may differ: a different N, a single-part ETag
// against a multipart one, or the same N with unknown part sizes is
// inconclusive (why says which). Equal ETags are no difference found.
func CompareETags(a, b string) (changed bool, why string) {
	if a == "" || b == "" {
		return false, "no ETag on one side"
	}
	if a == b {
		return false, ""
	}
	na, nb := etagParts(a), etagParts(b)
	switch {
	case na == 0 && nb == 0:
		return true, ""
	case na == 0 || nb == 0:
		return false, "single-part ETag against a multipart one: not comparable"
	case na != nb:
		return false, fmt.Sprintf("multipart ETags with different part counts (-%d vs -%d): uploaded with different part sizes", na, nb)
	}
	return false, fmt.Sprintf("multipart ETags (-%d) differ but the part sizes are unknown", na)
}

// etagParts returns N of a multipart ETag "<hex>-N", 0 for a single-part
// one.
func etagParts(e string) int {
	i := strings.LastIndexByte(e, '-')
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range e[i+1:] {
		if c < '0' || c > '9' || n > 1e6 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
