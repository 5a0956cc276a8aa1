package cluster

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// The audit, second half: comparing digests across nodes (audit.go has the
// first). One goroutine per node, the auditor, asks every other server of
// the Raft configuration for its audit points every AuditPeriod (jittered,
// one question at a time, each bounded by a timeout) and compares them with
// this node's at the indexes both have, on the same chain (equal Base):
//
//   - When a strict majority of the voters of the configuration report the
//     same digest at an index and this node's differs, this node is the odd
//     one out: what it applied is not what the cluster applied. It halts
//     (HaltDiverged), the same fail-stop as an entry it cannot apply: it
//     stops Raft, refuses every request and says so in allot_fsm_halted.
//     The halt is recorded in the data dir (divergedKey), so a restart
//     halts at once instead of serving a wrong state until the next audit.
//   - When this node is with the majority, or no digest has a majority (two
//     voters that disagree, or an even split), nobody halts: a peer whose
//     digest differs is counted (allot_audit_mismatches_total{peer}) and
//     logged at error level, and the alert asks for a human.
//
// Every node judges only itself; a node never stops another. So a divergent
// node halts on its own evidence, and a majority that cannot be told apart
// from a minority (two nodes) stops no one. Votes are counted against all
// voters of the configuration, the unreachable ones and those on another
// chain included, so that a halt needs the same majority a commit does.

// divergedKey is the stable-store key where a node records that the audit
// halted it: uvarint index, uvarint term, then the reason's text.
var divergedKey = []byte("allot_audit_diverged")

// auditor runs the audit rounds of node n and keeps what they found.
type auditor struct {
	n       *Node
	period  time.Duration
	timeout time.Duration

	mu        sync.Mutex
	lastRound time.Time
	checked   int                   // peers compared in the last round
	peers     map[string]*AuditPeer // by id, every server seen
	splitAt   uint64                // the last index a no-majority split was logged for
}

// AuditStatus is this node's side of the audit, what GET /v1/cluster/audit
// shows.
type AuditStatus struct {
	// Interval is Config.AuditInterval.
	Interval uint64
	// Base is the index this node's digest chain starts after (0: the
	// first entry of the log).
	Base uint64
	// Applied is the FSM's applied index.
	Applied uint64
	// Points are this node's recent audit points, oldest first.
	Points []AuditPoint
	// LastRound is when the auditor last asked the other servers; zero
	// before its first round.
	LastRound time.Time
	// PeersChecked is how many servers the last round compared with.
	PeersChecked int
	// Peers are the other servers, by id, as the last round found them.
	Peers []AuditPeer
}

// AuditPeer is what the audit knows of another server.
type AuditPeer struct {
	ID    string
	Voter bool
	// Error is why the last round could not ask it, "" when it answered.
	Error string
	// Base and Applied are its chain base and applied index, as it said.
	Base, Applied uint64
	// Compared is the newest audit point both nodes have on the same
	// chain, 0 when they share none.
	Compared uint64
	// Differs is the newest audit point at which its digest differs from
	// this node's, 0 when none has.
	Differs uint64
	// Mismatches counts the audit points at which its digest differed
	// from this node's, since this node started.
	Mismatches uint64
}

func newAuditor(n *Node) *auditor {
	return &auditor{
		n:       n,
		period:  n.cfg.AuditPeriod,
		timeout: min(n.cfg.TransportTimeout, maxAuditAskTimeout),
		peers:   make(map[string]*AuditPeer),
	}
}

// run audits every period until the node stops or its FSM halts.
func (a *auditor) run() {
	defer a.n.wg.Done()
	for {
		// Jitter spreads the nodes' rounds apart.
		wait := a.period*3/4 + rand.N(a.period/2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-a.n.stop:
			t.Stop()
			return
		}
		if a.n.closing.Load() || a.n.fsm.Halted() != nil {
			return
		}
		a.round()
	}
}

// round asks every other server for its points, compares, and acts.
func (a *auditor) round() {
	n := a.n
	servers, err := n.servers()
	if err != nil {
		n.logger.Debug("audit: raft configuration unavailable", "error", err)
		return
	}
	voters := make(map[string]bool)
	reports := make(map[string]auditReport)
	errs := make(map[string]string)
	for _, s := range servers {
		id := string(s.ID)
		if s.Suffrage == raft.Voter {
			voters[id] = true
		}
		if id == n.cfg.NodeID {
			continue
		}
		if n.closing.Load() {
			return
		}
		r, err := askAudit(n.stream, s.Address, a.timeout)
		if err == nil && r.Node != id {
			err = fmt.Errorf("%s answered as %q", s.Address, r.Node)
		}
		if err != nil {
			errs[id] = err.Error()
			n.logger.Debug("audit: peer not checked", "peer", id, "error", err)
			continue
		}
		reports[id] = r
	}
	mine := n.fsm.auditReport(n.cfg.NodeID)
	v := judge(n.cfg.NodeID, mine, reports, voters)
	a.record(servers, reports, errs, v)
	if v.odd != nil {
		a.diverged(mine, v.odd)
	}
}

