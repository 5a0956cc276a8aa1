package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// verifier coalesces leadership checks. A read may only trust a check that
// started after the read began, so readers join the next round, which starts
// as soon as the running one ends: a crowd of reads costs one
// raft.VerifyLeader per quorum round trip instead of one (and a goroutine)
// per read.
//
// A round asks hashicorp/raft's VerifyLeader only while the configuration
// has voters alone. VerifyLeader counts an answered heartbeat of any server
// it replicates to, non-voters too, against a quorum of voters, so with a
// non-voter in the configuration (a node joining and catching up, or one
// added but never reached) a leader cut off from the other voters passes
// it on the non-voter's answer while those voters elect another leader. A
// barrier is then used instead: it commits only on a quorum of voters.
type verifier struct {
	raft    *raft.Raft
	timeout time.Duration // bounds each round's wait for its future
	// barrier commits a barrier entry and waits for it (Node.barrier).
	barrier func(context.Context) error

	mu      sync.Mutex
	running bool
	next    *verifyRound // the round readers join; nil until one does

	rounds   atomic.Uint64 // rounds run, for tests and diagnostics
	barriers atomic.Uint64 // rounds that needed a barrier
}

type verifyRound struct {
	done chan struct{} // closed when err is set
	err  error
}

// verify returns nil once a leadership check that started after the call
// confirmed this node still leads, or the check's error, or ctx's.
func (v *verifier) verify(ctx context.Context) error {
	v.mu.Lock()
	if v.next == nil {
		v.next = &verifyRound{done: make(chan struct{})}
	}
	rd := v.next
	if !v.running {
		v.running = true
		v.next = nil
		go v.run(rd)
	}
	v.mu.Unlock()
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs rounds until no reader waits for another.
func (v *verifier) run(rd *verifyRound) {
	for {
		v.rounds.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
		rd.err = v.check(ctx)
		cancel()
		close(rd.done)

		v.mu.Lock()
		rd = v.next
		v.next = nil
		if rd == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
	}
}

// check confirms leadership once: by VerifyLeader when the configuration
// held voters only, the same configuration from before it to after it (no
// server joined in between), else by a barrier.
func (v *verifier) check(ctx context.Context) error {
	if before := v.configuration(); votersOnly(before) {
		if err := awaitFuture(ctx, v.raft.VerifyLeader()); err != nil {
			return err
		}
		if after := v.configuration(); sameConfiguration(before, after) {
			return nil
		}
	}
	v.barriers.Add(1)
	return v.barrier(ctx)
}

// configuration is the latest configuration's servers (nil if Raft cannot
// say). hashicorp/raft stores a fresh copy at every change and hands that
// copy out as it is (GetConfiguration reports no index to compare).
func (v *verifier) configuration() []raft.Server {
	f := v.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// sameConfiguration reports whether a and b are one reading of the same
// configuration: the same copy, which a change replaces. Equal contents in
// another copy do not count (a server added and removed in between). Were
// a Raft version to copy on every read, every check would take the barrier:
// slower, never wrong.
func sameConfiguration(a, b []raft.Server) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

func votersOnly(servers []raft.Server) bool {
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			return false
		}
	}
	return len(servers) > 0
}
