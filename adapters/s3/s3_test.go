package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/s3"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/blobtest"
	"github.com/ragparity/ragparity/verifier/blob"
)

// storeURL is the s3:// URL of bucket/prefix on the test server.
func storeURL(bucket, prefix string, extra ...string) string {
	q := url.Values{}
	q.Set("endpoint", blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT"))
	q.Set("region", "us-east-1")
	q.Set("access_key", blobtest.ServiceEnv("RAGPARITY_S3_ACCESS_KEY"))
	q.Set("secret_key", blobtest.ServiceEnv("RAGPARITY_S3_SECRET_KEY"))
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return (&url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix, RawQuery: q.Encode()}).String()
}

func open(t testing.TB, raw string) *s3.Store {
	t.Helper()
	s, err := adapters.OpenBlob(context.Background(), raw)
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*s3.Store)
}

// requireS3 fails (never skips) with how to start the server when it
// cannot be reached.
func requireS3(t testing.TB) {
	t.Helper()
	if blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT") == "" {
		t.Fatalf("RAGPARITY_S3_ENDPOINT is not set and no services.env was found: start it with `make services` (scripts/services.sh s3)")
	}
	s := open(t, storeURL("rp-probe-missing", "", "retries", "1"))
	err := s.List(context.Background(), func(parity.ObjectInfo) error { return nil })
	if err != nil && !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("S3 server not usable at %s: %v\nstart it with `make services` (scripts/services.sh s3)", blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT"), err)
	}
}

func uniqueBucket() string { return fmt.Sprintf("rp-test-%08x", rand.Uint32()) }

// newBucket creates a unique bucket and removes it when the test ends.
func newBucket(t testing.TB) *s3.Store {
	t.Helper()
	s := open(t, storeURL(uniqueBucket(), ""))
	if err := s.CreateBucket(context.Background()); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	t.Cleanup(func() {
		if err := s.RemoveBucket(context.Background()); err != nil {
			t.Errorf("RemoveBucket %s: %v", s.Bucket(), err)
		}
	})
	return s
}

// posixPath is where versitygw's posix backend keeps an object.
func posixPath(t *testing.T, s *s3.Store, key string) string {
	root := blobtest.ServiceEnv("RAGPARITY_S3_POSIX_ROOT")
	if root == "" {
		t.Fatalf("RAGPARITY_S3_POSIX_ROOT is not set: start the server with `make services` (scripts/services.sh s3)")
	}
	p := filepath.Join(root, s.Bucket(), filepath.FromSlash(s.Prefix()+key))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("object %s/%s not found under versitygw's posix folder %s: %v", s.Bucket(), key, root, err)
	}
	return p
}

func TestConformance(t *testing.T) {
	requireS3(t)
	blobtest.Run(t, blobtest.Harness{
		Name:   "s3",
		Target: "versitygw at " + blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT"),
		New:    func(t *testing.T) adapters.BlobStore { return newBucket(t) },
		Sub: func(t *testing.T, s adapters.BlobStore, prefix string) adapters.BlobStore {
			return open(t, storeURL(s.(*s3.Store).Bucket(), prefix))
		},
		Missing: func(t *testing.T) adapters.BlobReader { return open(t, storeURL(uniqueBucket(), "")) },
		Denied: func(t *testing.T) adapters.BlobReader {
			b := newBucket(t)
			return open(t, storeURL(b.Bucket(), "", "secret_key", "wrong-secret", "retries", "1"))
		},
		Tamper: func(t *testing.T, s adapters.BlobStore, key string, off int64) {
			tamper(t, posixPath(t, s.(*s3.Store), key), off)
		},
		Many: 10000,
	})
}

