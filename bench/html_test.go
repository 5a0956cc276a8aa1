package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestEmbeddedRunHTML: a real run with --html and --json writes a page
// whose embedded report is the JSON report, with a timeline covering the
// measured seconds; off a terminal the progress goes to the log, a line a
// second with the p99 so far.
func TestEmbeddedRunHTML(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")
	var out, errs bytes.Buffer
	code := run([]string{"--scenario", "soldout", "--duration", "2500ms", "--concurrency", "8", "--vouchers", "2", "--stock", "20",
		"--baseline", "--json", jsonPath, "--html", htmlPath}, &out, &errs)
	if code != exitPass {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="allot-report">(.*?)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatal("the page embeds no report")
	}
	var fromJSON, fromHTML map[string]any
	if err := json.Unmarshal(raw, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m[1], &fromHTML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromHTML) {
		t.Error("the page's report differs from the JSON report")
	}
	var rep struct {
		Allot struct {
			Requests int64 `json:"requests"`
			Timeline []struct {
				OK, Rejected, Throttled, Failed int64
			} `json:"timeline"`
		} `json:"allot"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, s := range rep.Allot.Timeline {
		sum += s.OK + s.Rejected + s.Throttled + s.Failed
	}
	if n := len(rep.Allot.Timeline); n < 2 || sum != rep.Allot.Requests {
		t.Errorf("timeline of %d seconds holding %d answers; the run measured %d", n, sum, rep.Allot.Requests)
	}
	progress := 0
	for _, l := range strings.Split(errs.String(), "\n") {
		if strings.HasPrefix(l, "bench: progress ") && strings.Contains(l, "req/s") && strings.Contains(l, "errors 0") {
			progress++
		}
	}
	if progress < 2 {
		t.Errorf("%d progress lines in the log of a 3 s run (warmup included); log:\n%s", progress, errs.String())
	}
	if strings.Contains(out.String(), "bench: progress") {
		t.Error("progress lines in the report's output off a terminal")
	}
}
