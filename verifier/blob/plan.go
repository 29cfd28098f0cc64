package blob

import (
	"encoding/base64"

	"github.com/ragparity/ragparity/parity"
)

// PlanBlobChecksums decides, key by key across the manifests of one
// checksum-mode run, what to trust: when every manifest holding the key has
// a stored full-object SHA-256, that is the content hash; else when every
// one has a CRC64NVME, the CRCs are compared; else the key is read
// (BasisPending) in every manifest. Deciding jointly keeps the regions'
// manifest hashes comparable.
func PlanBlobChecksums(ms []*BlobManifest) {
	type slot struct{ m, i int }
	byKey := map[string][]slot{}
	for mi, m := range ms {
		for i := range m.Entries {
			byKey[m.Entries[i].Key] = append(byKey[m.Entries[i].Key], slot{mi, i})
		}
	}
	for _, slots := range byKey {
		allSHA, allCRC := true, true
		for _, s := range slots {
			e := &ms[s.m].Entries[s.i]
			if _, ok := decodeSHA256(e.ChecksumSHA256); !ok {
				allSHA = false
			}
			if !validCRC64(e.ChecksumCRC64NVME) {
				allCRC = false
			}
		}
		for _, s := range slots {
			m, e := ms[s.m], &ms[s.m].Entries[s.i]
			switch {
			case allSHA:
				e.SHA256, _ = decodeSHA256(e.ChecksumSHA256)
				e.Basis = BasisChecksumSHA256
				m.ChecksumsTrusted++
			case allCRC:
				e.Basis = BasisChecksumCRC
				m.ChecksumsTrusted++
			default:
				e.Basis = BasisPending
			}
		}
	}
}

func decodeSHA256(b64 string) (parity.Digest, bool) {
	var d parity.Digest
	if b64 == "" {
		return d, false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != len(d) {
		return d, false
	}
	copy(d[:], b)
	return d, true
}

func validCRC64(b64 string) bool {
	if b64 == "" {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && len(b) == 8
}
