package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors"
	"allot/cluster"
)

// ClockProbeConfig tunes the clock-offset probe: every node asks every other
// member for its wall clock (GET /healthz) and exports the offsets, because
// leader time relies on the nodes' clocks agreeing across leaders (see
// "Time" in docs/DESIGN.md).
type ClockProbeConfig struct {
	// Interval is the time between two rounds of probes (one probe per
	// member and round), jittered by ±10% so that nodes do not probe in
	// step. 0 takes the default, 10s; a negative Interval turns the probe
	// off.
	Interval time.Duration
	// Timeout bounds one probe: connecting, asking and reading the answer.
	// 0 takes the default, 1s; it is cut to half the Interval.
	Timeout time.Duration
	// TLS is the client configuration for peers that serve HTTPS; Start
	// fills it in (see Config.TLSCertFile).
	TLS *tls.Config
}

// DefaultClockProbeConfig probes every 10 s and gives a peer 1 s to answer.
func DefaultClockProbeConfig() ClockProbeConfig {
	return ClockProbeConfig{Interval: 10 * time.Second, Timeout: time.Second}
}

func (c *ClockProbeConfig) fill() {
	d := DefaultClockProbeConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.Interval > 0 {
		c.Timeout = min(c.Timeout, c.Interval/2)
	}
}

// clockSkewBound is the clock skew allot is run with: see "Time" in
// docs/DESIGN.md for why 250 ms. The alert AllotClockSkew uses it too; here
// it only decides what is logged.
const clockSkewBound = 250 * time.Millisecond

// clockPeer is a member to probe.
type clockPeer struct {
	id  string
	url string // base URL of its HTTP API
}

// clusterPeers lists the members of node's Raft configuration whose HTTP
// address committed state records, this node excepted.
func clusterPeers(node *cluster.Node) func() []clockPeer {
	return func() []clockPeer {
		st := node.Status()
		peers := make([]clockPeer, 0, len(st.Nodes))
		for _, n := range st.Nodes {
			if n.ID == st.ID || n.HTTPAddr == "" {
				continue
			}
			url := n.HTTPAddr
			if !strings.Contains(url, "://") {
				url = "http://" + url
			}
			peers = append(peers, clockPeer{id: n.ID, url: strings.TrimSuffix(url, "/")})
		}
		return peers
	}
}

// peerClock is what the probe knows of one peer's clock.
type peerClock struct {
	offset      time.Duration // peer's wall clock minus ours
	uncertainty time.Duration // half the round trip: the true offset is within ± this
	measured    time.Time     // when (monotonic); zero until a probe succeeds
	failures    uint64
	failing     bool // the last probe failed
	skewed      bool // the last offset was beyond clockSkewBound
}

// clockProber measures the offset of every peer's wall clock from this
// node's, NTP-style: read our clock (t0), ask the peer for its time, note
// when the answer came (t1); the peer read its clock between the two, so
// offset = peer − (t0+t1)/2 within ±(t1−t0)/2. One goroutine probes the
// peers in turn, each probe bounded by Timeout, so an unreachable peer
// delays only its own round. It is a prometheus.Collector of the results.
type clockProber struct {
	cfg   ClockProbeConfig
	clock actors.Clock // this node's wall clock: the one leader time is read from
	peers func() []clockPeer
	log   *slog.Logger
	tr    *http.Transport
	hc    *http.Client

	ctx    context.Context // ends the loop and any probe in flight
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	known map[string]*peerClock // by peer id: the current members only
}

func newClockProber(cfg ClockProbeConfig, clock actors.Clock, peers func() []clockPeer, log *slog.Logger) *clockProber {
	cfg.fill()
	if clock == nil {
		clock = machineClock{}
	}
	tr := &http.Transport{
		// No proxy: peers are cluster members. One kept-alive connection
		// per peer keeps the handshake out of the round trip.
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     3 * max(cfg.Interval, time.Second),
		DisableCompression:  true,
		TLSClientConfig:     cfg.TLS,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &clockProber{
		cfg: cfg, clock: clock, peers: peers, log: log,
		tr: tr, hc: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		known: map[string]*peerClock{},
	}
}

// machineClock is the machine's wall clock.
type machineClock struct{}

func (machineClock) Now() time.Time { return time.Now() }

// start runs the probe loop until close; a prober whose Interval is
// negative does nothing.
func (p *clockProber) start() {
	if p.cfg.Interval < 0 {
		close(p.done)
		return
	}
	go p.run()
}

func (p *clockProber) run() {
	defer close(p.done)
	t := time.NewTimer(0) // the first round at once
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.round(p.ctx)
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(p.cfg.Interval))
		t.Reset(p.cfg.Interval + jitter)
	}
}

