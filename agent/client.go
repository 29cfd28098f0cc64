package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// Client fetches and checks one agent's answers.
type Client struct {
	// URL is the agent's base URL (scheme://host:port, no path).
	URL   string
	Token string
	// Region, when set, is the region the answers must be about (an
	// answer of another region's agent signed with a shared key is
	// refused).
	Region string
	// Trusted are the only keys whose signatures are accepted.
	Trusted []ed25519.PublicKey
	// MaxAge: an answer about a scan older than this is refused.
	MaxAge time.Duration
	HTTP   *http.Client
	// Timeout bounds ReadBuckets, which verifier.Diff calls without a
	// context (the gate sets the config's per-region timeout; 0: none).
	Timeout time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// maxAnswer bounds one answer's body (4096 leaves are about 180 KB; a
// request for 512 buckets' records of a 100M-point region about 2 GB/8).
const maxAnswer = 512 << 20

// Name is how messages name the agent: "agent <url>" (the URL holds no
// secret: config refuses user info and queries in it).
func (c *Client) Name() string { return "agent " + c.URL }

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// get fetches uri (path and query) and checks the answer's key, signature,
// format and age.
func (c *Client) get(ctx context.Context, uri string) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+uri, nil)
	if err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, fmt.Errorf("answered %s: %s", resp.Status, msg)
	}
	kid := resp.Header.Get(HeaderKeyID)
	var pub ed25519.PublicKey
	for _, k := range c.Trusted {
		if KeyID(k) == kid {
			pub = k
			break
		}
	}
	if pub == nil {
		ids := make([]string, len(c.Trusted))
		for i, k := range c.Trusted {
			ids[i] = KeyID(k)
		}
		return nil, fmt.Errorf("answer signed by key %q, which is not trusted (trusted: %s)", kid, strings.Join(ids, ", "))
	}
	sig, err := base64.StdEncoding.DecodeString(resp.Header.Get(HeaderSignature))
	if err != nil || !ed25519.Verify(pub, signingBytes(req.URL.RequestURI(), body), sig) {
		return nil, fmt.Errorf("the answer's signature does not verify with key %s (forged or altered in transit)", kid)
	}
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("signed answer is not valid JSON: %w", err)
	}
	if a.Format != Format {
		return nil, fmt.Errorf("answer format %q (want %q)", a.Format, Format)
	}
	if c.Region != "" && a.Region != c.Region {
		return nil, fmt.Errorf("the answer is about region %q, not %q (the agent's config names its region as the gate's does)", a.Region, c.Region)
	}
	age := c.now().Sub(a.ScannedAt)
	if c.MaxAge > 0 && age > c.MaxAge {
		return nil, fmt.Errorf("stale: the agent's scan is from %s, %v old, beyond max_age %v", a.ScannedAt.Format(time.RFC3339), age.Round(time.Second), c.MaxAge)
	}
	if age < -5*time.Minute {
		return nil, fmt.Errorf("the agent's scan is dated %s, in the future (clock skew?)", a.ScannedAt.Format(time.RFC3339))
	}
	return &a, nil
}

// Remote is a region's scan as its agent signed it. Scan.Leaves is nil
// until Complete when it was fetched by tree nodes.
type Remote struct {
	c         *Client
	Scan      *verifier.Scan
	root      parity.Digest
	scannedAt time.Time
	depth     int
	nodes     []parity.Digest
}

// Root is the signed content root.
func (r *Remote) Root() parity.Digest { return r.root }

// Name names the agent in messages.
func (r *Remote) Name() string { return r.c.Name() }

// ScannedAt is when the agent's scan started.
func (r *Remote) ScannedAt() time.Time { return r.scannedAt }

// FetchOptions say what to fetch.
type FetchOptions struct {
	Buckets   int
	Tolerance float64
	// Declared settings of the gate's config, merged as for a direct scan.
	Declared map[string]any
	// Nodes fetches the tree's nodes at half depth instead of the leaves:
	// Complete then fetches only the leaves under nodes that differ from
	// a reference's (localising a few changed points moves a few KB).
	Nodes bool
}

