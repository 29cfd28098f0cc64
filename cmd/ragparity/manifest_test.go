package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/s3"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/storetest/blobtest"
)

// folderRegion writes objs into a fresh folder and returns its file:// URL.
func folderRegion(t *testing.T, objs map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range objs {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return (&url.URL{Scheme: "file", Path: dir}).String()
}

func blobConfig(t *testing.T, regions ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("release: r-blobs\nregions:\n")
	for i := 0; i+1 < len(regions); i += 2 {
		fmt.Fprintf(&b, "  - name: %s\n", regions[i])
		if regions[i+1] != "" {
			fmt.Fprintf(&b, "    blobs: %q\n", regions[i+1])
		}
	}
	return writeConfig(t, b.String())
}

func blobFixture() map[string][]byte {
	return map[string][]byte{
		"docs/guide.md":        []byte("# guide\n"),
		"docs/with space.txt":  []byte("spaces"),
		"models/ü/weights.bin": blobtest.Data(5, 50_000),
		"chunks/manifest.json": []byte(`{"chunks":3}`),
	}
}

func TestManifestCommand(t *testing.T) {
	objs := blobFixture()
	changed := blobFixture()
	delete(changed, "docs/guide.md")
	changed["extra/new.txt"] = []byte("new")
	changed["models/ü/weights.bin"] = append([]byte(nil), objs["models/ü/weights.bin"]...)
	changed["models/ü/weights.bin"][7] ^= 1
	a, b, c := folderRegion(t, objs), folderRegion(t, objs), folderRegion(t, changed)
	cfg := blobConfig(t, "us", a, "eu", b, "ap", c)
	cache := t.TempDir()

	t.Run("EqualRegionsExit0", func(t *testing.T) {
		code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--region", "us,eu", "--json", "--cache-dir", cache)
		if code != ExitEqual {
			t.Fatalf("exit %d, want 0; stderr: %s", code, errOut)
		}
		var m gate.ManifestJSON
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		if !m.Equal || m.Verdict != "equal" || m.Mode != "content" || len(m.Regions) != 2 {
			t.Fatalf("manifest JSON = %+v", m)
		}
		r := m.Regions[0]
		if r.Objects != 4 || r.ObjectsRead != 4 || len(r.ManifestHash) != 64 || !r.Exact || r.ManifestHash != m.Regions[1].ManifestHash {
			t.Errorf("region JSON = %+v; want 4 objects read, an exact 64-hex hash equal to eu's", r)
		}
	})
	t.Run("WarmCacheReadsNothing", func(t *testing.T) {
		code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--region", "us", "--json", "--cache-dir", cache)
		var m gate.ManifestJSON
		json.Unmarshal([]byte(out), &m)
		if code != ExitEqual || len(m.Regions) != 1 || m.Regions[0].ObjectsRead != 0 || m.Regions[0].CacheHits != 4 {
			t.Errorf("exit %d, regions %+v; want 0 with 0 objects read and 4 cache hits; stderr %s", code, m.Regions, errOut)
		}
		code, out, _ = runCLI(t, "manifest", "--config", cfg, "--region", "us", "--json", "--cache-dir", cache, "--no-cache")
		json.Unmarshal([]byte(out), &m)
		if code != ExitEqual || m.Regions[0].ObjectsRead != 4 {
			t.Errorf("--no-cache: exit %d, objects read %d; want 0 and 4", code, m.Regions[0].ObjectsRead)
		}
	})
	t.Run("CorruptCacheIsRebuiltWithAWarning", func(t *testing.T) {
		ents, _ := os.ReadDir(cache)
		if len(ents) == 0 {
			t.Fatalf("no cache files in %s", cache)
		}
		for _, e := range ents {
			os.WriteFile(filepath.Join(cache, e.Name()), []byte("ragparity/blobcache/v1\ngarbage"), 0o600)
		}
		code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--region", "us,eu", "--cache-dir", cache)
		if code != ExitEqual || !strings.Contains(errOut, "not used") || !strings.Contains(out, "agree") {
			t.Errorf("exit %d, stderr %q, stdout %q; want 0, a 'not used' warning and agreement", code, errOut, out)
		}
	})
	t.Run("DifferentRegionExit1", func(t *testing.T) {
		code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--cache-dir", cache)
		if code != ExitDiffer {
			t.Fatalf("exit %d, want 1; stderr: %s", code, errOut)
		}
		if !strings.Contains(out, "DIFFER") || !strings.Contains(out, "us vs ap: 1 only in us, 1 only in ap, 1 changed") {
			t.Errorf("stdout does not summarise the difference:\n%s", out)
		}
	})
	t.Run("DiffBlobsJSON", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "ap", "--json", "--cache-dir", cache)
		if code != ExitDiffer {
			t.Fatalf("exit %d, want 1; stderr: %s", code, errOut)
		}
		var d struct {
			From, To   string
			Equal      bool
			OnlyInFrom []string `json:"only_in_from"`
			OnlyInTo   []string `json:"only_in_to"`
			Changed    []struct{ Key, Reason string }
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, out)
		}
		got := fmt.Sprintf("%s %s %v %v %v %v", d.From, d.To, d.Equal, d.OnlyInFrom, d.OnlyInTo, d.Changed)
		want := "us ap false [docs/guide.md] [extra/new.txt] [{models/ü/weights.bin content}]"
		if got != want {
			t.Errorf("diff JSON = %s, want %s", got, want)
		}
	})
	t.Run("DiffBlobsEqualText", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "eu", "--cache-dir", cache)
		if code != ExitEqual || !strings.Contains(out, "us -> eu: EQUAL") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and EQUAL", code, out, errOut)
		}
		code, out, _ = runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "ap", "--cache-dir", cache)
		if code != ExitDiffer || !strings.Contains(out, `"models/ü/weights.bin"  content`) || !strings.Contains(out, "only in ap (1)") {
			t.Errorf("exit %d, text diff:\n%s", code, out)
		}
	})
	t.Run("ETagModeNeverExits0", func(t *testing.T) {
		code, out, _ := runCLI(t, "manifest", "--config", cfg, "--region", "us,eu", "--mode", "etag")
		if code != ExitUnknown || !strings.Contains(out, "no difference found by the ETag pre-filter") {
			t.Errorf("etag mode on equal regions: exit %d, stdout %q; want 2 and the pre-filter note", code, out)
		}
		code, out, _ = runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "ap", "--mode", "etag", "--json")
		if code != ExitDiffer || !strings.Contains(out, `"only_in_from": [`) {
			t.Errorf("etag mode with missing keys: exit %d; want 1 (keys missing are a definite difference)\n%s", code, out)
		}
	})
	t.Run("ChecksumModeFallsBackToContent", func(t *testing.T) {
		code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--region", "us,eu", "--mode", "checksum", "--json", "--no-cache", "--cache-dir", cache)
		var m gate.ManifestJSON
		json.Unmarshal([]byte(out), &m)
		if code != ExitEqual || m.Regions[0].ObjectsRead != 4 || m.Regions[0].ChecksumsTrusted != 0 {
			t.Errorf("checksum mode on folders: exit %d, %+v; want 0, all 4 read, none trusted; stderr %s", code, m.Regions, errOut)
		}
	})
}

