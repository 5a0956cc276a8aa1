package cluster

import (
	"testing"
)

// TestDefect10RestoreLearnsSnapshotIndex: a node restarted alone (no
// leader, so Raft applies none of its log) restores its snapshot, and its
// FSM knows the snapshot's index: its applied index is the snapshot's and
// its log digest goes on from the snapshot's, not from a new chain. Raft
// hands FSM.Restore the stream wrapped in a reader of its own; before the
// FSM looked through the wrapper, the index was lost on every real restore.
func TestDefect10RestoreLearnsSnapshotIndex(t *testing.T) {
	nodes := startCluster(t, 3, func(_ int, c *Config) { auditTune(c) })
	writeEntries(t, nodes[0], "v", 12)
	f := nodes[1]
	waitFor(t, f.ID()+" applied the writes", func() error { return f.FSM().WaitApplied(t.Context(), nodes[0].FSM().AppliedIndex()) })
	snap := f.Raft().Snapshot()
	if err := snap.Error(); err != nil {
		t.Fatal(err)
	}
	meta, rc, err := snap.Open()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	digest := f.FSM().LogDigest()
	shutdownAll(t, nodes)

	alone := restart(t, f, nil)
	if got := alone.FSM().Restores(); got != 1 {
		t.Fatalf("%d restores", got)
	}
	if got := alone.FSM().AppliedIndex(); got != meta.Index {
		t.Fatalf("applied index %d after restoring the snapshot of %d", got, meta.Index)
	}
	if got := alone.FSM().LogDigest(); got != digest || got.Base != 0 {
		t.Fatalf("log digest %+v after the restore, %+v before the restart", got, digest)
	}
}
