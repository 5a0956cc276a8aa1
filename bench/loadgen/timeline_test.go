package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTimelineAddsUpToTheRun: an open loop at 200 req/s for 2.5 s against
// a server that answers 201, 409 and 503 in turn, and stalls 300 ms once
// in the second second. The timeline's seconds must add up to the run's
// answers class by class, hold every latency, and show the stall in the
// second it happened, not in the others.
func TestTimelineAddsUpToTheRun(t *testing.T) {
	var n atomic.Int64
	var stall sync.Once
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) > 1200*time.Millisecond {
			stall.Do(func() { time.Sleep(300 * time.Millisecond) })
		}
		w.WriteHeader([]int{http.StatusCreated, http.StatusConflict, http.StatusServiceUnavailable}[n.Add(1)%3])
	}))
	t.Cleanup(srv.Close)
	var progress []Progress
	var mu sync.Mutex
	cfg := config(srv, 4, 200, 2500*time.Millisecond)
	cfg.Progress = func(p Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }
	res, err := Run(context.Background(), cfg, &recSource{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Timeline) < 3 || len(res.Timeline) > 4 {
		t.Fatalf("%d seconds in the timeline of a 2.5 s run", len(res.Timeline))
	}
	var ok, rejected, throttled, failed, held int64
	for i, s := range res.Timeline {
		if s.Offset != time.Duration(i)*time.Second {
			t.Errorf("second %d starts at %s", i, s.Offset)
		}
		ok, rejected, throttled, failed = ok+s.OK, rejected+s.Rejected, throttled+s.Throttled, failed+s.Failed
		if got := s.OK + s.Rejected + s.Throttled + s.Failed; got != s.Latency.TotalCount() {
			t.Errorf("second %d: %d answers but %d latencies", i, got, s.Latency.TotalCount())
		}
		held += s.Latency.TotalCount()
	}
	if want := res.Codes[CodeKey{Status: http.StatusCreated}]; ok != want {
		t.Errorf("timeline 2xx %d, run %d", ok, want)
	}
	if want := res.Codes[CodeKey{Status: http.StatusConflict}]; rejected != want {
		t.Errorf("timeline rejected %d, run %d", rejected, want)
	}
	if want := res.Codes[CodeKey{Status: http.StatusServiceUnavailable}]; throttled != want {
		t.Errorf("timeline throttled %d, run %d", throttled, want)
	}
	if failed != 0 || held != res.Requests {
		t.Errorf("timeline failed %d, latencies %d; run requests %d", failed, held, res.Requests)
	}
	slow := func(i int) bool { return res.Timeline[i].Latency.Max() >= 200_000 }
	if slow(0) || !slow(1) {
		t.Errorf("max latency per second %d, %d µs: the 300 ms stall belongs to the second second",
			res.Timeline[0].Latency.Max(), res.Timeline[1].Latency.Max())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 || progress[len(progress)-1].P99 <= 0 {
		t.Errorf("progress %+v: want a p99 so far once answers were measured", progress)
	}
}
