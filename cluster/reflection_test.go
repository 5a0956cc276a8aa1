package cluster

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestHandshakeRefusesReflection: an attacker without the key sits between
// a node's own outgoing connection and a connection it opens to the same
// node, and relays each end's messages to the other, hoping the node's
// acceptor and dialler prove the key to each other on its behalf. The
// acceptor must see its own dial nonce come back and refuse.
func TestHandshakeRefusesReflection(t *testing.T) {
	h, err := newHandshaker([]byte("a shared secret of at least 32 bytes!!"), &clusterID{id: [clusterIDSize]byte{7}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	aOut, mOut := tcpPair(t) // the node dials the address the attacker holds
	mIn, aIn := tcpPair(t)   // the attacker dials the node
	defer func() {
		for _, c := range []net.Conn{aOut, mOut, aIn, mIn} {
			c.Close()
		}
	}()
	go h.dial(aOut)
	go func() { // the attacker relays, byte for byte
		relay := func(from, to net.Conn, n int) bool {
			b := make([]byte, n)
			if _, err := io.ReadFull(from, b); err != nil {
				return false
			}
			_, err := to.Write(b)
			return err == nil
		}
		_ = relay(mOut, mIn, len(handshakeMagic)+nonceSize+clusterIDSize) &&
			relay(mIn, mOut, nonceSize+clusterIDSize+macSize) &&
			relay(mOut, mIn, macSize)
	}()
	err = h.accept(aIn)
	var he *handshakeError
	if !errors.As(err, &he) || he.reason != "reflected" {
		t.Fatalf("the reflected handshake: %v, want refused as reflected", err)
	}
}

// tcpPair is a TCP connection over the loopback: the dialling end and the
// accepted end.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return d, a
}
