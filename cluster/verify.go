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
type verifier struct {
	raft    *raft.Raft
	timeout time.Duration // bounds each round's wait for its future

	mu      sync.Mutex
	running bool
	next    *verifyRound // the round readers join; nil until one does

	rounds atomic.Uint64 // rounds run, for tests and diagnostics
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
		rd.err = awaitFuture(ctx, v.raft.VerifyLeader())
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
