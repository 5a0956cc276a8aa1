package cluster

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"allot/storage"
)

// guardedTransport sits between Raft and its network transport. It
//   - filters the RPCs Raft consumes through the vote guard (voteguard.go):
//     vote requests and leadership transfers an armed node must not
//     answer are refused here, before Raft sees them, and the commit index
//     leaders announce is fed to the guard;
//   - refuses to send this node's own vote requests while it is armed;
//   - signals the first RPC that reaches this address, which tells a node
//     about to bootstrap that a cluster already counts it as a member
//     (bootstrap.go);
//   - records each follower's last log index from the AppendEntries answers
//     it gets when leading, so that a joining node is promoted to voter
//     only once it has caught up (admit.go).
//
// It implements every interface hashicorp/raft v1.7.3 type-asserts on a
// transport: raft.WithPreVote (else Raft disables pre-vote) and
// raft.WithClose (else Raft's shutdown leaves the transport open). It
// spells out each method instead of embedding the NetworkTransport, so
// that no method reaches Raft around the guard.
type guardedTransport struct {
	inner    *raft.NetworkTransport
	guard    *voteGuard
	progress peerProgress
	// header is what this node's refusals carry.
	header raft.RPCHeader

	out       chan raft.RPC
	closed    chan struct{}
	closeOnce sync.Once

	contactOnce sync.Once
	contact     chan struct{} // closed by the first RPC received
	contactFrom atomic.Value  // string: who sent it
}

var (
	_ raft.Transport   = (*guardedTransport)(nil)
	_ raft.WithPreVote = (*guardedTransport)(nil)
	_ raft.WithClose   = (*guardedTransport)(nil)
)

// errNotCaughtUp is what an armed node answers a leadership transfer with,
// and what its own vote requests fail with. (Its text must not contain
// "unexpected command": Raft counts a pre-vote failing so as granted.)
var errNotCaughtUp = errors.New("vote guard: this node lost its raft state and has not caught up with a leader yet; it does not vote or stand for election")

// newGuardedTransport opens the vote guard on the node's stores and the
// network transport on cfg.RaftAddr, and puts the one in front of the
// other. maxFormat and audit answer the hellos (see newTransport).
func newGuardedTransport(cfg *Config, logger *slogHCLog, stores *storage.Stores, hasState bool, h *handshaker, maxFormat byte, audit func() []byte) (*guardedTransport, raft.StreamLayer, error) {
	guard, err := openVoteGuard(stores.StableStore(), stores.LogStore(), hasState, logger.l)
	if err != nil {
		return nil, nil, err
	}
	inner, stream, err := newTransport(cfg, logger, h, maxFormat, audit)
	if err != nil {
		return nil, nil, err
	}
	return guardTransport(inner, guard, raft.ServerID(cfg.NodeID)), stream, nil
}

// guardTransport puts guard in front of inner, for node id, and starts the
// consumer loop (Close stops it).
func guardTransport(inner *raft.NetworkTransport, guard *voteGuard, id raft.ServerID) *guardedTransport {
	t := &guardedTransport{
		inner: inner,
		guard: guard,
		header: raft.RPCHeader{
			ProtocolVersion: raft.ProtocolVersionMax,
			ID:              []byte(id),
			Addr:            inner.EncodePeer(id, inner.LocalAddr()),
		},
		out:     make(chan raft.RPC),
		closed:  make(chan struct{}),
		contact: make(chan struct{}),
	}
	t.progress.init()
	go t.run()
	return t
}

// attach gives the guard what it needs to tell whether this node has
// caught up; Raft must be running.
func (t *guardedTransport) attach(r *raft.Raft, stores *storage.Stores) {
	t.guard.probe.Store(&catchUpProbe{raft: r, logs: stores.LogStore(), snaps: stores.SnapshotStore()})
}

// run hands the network transport's RPCs to Raft, one at a time as Raft
// takes them, until Close.
func (t *guardedTransport) run() {
	in := t.inner.Consumer()
	for {
		select {
		case rpc := <-in:
			t.noteContact(rpc)
			t.dispatch(rpc)
		case <-t.closed:
			return
		}
	}
}

func (t *guardedTransport) dispatch(rpc raft.RPC) {
	switch cmd := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		if !t.guard.mayVoteFor(cmd.Term, cmd.ID) {
			rpc.Respond(&raft.RequestVoteResponse{RPCHeader: t.header, Term: t.currentTerm(), Granted: false}, nil)
			return
		}
	case *raft.RequestPreVoteRequest:
		if !t.guard.mayVoteFor(cmd.Term, cmd.ID) {
			rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: t.header, Term: t.currentTerm(), Granted: false}, nil)
			return
		}
	case *raft.TimeoutNowRequest:
		if !t.guard.standing() {
			rpc.Respond(nil, errNotCaughtUp)
			return
		}
	case *raft.AppendEntriesRequest:
		if !t.guard.standing() {
			t.forwardWatched(rpc, cmd.Term, cmd.LeaderCommitIndex)
			return
		}
	case *raft.InstallSnapshotRequest:
		if !t.guard.standing() {
			t.forwardWatched(rpc, cmd.Term, cmd.LastLogIndex)
			return
		}
	}
	t.forward(rpc)
}

