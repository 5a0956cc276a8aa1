package cluster

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// forgeAppendEntries dials addr without credentials and speaks
// hashicorp/raft's wire protocol as a forged leader would: the
// AppendEntries RPC type byte, then a msgpack AppendEntriesRequest of a
// much higher term carrying one put-resource batch that follows the node's
// last entry and is declared committed. It returns whether the node
// answered (nil: it did) and closes the connection. dial makes the
// connection (plain TCP, or TLS with some client certificate).
func forgeAppendEntries(t *testing.T, n *Node, dial func() (net.Conn, error), resource string) error {
	t.Helper()
	stats := n.Raft().Stats()
	term, _ := strconv.ParseUint(stats["term"], 10, 64)
	lastIndex, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)
	lastTerm, _ := strconv.ParseUint(stats["last_log_term"], 10, 64)
	forged := term + 100
	batch := &domain.Batch{Term: forged, Events: []domain.Event{putVoucher(resource, 7)}}
	req := raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("mallory"), Addr: []byte("10.9.9.9:7000")},
		Term:              forged,
		PrevLogEntry:      lastIndex,
		PrevLogTerm:       lastTerm,
		Entries:           []*raft.Log{{Index: lastIndex + 1, Term: forged, Type: raft.LogCommand, Data: domain.EncodeBatch(nil, batch)}},
		LeaderCommitIndex: lastIndex + 1,
	}
	conn, err := dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	w := bufio.NewWriter(conn)
	enc := codec.NewEncoder(w, &codec.MsgpackHandle{})
	if err := w.WriteByte(0); err != nil { // rpcAppendEntries
		return err
	}
	if err := enc.Encode(&req); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	dec := codec.NewDecoder(r, &codec.MsgpackHandle{})
	var rpcErr string
	if err := dec.Decode(&rpcErr); err != nil {
		return err
	}
	var resp raft.AppendEntriesResponse
	return dec.Decode(&resp)
}

// assertUntouched checks that a forged AppendEntries moved neither the
// node's term nor its state.
func assertUntouched(t *testing.T, n *Node, termBefore, appliedBefore uint64, resource string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // give a forged entry time to apply
	if term := n.Raft().CurrentTerm(); term != termBefore {
		t.Errorf("term moved from %d to %d: the forged leader was accepted", termBefore, term)
	}
	if applied := n.FSM().AppliedIndex(); applied != appliedBefore {
		t.Errorf("applied index moved from %d to %d", appliedBefore, applied)
	}
	n.View(func(s *domain.State) {
		if _, ok := s.Resource(resource); ok {
			t.Errorf("the forged resource %s exists", resource)
		}
	})
}

// TestForgedAppendEntriesWithoutCredentialsIsRefused: one unauthenticated
// TCP connection to the Raft port, speaking Raft's own wire protocol, gets
// no answer and changes nothing: the term and the committed state are as
// before.
func TestForgedAppendEntriesWithoutCredentialsIsRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), nil)
	n := startNode(t, cfg)
	waitFor(t, "leader", func() error { return n.Ready() })
	propose(t, n, putVoucher("real", 3))
	termBefore, appliedBefore := n.Raft().CurrentTerm(), n.FSM().AppliedIndex()

	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", n.RaftAddr(), time.Second) }
	if err := forgeAppendEntries(t, n, dial, "forged"); err == nil {
		t.Error("the node answered a forged AppendEntries")
	}
	assertUntouched(t, n, termBefore, appliedBefore, "forged")
}
