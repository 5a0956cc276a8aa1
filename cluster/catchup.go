package cluster

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// Catching up. A node that starts applies its snapshot at once, but the
// entries of its log after the snapshot only once a leader tells it which of
// them are committed. Until then its state can be far older than what it
// served before it stopped (empty, with no snapshot), so a stale read there
// would answer "not found" for a resource the log holds. Stale reads
// therefore wait until the node has caught up once since it started:
//
//   - it became the ready leader (its barrier applied everything), or
//   - it knows a leader, and its FSM reflects every entry up to the commit
//     index it learned from that leader, which covers the log it started
//     with (as far as that log survived: a tail the leader overwrote does
//     not count).
//
// After that, stale reads are served whatever happens, as stale reads are:
// the state only moves forward. This is monotonic reads across a restart,
// not freshness.

// maxCatchUpGap bounds how many entries the catch-up check reads from the
// log to see that those between the FSM's applied index and the commit
// index are all barriers and no-ops; a longer gap is still being applied.
const maxCatchUpGap = 64

// caughtUp reports whether this node has caught up once since it started.
// It latches: once true it stays true.
func (n *Node) caughtUp() bool {
	if n.caughtUpOnce.Load() {
		return true
	}
	if _, id := n.raft.LeaderWithID(); id == "" {
		return false
	}
	commit := n.raft.CommitIndex()
	if commit < min(n.startIndex, n.raft.LastIndex()) || n.raft.AppliedIndex() < commit || !n.fsmReflects(commit) {
		return false
	}
	n.caughtUpOnce.Store(true)
	return true
}

// fsmReflects reports whether the FSM reflects every entry up to index: it
// applied up to it, or every entry after what it applied is one that Raft
// does not show to FSMs (barriers, no-ops).
func (n *Node) fsmReflects(index uint64) bool {
	applied := n.fsm.AppliedIndex()
	if applied >= index {
		return true
	}
	if index-applied > maxCatchUpGap {
		return false
	}
	for i := applied + 1; i <= index; i++ {
		var l raft.Log
		if err := n.logStore.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// notCaughtUp explains a refused stale read.
func (n *Node) notCaughtUp() error {
	if _, id := n.raft.LeaderWithID(); id == "" {
		return fmt.Errorf("node %s has not caught up with the log since it started (no leader known): %w",
			n.cfg.NodeID, domain.ErrUnavailable)
	}
	return fmt.Errorf("node %s has not caught up with the log since it started (applied %d of %d committed entries): %w",
		n.cfg.NodeID, n.raft.AppliedIndex(), n.raft.CommitIndex(), domain.ErrUnavailable)
}

// indexedSnapshots tells the FSM the index of a snapshot it restores: Raft
// gives FSM.Restore only the bytes, and without the index the FSM's applied
// index would stay behind until the next command.
type indexedSnapshots struct{ raft.SnapshotStore }

// snapshotReader is a snapshot stream that knows its last included index.
type snapshotReader struct {
	io.ReadCloser
	index uint64
}

func (s indexedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return meta, rc, err
	}
	return meta, &snapshotReader{ReadCloser: rc, index: meta.Index}, nil
}
