package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
	"github.com/ragparity/ragparity/adapters"
)

// PutOptions controls how Put uploads (tests and benchmarks use it to
// make multipart objects and stored checksums).
type PutOptions struct {
	// PartSize > 0 uploads in parts of that size (multipart when the
	// object is larger); 0 uploads in one request up to 5 GiB.
	PartSize uint64
	// Checksum asks the server to store a full-object checksum: "",
	// "SHA256" or "CRC64NVME".
	Checksum string
}

// Put uploads one object in a single request (multipart past 5 GiB).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.PutWith(ctx, key, r, size, PutOptions{})
}

// PutWith uploads one object with options.
func (s *Store) PutWith(ctx context.Context, key string, r io.Reader, size int64, o PutOptions) error {
	opts := minio.PutObjectOptions{PartSize: o.PartSize, DisableContentSha256: true}
	if o.PartSize == 0 {
		opts.PartSize = 512 << 20
		if size >= 0 && size <= 5<<30 {
			opts.DisableMultipart = true
		}
	}
	switch o.Checksum {
	case "":
		opts.AutoChecksum = minio.ChecksumNone
	case "SHA256":
		opts.Checksum = minio.ChecksumSHA256
	case "CRC64NVME":
		opts.Checksum = minio.ChecksumCRC64NVME
	default:
		return s.mapErr("put", key, errUnknownChecksum(o.Checksum))
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, r, size, opts)
	return s.mapErr("put", key, err)
}

type errUnknownChecksum string

func (e errUnknownChecksum) Error() string { return "unknown checksum type " + string(e) }

// Delete removes one object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return s.mapErr("delete", key, err)
}

// CreateBucket creates the bucket (used by tests and benchmarks). An
// existing bucket is an error wrapping adapters.ErrExists.
func (s *Store) CreateBucket(ctx context.Context) error {
	err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
	switch minio.ToErrorResponse(err).Code {
	case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		return fmt.Errorf("s3: create bucket %q: %w", s.bucket, adapters.ErrExists)
	}
	return s.mapErr("create", "", err)
}

// RemoveBucket deletes every object in the bucket (not only under the
// prefix) and then the bucket; a missing bucket is not an error.
func (s *Store) RemoveBucket(ctx context.Context) error {
	objs := s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range s.client.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if res.Err != nil && minio.ToErrorResponse(res.Err).Code != "NoSuchKey" {
			if minio.ToErrorResponse(res.Err).Code == "NoSuchBucket" {
				return nil
			}
			return s.mapErr("empty", res.ObjectName, res.Err)
		}
	}
	err := s.client.RemoveBucket(ctx, s.bucket)
	if minio.ToErrorResponse(err).Code == "NoSuchBucket" {
		return nil
	}
	return s.mapErr("remove", "", err)
}