// forward hands rpc to Raft; false once the transport is closed.
func (t *guardedTransport) forward(rpc raft.RPC) bool {
	select {
	case t.out <- rpc:
		return true
	case <-t.closed:
		rpc.Respond(nil, raft.ErrTransportShutdown)
		return false
	}
}

// forwardWatched hands an armed node's AppendEntries or InstallSnapshot to
// Raft, waits for Raft's answer (Raft handles RPCs one at a time anyway),
// passes it on and, if Raft accepted the RPC, tells the guard the leader's
// term and the committed index the RPC announced.
func (t *guardedTransport) forwardWatched(rpc raft.RPC, term, commit uint64) {
	reply := rpc.RespChan
	answer := make(chan raft.RPCResponse, 1)
	rpc.RespChan = answer
	if !t.forward(rpc) {
		return
	}
	var resp raft.RPCResponse
	select {
	case resp = <-answer:
		reply <- resp
	case <-t.closed:
		return
	}
	accepted := false
	switch r := resp.Response.(type) {
	case *raft.AppendEntriesResponse:
		accepted = r.Success
	case *raft.InstallSnapshotResponse:
		accepted = r.Success
	}
	if resp.Error == nil && accepted {
		t.guard.heard(term, commit)
	}
}

func (t *guardedTransport) currentTerm() uint64 {
	if p := t.guard.probe.Load(); p != nil {
		return p.raft.CurrentTerm()
	}
	return 0
}

// noteContact closes the contact channel on the first RPC received.
func (t *guardedTransport) noteContact(rpc raft.RPC) {
	t.contactOnce.Do(func() {
		from := fmt.Sprintf("%T", rpc.Command)
		if h, ok := rpc.Command.(raft.WithRPCHeader); ok {
			hd := h.GetRPCHeader()
			from = fmt.Sprintf("%s from %s at %s", from, hd.ID, hd.Addr)
		}
		t.contactFrom.Store(from)
		close(t.contact)
	})
}

// contacted is closed once any node has sent this one an RPC.
func (t *guardedTransport) contacted() <-chan struct{} { return t.contact }

// firstContact describes the first RPC received ("" before it).
func (t *guardedTransport) firstContact() string {
	s, _ := t.contactFrom.Load().(string)
	return s
}

// Consumer is the guarded stream of RPCs for Raft.
func (t *guardedTransport) Consumer() <-chan raft.RPC { return t.out }

// LocalAddr is the address this node advertises.
func (t *guardedTransport) LocalAddr() raft.ServerAddress { return t.inner.LocalAddr() }

// AppendEntriesPipeline opens a pipeline to a follower.
func (t *guardedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	return t.inner.AppendEntriesPipeline(id, target)
}

// AppendEntries sends entries or a heartbeat, noting how far the follower's
// log reaches when it accepts them.
func (t *guardedTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.inner.AppendEntries(id, target, args, resp)
	if err == nil {
		t.progress.answered(id)
	}
	if err == nil && resp.Success {
		t.progress.observe(id, resp.LastLog)
	}
	return err
}

// RequestVote asks another node for its vote, unless this node is armed.
func (t *guardedTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if !t.guard.standing() {
		return errNotCaughtUp
	}
	return t.inner.RequestVote(id, target, args, resp)
}

// RequestPreVote asks another node whether it would vote, unless this node
// is armed.
func (t *guardedTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if !t.guard.standing() {
		return errNotCaughtUp
	}
	return t.inner.RequestPreVote(id, target, args, resp)
}

// InstallSnapshot streams a snapshot to a follower.
func (t *guardedTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.inner.InstallSnapshot(id, target, args, resp, data)
}

// EncodePeer serializes a peer's address.
func (t *guardedTransport) EncodePeer(id raft.ServerID, addr raft.ServerAddress) []byte {
	return t.inner.EncodePeer(id, addr)
}

// DecodePeer deserializes a peer's address.
func (t *guardedTransport) DecodePeer(b []byte) raft.ServerAddress { return t.inner.DecodePeer(b) }

// SetHeartbeatHandler installs Raft's fast path for heartbeats, which skip
// the consumer: they count as contact but carry no vote and no commit index.
func (t *guardedTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		t.inner.SetHeartbeatHandler(nil)
		return
	}
	t.inner.SetHeartbeatHandler(func(rpc raft.RPC) {
		t.noteContact(rpc)
		cb(rpc)
	})
}

// TimeoutNow asks a follower to start an election at once.
func (t *guardedTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.inner.TimeoutNow(id, target, args, resp)
}

// Close stops the consumer loop and the network transport.
func (t *guardedTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.closed)
		err = t.inner.Close()
	})
	return err
}