// close stops the loop, ending a probe in flight, and waits for it.
func (p *clockProber) close() {
	p.cancel()
	<-p.done
	p.tr.CloseIdleConnections()
}

// round probes every current member once and forgets those that left.
func (p *clockProber) round(ctx context.Context) {
	peers := p.peers()
	p.forget(peers)
	for _, peer := range peers {
		if ctx.Err() != nil {
			return
		}
		offset, uncertainty, err := p.probe(ctx, peer)
		p.record(peer.id, offset, uncertainty, err)
	}
}

// forget drops what is known of peers that are no longer members, so that
// their series disappear.
func (p *clockProber) forget(current []clockPeer) {
	keep := make(map[string]bool, len(current))
	for _, peer := range current {
		keep[peer.id] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.known {
		if !keep[id] {
			delete(p.known, id)
		}
	}
}

// healthTime is the part of a /healthz answer the probe reads.
type healthTime struct {
	Time string `json:"time"`
}

// probe measures one peer's offset.
func (p *clockProber) probe(ctx context.Context, peer clockPeer) (offset, uncertainty time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer.url+"/healthz", nil)
	if err != nil {
		return 0, 0, err
	}
	t0 := p.clock.Now().Round(0) // wall reading only
	start := time.Now()
	resp, err := p.hc.Do(req)
	rtt := time.Since(start) // the peer answers after reading its clock
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /healthz: status %d", resp.StatusCode)
	}
	var h healthTime
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&h); err != nil {
		return 0, 0, fmt.Errorf("GET /healthz: %w", err)
	}
	if h.Time == "" {
		return 0, 0, fmt.Errorf("GET /healthz reports no time: the peer runs an older allot")
	}
	peerTime, err := time.Parse(time.RFC3339Nano, h.Time)
	if err != nil {
		return 0, 0, fmt.Errorf("GET /healthz: %w", err)
	}
	return peerTime.Sub(t0.Add(rtt / 2)), rtt / 2, nil
}

// record keeps the outcome of a probe of a current member and logs the
// changes: a peer that stops answering, or whose offset goes beyond the
// skew bound, and its return.
func (p *clockProber) record(id string, offset, uncertainty time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.known[id]
	if pc == nil {
		pc = &peerClock{}
		p.known[id] = pc
	}
	if err != nil {
		if !pc.failing {
			p.log.Warn("clock probe failed", "peer", id, "error", err)
		}
		pc.failures++
		pc.failing = true
		return
	}
	if pc.failing {
		p.log.Info("clock probe answered again", "peer", id)
	}
	skewed := offset.Abs()-uncertainty > clockSkewBound
	switch {
	case skewed && !pc.skewed:
		p.log.Warn("peer's clock is off by more than the skew bound", "peer", id,
			"offset", offset, "uncertainty", uncertainty, "bound", clockSkewBound)
	case !skewed && pc.skewed:
		p.log.Info("peer's clock is back within the skew bound", "peer", id, "offset", offset)
	}
	pc.offset, pc.uncertainty, pc.measured = offset, uncertainty, time.Now()
	pc.failing, pc.skewed = false, skewed
}

// stale is how old a measurement may be and still be exported: three rounds
// (jitter and a slow round included). A peer that has not answered for
// longer shows no offset rather than an old one.
func (p *clockProber) stale() time.Duration { return 3*p.cfg.Interval + p.cfg.Timeout }

var (
	descClockOffset = prometheus.NewDesc("allot_clock_offset_seconds",
		"Peer's wall clock minus this node's, measured over the peer's /healthz; the true offset is within ± allot_clock_offset_uncertainty_seconds.",
		[]string{"peer"}, nil)
	descClockUncertainty = prometheus.NewDesc("allot_clock_offset_uncertainty_seconds",
		"Half the round trip of the probe that measured allot_clock_offset_seconds.",
		[]string{"peer"}, nil)
	descClockFailures = prometheus.NewDesc("allot_clock_probe_failures_total",
		"Clock probes of a peer that failed (no answer within the timeout, an error, no time in the answer).",
		[]string{"peer"}, nil)
)

func (p *clockProber) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClockOffset
	ch <- descClockUncertainty
	ch <- descClockFailures
}

func (p *clockProber) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pc := range p.known {
		ch <- prometheus.MustNewConstMetric(descClockFailures, prometheus.CounterValue, float64(pc.failures), id)
		if pc.measured.IsZero() || time.Since(pc.measured) > p.stale() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descClockOffset, prometheus.GaugeValue, pc.offset.Seconds(), id)
		ch <- prometheus.MustNewConstMetric(descClockUncertainty, prometheus.GaugeValue, pc.uncertainty.Seconds(), id)
	}
}
