package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ClusterIDFile is the file in the data dir that holds the cluster id.
const ClusterIDFile = "cluster.id"

// clusterIDSize is the length of a cluster id in bytes.
const clusterIDSize = 16

// clusterID is the id of the cluster this node belongs to, fixed when the
// cluster is founded: every connection between two nodes proves it in its
// handshake (handshake.go), so that a node of another cluster, keyed with
// the same secret, is refused. The founder draws it at bootstrap; a node
// that does not know it yet (a joiner, a wiped node, a data dir older than
// the id) takes the id proven by the first member it completes a handshake
// with, trust on first use, and keeps it from then on. The zero id means
// unknown.
type clusterID struct {
	path string

	mu sync.Mutex
	id [clusterIDSize]byte
}

// loadClusterID reads the id from dir, or starts unknown if there is none.
func loadClusterID(dir string) (*clusterID, error) {
	c := &clusterID{path: filepath.Join(dir, ClusterIDFile)}
	raw, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster id: %w", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) != clusterIDSize || bytes.Equal(b, make([]byte, clusterIDSize)) {
		return nil, fmt.Errorf("cluster id: %s does not hold %d hex-encoded non-zero bytes", c.path, clusterIDSize)
	}
	copy(c.id[:], b)
	return c, nil
}

// get returns the id, zero when unknown.
func (c *clusterID) get() [clusterIDSize]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// String is the id in hex, empty when unknown.
func (c *clusterID) String() string {
	id := c.get()
	if id == ([clusterIDSize]byte{}) {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// found draws a new id for a cluster this node founds, unless it already
// has one, and persists it.
func (c *clusterID) found() error {
	var id [clusterIDSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	return c.adopt(id, true)
}

// adopt takes id, proven by a member, when this node does not know its
// cluster's id yet, and persists it. A node that knows its id keeps it,
// and adopting another id then fails (unless keep is set).
func (c *clusterID) adopt(id [clusterIDSize]byte, keep bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.id == id:
		return nil
	case c.id != [clusterIDSize]byte{}:
		if keep {
			return nil
		}
		return errors.New("cluster id: this node already belongs to another cluster")
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(id[:])+"\n"), 0o600); err != nil {
		return fmt.Errorf("cluster id: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("cluster id: %w", err)
	}
	c.id = id
	return nil
}
