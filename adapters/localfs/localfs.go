// Package localfs is the blob backend for a local folder (file:///path):
// every regular file under the folder is an object whose key is its path
// relative to the folder, '/'-separated.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

func init() { adapters.RegisterBlob("file", Open) }

// tmpPrefix marks Put's temporary files; List skips them.
const tmpPrefix = ".ragparity-tmp-"

// Store is a folder of blobs.
type Store struct {
	root string
}

var (
	_ adapters.BlobStore      = (*Store)(nil)
	_ adapters.BlobStater     = (*Store)(nil)
	_ adapters.BlobNamespacer = (*Store)(nil)
)

// Open opens file:///abs/path (or file://localhost/abs/path). The folder
// must exist when the store is read; Put creates it.
func Open(_ context.Context, u *url.URL) (adapters.BlobStore, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("localfs: URL %q: host %q is not allowed (want file:///absolute/path)", adapters.Redact(u.String()), u.Host)
	}
	p := u.Path
	if p == "" && u.Opaque != "" {
		p = u.Opaque
	}
	if p == "" || !filepath.IsAbs(filepath.FromSlash(p)) {
		return nil, fmt.Errorf("localfs: URL %q: want an absolute path (file:///absolute/path)", adapters.Redact(u.String()))
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("localfs: URL %q: no query parameters are supported", adapters.Redact(u.String()))
	}
	return &Store{root: filepath.Clean(filepath.FromSlash(p))}, nil
}

// New returns a store over the folder dir.
func New(dir string) *Store { return &Store{root: filepath.Clean(dir)} }

// Location is the folder's URL.
func (s *Store) Location() string { return "file://" + filepath.ToSlash(s.root) }

// Namespace is the file system and the folder's real path (symbolic
// links resolved), "/"-terminated.
func (s *Store) Namespace() (space, prefix string) {
	p := s.root
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	} else if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return "file", strings.TrimSuffix(filepath.ToSlash(p), "/") + "/"
}

// Close does nothing.
func (s *Store) Close() error { return nil }

func mapErr(op, name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("localfs: %s %s: %w", op, name, errors.Join(adapters.ErrNotFound, err))
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("localfs: %s %s: %w", op, name, errors.Join(adapters.ErrDenied, err))
	}
	return fmt.Errorf("localfs: %s %s: %w", op, name, err)
}

func (s *Store) checkRoot() error {
	st, err := os.Stat(s.root)
	if err != nil {
		return mapErr("open folder", s.root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("localfs: %s is not a folder", s.root)
	}
	return nil
}

// List walks the folder. Only regular files are objects (symbolic links,
// devices and folders are not); the order is lexical per folder.
func (s *Store) List(ctx context.Context, fn func(parity.ObjectInfo) error) error {
	if err := s.checkRoot(); err != nil {
		return err
	}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return mapErr("list", p, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("localfs: list %s: %w", s.root, err)
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while listing
			}
			return mapErr("stat", p, err)
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return fmt.Errorf("localfs: list: %w", err)
		}
		return fn(parity.ObjectInfo{Key: filepath.ToSlash(rel), Size: info.Size(), LastModified: info.ModTime(), Identity: identity(info)})
	})
	return err
}

// path maps a key to a file path, refusing keys that would leave the folder.
func (s *Store) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("localfs: key %q is not a valid file path", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("localfs: key %q is not a valid file path", key)
		}
	}
	if path.Clean(key) != key {
		return "", fmt.Errorf("localfs: key %q is not a valid file path", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Open opens one file.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("localfs: open %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if rerr := s.checkRoot(); rerr != nil {
				return nil, rerr
			}
		}
		return nil, mapErr("open", key, err)
	}
	return &ctxFile{f: f, ctx: ctx}, nil
}

// ctxFile stops reading once its context is done.
type ctxFile struct {
	f   *os.File
	ctx context.Context
}

func (c *ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("localfs: read: %w", err)
	}
	return c.f.Read(p)
}

func (c *ctxFile) WriteTo(w io.Writer) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	for {
		m, err := c.Read(buf)
		if m > 0 {
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *ctxFile) Close() error { return c.f.Close() }

// Stat reports one file (a folder has no stored checksums).
func (s *Store) Stat(ctx context.Context, key string) (parity.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return parity.ObjectInfo{}, fmt.Errorf("localfs: stat %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return parity.ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return parity.ObjectInfo{}, mapErr("stat", key, err)
	}
	if !st.Mode().IsRegular() {
		return parity.ObjectInfo{}, fmt.Errorf("localfs: stat %s: not a regular file: %w", key, adapters.ErrNotFound)
	}
	return parity.ObjectInfo{Key: key, Size: st.Size(), LastModified: st.ModTime(), Identity: identity(st)}, nil
}

// Put writes the file through a temporary file and a rename, so a reader
// never sees a partial object. It never follows a symbolic link inside the
// folder: a key under a linked folder is refused, naming the link, and the
// writes go through an os.Root, which cannot leave the folder.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	rel, err := s.rel(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return mapErr("put", key, err)
	}
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return mapErr("put", key, err)
	}
	defer root.Close()
	dir := filepath.Dir(rel)
	if err := s.noLinks(root, "put", key, dir); err != nil {
		return err
	}
	if dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return mapErr("put", key, err)
		}
	}
	tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%d", tmpPrefix, time.Now().UnixNano(), unidentifiedSeq.Add(1)))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return mapErr("put", key, err)
	}
	defer root.Remove(tmp)
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localfs: put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("localfs: put %s: read %d bytes, want %d", key, n, size)
	}
	if err := root.Rename(tmp, rel); err != nil {
		return mapErr("put", key, err)
	}
	return nil
}

// rel is a key's path relative to the folder.
func (s *Store) rel(key string) (string, error) {
	if _, err := s.path(key); err != nil {
		return "", err
	}
	return filepath.FromSlash(key), nil
}

// noLinks refuses a folder path (relative to the root) any component of
// which is a symbolic link, naming the link. Missing components are fine
// (they are created as folders).
func (s *Store) noLinks(root *os.Root, op, key, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	cur := ""
	for _, seg := range strings.Split(dir, string(filepath.Separator)) {
		cur = filepath.Join(cur, seg)
		st, err := root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return mapErr(op, key, err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("localfs: %s %s: %s is a symbolic link; links inside a destination folder are not followed (remove or replace it)", op, key, filepath.Join(s.root, cur))
		}
		if !st.IsDir() {
			return fmt.Errorf("localfs: %s %s: %s is not a folder", op, key, filepath.Join(s.root, cur))
		}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Delete removes the file; a missing one is not an error. Like Put it
// never follows a symbolic link inside the folder.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfs: delete %s: %w", key, err)
	}
	rel, err := s.rel(key)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return mapErr("delete", key, err)
	}
	defer root.Close()
	if err := s.noLinks(root, "delete", key, filepath.Dir(rel)); err != nil {
		return err
	}
	if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr("delete", key, err)
	}
	return nil
}

// unidentified is an identity that never repeats, so a cache keyed on it
// never hits.
func unidentified() string {
	return fmt.Sprintf("unidentified;%d;%d", time.Now().UnixNano(), unidentifiedSeq.Add(1))
}

var unidentifiedSeq atomic.Int64
