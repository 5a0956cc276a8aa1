package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakePeer serves a /healthz whose time is the machine's shifted by shift,
// as a node with a clock off by shift would.
func fakePeer(t *testing.T, shift time.Duration) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		now := time.Now().Add(shift).UTC().Format(time.RFC3339Nano)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","time":"` + now + `"}`))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// peerList is a membership that a test changes.
type peerList struct {
	mu    sync.Mutex
	peers []clockPeer
}

func (l *peerList) set(peers ...clockPeer) {
	l.mu.Lock()
	l.peers = peers
	l.mu.Unlock()
}

func (l *peerList) get() []clockPeer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]clockPeer(nil), l.peers...)
}

func newTestProber(t *testing.T, cfg ClockProbeConfig, peers *peerList) *clockProber {
	t.Helper()
	p := newClockProber(cfg, nil, peers.get, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		p.cancel()
		p.tr.CloseIdleConnections()
	})
	return p
}

// probeSeries gathers the prober's series: family name → peer → value.
func probeSeries(t *testing.T, p *clockProber) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(p)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, f := range fams {
		byPeer := map[string]float64{}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "peer" {
				t.Fatalf("%s: labels %v, want peer only", f.GetName(), m.GetLabel())
			}
			byPeer[m.GetLabel()[0].GetValue()] = value(m)
		}
		out[f.GetName()] = byPeer
	}
	return out
}

// The probe of a peer whose clock is off by a known amount measures that
// amount within its stated uncertainty.
func TestClockProbeMeasuresOffset(t *testing.T) {
	shifts := map[string]time.Duration{"ahead": 3 * time.Second, "behind": -1500 * time.Millisecond, "same": 0}
	peers := &peerList{}
	var list []clockPeer
	for id, shift := range shifts {
		list = append(list, clockPeer{id: id, url: fakePeer(t, shift).URL})
	}
	peers.set(list...)
	p := newTestProber(t, ClockProbeConfig{Interval: time.Minute, Timeout: 5 * time.Second}, peers)
	for range 2 { // the first round also dials; the second reuses the connection
		p.round(context.Background())
		got := probeSeries(t, p)
		for id, shift := range shifts {
			offset, ok := got["allot_clock_offset_seconds"][id]
			unc := got["allot_clock_offset_uncertainty_seconds"][id]
			// Both clocks are this machine's: the peer read it between t0
			// and t1, so the error is at most half the round trip (plus the
			// rounding of a float of seconds).
			if errSec := offset - shift.Seconds(); !ok || unc <= 0 || unc > 5 || errSec > unc+1e-6 || errSec < -unc-1e-6 {
				t.Errorf("%s (shift %v): offset %v s ± %v s (exported %v)", id, shift, offset, unc, ok)
			}
			if f := got["allot_clock_probe_failures_total"][id]; f != 0 {
				t.Errorf("%s: %v failures", id, f)
			}
		}
	}
}

// blackhole accepts connections and never answers; arrived is told of each.
func blackhole(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String(), ch
}

// A peer that never answers, one that refuses connections and one that
// reports no time each count a failure, and cost the round no more than the
// probe timeout: the peer after them is still measured.
func TestClockProbeUnreachablePeer(t *testing.T) {
	silent, _ := blackhole(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ok"}`)) // an allot from before the time field
	}))
	t.Cleanup(old.Close)
	peers := &peerList{}
	peers.set(clockPeer{"silent", silent}, clockPeer{"refused", refused}, clockPeer{"old", old.URL},
		clockPeer{"good", fakePeer(t, 0).URL})

	const timeout = 300 * time.Millisecond
	p := newTestProber(t, ClockProbeConfig{Interval: time.Minute, Timeout: timeout}, peers)
	start := time.Now()
	p.round(context.Background())
	elapsed := time.Since(start)
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("round took %v: a silent peer should cost about the %v timeout, no more", elapsed, timeout)
	}
	got := probeSeries(t, p)
	for _, id := range []string{"silent", "refused", "old"} {
		if f := got["allot_clock_probe_failures_total"][id]; f != 1 {
			t.Errorf("%s: %v failures, want 1", id, f)
		}
		if _, ok := got["allot_clock_offset_seconds"][id]; ok {
			t.Errorf("%s: an offset is exported for a peer never measured", id)
		}
	}
	if _, ok := got["allot_clock_offset_seconds"]["good"]; !ok || got["allot_clock_probe_failures_total"]["good"] != 0 {
		t.Errorf("the answering peer behind them was not measured: %v", got)
	}
}

// Shutting the prober down ends a probe in flight at once, whatever its
// timeout.
func TestClockProbeCloseDoesNotWaitForPeer(t *testing.T) {
	silent, arrived := blackhole(t)
	peers := &peerList{}
	peers.set(clockPeer{"silent", silent})
	p := newTestProber(t, ClockProbeConfig{Interval: time.Minute, Timeout: 30 * time.Second}, peers)
	p.start()
	select {
	case <-arrived: // the first round's probe is waiting for an answer
	case <-time.After(10 * time.Second):
		t.Fatal("the first round did not probe")
	}
	start := time.Now()
	p.close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v with a probe in flight", d)
	}
}

// A member that leaves loses its series; one that stops answering keeps its
// failure count but loses its offset after three rounds, rather than showing
// an old one.
func TestClockProbeForgetsRemovedPeers(t *testing.T) {
	a, b := fakePeer(t, 0), fakePeer(t, time.Second)
	peers := &peerList{}
	peers.set(clockPeer{"a", a.URL}, clockPeer{"b", b.URL})
	p := newTestProber(t, ClockProbeConfig{Interval: 100 * time.Millisecond, Timeout: 50 * time.Millisecond}, peers)
	p.round(context.Background())
	families := []string{"allot_clock_offset_seconds", "allot_clock_offset_uncertainty_seconds", "allot_clock_probe_failures_total"}
	got := probeSeries(t, p)
	for _, f := range families {
		if len(got[f]) != 2 {
			t.Fatalf("%s: %v, want series for a and b", f, got[f])
		}
	}

	peers.set(clockPeer{"a", a.URL}) // b is removed from the cluster
	p.round(context.Background())
	got = probeSeries(t, p)
	for _, f := range families {
		if _, ok := got[f]["b"]; ok || len(got[f]) != 1 {
			t.Errorf("%s after b left: %v, want a only", f, got[f])
		}
	}

	a.Close() // a stops answering
	ok := poll(10*time.Second, func() bool {
		p.round(context.Background())
		_, has := probeSeries(t, p)["allot_clock_offset_seconds"]["a"]
		return !has
	})
	got = probeSeries(t, p)
	if !ok || got["allot_clock_probe_failures_total"]["a"] < 1 {
		t.Errorf("a silent peer: %v, want its failures and no offset", got)
	}
}
