package cluster

import (
	"io"
	"sync"
	"testing"
)

// testOutput is t.Output() until the end of the test's cleanups, and a
// sink after. Writing to a finished test's output is a data race, and a Raft
// goroutine can still log then: a node whose Raft did not stop within
// ShutdownTimeout on a loaded machine returns from Shutdown with it running.
// Made before the test starts its nodes, its cleanup runs after theirs.
func testOutput(t *testing.T) io.Writer {
	o := &guardedOutput{w: t.Output()}
	t.Cleanup(func() {
		o.mu.Lock()
		o.w = nil
		o.mu.Unlock()
	})
	return o
}

type guardedOutput struct {
	mu sync.Mutex
	w  io.Writer // nil once the test has ended
}

func (o *guardedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		return len(p), nil
	}
	return o.w.Write(p)
}
