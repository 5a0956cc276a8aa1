package servertest

import (
	"io"
	"sync"
)

// testLog passes the nodes' logs to the test's output until the test ends.
// Raft's transport may still log from a connection goroutine after its node
// has shut down, and writing to a finished test's output panics.
type testLog struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
