//go:build browser

package report

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "directory to write the report's screenshot into (the README's is docs/img/bench-report.png)")

// TestReportInBrowser opens a report written by WriteHTML in headless
// Chromium from a file, offline: the page must fetch nothing (no resource
// entries in its performance timeline, no Content-Security-Policy
// violation or other error on its console) and must draw every chart with
// a point per charted second.
func TestReportInBrowser(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		if os.Getenv("ALLOT_BROWSER_REQUIRED") != "" {
			t.Fatal("no chromium binary on PATH and ALLOT_BROWSER_REQUIRED is set (apt-get install chromium)")
		}
		t.Skip("no chromium binary on PATH")
	}
	r := htmlSample()
	path := filepath.Join(t.TempDir(), "report.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(820, 1400))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	defer cancelTimeout()

	var mu sync.Mutex
	var faults []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				faults = append(faults, fmt.Sprintf("%s (%s)", m, m.Source))
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.CSS("svg.chart"))); err != nil {
		t.Fatalf("opening the report: %v", err)
	}
	type pageFacts struct {
		Fetched []string `json:"fetched"`
		Charts  int      `json:"charts"`
		Points  []int    `json:"points"`
		Title   string   `json:"title"`
	}
	facts, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](`(() => ({
  fetched: performance.getEntriesByType('resource').map((e) => e.name),
  charts: document.querySelectorAll('svg.chart').length,
  points: [...document.querySelectorAll('svg.chart polyline')].map((p) => p.points.numberOfItems),
  title: document.title,
}))()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts.Fetched) != 0 {
		t.Errorf("the report fetched %v", facts.Fetched)
	}
	runs := runsOf(r)
	if facts.Charts != 2*len(runs) || len(facts.Points) != 8*len(runs) {
		t.Fatalf("%d charts with %d lines, want 2 and 8 per run (%d runs)", facts.Charts, len(facts.Points), len(runs))
	}
	for i, n := range facts.Points {
		if want := len(chartedSeconds(runs[i/8])); n != want {
			t.Errorf("line %d drawn with %d points, want %d", i, n, want)
		}
	}
	if facts.Title != "allot bench: seckill FAIL" { // the sample's verification fails
		t.Errorf("title %q", facts.Title)
	}
	if *screenshots != "" {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, "bench-report-sample.png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let late console messages arrive
	mu.Lock()
	defer mu.Unlock()
	for _, f := range faults {
		t.Errorf("page console: %s", f)
	}
}
