package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// maxPendingHandshakes bounds the accepted connections still in their
// handshake, so that a flood of silent connections costs bounded memory
// until their deadlines close them; connections beyond it are closed at
// once.
const maxPendingHandshakes = 256

// maxHandshakesPerIP bounds the handshakes in progress from one remote IP,
// so that one host's silent connections cannot take all of
// maxPendingHandshakes from the real peers; connections beyond it are
// closed at once. A real peer holds at most a few at a time (Raft's pool
// and the hellos).
const maxHandshakesPerIP = 8

// authStream is the bottom of the Raft stream layer (transport.go): it
// hands Raft, the hellos and any Config.WrapStream only connections whose
// other end passed the handshake (handshake.go), over mutual TLS when tls
// is set. Accepted connections are handshaken on goroutines of their own,
// so a slow or silent peer holds up nobody, and Accept returns only those
// that passed.
type authStream struct {
	inner     *tcpStream
	h         *handshaker
	serverTLS *tls.Config // nil: plain TCP
	clientTLS *tls.Config

	accepted chan net.Conn
	pending  chan struct{} // a slot per handshake in progress
	peerKey  func(net.Addr) string
	mu       sync.Mutex
	perPeer  map[string]int // handshakes in progress by peerKey
	done     chan struct{}
	once     sync.Once
}

func newAuthStream(inner *tcpStream, h *handshaker, serverTLS, clientTLS *tls.Config) *authStream {
	s := &authStream{
		inner: inner, h: h, serverTLS: serverTLS, clientTLS: clientTLS,
		accepted: make(chan net.Conn),
		pending:  make(chan struct{}, maxPendingHandshakes),
		peerKey:  remoteIP,
		perPeer:  make(map[string]int),
		done:     make(chan struct{}),
	}
	go s.acceptLoop()
	return s
}

// Addr is the address advertised to the other nodes.
func (s *authStream) Addr() net.Addr { return s.inner.Addr() }

// Accept returns the next connection that passed the handshake.
func (s *authStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (s *authStream) Close() error {
	err := net.ErrClosed
	s.once.Do(func() {
		close(s.done)
		err = s.inner.Close()
	})
	return err
}

// Dial connects to address and runs the dialler's side of the handshake
// (after TLS's, in TLS mode) before the connection is handed on.
func (s *authStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raw, err := s.inner.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	conn, err := s.secure(raw, true)
	if err != nil {
		raw.Close()
		s.h.count(err)
		return nil, err
	}
	return conn, nil
}

// secure runs TLS's handshake if configured, then the dialler's or the
// acceptor's side of the cluster handshake, on raw.
func (s *authStream) secure(raw net.Conn, dialler bool) (net.Conn, error) {
	conn := raw
	if s.serverTLS != nil {
		start := time.Now()
		var tc *tls.Conn
		if dialler {
			tc = tls.Client(raw, s.clientTLS)
			tc.SetDeadline(start.Add(s.h.timeout))
		} else {
			tc = tls.Server(&firstBytesConn{Conn: raw, rest: start.Add(s.h.timeout)}, s.serverTLS)
			tc.SetDeadline(start.Add(s.h.hello))
		}
		if err := tc.Handshake(); err != nil {
			return nil, failed("tls", err)
		}
		tc.SetDeadline(time.Time{})
		conn = tc
	}
	run := s.h.accept
	if dialler {
		run = s.h.dial
	}
	if err := run(conn); err != nil {
		return nil, err
	}
	return conn, nil
}

func (s *authStream) acceptLoop() {
	for {
		raw, err := s.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.Close()
				return
			}
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond): // e.g. out of file descriptors
			}
			continue
		}
		peer := s.peerKey(raw.RemoteAddr())
		if !s.take(peer) {
			raw.Close()
			s.h.count(failed("per_ip", fmt.Errorf("too many handshakes in progress from %s", peer)))
			continue
		}
		select {
		case s.pending <- struct{}{}:
		default:
			s.release(peer)
			raw.Close()
			s.h.count(failed("overload", errors.New("too many handshakes in progress")))
			continue
		}
		go s.admit(raw, peer)
	}
}

// take claims one of peer's handshake slots, if it has one left.
func (s *authStream) take(peer string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[peer] >= maxHandshakesPerIP {
		return false
	}
	s.perPeer[peer]++
	return true
}

// release gives back one of peer's handshake slots.
func (s *authStream) release(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[peer]--; s.perPeer[peer] <= 0 {
		delete(s.perPeer, peer)
	}
}

// remoteIP is the peer key of the per-IP limit: the address without its
// port.
func remoteIP(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// admit handshakes one accepted connection and hands it to Accept.
func (s *authStream) admit(raw net.Conn, peer string) {
	conn, err := s.secure(raw, false)
	<-s.pending
	s.release(peer)
	if err != nil {
		raw.Close()
		s.h.count(err)
		return
	}
	select {
	case s.accepted <- conn:
	case <-s.done:
		conn.Close()
	}
}
