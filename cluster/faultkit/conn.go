package faultkit

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one Raft connection as one end sees it. What this end writes goes
// from node from to node to and is judged by the Network; reads pass
// untouched (the other end's conn judges what it writes).
type conn struct {
	net.Conn
	n        *Network
	from, to string
	// broken is set once a write was lost: the bytes after it cannot make
	// sense to the reader, so everything later is lost too.
	broken atomic.Bool

	wmu sync.Mutex // keeps writes in call order: each is judged, then sent or queued
	// queue holds writes waiting for their delay; nil until the first
	// delayed write, and from then on every write goes through it so that
	// none overtakes another.
	queue  chan pendingWrite
	lastAt time.Time // when the last queued write is due

	errMu   sync.Mutex
	pumpErr error // the queue's failed write; later writes fail with it

	closed    chan struct{}
	closeOnce sync.Once
	onClose   func(*conn)
}

type pendingWrite struct {
	b       []byte
	at      time.Time
	delayed bool // waited for a Delay: judged again when due
}

// queueLen bounds the writes waiting on one connection; a writer beyond it
// waits, as on a full socket buffer.
const queueLen = 1024

func newConn(n *Network, raw net.Conn, from, to string, onClose func(*conn)) *conn {
	c := &conn{Conn: raw, n: n, from: from, to: to, closed: make(chan struct{}), onClose: onClose}
	n.track(c)
	return c
}

// Write passes b on, holds it for the link's delay, or black-holes it
// (reporting success, as a socket does for bytes that never arrive).
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	if c.broken.Load() {
		c.n.countLost(c.from, c.to)
		return len(b), nil
	}
	v := c.n.judge(c.from, c.to, len(b))
	if v.lost {
		c.broken.Store(true)
		return len(b), nil
	}
	if v.delay == 0 && c.queue == nil {
		return c.Conn.Write(b)
	}
	return c.enqueue(b, v.delay)
}

// enqueue hands b to the pump, due after d (and never before the write
// queued ahead of it). Called with wmu held.
func (c *conn) enqueue(b []byte, d time.Duration) (int, error) {
	if c.queue == nil {
		c.queue = make(chan pendingWrite, queueLen)
		go c.pump()
	}
	c.errMu.Lock()
	err := c.pumpErr
	c.errMu.Unlock()
	if err != nil {
		return 0, err
	}
	at := time.Now().Add(d)
	if at.Before(c.lastAt) {
		at = c.lastAt
	}
	c.lastAt = at
	select {
	case c.queue <- pendingWrite{b: bytes.Clone(b), at: at, delayed: d > 0}:
		return len(b), nil
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

// pump sends queued writes when they are due, until the connection closes
// or a write fails (which closes it).
func (c *conn) pump() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		var w pendingWrite
		select {
		case w = <-c.queue:
		case <-c.closed:
			return
		}
		if wait := time.Until(w.at); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-c.closed:
				t.Stop()
				return
			}
		}
		if c.broken.Load() {
			c.n.countLost(c.from, c.to)
			continue
		}
		if w.delayed && !c.n.deliver(c.from, c.to, len(w.b)) {
			c.broken.Store(true)
			continue
		}
		if _, err := c.Conn.Write(w.b); err != nil {
			c.errMu.Lock()
			c.pumpErr = err
			c.errMu.Unlock()
			_ = c.Close()
			return
		}
	}
}

// Close closes the connection; writes still waiting for their delay are
// lost with it.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
		c.n.forget(c)
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return err
}
