// Package s3 is the blob backend for S3 and S3-compatible servers (scheme
// "s3"), through minio-go:
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1
//
// The endpoint's scheme decides TLS (no scheme means https); without an
// endpoint the store is AWS S3. Non-AWS endpoints use path-style
// addressing. Credentials come from the query parameters access_key,
// secret_key and session_token when given (typically through ${ENV}
// expansion in the config), else from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else ~/.aws/credentials
// (and, on AWS, the instance role); they never appear in messages.
// AWS_CA_BUNDLE, when set, adds CAs for https endpoints.
//
// Other query parameters: timeout (per-request idle limit, e.g. 30s),
// retries (attempts per request, default 5).
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

func init() { adapters.RegisterBlob("s3", Open) }

// Defaults.
const (
	DefaultTimeout = 30 * time.Second
	DefaultRetries = 5
	// fanoutMax is the most top-level common prefixes listed in parallel;
	// past it one flat listing is cheaper.
	fanoutMax = 256
)

// Store is one bucket under a prefix.
type Store struct {
	client   *minio.Client
	tr       *http.Transport
	core     minio.Core
	endpoint string // scheme://host, no credentials
	bucket   string
	prefix   string // "" or ending in "/"
	timeout  time.Duration
	retries  int
	workers  int
	aws      bool
}

var (
	_ adapters.BlobStore      = (*Store)(nil)
	_ adapters.BlobStater     = (*Store)(nil)
	_ adapters.ParallelLister = (*Store)(nil)
)

var knownParams = map[string]bool{"endpoint": true, "region": true, "access_key": true, "secret_key": true,
	"session_token": true, "timeout": true, "retries": true}

// Open opens s3://bucket/prefix?endpoint=...&region=...
func Open(_ context.Context, u *url.URL) (adapters.BlobStore, error) {
	red := adapters.Redact(u.String())
	bad := func(format string, a ...any) error {
		return fmt.Errorf("s3: URL %q: %s", red, fmt.Sprintf(format, a...))
	}
	if u.User != nil {
		return nil, bad("credentials in the URL's user part are not supported; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or access_key/secret_key parameters")
	}
	bucket := u.Host
	if bucket == "" {
		return nil, bad("no bucket (want s3://bucket/prefix)")
	}
	q := u.Query()
	for k := range q {
		if !knownParams[k] {
			return nil, bad("unknown parameter %q (known: endpoint, region, access_key, secret_key, session_token, timeout, retries)", k)
		}
	}
	s := &Store{bucket: bucket, timeout: DefaultTimeout, retries: DefaultRetries, workers: 8}
	s.prefix = strings.TrimPrefix(u.Path, "/")
	if s.prefix != "" && !strings.HasSuffix(s.prefix, "/") {
		s.prefix += "/"
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, bad("timeout %q is not a positive duration (e.g. 30s)", v)
		}
		s.timeout = d
	}
	if v := q.Get("retries"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			return nil, bad("retries %q: want a number of attempts in [1, 50]", v)
		}
		s.retries = n
	}
	region := q.Get("region")
	if region == "" {
		region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	secure := true
	host := ""
	if ep := q.Get("endpoint"); ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
		}
		eu, err := url.Parse(ep)
		if err != nil || eu.Host == "" {
			return nil, bad("endpoint %q is not host:port or scheme://host:port", q.Get("endpoint"))
		}
		switch eu.Scheme {
		case "http":
			secure = false
		case "https":
		default:
			return nil, bad("endpoint scheme %q: want http or https", eu.Scheme)
		}
		if eu.Path != "" && eu.Path != "/" {
			return nil, bad("endpoint %q has a path; put the prefix in the s3:// URL's path", q.Get("endpoint"))
		}
		host = eu.Host
	} else {
		host = "s3." + region + ".amazonaws.com"
		if region == "us-east-1" {
			host = "s3.amazonaws.com"
		}
	}
	s.aws = strings.HasSuffix(strings.ToLower(hostOnly(host)), ".amazonaws.com")
	s.endpoint = map[bool]string{true: "https://", false: "http://"}[secure] + host

	creds, err := s.credentials(q)
	if err != nil {
		return nil, bad("%v", err)
	}
	tr, err := transport(secure, s.timeout)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	lookup := minio.BucketLookupPath
	if s.aws {
		lookup = minio.BucketLookupAuto
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: region, BucketLookup: lookup,
		Transport: tr, MaxRetries: s.retries, TrailingHeaders: true})
	if err != nil {
		return nil, bad("%v", adapters.RedactErr(err))
	}
	s.client, s.tr = c, tr
	s.core = minio.Core{Client: c}
	return s, nil
}