// tamper flips one byte of a file in place (versitygw keeps the ETag in an
// extended attribute, so it stays) and moves its mtime 2s later.
func tamper(t *testing.T, path string, off int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	mt := st.ModTime().Add(2 * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func build(t *testing.T, r adapters.BlobReader, mode blob.BlobMode) *blob.BlobManifest {
	t.Helper()
	return blobtest.Manifest(t, r, blob.ManifestOptions{Mode: mode, Workers: 8})
}

func putWith(t *testing.T, s *s3.Store, key string, data []byte, o s3.PutOptions) {
	t.Helper()
	if err := s.PutWith(context.Background(), key, bytes.NewReader(data), int64(len(data)), o); err != nil {
		t.Fatalf("PutWith(%q, %+v): %v", key, o, err)
	}
}

func etagOf(t *testing.T, s *s3.Store, key string) string {
	t.Helper()
	oi, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return oi.ETag
}

func TestMultipartWithDifferentPartSizes(t *testing.T) {
	requireS3(t)
	a, b, c := newBucket(t), newBucket(t), newBucket(t)
	big := blobtest.Data(42, 12<<20+17) // 5 MiB parts: 3; 7 MiB parts: 2
	mid := blobtest.Data(43, 8<<20+3)   // 5 MiB parts: 2; 6 MiB parts: 2
	putWith(t, a, "big.bin", big, s3.PutOptions{PartSize: 5 << 20})
	putWith(t, b, "big.bin", big, s3.PutOptions{PartSize: 7 << 20})
	putWith(t, c, "big.bin", big, s3.PutOptions{})
	putWith(t, a, "mid.bin", mid, s3.PutOptions{PartSize: 5 << 20})
	putWith(t, b, "mid.bin", mid, s3.PutOptions{PartSize: 6 << 20})
	putWith(t, c, "mid.bin", mid, s3.PutOptions{})
	ea, eb, ec := etagOf(t, a, "big.bin"), etagOf(t, b, "big.bin"), etagOf(t, c, "big.bin")
	if !strings.HasSuffix(ea, "-3") || !strings.HasSuffix(eb, "-2") || strings.Contains(ec, "-") {
		t.Fatalf("ETags %q, %q, %q: want a -3 multipart, a -2 multipart and a single-part one", ea, eb, ec)
	}
	if ma, mb := etagOf(t, a, "mid.bin"), etagOf(t, b, "mid.bin"); ma == mb || !strings.HasSuffix(ma, "-2") || !strings.HasSuffix(mb, "-2") {
		t.Fatalf("mid.bin ETags %q and %q: want two different -2 ETags", ma, mb)
	}

	t.Run("ContentModeEqual", func(t *testing.T) {
		ma, mb, mc := build(t, a, blob.ModeContent), build(t, b, blob.ModeContent), build(t, c, blob.ModeContent)
		for _, p := range []struct {
			name string
			x, y *blob.BlobManifest
		}{{"5MiB-vs-7MiB", ma, mb}, {"5MiB-vs-single", ma, mc}} {
			if d := blob.DiffManifests("x", "y", p.x, p.y); d.Verdict != blob.VerdictEqual || !d.Equal {
				t.Errorf("%s: verdict %s, changed %+v; want equal", p.name, d.Verdict, d.Changed)
			}
		}
	})
	t.Run("ETagModeInconclusive", func(t *testing.T) {
		d := blob.DiffManifests("a", "b", build(t, a, blob.ModeETag), build(t, b, blob.ModeETag))
		if d.Verdict != blob.VerdictInconclusive || d.Equal || len(d.Changed) != 0 {
			t.Fatalf("verdict %s, equal %v, changed %+v; want inconclusive with nothing changed", d.Verdict, d.Equal, d.Changed)
		}
		why := map[string]string{}
		for _, c := range d.Inconclusive {
			why[c.Key] = c.Detail
		}
		if !strings.Contains(why["big.bin"], "different part counts") {
			t.Errorf("big.bin inconclusive detail = %q, want different part counts", why["big.bin"])
		}
		if !strings.Contains(why["mid.bin"], "part sizes are unknown") {
			t.Errorf("mid.bin inconclusive detail = %q, want part sizes unknown", why["mid.bin"])
		}
	})
}

func TestChecksumMode(t *testing.T) {
	requireS3(t)
	a, b := newBucket(t), newBucket(t)
	doc := blobtest.Data(1, 100_000)
	other := blobtest.Data(2, 100_000)
	mp := blobtest.Data(3, 11<<20)
	for _, s := range []*s3.Store{a, b} {
		putWith(t, s, "sha/doc", doc, s3.PutOptions{Checksum: "SHA256"})
		putWith(t, s, "crc/doc", doc, s3.PutOptions{Checksum: "CRC64NVME"})
		putWith(t, s, "multipart", mp, s3.PutOptions{PartSize: 5 << 20}) // composite checksum only
	}
	putWith(t, a, "sha/changed", doc, s3.PutOptions{Checksum: "SHA256"})
	putWith(t, b, "sha/changed", other, s3.PutOptions{Checksum: "SHA256"})
	putWith(t, a, "crc/changed", doc, s3.PutOptions{Checksum: "CRC64NVME"})
	putWith(t, b, "crc/changed", other, s3.PutOptions{Checksum: "CRC64NVME"})
	if oi, err := a.Stat(context.Background(), "multipart"); err != nil || oi.ChecksumSHA256 != "" || oi.ChecksumCRC64NVME != "" {
		t.Fatalf("Stat(multipart) = %+v, %v; want no full-object checksum (composite only)", oi, err)
	}
	if oi, err := a.Stat(context.Background(), "sha/doc"); err != nil || oi.ChecksumSHA256 == "" {
		t.Fatalf("Stat(sha/doc) = %+v, %v; want a stored SHA-256", oi, err)
	}

	ms := make([]*blob.BlobManifest, 2)
	for i, s := range []*s3.Store{a, b} {
		m, err := blob.ListManifest(t.Context(), s, blob.ManifestOptions{Mode: blob.ModeChecksum})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	blob.PlanBlobChecksums(ms)
	for i, s := range []*s3.Store{a, b} {
		if err := ms[i].HashPending(t.Context(), s, blob.ManifestOptions{Mode: blob.ModeChecksum}); err != nil {
			t.Fatal(err)
		}
		if err := ms[i].Finish(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := ms[0].ObjectsRead, int64(1); got != want {
		t.Errorf("objects read in checksum mode = %d, want %d (only the multipart object without a full-object checksum)", got, want)
	}
	if got, want := ms[0].ChecksumsTrusted, int64(4); got != want {
		t.Errorf("checksums trusted = %d, want %d", got, want)
	}
	d := blob.DiffManifests("a", "b", ms[0], ms[1])
	got := map[string]string{}
	for _, c := range d.Changed {
		got[c.Key] = c.Reason
	}
	if want := map[string]string{"crc/changed": "checksum", "sha/changed": "checksum"}; fmt.Sprint(got) != fmt.Sprint(want) || d.Verdict != blob.VerdictDifferent {
		t.Errorf("checksum-mode diff: verdict %s, changed %v; want different with %v", d.Verdict, got, want)
	}

	// With SHA-256 checksums only, the checksum-mode hash is the content hash.
	c := newBucket(t)
	putWith(t, c, "x", doc, s3.PutOptions{Checksum: "SHA256"})
	putWith(t, c, "y", other, s3.PutOptions{Checksum: "SHA256"})
	mc, mx := build(t, c, blob.ModeChecksum), build(t, c, blob.ModeContent)
	if !mc.Exact() || mc.Hash() != mx.Hash() || mc.ObjectsRead != 0 {
		t.Errorf("SHA-256 checksums only: exact %v, read %d, hash %s vs content %s; want exact, 0 reads, equal hashes",
			mc.Exact(), mc.ObjectsRead, mc.Hash().Hex(), mx.Hash().Hex())
	}
}

func TestOpenURLErrorsNameTheProblemAndHideSecrets(t *testing.T) {
	const secret = "SUPERSECRETVALUE"
	for _, tc := range []struct{ raw, want string }{
		{"s3:///prefix", "no bucket"},
		{"s3://b/p?endpoint=ftp://x", "endpoint scheme"},
		{"s3://b/p?endpoint=http://h:1/path", "has a path"},
		{"s3://b/p?bogus=1&secret_key=" + secret, "unknown parameter"},
		{"s3://b/p?access_key=a", "together"},
		{"s3://b/p?timeout=soon&secret_key=" + secret + "&access_key=k", "timeout"},
		{"s3://b/p?retries=0", "retries"},
		{"s3://user:" + secret + "@b/p", "user part"},
	} {
		_, err := adapters.OpenBlob(context.Background(), tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenBlob(%q) error = %v, want one mentioning %q", adapters.Redact(tc.raw), err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("OpenBlob error leaks the secret: %v", err)
		}
	}
	// A reachable server, a missing bucket: the error names the bucket and
	// never the secret.
	requireS3(t)
	s := open(t, storeURL("rp-no-such-bucket", "x/", "secret_key", secret, "retries", "1"))
	if strings.Contains(s.Location(), secret) || strings.Contains(s.Location(), "access_key") {
		t.Errorf("Location %q carries credentials", s.Location())
	}
	err := s.List(context.Background(), func(parity.ObjectInfo) error { return nil })
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("List error = %v: want an error without the secret", err)
	}
}

func TestMissingBucketAndDeniedMessages(t *testing.T) {
	requireS3(t)
	s := open(t, storeURL("rp-missing-bucket-x", ""))
	err := s.List(context.Background(), func(parity.ObjectInfo) error { return nil })
	if !errors.Is(err, adapters.ErrNotFound) || !strings.Contains(err.Error(), `bucket "rp-missing-bucket-x" does not exist`) {
		t.Errorf("missing bucket: error = %v, want ErrNotFound naming the bucket", err)
	}
	b := newBucket(t)
	d := open(t, storeURL(b.Bucket(), "", "access_key", "nobody", "secret_key", "wrong", "retries", "1"))
	err = d.List(context.Background(), func(parity.ObjectInfo) error { return nil })
	if !errors.Is(err, adapters.ErrDenied) || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), b.Bucket()) {
		t.Errorf("wrong credentials: error = %v, want ErrDenied naming the bucket", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error carries the secret: %v", err)
	}
}

func TestEnvCredentials(t *testing.T) {
	requireS3(t)
	b := newBucket(t)
	blobtest.Put(t, b, map[string][]byte{"k": []byte("v")})
	t.Setenv("AWS_ACCESS_KEY_ID", blobtest.ServiceEnv("RAGPARITY_S3_ACCESS_KEY"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", blobtest.ServiceEnv("RAGPARITY_S3_SECRET_KEY"))
	raw := (&url.URL{Scheme: "s3", Host: b.Bucket(), RawQuery: url.Values{"endpoint": {blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT")}}.Encode()}).String()
	s := open(t, raw)
	n := 0
	if err := s.List(context.Background(), func(parity.ObjectInfo) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("List with AWS_* credentials from the environment: %d objects, %v; want 1, nil", n, err)
	}
}
