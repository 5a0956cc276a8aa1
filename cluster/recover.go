package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// PeersFile is the name, inside the data dir, of the file an operator
// writes to recover a cluster that lost its quorum for good (hashicorp/raft
// peers.json, format version 3: [{"id": ..., "address": ..., "non_voter":
// false}]). On start, a node with Raft state that finds it replaces its
// configuration with the file's (raft.RecoverCluster), keeping its log and
// snapshots, and renames the file to PeersFile+".applied" so that the next
// start does not do it again. Every surviving node gets the same file.
// docs/OPERATIONS.md has the runbook.
const PeersFile = "peers.json"

// recoverFromPeersFile runs the manual recovery when the peers file exists.
// It reports whether it did. newFSM makes the scratch FSM the recovery
// replays the log into, only when there is a file.
func recoverFromPeersFile(dir string, rc *raft.Config, newFSM func() raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) (bool, error) {
	path := filepath.Join(dir, PeersFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("cluster: %s: %w", path, err)
	}
	conf, err := raft.ReadConfigJSON(path)
	if err != nil {
		return false, fmt.Errorf("cluster: recovery file %s: %w", path, err)
	}
	self := false
	for _, s := range conf.Servers {
		self = self || s.ID == rc.LocalID
	}
	if !self {
		return false, fmt.Errorf("cluster: recovery file %s does not list this node (%s)", path, rc.LocalID)
	}
	if err := raft.RecoverCluster(rc, newFSM(), logs, stable, snaps, trans, conf); err != nil {
		return false, fmt.Errorf("cluster: recover from %s: %w", path, err)
	}
	if err := os.Rename(path, path+".applied"); err != nil {
		return true, fmt.Errorf("cluster: recovered, but could not rename %s (remove it before the next start): %w", path, err)
	}
	return true, nil
}
