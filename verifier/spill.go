package verifier

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ragparity/ragparity/parity"
)

// Spill keeps every point's digests on disk, partitioned by bucket, so that
// Diff can compare only the points of differing buckets without holding a
// region in memory. Memory use is a buffer per partition.
type Spill struct {
	dir     string
	buckets int
	parts   []spillPart
}

type spillPart struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

const spillParts = 64

// NewSpill creates a spill in a new folder under dir (os.TempDir() if "").
func NewSpill(dir string, buckets int) (*Spill, error) {
	d, err := os.MkdirTemp(dir, "ragparity-spill-")
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	if buckets == 0 {
		buckets = DefaultBuckets
	}
	s := &Spill{dir: d, buckets: buckets, parts: make([]spillPart, min(spillParts, buckets))}
	for i := range s.parts {
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("part-%03d", i)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("spill: %w", err)
		}
		s.parts[i].f = f
		s.parts[i].w = bufio.NewWriterSize(f, 32<<10)
	}
	return s, nil
}

func (s *Spill) part(bucket int) int { return bucket * len(s.parts) / s.buckets }

// Close removes the spill's files.
func (s *Spill) Close() error {
	for i := range s.parts {
		if s.parts[i].f != nil {
			s.parts[i].f.Close()
		}
	}
	return os.RemoveAll(s.dir)
}

func (s *Spill) write(rec []byte, bucket int, id parity.ID, d *parity.PointDigests) ([]byte, error) {
	rec = binary.BigEndian.AppendUint32(rec[:0], uint32(bucket))
	rec = append(rec, byte(id.Kind))
	rec = parity.AppendLP(rec, id.S)
	rec = append(rec, d.Vectors[:]...)
	rec = append(rec, d.VectorsTolerant[:]...)
	rec = append(rec, d.Payload[:]...)
	rec = append(rec, d.Text[:]...)
	p := &s.parts[s.part(bucket)]
	p.mu.Lock()
	_, err := p.w.Write(rec)
	p.mu.Unlock()
	if err != nil {
		return rec, fmt.Errorf("spill: %w", err)
	}
	return rec, nil
}

func (s *Spill) flush() error {
	for i := range s.parts {
		if err := s.parts[i].w.Flush(); err != nil {
			return fmt.Errorf("spill: %w", err)
		}
	}
	return nil
}

// SpillRecord is one point's digests as read back.
type SpillRecord struct {
	Bucket  int
	ID      parity.ID
	Digests parity.PointDigests
}

// ReadBuckets calls fn for every record whose bucket is in want, reading
// only the partitions that hold those buckets.
func (s *Spill) ReadBuckets(want map[int]bool, fn func(r *SpillRecord)) error {
	parts := map[int]bool{}
	for b := range want {
		parts[s.part(b)] = true
	}
	for p := range parts {
		f, err := os.Open(s.parts[p].f.Name())
		if err != nil {
			return fmt.Errorf("spill: %w", err)
		}
		err = readSpill(bufio.NewReaderSize(f, 64<<10), want, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func readSpill(r *bufio.Reader, want map[int]bool, fn func(r *SpillRecord)) error {
	var hdr [9]byte
	var rec SpillRecord
	idb := make([]byte, 0, 64)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("spill: corrupt record: %w", err)
		}
		b := int(binary.BigEndian.Uint32(hdr[:4]))
		kind := parity.IDKind(hdr[4])
		n := int(binary.BigEndian.Uint32(hdr[5:9]))
		if cap(idb) < n {
			idb = make([]byte, n)
		}
		idb = idb[:n]
		if _, err := io.ReadFull(r, idb); err != nil {
			return fmt.Errorf("spill: corrupt record: %w", err)
		}
		var ds [128]byte
		if _, err := io.ReadFull(r, ds[:]); err != nil {
			return fmt.Errorf("spill: corrupt record: %w", err)
		}
		if !want[b] {
			continue
		}
		rec.Bucket = b
		rec.ID = parity.ID{Kind: kind, S: string(idb)}
		copy(rec.Digests.Vectors[:], ds[0:32])
		copy(rec.Digests.VectorsTolerant[:], ds[32:64])
		copy(rec.Digests.Payload[:], ds[64:96])
		copy(rec.Digests.Text[:], ds[96:128])
		fn(&rec)
	}
}
