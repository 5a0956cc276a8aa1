package faultkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Wrap returns the cluster.Config.WrapStream of node id: its Raft stream
// layer, with every connection it dials or accepts passing through the
// Network. Every node of the Network must be wrapped: a connection is
// introduced by a preamble naming the node that dialled it (an accepted
// connection's remote address is an ephemeral port, which says nothing),
// and an accepting stream refuses connections without one.
//
// The wrapped stream learns the node's advertised address, so that the
// Network knows whom a dial reaches. Closing it (Raft does on shutdown)
// closes every connection it made, as the death of a process would.
func (n *Network) Wrap(id string) func(raft.StreamLayer) raft.StreamLayer {
	if id == "" || len(id) > 255 {
		panic(fmt.Sprintf("faultkit: node id %q must be 1-255 bytes", id))
	}
	return func(inner raft.StreamLayer) raft.StreamLayer {
		s := &stream{n: n, id: id, inner: inner, accepted: make(chan net.Conn),
			done: make(chan struct{}), conns: make(map[io.Closer]struct{})}
		n.register(inner.Addr().String(), id)
		go s.acceptLoop()
		return s
	}
}

// stream is one node's Raft stream layer seen through the Network.
type stream struct {
	n     *Network
	id    string
	inner raft.StreamLayer

	accepted  chan net.Conn // connections whose preamble was read
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{} // open connections, closed with the stream
}

var _ raft.StreamLayer = (*stream)(nil)

// handshakeTimeout bounds the wait for a dialler's preamble. A preamble can
// be black-holed like any message; the dialler's RPC then times out and
// closes the connection well before this.
const handshakeTimeout = 10 * time.Second

// preambleMagic starts every connection between wrapped streams.
const preambleMagic = "FKT1"

// Addr is the inner stream's advertised address.
func (s *stream) Addr() net.Addr { return s.inner.Addr() }

// Dial connects to address and introduces this node to the other end. The
// preamble is a message like any other: a fault between the two nodes loses
// it, and the connection with it.
func (s *stream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raw, err := s.inner.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	c := newConn(s.n, raw, s.id, s.n.nodeAt(string(address)), s.untrack)
	if !s.trackConn(c) {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	pre := make([]byte, 0, len(preambleMagic)+1+len(s.id))
	pre = append(append(append(pre, preambleMagic...), byte(len(s.id))), s.id...)
	if _, err := c.Write(pre); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Accept returns the next connection whose dialler introduced itself.
func (s *stream) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every connection of this stream.
func (s *stream) Close() error {
	err := net.ErrClosed
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.inner.Close()
		s.mu.Lock()
		s.closed = true
		open := make([]io.Closer, 0, len(s.conns))
		for c := range s.conns {
			open = append(open, c)
		}
		s.mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
	})
	return err
}

// acceptLoop accepts raw connections and reads each one's preamble on a
// goroutine of its own, so that a slow or silent dialler holds up nobody.
func (s *stream) acceptLoop() {
	for {
		raw, err := s.inner.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				_ = s.Close()
				return
			}
			time.Sleep(5 * time.Millisecond) // a transient error: retry, as Raft's own loop does
			continue
		}
		if !s.trackConn(raw) {
			_ = raw.Close()
			return
		}
		go s.handshake(raw)
	}
}

func (s *stream) handshake(raw net.Conn) {
	_ = raw.SetReadDeadline(time.Now().Add(handshakeTimeout))
	peer, err := readPreamble(raw)
	_ = raw.SetReadDeadline(time.Time{})
	s.forget(raw)
	if err != nil {
		_ = raw.Close()
		return
	}
	c := newConn(s.n, raw, s.id, peer, s.untrack)
	if !s.trackConn(c) {
		_ = c.Close()
		return
	}
	select {
	case s.accepted <- c:
	case <-s.done:
		_ = c.Close()
	}
}

func readPreamble(r io.Reader) (string, error) {
	head := make([]byte, len(preambleMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return "", fmt.Errorf("faultkit: read preamble: %w", err)
	}
	if string(head[:len(preambleMagic)]) != preambleMagic {
		return "", errors.New("faultkit: connection without a preamble (is every node wrapped by the same Network?)")
	}
	id := make([]byte, head[len(preambleMagic)])
	if _, err := io.ReadFull(r, id); err != nil {
		return "", fmt.Errorf("faultkit: read preamble: %w", err)
	}
	return string(id), nil
}

// trackConn records an open connection; false once the stream is closed.
func (s *stream) trackConn(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *stream) untrack(c *conn) { s.forget(c) }

func (s *stream) forget(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
