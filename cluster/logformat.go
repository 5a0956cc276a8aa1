package cluster

import (
	"context"
	"fmt"
	"time"

	"allot/actors/domain"
)

// The leader's half of the log-format gate (see domain/logversion.go). A
// ready leader whose committed log format is older than the newest its
// binary writes asks every server of the Raft configuration, voters and
// non-voters alike, which formats it understands (hello.go). When all of them
// understand the newer one, it proposes an EvLogFormat event for it; once
// that commits, every leader stamps its batches with its term (BatchV2). A
// server that does not answer, or answers an older format, keeps the cluster
// where it is, and the leader asks again every logFormatRetry while it leads.
// A rolling upgrade therefore switches the format on by itself once the last
// server runs the new binary.

// defaultLogFormatRetry is how often a leader asks again while some server
// does not understand the newer format.
const defaultLogFormatRetry = 10 * time.Second

// raiseLogFormat runs while this node is the ready leader in term, until the
// committed log format is the newest this binary writes.
func (n *Node) raiseLogFormat(term uint64) {
	defer n.wg.Done()
	retry := n.cfg.logFormatRetry
	if retry <= 0 {
		retry = defaultLogFormatRetry
	}
	for {
		have, want := n.fsm.LogFormat(), n.fsm.maxFormat
		if !n.readyIn(term) || have >= want {
			return
		}
		err := n.proposeLogFormat(term, want)
		if err == nil {
			n.logger.Info("log format raised", "from", have, "to", want, "term", term)
			continue
		}
		n.logFormatRefusals.Add(1)
		n.logger.Info("log format stays", "format", have, "newest", want, "why", err)
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return
		}
	}
}

// proposeLogFormat proposes EvLogFormat for format once every other server
// of the configuration said it understands it.
func (n *Node) proposeLogFormat(term uint64, format byte) error {
	servers, err := n.servers()
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	for _, s := range servers {
		if string(s.ID) == n.cfg.NodeID {
			continue
		}
		got, err := askLogFormat(n.stream, s.Address, n.fsm.maxFormat, n.cfg.TransportTimeout)
		switch {
		case err != nil:
			return fmt.Errorf("server %s at %s: %w", s.ID, s.Address, err)
		case got < format:
			return fmt.Errorf("server %s understands log formats up to %d", s.ID, got)
		}
	}
	if !n.readyIn(term) {
		return n.notReady()
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	return n.proposeEvent(ctx, domain.Event{Type: domain.EvLogFormat, LogFormat: format})
}