// Fetch fetches the agent's scan and checks it (see get; the leaves or
// nodes against the signed content root, the counts against points).
func (c *Client) Fetch(ctx context.Context, o FetchOptions) (*Remote, error) {
	if o.Buckets == 0 {
		o.Buckets = verifier.DefaultBuckets
	}
	if o.Tolerance == 0 {
		o.Tolerance = verifier.DefaultTolerance
	}
	start := time.Now()
	depth := log2(o.Buckets) / 2
	uri := "/v1/scan?leaves=1"
	if o.Nodes {
		uri = "/v1/scan?depth=" + strconv.Itoa(depth)
	}
	a, err := c.get(ctx, uri)
	if err != nil {
		return nil, err
	}
	if a.Buckets != o.Buckets || a.Tolerance != o.Tolerance {
		return nil, fmt.Errorf("the agent hashes with buckets %d, tolerance %g; the config says buckets %d, tolerance %g (set hash: alike in both)", a.Buckets, a.Tolerance, o.Buckets, o.Tolerance)
	}
	sm := a.Summary
	if sm == nil {
		return nil, errors.New("answer has no summary")
	}
	root, err := parity.ParseDigest(a.ContentRoot)
	if err != nil {
		return nil, fmt.Errorf("content_root: %w", err)
	}
	rootTol, err := parity.ParseDigest(sm.ContentRootTolerant)
	if err != nil {
		return nil, fmt.Errorf("content_root_tolerant: %w", err)
	}
	st := parity.NewSettings()
	for _, p := range []struct{ dst, src map[string]any }{{st.Hashed, sm.Hashed}, {st.Engine, sm.Engine}, {st.Info, sm.Info}} {
		for k, v := range p.src {
			p.dst[k] = v
		}
	}
	st, sd, ed, err := verifier.DigestSettings(st, o.Declared)
	if err != nil {
		return nil, err
	}
	s := &verifier.Scan{Settings: st, SettingsDigest: sd, EngineDigest: ed, Points: sm.Points, Buckets: o.Buckets,
		RootTolerant: rootTol, RootSigned: root, Duplicates: sm.Duplicates, StoreID: sm.StoreID, Snapshot: sm.Snapshot, Via: c.Name()}
	r := &Remote{c: c, Scan: s, root: root, scannedAt: a.ScannedAt, depth: depth}
	if o.Nodes {
		n := a.Nodes
		if n == nil || n.Depth != depth || len(n.Hashes) != 32<<depth {
			return nil, fmt.Errorf("answer lacks the %d tree nodes at depth %d", 1<<depth, depth)
		}
		r.nodes = make([]parity.Digest, 1<<depth)
		for i := range r.nodes {
			copy(r.nodes[i][:], n.Hashes[32*i:])
		}
		if parity.RootOfNodes(r.nodes) != root {
			return nil, fmt.Errorf("the tree nodes do not hash to the signed content root %s", parity.ShortHex(root.Hex()))
		}
	} else {
		if a.Leaves == nil {
			return nil, errors.New("answer has no leaves")
		}
		ls, err := a.Leaves.decode()
		if err != nil {
			return nil, err
		}
		if err := r.setLeaves(ls); err != nil {
			return nil, err
		}
	}
	s.Elapsed = time.Since(start)
	return r, nil
}

