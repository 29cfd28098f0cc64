package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
)

// contract fields every health answer must carry.
var contractFields = []string{"schema_rev", "model_tag", "secrets_rev", "index_hash"}

// crossHostRedirect is a health URL redirecting to another host: the
// answer would be another host's contract, so it is not followed.
type crossHostRedirect struct{ from, to string }

func (e *crossHostRedirect) Error() string {
	return fmt.Sprintf("health URL redirected to another host (%s -> %s); not followed", e.from, e.to)
}

// sameHostClient is hc (or a default client) that follows at most 5
// redirects and only within the scheme and host:port of the first request.
func sameHostClient(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
			return &crossHostRedirect{from: first.Scheme + "://" + first.Host, to: req.URL.Scheme + "://" + req.URL.Host}
		}
		if len(via) >= 5 {
			return fmt.Errorf("more than 5 redirects")
		}
		return nil
	}
	return c
}

// fetchContracts GETs every region's health URL. A transport error,
// timeout or 5xx is an error (inconclusive); a 200 that is not the
// contract is recorded as a failure in the map under "_error".
func fetchContracts(ctx context.Context, cfg *config.Config, hc *http.Client) map[string]map[string]string {
	hc = sameHostClient(hc)
	out := map[string]map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range cfg.Regions {
		wg.Add(1)
		go func(r config.Region) {
			defer wg.Done()
			m := map[string]string{}
			defer func() { mu.Lock(); out[r.Name] = m; mu.Unlock() }()
			if r.Health == "" {
				m["_inconclusive"] = "no health URL configured"
				return
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Health, nil)
			if err != nil {
				m["_inconclusive"] = "bad health URL: " + adapters.RedactErr(err).Error()
				return
			}
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			var cross *crossHostRedirect
			if errors.As(err, &cross) {
				m["_fail"] = cross.Error()
				return
			}
			if err != nil {
				m["_inconclusive"] = "health URL did not answer: " + adapters.RedactErr(err).Error()
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				m["_inconclusive"] = "reading health answer: " + err.Error()
				return
			}
			if resp.StatusCode >= 500 || resp.StatusCode == 429 {
				m["_inconclusive"] = fmt.Sprintf("health URL answered %d", resp.StatusCode)
				return
			}
			if resp.StatusCode != 200 {
				m["_fail"] = fmt.Sprintf("health URL answered %d", resp.StatusCode)
				return
			}
			var obj map[string]any
			if err := json.Unmarshal(body, &obj); err != nil {
				if len(strings.TrimSpace(string(body))) == 0 {
					m["_fail"] = "health answered a bare 200 (empty body), not the contract"
				} else {
					m["_fail"] = "health answer is not a JSON object"
				}
				return
			}
			var missing []string
			for _, f := range contractFields {
				s, ok := obj[f].(string)
				if !ok || s == "" {
					missing = append(missing, f)
					continue
				}
				m[f] = s
			}
			if len(missing) > 0 {
				m["_fail"] = "health contract missing " + strings.Join(missing, ", ")
			}
		}(r)
	}
	wg.Wait()
	return out
}

// healthCheck decides each region's health contract: it answers the
// contract; schema_rev and secrets_rev equal the reference's expected
// contract (the baseline's, else the agreeing majority's); model_tag
// equals the reference's and the model tag the region's index declares;
// index_hash equals the INDEX_HASH computed for that region.
func healthCheck(cfg *config.Config, o Options, contracts map[string]map[string]string, ix *indexResult) Check {
	c := Check{Name: CheckHealth, Threshold: "every region answers {schema_rev, model_tag, secrets_rev, index_hash}: the first three equal the reference's expected contract, model_tag the index's, index_hash the one computed for that region", Evidence: []string{}}
	res := newResults(cfg)
	ok := map[string]bool{}
	for _, r := range cfg.Regions {
		m := contracts[r.Name]
		switch {
		case m == nil:
			res.inconclusive(r.Name, "no answer")
		case m["_inconclusive"] != "":
			res.inconclusive(r.Name, m["_inconclusive"])
		case m["_fail"] != "":
			res.fail(r.Name, m["_fail"])
			c.Evidence = append(c.Evidence, r.Name+": "+m["_fail"])
		default:
			ok[r.Name] = true
		}
	}
	for _, f := range contractFields[:3] {
		var want string
		if b := o.Baseline; b != nil {
			want = b.Contract[f]
			if want == "" {
				for name := range ok {
					res.inconclusive(name, fmt.Sprintf("the baseline records no %s", f))
				}
				continue
			}
		} else {
			vals := map[string]string{}
			for name := range ok {
				vals[name] = contracts[name][f]
			}
			ref, found, why := majority(cfg, vals, f)
			if !found {
				for name := range ok {
					res.inconclusive(name, why)
				}
				continue
			}
			want = ref
		}
		for _, r := range cfg.Regions {
			if got := contracts[r.Name][f]; ok[r.Name] && got != want {
				why := fmt.Sprintf("claims %s %q, the reference expects %q", f, got, want)
				res.fail(r.Name, why)
				c.Evidence = append(c.Evidence, r.Name+": "+why)
			}
		}
	}
	for _, r := range cfg.Regions {
		if !ok[r.Name] {
			continue
		}
		m := contracts[r.Name]
		h, computed := RegionHash{}, false
		if ix != nil {
			h, computed = ix.hashes[r.Name]
		}
		if !computed {
			res.inconclusive(r.Name, "its INDEX_HASH could not be computed, so its claimed index_hash cannot be checked")
			continue
		}
		if h.ModelTag != "" && m["model_tag"] != h.ModelTag {
			why := fmt.Sprintf("claims model_tag %q, its index declares %q", m["model_tag"], h.ModelTag)
			res.fail(r.Name, why)
			c.Evidence = append(c.Evidence, r.Name+": "+why)
		}
		if m["index_hash"] != h.IndexHash {
			why := fmt.Sprintf("claims index_hash %s, ragparity computed %s", parity.ShortHex(m["index_hash"]), parity.ShortHex(h.IndexHash))
			res.fail(r.Name, why)
			c.Evidence = append(c.Evidence, r.Name+": "+why)
		}
		res.pass(r.Name)
	}
	res.apply(&c)
	c.Figure = fmt.Sprintf("%d of %d regions healthy", countStatus(c.Regions, Pass), len(cfg.Regions))
	return c
}

func countStatus(rs []CheckRegion, s Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == s {
			n++
		}
	}
	return n
}
