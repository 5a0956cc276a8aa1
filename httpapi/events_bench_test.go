package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that counts what it is sent and can
// call a function on Flush (the SSE benchmark ends its request there).
type discardWriter struct {
	h       http.Header
	status  int
	n       int
	onFlush func()
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}
func (w *discardWriter) Flush() {
	if w.onFlush != nil {
		w.onFlush()
	}
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// BenchmarkEventsRead measures serving the stream: one op is one page of
// 1000 events (GET /v1/events?limit=1000) or one SSE burst of 1000 events
// (GET /v1/events/stream, ended after its first flush), through the whole
// handler chain (routing, auth from the token cache, metrics). It reports
// events/s and the allocations per event.
func BenchmarkEventsRead(b *testing.B) {
	e := newEventsEnv(b, func(c *Config) { c.IPRateLimit.PerSecond = 0 })
	e.held(1000, "flash-1")
	h := e.srv.Handler()
	run := func(b *testing.B, path string, sse bool) {
		w := &discardWriter{h: make(http.Header)}
		req, _ := http.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+e.consumer)
		var ctx context.Context
		var cancel context.CancelFunc
		if sse {
			w.onFlush = func() {
				if w.n > 0 {
					cancel()
				}
			}
		}
		serve := func() {
			w.reset()
			r := req
			if sse {
				ctx, cancel = context.WithCancel(context.Background())
				r = req.WithContext(ctx)
			}
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK || w.n < 1000*200 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		}
		serve() // warm the token cache, pools and metrics
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			serve()
		}
		elapsed := time.Since(start)
		b.StopTimer()
		runtime.ReadMemStats(&after)
		events := float64(b.N) * 1000
		b.ReportMetric(events/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
		b.ReportMetric(float64(w.n)/1000, "bytes/event")
	}
	b.Run("page1000", func(b *testing.B) { run(b, "/v1/events?after=0&limit=1000", false) })
	b.Run("sse1000", func(b *testing.B) { run(b, "/v1/events/stream?after=0", true) })
	// Over loopback TCP with a real client: one op opens a stream, reads
	// its 1000 events and hangs up.
	b.Run("sse1000-loopback", func(b *testing.B) {
		ts := httptest.NewServer(h)
		defer ts.Close()
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		br := bufio.NewReaderSize(nil, 64<<10)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			req, _ := http.NewRequest("GET", ts.URL+"/v1/events/stream?after=0", nil)
			req.Header.Set("Authorization", "Bearer "+e.consumer)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			br.Reset(resp.Body)
			for seen := 0; seen < 1000; {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatalf("after %d events: %v", seen, err)
				}
				if bytes.HasPrefix(line, []byte("data: ")) {
					seen++
				}
			}
			resp.Body.Close()
		}
		b.ReportMetric(float64(b.N)*1000/time.Since(start).Seconds(), "events/s")
	})
}

// TestEventsReadAllocs keeps the claim of BenchmarkEventsRead: serving a
// page or a burst allocates per request, not per event.
func TestEventsReadAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts")
	}
	e := newEventsEnv(t, nil)
	e.held(1000, "flash-1")
	h := e.srv.Handler()
	w := &discardWriter{h: make(http.Header)}
	req, _ := http.NewRequest("GET", "/v1/events?after=0&limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+e.consumer)
	h.ServeHTTP(w, req)
	allocs := testing.AllocsPerRun(20, func() { w.reset(); h.ServeHTTP(w, req) })
	if w.status != http.StatusOK || !bytes.Contains([]byte(w.h.Get("Content-Type")), []byte("json")) {
		t.Fatalf("status %d", w.status)
	}
	if allocs > 100 {
		t.Fatalf("%.0f allocations for a page of 1000 events", allocs)
	}
}
