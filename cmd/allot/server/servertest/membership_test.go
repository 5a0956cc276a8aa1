package servertest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/cmd/allot/server/servertest"
)

// Removing a live voter while another is down would leave a configuration
// whose quorum needs the dead node: the cluster could commit nothing again,
// not even the change that undoes it. The removal is refused; removing the
// dead node instead is fine.
func TestRemovalThatWouldLoseQuorumIsRefused(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	l := c.Leader()
	fs := c.Followers()
	live, dead := fs[0], fs[1]
	c.Stop(dead.Index())
	time.Sleep(time.Second) // longer than the kit's heartbeat timeout: the leader stops hearing from it

	admin := c.Client(l.Index())
	r := admin.Must("DELETE", "/v1/cluster/nodes/"+live.ID(), nil, http.StatusConflict)
	if !strings.Contains(string(r.Body), "quorum") || !strings.Contains(string(r.Body), dead.ID()) {
		t.Fatalf("refusal does not explain itself: %s", r.Body)
	}
	admin.Must("PUT", "/v1/resources/still-writable", voucher(1), http.StatusCreated)
	if n := len(l.RaftNode().Status().Nodes); n != 3 {
		t.Fatalf("%d members after a refused removal, want 3", n)
	}

	admin.Must("DELETE", "/v1/cluster/nodes/"+dead.ID(), nil, http.StatusNoContent)
	admin.Must("PUT", "/v1/resources/after-removal", voucher(1), http.StatusCreated)
}

// Adding a node nobody can reach adds a non-voter that never catches up:
// the quorum stays what it was, so a one-node cluster keeps taking writes,
// across a restart too, and the stray member can be removed.
func TestAddingAnUnreachableNodeIsHarmless(t *testing.T) {
	c := servertest.MakeCluster(t, 1, servertest.Options{})
	admin := c.Client(0)
	ghost := map[string]any{"id": "ghost", "raft_addr": "127.0.0.1:1", "http_addr": "http://127.0.0.1:1"}
	r, err := admin.Do("POST", "/v1/cluster/nodes", ghost)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("adding an unreachable node: %d %s, want 503 (not caught up)", r.Status, r.Body)
	}
	admin.Must("PUT", "/v1/resources/before-restart", voucher(1), http.StatusCreated)

	c.Stop(0)
	c.Restart(0)
	c.Leader()
	c.WaitFor("the restarted node takes a write", func() error {
		_, err := c.Client(0).Do("PUT", "/v1/resources/after-restart", voucher(1))
		return err
	})
	c.Client(0).Must("PUT", "/v1/resources/after-restart", voucher(1), http.StatusOK)
	for _, m := range c.Leader().RaftNode().Status().Nodes {
		if m.ID == "ghost" && m.Voter {
			t.Fatal("the unreachable node became a voter")
		}
	}
	c.Client(0).Must("DELETE", "/v1/cluster/nodes/ghost", nil, http.StatusNoContent)
	c.Client(0).Must("PUT", "/v1/resources/after-ghost", voucher(1), http.StatusCreated)
}

// Two removals at once are each checked against the configuration they
// read: with four voters and one down, removing either live follower alone
// keeps a quorum, removing both leaves the leader with a dead node. The
// leader takes removals one at a time, so the second is checked against the
// configuration the first left, and refused.
func TestConcurrentRemovalsCannotTogetherLoseQuorum(t *testing.T) {
	c := servertest.MakeCluster(t, 4, servertest.Options{})
	l := c.Leader()
	fs := c.Followers()
	c.Stop(fs[2].Index())
	time.Sleep(time.Second) // the leader stops hearing from it

	start := make(chan struct{})
	errs := make(chan error, 2)
	for _, f := range fs[:2] {
		go func(id string) {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs <- l.RaftNode().RemoveServer(ctx, id)
		}(f.ID())
	}
	close(start)
	var removed int
	for range 2 {
		if err := <-errs; err == nil {
			removed++
		} else if !errors.Is(err, domain.ErrUnavailable) && !errors.Is(err, domain.ErrInvalidState) {
			t.Fatalf("refused removal: %v, want unavailable or invalid_state", err)
		}
	}
	if removed != 1 {
		t.Fatalf("%d of two concurrent removals went through, want exactly 1", removed)
	}
	c.Client(l.Index()).Must("PUT", "/v1/resources/after-concurrent-removals", voucher(1), http.StatusCreated)
}
