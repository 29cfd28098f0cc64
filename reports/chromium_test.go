package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, installed by scripts/services.sh.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium page that records console errors,
// uncaught exceptions and every request that is not for a local file.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	requests []string
}

func startChromium(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("headless Chromium not found at %s: run make services (installs chromium)", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, cancelA := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	b := &browser{ctx: bctx}
	if err := chromedp.Listen(bctx, b.event); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return b
}

// event runs in chromedp's read loop: record and return.
func (b *browser) event(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value))
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if ex := e.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
			msg += " " + ex.Description
		}
		b.problems = append(b.problems, "uncaught exception: "+msg)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			b.problems = append(b.problems, fmt.Sprintf("log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			b.requests = append(b.requests, u)
		}
	}
}

// load opens a file and returns what went wrong while loading it.
func (b *browser) load(t *testing.T, path string) (problems, requests []string) {
	t.Helper()
	b.mu.Lock()
	b.problems, b.requests = nil, nil
	b.mu.Unlock()
	if err := chromedp.Do(b.ctx, chromedp.Navigate("file://"+path)); err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	// Let late events (a blocked resource, an error after load) arrive.
	if err := chromedp.Do(b.ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...), append([]string(nil), b.requests...)
}

type svgInfo struct {
	ID       string  `json:"id"`
	Width    float64 `json:"w"`
	Height   float64 `json:"h"`
	Children int     `json:"children"`
	Paths    int     `json:"paths"`
	Texts    int     `json:"texts"`
	// Ink is the size of the drawing's bounding box: zero when nothing
	// was laid out inside the <svg>.
	InkW float64 `json:"inkW"`
	InkH float64 `json:"inkH"`
}

const svgProbe = `Array.from(document.querySelectorAll("svg")).map(s => {
	const r = s.getBoundingClientRect();
	const g = s.querySelector("g");
	const bb = g ? g.getBBox() : {width: 0, height: 0};
	return {id: s.id, w: r.width, h: r.height,
		children: s.querySelectorAll("*").length,
		paths: s.querySelectorAll("path").length,
		texts: s.querySelectorAll("text").length,
		inkW: bb.width, inkH: bb.height};
})`

// TestHTMLInChromium opens the HTML reports in headless Chromium: the page
// loads with no console error and no request, every chart renders (an
// <svg> with a size, drawn children and text), and a screenshot is taken.
func TestHTMLInChromium(t *testing.T) {
	b := startChromium(t)
	dir := t.TempDir()

	t.Run("DetectsConsoleErrors", func(t *testing.T) {
		// The check below is only worth something if it can fail.
		bad := filepath.Join(dir, "bad.html")
		os.WriteFile(bad, []byte(`<!DOCTYPE html><title>bad</title><script>console.error("planted error"); throw new Error("planted exception")</script>`), 0o644)
		problems, _ := b.load(t, bad)
		if got := strings.Join(problems, "\n"); !strings.Contains(got, "planted error") || !strings.Contains(got, "planted exception") {
			t.Fatalf("planted console error and exception not both seen; got:\n%s", got)
		}
	})

	for _, tc := range []struct {
		name   string
		model  func(testing.TB) *Model
		charts []string
	}{
		{"Fail", failingModel, []string{"chart-checks", "chart-delta-s", "chart-drift", "chart-lambda", "chart-buckets-1"}},
		{"Inconclusive", inconclusiveModel, []string{"chart-checks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			if _, err := WriteFormats(out, tc.model(t), FormatHTML); err != nil {
				t.Fatal(err)
			}
			page := filepath.Join(out, FormatHTML.FileName())
			problems, requests := b.load(t, page)
			if len(problems) > 0 {
				t.Errorf("console errors while loading the report:\n%s", strings.Join(problems, "\n"))
			}
			if len(requests) > 0 {
				t.Errorf("the report made requests (it must be self-contained): %v", requests)
			}

			raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](svgProbe))
			if err != nil {
				t.Fatal(err)
			}
			var svgs []svgInfo
			if err := json.Unmarshal(raw, &svgs); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range svgs {
				ids = append(ids, s.ID)
			}
			if got, want := strings.Join(ids, ","), strings.Join(tc.charts, ","); got != want {
				t.Errorf("<svg> elements = [%s], want [%s]", got, want)
			}
			for _, s := range svgs {
				if s.Width < 100 || s.Height < 50 {
					t.Errorf("%s: rendered %.0f×%.0f px, want at least 100×50", s.ID, s.Width, s.Height)
				}
				if s.Paths < 3 || s.Texts < 1 {
					t.Errorf("%s: %d children, %d paths, %d texts: want a drawing with paths and text", s.ID, s.Children, s.Paths, s.Texts)
				}
				if s.InkW < 50 || s.InkH < 50 {
					t.Errorf("%s: drawing's bounding box is %.0f×%.0f, want at least 50×50", s.ID, s.InkW, s.InkH)
				}
			}

			shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(shot))
			if err != nil {
				t.Fatalf("screenshot is not a PNG: %v", err)
			}
			if r := img.Bounds(); r.Dx() < 1000 || r.Dy() < 900 {
				t.Errorf("screenshot is %v, want at least 1000×900", r.Size())
			}
			shotPath := filepath.Join(out, "report.png")
			if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", shotPath)
			// REPORTS_SCREENSHOT_DIR keeps a copy for a person to look at.
			if keep := os.Getenv("REPORTS_SCREENSHOT_DIR"); keep != "" {
				if err := os.WriteFile(filepath.Join(keep, "report-"+strings.ToLower(tc.name)+".png"), shot, 0o644); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
