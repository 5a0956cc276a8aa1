package server

import (
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// aheadClock is the machine's clock shifted by a fixed amount.
type aheadClock struct{ shift time.Duration }

func (c aheadClock) Now() time.Time { return time.Now().Add(c.shift) }

// Three real nodes measure each other's clocks over /healthz and export the
// offsets on /metrics: about 0 between nodes on this machine's clock, the
// skew for n3, whose engine clock is set ahead (as the fault kit skews a
// node's clock).
func TestClockOffsetsBetweenNodes(t *testing.T) {
	const skew = 5 * time.Second
	shift := map[string]time.Duration{"n1": 0, "n2": 0, "n3": skew}
	tc := newTestCluster(t, 3, func(cfg *Config) {
		cfg.ClockProbe = ClockProbeConfig{Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond}
		if shift[cfg.NodeID] != 0 {
			cfg.Engine.Clock = aheadClock{shift[cfg.NodeID]}
		}
	})
	for _, nd := range tc.nodes {
		var fams map[string]*dto.MetricFamily
		var missing string
		ok := poll(15*time.Second, func() bool {
			fams = scrape(t, nd.c)
			for _, peer := range tc.nodes {
				if peer != nd && sample(fams, "allot_clock_offset_seconds", "peer", peer.id) == nil {
					missing = peer.id
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("%s exports no offset for %s", nd.id, missing)
		}
		checkFamilyShapes(t, fams, clusterFamilies)
		for _, peer := range tc.nodes {
			if peer == nd {
				if sample(fams, "allot_clock_offset_seconds", "peer", nd.id) != nil {
					t.Errorf("%s probes itself", nd.id)
				}
				continue
			}
			offset := value(sample(fams, "allot_clock_offset_seconds", "peer", peer.id))
			unc := value(sample(fams, "allot_clock_offset_uncertainty_seconds", "peer", peer.id))
			want := (shift[peer.id] - shift[nd.id]).Seconds()
			// One machine's clock, so the error is within the uncertainty.
			if math.Abs(offset-want) > unc+1e-3 {
				t.Errorf("%s→%s: offset %.6fs ± %.6fs, want %vs", nd.id, peer.id, offset, unc, want)
			}
			t.Logf("%s→%s: offset %.6fs ± %.6fs", nd.id, peer.id, offset, unc)
		}
		// n1 bootstrapped and leads on the machine's clock; no leader ran
		// ahead before it, so leader time follows its wall clock.
		if ahead := value(sample(fams, "allot_leader_clock_ahead_seconds")); math.Abs(ahead) > 0.5 {
			t.Errorf("%s: leader clock %vs ahead", nd.id, ahead)
		}
		expect(t, fams, "allot_leader_clock_steps_ignored", 0)
	}
}