// setLeaves checks a whole set of leaves against the signed root and the
// point count.
func (r *Remote) setLeaves(ls []parity.Leaf) error {
	if len(ls) != r.Scan.Buckets {
		return fmt.Errorf("%d leaves for %d buckets", len(ls), r.Scan.Buckets)
	}
	if got := parity.Root(ls); got != r.root {
		return fmt.Errorf("the leaves do not match the signed content root (they hash to %s, the root is %s)", parity.ShortHex(got.Hex()), parity.ShortHex(r.root.Hex()))
	}
	var n int64
	for _, l := range ls {
		n += int64(l.Count)
	}
	if n != r.Scan.Points {
		return fmt.Errorf("the leaves count %d points, the summary %d", n, r.Scan.Points)
	}
	r.Scan.Leaves = ls
	return nil
}

// sameScan checks that a later answer is about the scan Fetch saw.
func (r *Remote) sameScan(a *Answer) error {
	if a.ContentRoot != r.root.Hex() || !a.ScannedAt.Equal(r.scannedAt) {
		return fmt.Errorf("the agent rescanned between requests (content root %s, was %s): retry", parity.ShortHex(a.ContentRoot), parity.ShortHex(r.root.Hex()))
	}
	return nil
}

// Complete fills Scan.Leaves when Fetch read tree nodes: under a node
// equal to the reference's the leaves are the reference's (equal hashes,
// equal leaves); under the others they are fetched and checked against the
// node. ref nil (or of another size) fetches every leaf.
func (r *Remote) Complete(ctx context.Context, ref []parity.Leaf) error {
	if r.Scan.Leaves != nil {
		return nil
	}
	B := r.Scan.Buckets
	var differing []int
	if len(ref) == B {
		refNodes := parity.Levels(ref)[r.depth]
		for i := range r.nodes {
			if refNodes[i] != r.nodes[i] {
				differing = append(differing, i)
			}
		}
	}
	if len(ref) != B || len(differing) > len(r.nodes)/4 {
		a, err := r.c.get(ctx, fmt.Sprintf("/v1/leaves?from=0&to=%d", B))
		if err != nil {
			return err
		}
		if err := r.sameScan(a); err != nil {
			return err
		}
		if a.Leaves == nil || a.Leaves.From != 0 {
			return errors.New("answer lacks the leaves asked for")
		}
		ls, err := a.Leaves.decode()
		if err != nil {
			return err
		}
		return r.setLeaves(ls)
	}
	ls := append([]parity.Leaf(nil), ref...)
	for _, i := range differing {
		if err := r.subtree(ctx, i, ls); err != nil {
			return err
		}
	}
	return r.setLeaves(ls)
}

// subtree fetches the leaves under tree node i into ls, checked against
// the signed node.
func (r *Remote) subtree(ctx context.Context, i int, ls []parity.Leaf) error {
	w := r.Scan.Buckets / len(r.nodes)
	a, err := r.c.get(ctx, fmt.Sprintf("/v1/leaves?from=%d&to=%d", i*w, (i+1)*w))
	if err != nil {
		return err
	}
	if err := r.sameScan(a); err != nil {
		return err
	}
	if a.Leaves == nil || a.Leaves.From != i*w || a.Leaves.N != w {
		return errors.New("answer lacks the leaves asked for")
	}
	sub, err := a.Leaves.decode()
	if err != nil {
		return err
	}
	if parity.Levels(sub)[0][0] != r.nodes[i] {
		return fmt.Errorf("leaves %d..%d do not match the signed tree node %d", i*w, (i+1)*w-1, i)
	}
	copy(ls[i*w:], sub)
	return nil
}

