package cluster

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"allot/cluster/testpki"

	dto "github.com/prometheus/client_model/go"
)

// TestHandshakeSilentConnectionsFromOneIPAreBounded: one host's silent
// connections hold at most maxHandshakesPerIP handshake slots, those beyond
// are closed at once, the held ones are closed after the short hello
// deadline rather than the handshake's, and a real peer then gets in.
func TestHandshakeSilentConnectionsFromOneIPAreBounded(t *testing.T) {
	secret := []byte("a shared secret of at least 32 bytes!!")
	id := [clusterIDSize]byte{9}
	h, err := newHandshaker(secret, &clusterID{id: id}, maxHandshakeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := listenTCP("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthStream(tcp, h, nil, nil)
	defer s.Close()
	addr := s.Addr().String()

	silent := make([]net.Conn, maxHandshakesPerIP)
	for i := range silent {
		if silent[i], err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer silent[i].Close()
	}
	waitFor(t, "the silent connections take their slots", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := s.perPeer["127.0.0.1"]; n != maxHandshakesPerIP {
			return errors.New("not yet")
		}
		return nil
	})
	began := time.Now()

	// One more from the same IP is closed at once, and counted.
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(maxHelloTimeout / 2))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection beyond the per-IP cap is still open: %v", err)
	}
	waitFor(t, "the refused connection is counted as per_ip", func() error {
		var m dto.Metric
		h.failures.WithLabelValues("per_ip").Write(&m)
		if m.GetCounter().GetValue() == 0 {
			return errors.New("not counted")
		}
		return nil
	})

	// The held ones are closed by the hello deadline, well before the
	// handshake's.
	for _, c := range silent {
		c.SetReadDeadline(began.Add(maxHandshakeTimeout - time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a silent connection is still open after %v: %v", time.Since(began), err)
		}
	}

	// A real peer from the same IP gets in.
	peer, err := newHandshaker(secret, &clusterID{id: id}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a real peer gets in", func() error {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer raw.Close()
		if err := peer.dial(raw); err != nil {
			return err
		}
		conn, err := s.Accept()
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// TestHandshakeSilentTLSConnectionIsClosedAfterTheHelloDeadline: in mutual
// TLS mode too, a connection that sends no ClientHello is closed after the
// hello deadline, not the TLS handshake's.
func TestHandshakeSilentTLSConnectionIsClosedAfterTheHelloDeadline(t *testing.T) {
	ca := testpki.NewCA(t)
	serverTLS, clientTLS := mutualTLS(ca.Issue(t, "n1"), ca.Pool)
	h, err := newHandshaker([]byte("a shared secret of at least 32 bytes!!"), &clusterID{}, maxHandshakeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := listenTCP("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthStream(tcp, h, serverTLS, clientTLS)
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	c.SetReadDeadline(began.Add(maxHandshakeTimeout - time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent connection is still open after %v: %v", time.Since(began), err)
	}
}
