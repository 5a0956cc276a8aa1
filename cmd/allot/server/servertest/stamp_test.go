package servertest_test

import (
	"fmt"
	"net/http"
	"testing"

	"allot/actors/domain"
	"allot/cmd/allot/server/servertest"
)

// The kit's network carries the Raft port's side channel too (the
// log-format and audit hellos): a test cluster writes term-stamped batches
// like a real one, and its nodes audit each other.
func TestKitClusterStampsBatches(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	l := c.Leader()
	c.WaitFor("the newest log format on every node", func() error {
		for _, nd := range c.Running() {
			if f := nd.RaftNode().FSM().LogFormat(); f != domain.BatchVersion {
				return fmt.Errorf("%s: log format %d", nd.ID(), f)
			}
		}
		return nil
	})
	c.Client(l.Index()).Must("PUT", "/v1/resources/stamped", map[string]any{"kind": "voucher", "capacity": 1}, http.StatusCreated)
	c.WaitConverged()
}
