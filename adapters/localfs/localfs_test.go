package localfs_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/localfs"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/blobtest"
)

func open(t *testing.T, dir string) adapters.BlobStore {
	t.Helper()
	s, err := adapters.OpenBlob(context.Background(), (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String())
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	root := t.TempDir()
	n := 0
	blobtest.Run(t, blobtest.Harness{
		Name:   "localfs",
		Target: "local folders under " + root,
		New: func(t *testing.T) adapters.BlobStore {
			n++
			dir := filepath.Join(root, "store-"+time.Now().Format("150405.000000")+"-"+string(rune('a'+n%26)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			return open(t, dir)
		},
		Sub: func(t *testing.T, s adapters.BlobStore, prefix string) adapters.BlobStore {
			return open(t, filepath.Join(strings.TrimPrefix(s.Location(), "file://"), filepath.FromSlash(prefix)))
		},
		Missing: func(t *testing.T) adapters.BlobReader { return open(t, filepath.Join(root, "does-not-exist")) },
		Tamper: func(t *testing.T, s adapters.BlobStore, key string, off int64) {
			p := filepath.Join(strings.TrimPrefix(s.Location(), "file://"), filepath.FromSlash(key))
			tamper(t, p, off)
		},
		Many: 10000,
	})
}

// tamper flips one byte in place and moves the mtime 2s later.
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
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mt := st.ModTime().Add(2 * time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct{ raw, wantErr string }{
		{"file:///tmp/x", ""},
		{"file://localhost/tmp/x", ""},
		{"file://otherhost/tmp/x", "host"},
		{"file:relative/path", "absolute"},
		{"file:///tmp/x?mode=1", "query"},
	} {
		_, err := adapters.OpenBlob(context.Background(), tc.raw)
		if tc.wantErr == "" && err != nil {
			t.Errorf("OpenBlob(%q) = %v, want no error", tc.raw, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("OpenBlob(%q) error = %v, want one mentioning %q", tc.raw, err, tc.wantErr)
		}
	}
}

func TestKeysThatLeaveTheFolderAreRefused(t *testing.T) {
	s := localfs.New(t.TempDir())
	for _, k := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "dir/"} {
		if _, err := s.Open(context.Background(), k); err == nil || errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Open(%q) error = %v, want an invalid-key error", k, err)
		}
	}
}

func TestPutLeavesNoTemporaryFilesAndListSkipsThem(t *testing.T) {
	dir := t.TempDir()
	s := localfs.New(dir)
	if err := s.Put(context.Background(), "a/b", strings.NewReader("xyz"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "short", strings.NewReader("xy"), 3); err == nil {
		t.Errorf("Put with fewer bytes than size: no error")
	}
	os.WriteFile(filepath.Join(dir, ".ragparity-tmp-123"), []byte("partial"), 0o644)
	var keys []string
	s.List(context.Background(), func(oi parity.ObjectInfo) error { keys = append(keys, oi.Key); return nil })
	if got, want := strings.Join(keys, ","), "a/b"; got != want {
		t.Errorf("List keys = %q, want %q", got, want)
	}
}