func hostOnly(hp string) string {
	if h, _, err := net.SplitHostPort(hp); err == nil {
		return h
	}
	return hp
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func (s *Store) credentials(q url.Values) (*credentials.Credentials, error) {
	ak, sk := q.Get("access_key"), q.Get("secret_key")
	if ak != "" || sk != "" {
		if ak == "" || sk == "" {
			return nil, errors.New("access_key and secret_key must be given together")
		}
		return credentials.NewStaticV4(ak, sk, q.Get("session_token")), nil
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_ACCESS_KEY") != "" {
		return credentials.NewEnvAWS(), nil
	}
	chain := []credentials.Provider{&credentials.FileAWSCredentials{}}
	if s.aws {
		chain = append(chain, &credentials.IAM{})
	}
	// Anonymous when nothing else answers.
	chain = append(chain, &credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	return credentials.NewChainCredentials(chain), nil
}

// transport is an HTTP transport with a connection pool large enough for
// the worker count, a response-header timeout (a silent server is retried)
// and AWS_CA_BUNDLE's CAs for https.
func transport(secure bool, timeout time.Duration) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		// Bodies are hashed as they are: no transparent gzip.
		DisableCompression: true,
	}
	if secure {
		if f := os.Getenv("AWS_CA_BUNDLE"); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificates in it", f)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	return tr, nil
}

// Location is endpoint/bucket/prefix, without credentials.
func (s *Store) Location() string { return s.endpoint + "/" + s.bucket + "/" + s.prefix }

// Namespace is the endpoint and bucket, and the prefix.
func (s *Store) Namespace() (space, prefix string) { return s.endpoint + "/" + s.bucket, s.prefix }

// Bucket is the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Prefix is the key prefix ("" or ending in "/").
func (s *Store) Prefix() string { return s.prefix }

// SetListWorkers bounds the parallel listing of top-level prefixes.
func (s *Store) SetListWorkers(n int) {
	if n > 0 {
		s.workers = n
	}
}

// Close releases idle connections.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// mapErr turns S3 error codes into the adapters sentinels, naming the
// bucket (never credentials).
func (s *Store) mapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	what := "bucket " + s.bucket
	if key != "" {
		what = fmt.Sprintf("%s key %q", what, key)
	}
	if ctxErr := contextErr(err); ctxErr != nil {
		return fmt.Errorf("s3: %s %s: %w", op, what, ctxErr)
	}
	er := minio.ToErrorResponse(err)
	switch er.Code {
	case "NoSuchBucket":
		return fmt.Errorf("s3: %s: bucket %q does not exist at %s: %w", op, s.bucket, s.endpoint, adapters.ErrNotFound)
	case "NoSuchKey", "NotFound":
		if key == "" {
			return fmt.Errorf("s3: %s: bucket %q does not exist at %s: %w", op, s.bucket, s.endpoint, adapters.ErrNotFound)
		}
		return fmt.Errorf("s3: %s %s: %w", op, what, adapters.ErrNotFound)
	// XAdminUserNotFound: versitygw's answer (HTTP 404) to an unknown access key.
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidToken", "ExpiredToken",
		"AccountProblem", "XAdminUserNotFound":
		return fmt.Errorf("s3: %s %s at %s: access denied (%s; check the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or access_key/secret_key): %w",
			op, what, s.endpoint, er.Code, adapters.ErrDenied)
	}
	if er.StatusCode == http.StatusForbidden {
		return fmt.Errorf("s3: %s %s at %s: access denied (HTTP 403 %s): %w", op, what, s.endpoint, er.Code, adapters.ErrDenied)
	}
	if er.StatusCode == http.StatusNotFound && key != "" {
		return fmt.Errorf("s3: %s %s: %w", op, what, adapters.ErrNotFound)
	}
	return fmt.Errorf("s3: %s %s at %s: %w", op, what, s.endpoint, adapters.RedactErr(err))
}

func contextErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// Stat is a HEAD with checksum mode: it reports the stored full-object
// checksums (a composite multipart SHA-256 is not one and is left "").
func (s *Store) Stat(ctx context.Context, key string) (parity.ObjectInfo, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return parity.ObjectInfo{}, s.mapErr("stat", key, err)
	}
	return info(key, oi, true), nil
}

func info(key string, oi minio.ObjectInfo, checksums bool) parity.ObjectInfo {
	out := parity.ObjectInfo{Key: key, Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), LastModified: oi.LastModified}
	if oi.VersionID != "" && oi.VersionID != "null" {
		out.Identity = "version=" + oi.VersionID
	}
	if checksums {
		full := strings.EqualFold(oi.ChecksumMode, "FULL_OBJECT")
		if v := oi.ChecksumSHA256; v != "" && (full || (oi.ChecksumMode == "" && !strings.Contains(v, "-"))) {
			out.ChecksumSHA256 = v
		}
		if v := oi.ChecksumCRC64NVME; v != "" && !strings.Contains(v, "-") {
			out.ChecksumCRC64NVME = v
		}
	}
	return out
}