// CompletePair fills the leaves of two scans fetched by tree nodes when
// neither has leaves to compare against (a diff between two agent
// regions): only the subtrees under the nodes where they differ are
// fetched, from both, each checked against its signed node. The leaves
// under equal nodes are equal in both (equal hashes) but unknown: they
// stay zero in both and the scans are marked LeavesPartial, their
// ContentRoot the signed root. That is all verifier.Diff needs (it
// looks only where leaves differ); when more than a quarter of the nodes
// differ, both are completed in full instead. errA and errB are each
// side's.
func CompletePair(ctx context.Context, a, b *Remote) (errA, errB error) {
	var differing []int
	paired := a.Scan.Leaves == nil && b.Scan.Leaves == nil && a.nodes != nil && len(a.nodes) == len(b.nodes) && a.Scan.Buckets == b.Scan.Buckets
	if paired {
		for i := range a.nodes {
			if a.nodes[i] != b.nodes[i] {
				differing = append(differing, i)
			}
		}
	}
	if !paired || len(differing) > len(a.nodes)/4 {
		if errA = a.Complete(ctx, b.Scan.Leaves); errA != nil {
			return errA, nil
		}
		return nil, b.Complete(ctx, a.Scan.Leaves)
	}
	la, lb := make([]parity.Leaf, a.Scan.Buckets), make([]parity.Leaf, b.Scan.Buckets)
	for _, i := range differing {
		if errA = a.subtree(ctx, i, la); errA != nil {
			return errA, nil
		}
		if errB = b.subtree(ctx, i, lb); errB != nil {
			return nil, errB
		}
	}
	a.Scan.Leaves, b.Scan.Leaves = la, lb
	a.Scan.LeavesPartial, b.Scan.LeavesPartial = true, true
	return nil, nil
}

// ReadBuckets reads the records of the wanted buckets from the agent
// (verifier.BucketRecords): each answer's records must add up to the
// checked leaves of their buckets, or none of them is passed on.
func (r *Remote) ReadBuckets(want map[int]bool, fn func(rec *verifier.SpillRecord)) error {
	if r.Scan.Leaves == nil {
		return errors.New("records asked before the leaves are known")
	}
	list := make([]int, 0, len(want))
	for b := range want {
		if b < 0 || b >= r.Scan.Buckets {
			return fmt.Errorf("bucket %d out of range", b)
		}
		list = append(list, b)
	}
	sort.Ints(list)
	ctx := context.Background()
	if r.c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.c.Timeout)
		defer cancel()
	}
	for len(list) > 0 {
		chunk := list[:min(len(list), MaxBucketsPerRequest)]
		list = list[len(chunk):]
		var sb strings.Builder
		for i, b := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(b))
		}
		a, err := r.c.get(ctx, "/v1/buckets?b="+sb.String())
		if err != nil {
			return fmt.Errorf("%s: %w", r.c.Name(), err)
		}
		if err := r.sameScan(a); err != nil {
			return fmt.Errorf("%s: %w", r.c.Name(), err)
		}
		if a.Records == nil {
			return fmt.Errorf("%s: answer has no records", r.c.Name())
		}
		asked := map[int]bool{}
		for _, b := range chunk {
			asked[b] = true
		}
		got := map[int]*parity.Leaf{}
		for _, b := range chunk {
			got[b] = &parity.Leaf{}
		}
		var recs []verifier.SpillRecord
		if err := decodeRecords(a.Records.Data, func(rec *verifier.SpillRecord) error {
			if !asked[rec.Bucket] {
				return fmt.Errorf("a record of bucket %d, which was not asked for", rec.Bucket)
			}
			if parity.BucketOf(rec.ID.S, r.Scan.Buckets) != rec.Bucket {
				return fmt.Errorf("id %s is not in bucket %d", rec.ID.S, rec.Bucket)
			}
			got[rec.Bucket].Add(parity.PointDigest(rec.ID.S, &rec.Digests, false))
			recs = append(recs, *rec)
			return nil
		}); err != nil {
			return fmt.Errorf("%s: %w", r.c.Name(), err)
		}
		for _, b := range chunk {
			if *got[b] != r.Scan.Leaves[b] {
				return fmt.Errorf("%s: the records of bucket %d do not add up to its signed leaf", r.c.Name(), b)
			}
		}
		for i := range recs {
			fn(&recs[i])
		}
	}
	return nil
}

// Close releases nothing: the records stay with the agent.
func (r *Remote) Close() error { return nil }

var _ verifier.BucketRecords = (*Remote)(nil)
