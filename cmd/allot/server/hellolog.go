package server

import (
	"log/slog"
	"sync"
	"time"
)

// helloLogEvery is how often an unanswered peer is logged again while it
// fails for the same reason.
const helloLogEvery = 30 * time.Second

// helloLog logs the peers whose hellos go unanswered, at Warn: a node
// waiting to found a cluster that cannot reach its peers, or is refused by
// them (a wrong secret, TLS), should say why. A peer is logged when it
// starts failing, when its reason changes, and at most once per every
// while it keeps failing; an answer after a failure is logged once too.
type helloLog struct {
	log   *slog.Logger
	every time.Duration

	mu    sync.Mutex
	peers map[string]helloFailure
}

type helloFailure struct {
	reason string
	logged time.Time
	count  int
}

func newHelloLog(log *slog.Logger, every time.Duration) *helloLog {
	return &helloLog{log: log, every: every, peers: map[string]helloFailure{}}
}

// failed records that peer did not answer, for err.
func (l *helloLog) failed(peer string, err error) {
	reason := err.Error()
	l.mu.Lock()
	f := l.peers[peer]
	f.count++
	logIt := reason != f.reason || time.Since(f.logged) >= l.every
	if logIt {
		f.reason, f.logged = reason, time.Now()
	}
	count := f.count
	l.peers[peer] = f
	l.mu.Unlock()
	if logIt {
		l.log.Warn("founding: hello unanswered", "peer", peer, "error", reason, "failures", count)
	}
}

// answered records that peer answered.
func (l *helloLog) answered(peer string) {
	l.mu.Lock()
	f, failing := l.peers[peer]
	delete(l.peers, peer)
	l.mu.Unlock()
	if failing {
		l.log.Info("founding: hello answered again", "peer", peer, "after_failures", f.count)
	}
}
