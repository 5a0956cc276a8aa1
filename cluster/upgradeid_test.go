package cluster

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestClusterUpgradedInPlaceTakesAnID: a cluster whose nodes know no
// cluster id (founded by a binary without them) gets one once a leader is
// ready: the leader takes it and persists it, and the followers learn it
// from their next handshakes and persist it too.
func TestClusterUpgradedInPlaceTakesAnID(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for _, n := range nodes {
		n.Shutdown()
		if err := os.Remove(filepath.Join(n.cfg.DataDir, ClusterIDFile)); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes {
		nodes[i] = restart(t, n, nil)
	}
	want := nodes[0].handshake.upgradedID()
	for _, n := range nodes {
		waitFor(t, n.ID()+" takes the upgraded id", func() error {
			if got := n.clusterID.get(); got != want {
				return fmt.Errorf("id %x", got)
			}
			raw, err := os.ReadFile(filepath.Join(n.cfg.DataDir, ClusterIDFile))
			if err != nil {
				return err
			}
			if !bytes.Equal(bytes.TrimSpace(raw), []byte(hex.EncodeToString(want[:]))) {
				return fmt.Errorf("persisted %q", raw)
			}
			return nil
		})
	}
}