func TestManifestBadInputExit2(t *testing.T) {
	good := folderRegion(t, blobFixture())
	missing := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "gone"))
	for _, tc := range []struct {
		name string
		cfg  []string
		args []string
		want []string
	}{
		{"BadMode", []string{"us", good}, []string{"--mode", "fast"}, []string{"--mode", "fast"}},
		{"BadWorkers", []string{"us", good}, []string{"--workers", "0"}, []string{"--workers"}},
		{"MissingFolder", []string{"us", good, "eu", missing}, nil, []string{"region eu", "not found"}},
		{"NoBlobsURL", []string{"us", good, "eu", ""}, nil, []string{"region eu", "blobs is not set"}},
		{"UnknownScheme", []string{"us", good, "eu", "gcs://bucket/x"}, nil, []string{"region eu", `unknown scheme "gcs"`}},
		{"BadS3URL", []string{"us", good, "eu", "s3://b/p?endpoint=ftp://h"}, nil, []string{"region eu", "endpoint scheme"}},
		{"UnknownRegion", []string{"us", good}, []string{"--region", "mars"}, []string{`no region "mars"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := blobConfig(t, tc.cfg...)
			args := append([]string{"manifest", "--config", cfg, "--cache-dir", t.TempDir()}, tc.args...)
			code, out, errOut := runCLI(t, args...)
			if code != ExitUnknown {
				t.Fatalf("exit %d, want 2; stdout %s; stderr %s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output does not mention %q:\nstdout: %s\nstderr: %s", w, out, errOut)
				}
			}
		})
	}
	t.Run("DiffBlobsMissingFolderJSON", func(t *testing.T) {
		cfg := blobConfig(t, "us", good, "eu", missing)
		code, out, _ := runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "eu", "--json")
		var d map[string]any
		if code != ExitUnknown || json.Unmarshal([]byte(out), &d) != nil || d["equal"] != false || !strings.Contains(fmt.Sprint(d["error"]), "region eu") {
			t.Errorf("exit %d, JSON %s; want 2 and an error naming region eu", code, out)
		}
	})
}

// s3Env returns the test S3 server's endpoint, failing the test with how
// to start it when it is not configured.
func s3Env(t *testing.T) (endpoint, accessKey, secretKey string) {
	t.Helper()
	ep := blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT")
	if ep == "" {
		t.Fatalf("RAGPARITY_S3_ENDPOINT is not set: start it with `make services` (scripts/services.sh s3)")
	}
	return ep, blobtest.ServiceEnv("RAGPARITY_S3_ACCESS_KEY"), blobtest.ServiceEnv("RAGPARITY_S3_SECRET_KEY")
}

// s3URL is the s3:// URL, credentials included, of bucket/prefix on the
// test server.
func s3URL(t *testing.T, bucket, prefix string) string {
	ep, ak, sk := s3Env(t)
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1&access_key=%s&secret_key=%s", bucket, prefix, ep, url.QueryEscape(ak), url.QueryEscape(sk))
}

// newS3Bucket creates a bucket on the test server holding objs under
// prefix, removed when the test ends, and returns its name.
func newS3Bucket(t *testing.T, prefix string, objs map[string][]byte) string {
	t.Helper()
	name := fmt.Sprintf("rp-cli-%08x", rand.Uint32())
	st, err := adapters.OpenBlob(context.Background(), s3URL(t, name, prefix))
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*s3.Store)
	if err := s.CreateBucket(context.Background()); err != nil {
		t.Fatalf("CreateBucket: %v (start the server with `make services`)", err)
	}
	t.Cleanup(func() { s.RemoveBucket(context.Background()); s.Close() })
	blobtest.Put(t, s, objs)
	return name
}

// TestManifestAgainstS3 runs the commands end to end on versitygw with
// credentials expanded from the environment into the config.
func TestManifestAgainstS3(t *testing.T) {
	ep, ak, sk := s3Env(t)
	const secretVar = "RP_TEST_S3_SECRET"
	t.Setenv("RP_TEST_S3_KEY", ak)
	t.Setenv(secretVar, sk)
	t.Setenv("RP_TEST_S3_ENDPOINT", ep)
	bucketURL := func(bucket, prefix string) string {
		return fmt.Sprintf("s3://%s/%s?endpoint=${RP_TEST_S3_ENDPOINT}&region=us-east-1&access_key=${RP_TEST_S3_KEY}&secret_key=${%s}", bucket, prefix, secretVar)
	}
	mk := func(objs map[string][]byte) string { return newS3Bucket(t, "release/", objs) }
	objs := blobFixture()
	a, b := mk(objs), mk(objs)
	changed := blobFixture()
	changed["docs/guide.md"] = []byte("# GUIDE\n")
	c := mk(changed)
	cfg := blobConfig(t, "us", bucketURL(a, "release"), "eu", bucketURL(b, "release"), "ap", bucketURL(c, "release"), "gone", bucketURL("rp-cli-no-such-bucket", ""))
	secret := sk

	code, out, errOut := runCLI(t, "manifest", "--config", cfg, "--region", "us,eu", "--cache-dir", t.TempDir(), "--workers", "4")
	if code != ExitEqual || !strings.Contains(out, "objects=4") {
		t.Errorf("manifest us,eu on S3: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "diff", "--blobs", "--config", cfg, "--from", "us", "--to", "ap", "--json")
	if code != ExitDiffer || !strings.Contains(out, `"key": "docs/guide.md"`) || !strings.Contains(out, `"reason": "content"`) {
		t.Errorf("diff --blobs us ap on S3: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "manifest", "--config", cfg, "--region", "us,gone")
	if code != ExitUnknown || !strings.Contains(errOut, "region gone") || !strings.Contains(errOut, `bucket "rp-cli-no-such-bucket" does not exist`) {
		t.Errorf("missing bucket: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, secret) {
		t.Errorf("output carries the secret key")
	}
}
