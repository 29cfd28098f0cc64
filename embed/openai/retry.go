package openai

// Retry policy: which failures are retried, how long to wait.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
)

// backoff is the delay before retry number attempt (1-based): Backoff ·
// 2^(attempt-1), capped at MaxBackoff, jittered down to half of that.
func (e *Embedder) backoff(attempt int) time.Duration {
	d := e.cfg.Backoff << min(attempt-1, 30)
	if d <= 0 || d > e.cfg.MaxBackoff {
		d = e.cfg.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// classify says whether an attempt's error is worth retrying, and names it.
func classify(err error, status int) (bool, string) {
	var ae *goopenai.APIError
	var re *goopenai.RequestError
	switch {
	case errors.As(err, &ae):
		status = ae.HTTPStatusCode
	case errors.As(err, &re):
		status = re.HTTPStatusCode
	case errors.Is(err, context.DeadlineExceeded):
		return true, "request timed out"
	}
	if status == 0 {
		var ue *url.Error
		if errors.As(err, &ue) {
			return true, "transport error"
		}
		return false, "request failed"
	}
	switch {
	case status < 300:
		return false, fmt.Sprintf("HTTP %d with an unreadable body", status)
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return true, fmt.Sprintf("HTTP %d", status)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return false, fmt.Sprintf("HTTP %d, unauthorized", status)
	default:
		return false, fmt.Sprintf("HTTP %d", status)
	}
}

// captured is what captureTransport saw of an attempt's response.
type captured struct {
	status     int
	retryAfter time.Duration
}

type captureKey struct{}

// captureTransport records the status and Retry-After of each response for
// the retry loop (go-openai's errors do not carry headers).
type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if c, ok := r.Context().Value(captureKey{}).(*captured); ok && resp != nil {
		c.status = resp.StatusCode
		c.retryAfter = RetryAfter(resp.Header, time.Now())
	}
	return resp, err
}

// RetryAfter reads retry-after-ms (milliseconds) or Retry-After (seconds or
// an HTTP date) from h; 0 when absent, unparseable or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if s := strings.TrimSpace(h.Get("Retry-After-Ms")); s != "" {
		if ms, err := strconv.ParseFloat(s, 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	s := strings.TrimSpace(h.Get("Retry-After"))
	if s == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs <= 0 || secs > 1e6 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
