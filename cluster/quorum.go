package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// checkReachableQuorum refuses a membership change after which the voters
// left could not commit anything: a majority of them must have answered
// this leader within the last HeartbeatTimeout (the leader counts itself).
// Removing a live voter while another is down would otherwise leave a
// configuration whose quorum includes the dead node, and no entry, not even
// the change that would undo it, could commit again. A leader that took
// over a moment ago has not heard every follower yet, so the check waits
// up to one HeartbeatTimeout (heartbeats go out ten times as often) before
// it refuses.
func (n *Node) checkReachableQuorum(after []raft.Server) error {
	deadline := time.Now().Add(n.cfg.HeartbeatTimeout)
	for {
		err := n.reachableQuorum(after)
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-time.After(n.cfg.HeartbeatTimeout / 10):
		case <-n.stop:
			return err
		}
	}
}

// reachableQuorum is one look of checkReachableQuorum.
func (n *Node) reachableQuorum(after []raft.Server) error {
	var voters, reachable int
	var unreachable []string
	for _, s := range after {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if string(s.ID) == n.cfg.NodeID || n.trans.progress.heardWithin(s.ID, n.cfg.HeartbeatTimeout) {
			reachable++
		} else {
			unreachable = append(unreachable, string(s.ID))
		}
	}
	if voters == 0 || reachable > voters/2 {
		return nil
	}
	return fmt.Errorf("the change would leave %d voters of which only %d answer this leader (not answering: %s): no quorum could commit; bring those nodes back or remove them first: %w",
		voters, reachable, strings.Join(unreachable, ", "), domain.ErrInvalidState)
}

// without is servers minus id.
func without(servers []raft.Server, id raft.ServerID) []raft.Server {
	out := make([]raft.Server, 0, len(servers))
	for _, s := range servers {
		if s.ID != id {
			out = append(out, s)
		}
	}
	return out
}
