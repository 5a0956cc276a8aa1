package cluster

import (
	"os"
	"path/filepath"
	"testing"
)

// TestClusterIDPersists: an id drawn at founding or adopted survives a
// reload, is not replaced by another, and a damaged file stops the node.
func TestClusterIDPersists(t *testing.T) {
	dir := t.TempDir()
	c, err := loadClusterID(dir)
	if err != nil || c.String() != "" {
		t.Fatalf("fresh dir: %q, %v", c.String(), err)
	}
	if err := c.found(); err != nil {
		t.Fatal(err)
	}
	id := c.get()
	if err := c.found(); err != nil || c.get() != id {
		t.Fatalf("founding again replaced the id: %v", err)
	}
	other := id
	other[0]++
	if err := c.adopt(other, false); err == nil {
		t.Fatal("adopted another cluster's id")
	}
	again, err := loadClusterID(dir)
	if err != nil || again.get() != id {
		t.Fatalf("reloaded %q, %v; want %q", again.String(), err, c.String())
	}
	if err := os.WriteFile(filepath.Join(dir, ClusterIDFile), []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadClusterID(dir); err == nil {
		t.Fatal("a damaged cluster.id loaded")
	}
}