// auditVerdict is what one round's comparison found.
type auditVerdict struct {
	// compared is, per peer, the newest index compared (absent: none).
	compared map[string]uint64
	// differs is, per peer, the indexes where its digest differs from
	// this node's, ascending.
	differs map[string][]uint64
	// odd is set when this node is the odd one out.
	odd *auditConflict
	// split is set when voters disagree and no digest has a majority.
	split *auditConflict
}

// auditConflict is one index where digests differ.
type auditConflict struct {
	mine     AuditPoint        // this node's point
	majority uint64            // the digest a strict majority of voters agree on (odd only)
	agree    []string          // those voters, sorted
	votes    map[string]uint64 // each voter's digest there, this node's included
	voters   int               // voters in the configuration
}

// judge compares this node's report with its peers'. voters are the ids of
// the voters of the configuration.
func judge(self string, mine auditReport, peers map[string]auditReport, voters map[string]bool) auditVerdict {
	v := auditVerdict{compared: map[string]uint64{}, differs: map[string][]uint64{}}
	if mine.Base == noChain {
		return v
	}
	at := make(map[uint64]AuditPoint, len(mine.Points))
	for _, p := range mine.Points {
		at[p.Index] = p
	}
	votes := make(map[uint64]map[string]uint64) // index → voter → digest
	for id, r := range peers {
		if r.Base != mine.Base {
			continue // another chain: nothing to compare
		}
		for _, q := range r.Points {
			p, ok := at[q.Index]
			if !ok {
				continue
			}
			v.compared[id] = max(v.compared[id], q.Index)
			if voters[id] {
				if votes[q.Index] == nil {
					votes[q.Index] = make(map[string]uint64)
				}
				votes[q.Index][id] = q.Digest
			}
			if q.Digest != p.Digest || q.Term != p.Term {
				v.differs[id] = append(v.differs[id], q.Index)
			}
		}
	}
	var conflicts []uint64
	for _, idx := range v.differs {
		slices.Sort(idx)
		conflicts = append(conflicts, idx...)
	}
	slices.Sort(conflicts)
	for _, i := range slices.Compact(conflicts) {
		p := at[i]
		c := &auditConflict{mine: p, votes: votes[i], voters: len(voters)}
		if c.votes == nil {
			c.votes = make(map[string]uint64)
		}
		if voters[self] {
			c.votes[self] = p.Digest
		}
		byDigest := make(map[uint64][]string)
		for id, d := range c.votes {
			byDigest[d] = append(byDigest[d], id)
		}
		majority := false
		for d, ids := range byDigest {
			if 2*len(ids) <= len(voters) {
				continue
			}
			majority = true
			if d != p.Digest && v.odd == nil {
				slices.Sort(ids)
				c.majority, c.agree = d, ids
				v.odd = c
			}
		}
		if !majority && v.split == nil {
			v.split = c
		}
	}
	return v
}

// record keeps what a round found, counts and logs the mismatches.
func (a *auditor) record(servers []raft.Server, reports map[string]auditReport, errs map[string]string, v auditVerdict) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastRound = time.Now()
	a.checked = len(v.compared)
	for _, s := range servers {
		id := string(s.ID)
		if id == a.n.cfg.NodeID {
			continue
		}
		p := a.peers[id]
		if p == nil {
			p = &AuditPeer{ID: id}
			a.peers[id] = p
		}
		r := reports[id]
		p.Voter, p.Error, p.Base, p.Applied, p.Compared = s.Suffrage == raft.Voter, errs[id], r.Base, r.Applied, v.compared[id]
		if v.odd != nil {
			continue // this node is the one that differs: diverged says so
		}
		var fresh []uint64
		for _, i := range v.differs[id] {
			if i > p.Differs {
				fresh = append(fresh, i)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		p.Differs = fresh[len(fresh)-1]
		p.Mismatches += uint64(len(fresh))
		a.n.logger.Error("AUDIT MISMATCH: another node's digest of the log differs from this node's at the same index: "+
			"one of the two applied something the other did not (docs/OPERATIONS.md, AllotAuditMismatch)",
			slog.String("peer", id), slog.Uint64("from_index", fresh[0]), slog.Uint64("to_index", p.Differs),
			slog.Int("points", len(fresh)), slog.Uint64("peer_applied", r.Applied))
	}
	if c := v.split; c != nil && v.odd == nil && c.mine.Index > a.splitAt {
		a.splitAt = c.mine.Index
		a.n.logger.Error("AUDIT: the voters disagree on the log and no digest has a majority: nobody halts; "+
			"find the odd node by hand (docs/OPERATIONS.md, AllotAuditMismatch)",
			slog.Uint64("index", c.mine.Index), slog.String("votes", c.describeVotes()), slog.Int("voters", c.voters))
	}
}

// diverged halts this node: a majority of the voters applied something
// else. The halt is recorded first, so that a restart halts again.
func (a *auditor) diverged(mine auditReport, c *auditConflict) {
	n := a.n
	h := &Halt{Reason: HaltDiverged, Index: c.mine.Index, Term: c.mine.Term, Err: fmt.Errorf(
		"this node's digest of the log at audit point %d is %016x; voters %s, a majority of the %d, agree on %016x (votes %s)",
		c.mine.Index, c.mine.Digest, strings.Join(c.agree, ","), c.voters, c.majority, c.describeVotes())}
	n.logger.Error("AUDIT: this node is the odd one out: a majority of the voters applied another log; halting",
		slog.Uint64("index", c.mine.Index), slog.Uint64("term", c.mine.Term), slog.Uint64("applied", mine.Applied),
		slog.String("votes", c.describeVotes()))
	if err := n.stores.StableStore().Set(divergedKey, encodeDiverged(h)); err != nil {
		n.logger.Error("audit: could not record the divergence in the data dir; a restart will not halt by itself", "error", err)
	}
	n.fsm.stop(h)
}

func (c *auditConflict) describeVotes() string {
	ids := make([]string, 0, len(c.votes))
	for id := range c.votes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%016x", id, c.votes[id])
	}
	return b.String()
}

