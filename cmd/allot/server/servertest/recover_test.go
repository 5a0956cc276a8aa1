package servertest_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"allot/cluster"
	"allot/cmd/allot/server/servertest"
)

// A cluster that lost two of its three nodes for good has no quorum and
// never will. The runbook (docs/OPERATIONS.md): stop the survivor, write
// peers.json listing only it, start it. It comes back as a one-voter
// cluster with every committed entry, takes writes, and the file is
// renamed so that the next start does not recover again.
func TestManualRecoveryFromLostQuorum(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	l := c.Leader()
	admin := c.Client(l.Index())
	admin.Must("PUT", "/v1/resources/before-loss", voucher(3), http.StatusCreated)
	admin.As("alice", "user").Must("POST", "/v1/resources/before-loss/reservations", nil, http.StatusCreated)
	c.WaitConverged()
	for _, f := range c.Followers() {
		c.Stop(f.Index())
	}
	c.Stop(l.Index())

	peers, err := json.Marshal([]map[string]any{{"id": l.ID(), "address": l.RaftAddr(), "non_voter": false}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(l.DataDir(), cluster.PeersFile)
	if err := os.WriteFile(path, peers, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Restart(l.Index())
	if got := c.Leader(); got != l {
		t.Fatalf("%s leads after the recovery, want %s", got.ID(), l.ID())
	}
	if _, err := os.Stat(path + ".applied"); err != nil {
		t.Fatalf("recovery file not renamed: %v", err)
	}
	admin = c.Client(l.Index())
	var res struct {
		Held int `json:"held"`
	}
	if err := admin.Must("GET", "/v1/resources/before-loss", nil, http.StatusOK).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.Held != 1 {
		t.Fatalf("after the recovery the resource holds %d, want 1", res.Held)
	}
	c.WaitFor("the recovered node takes a write", func() error {
		_, err := admin.Do("PUT", "/v1/resources/after-recovery", voucher(1))
		return err
	})
	if n := len(l.RaftNode().Status().Nodes); n != 1 {
		t.Fatalf("%d members after the recovery, want 1", n)
	}
}
