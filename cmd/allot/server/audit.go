package server

import (
	"fmt"
	"time"

	"allot/httpapi"
)

// Audit is GET /v1/cluster/audit's view of the node's audit of log digests.
func (v clusterView) Audit() httpapi.AuditInfo {
	a := v.node.Audit()
	info := httpapi.AuditInfo{Interval: a.Interval, ChainBase: a.Base, AppliedIndex: a.Applied, PeersChecked: a.PeersChecked,
		Points: make([]httpapi.AuditPointInfo, 0, len(a.Points)), Peers: make([]httpapi.AuditPeerInfo, 0, len(a.Peers))}
	if h := v.node.FSM().Halted(); h != nil {
		info.Halted = string(h.Reason)
	}
	if !a.LastRound.IsZero() {
		info.LastRound = a.LastRound.UTC().Format(time.RFC3339Nano)
	}
	for _, p := range a.Points {
		info.Points = append(info.Points, httpapi.AuditPointInfo{Index: p.Index, Term: p.Term, Digest: fmt.Sprintf("%016x", p.Digest)})
	}
	for _, p := range a.Peers {
		info.Peers = append(info.Peers, httpapi.AuditPeerInfo{ID: p.ID, Voter: p.Voter, Error: p.Error, ChainBase: p.Base,
			AppliedIndex: p.Applied, ComparedIndex: p.Compared, DiffersIndex: p.Differs, Mismatches: p.Mismatches})
	}
	return info
}