func encodeDiverged(h *Halt) []byte {
	b := binary.AppendUvarint(nil, h.Index)
	b = binary.AppendUvarint(b, h.Term)
	return append(b, h.Err.Error()...)
}

// recordedDivergence reads the halt the audit recorded in stable before
// this node restarted; nil when there is none.
func recordedDivergence(stable raft.StableStore) (*Halt, error) {
	b, err := stable.Get(divergedKey)
	switch {
	case isNotFound(err) || (err == nil && len(b) == 0):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cluster: read the audit's record: %w", err)
	}
	h := &Halt{Reason: HaltDiverged}
	index, n := binary.Uvarint(b)
	if n > 0 {
		h.Index, b = index, b[n:]
		h.Term, n = binary.Uvarint(b)
	}
	if n <= 0 {
		return nil, fmt.Errorf("cluster: the audit's record in the stable store is corrupt")
	}
	h.Err = fmt.Errorf("recorded before this node restarted: %s", b[n:])
	return h, nil
}

// Audit reports this node's side of the audit.
func (n *Node) Audit() AuditStatus {
	base, points := n.fsm.audit.report()
	st := AuditStatus{Interval: n.fsm.audit.every, Base: base, Applied: n.fsm.AppliedIndex(), Points: points}
	a := n.auditor
	if a == nil {
		return st
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st.LastRound, st.PeersChecked = a.lastRound, a.checked
	for _, p := range a.peers {
		st.Peers = append(st.Peers, *p)
	}
	slices.SortFunc(st.Peers, func(x, y AuditPeer) int { return strings.Compare(x.ID, y.ID) })
	return st
}

// auditCollector reports the audit at scrape time.
type auditCollector struct{ n *Node }

var (
	descAuditIndex = prometheus.NewDesc("allot_audit_index",
		"Index of this node's newest audit point (0 before the first).", nil, nil)
	descAuditPeers = prometheus.NewDesc("allot_audit_peers_checked",
		"Other nodes whose audit points the last audit round compared with this node's.", nil, nil)
	descAuditMismatches = prometheus.NewDesc("allot_audit_mismatches_total",
		"Audit points at which a peer's digest of the log differed from this node's.", []string{"peer"}, nil)
)

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAuditIndex
	ch <- descAuditPeers
	ch <- descAuditMismatches
}

// Collect reports a mismatch count for every peer the audit has seen and
// every other server of the configuration (0 before the first round), so
// that the series exist before anything goes wrong.
func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	last, _ := c.n.fsm.audit.last()
	ch <- prometheus.MustNewConstMetric(descAuditIndex, prometheus.GaugeValue, float64(last.Index))
	st := c.n.Audit()
	ch <- prometheus.MustNewConstMetric(descAuditPeers, prometheus.GaugeValue, float64(st.PeersChecked))
	counts := make(map[string]uint64, len(st.Peers))
	for _, p := range st.Peers {
		counts[p.ID] = p.Mismatches
	}
	// hashicorp/raft answers GetConfiguration from memory.
	if f := c.n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if id := string(s.ID); id != c.n.cfg.NodeID {
				counts[id] += 0
			}
		}
	}
	for id, v := range counts {
		ch <- prometheus.MustNewConstMetric(descAuditMismatches, prometheus.CounterValue, float64(v), id)
	}
}
