package faultkit

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// tcpLayer is a plain TCP raft.StreamLayer for tests (cluster's own is not
// exported).
type tcpLayer struct{ net.Listener }

func (l tcpLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

// wrapped returns node id's stream layer on a free loopback port, wrapped by
// n and closed when the test ends.
func wrapped(t *testing.T, n *Network, id string) raft.StreamLayer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := n.Wrap(id)(tcpLayer{ln})
	t.Cleanup(func() { s.Close() })
	return s
}

// pair dials from a to b and returns both ends of the connection.
func pair(t *testing.T, a, b raft.StreamLayer) (dialled, accepted net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := b.Accept()
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	d, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c == nil {
			t.FailNow()
		}
		return d, c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	return nil, nil
}

func send(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// receive reads len(want) bytes within d and fails unless they are want.
func receive(t *testing.T, c net.Conn, want string, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

// silent fails unless nothing arrives on c for d: the read times out.
func silent(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want a timeout (a black hole)", buf[:n], err)
	}
}

// closedSoon fails unless c's other end closes it within d.
func closedSoon(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v; want the connection closed", err)
	}
}

func TestNetworkNamesTheDiallerAndPassesTraffic(t *testing.T) {
	n := NewNetwork(1)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	d, c := pair(t, a, b)
	send(t, d, "ping")
	receive(t, c, "ping", 5*time.Second)
	send(t, c, "pong")
	receive(t, d, "pong", 5*time.Second)
	if st := n.Stats("a", "b"); st.Sent != 2 || st.Lost != 0 { // preamble and ping
		t.Fatalf("a->b %+v", st)
	}
	if st := n.Stats("b", "a"); st.Sent != 1 || st.Bytes != 4 {
		t.Fatalf("b->a %+v", st)
	}
	if got := c.(*conn).to; got != "a" {
		t.Fatalf("accepted connection attributed to %q, want a", got)
	}
}

func TestNetworkRefusesAConnectionWithoutPreamble(t *testing.T) {
	n := NewNetwork(1)
	b := wrapped(t, n, "b")
	raw, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	closedSoon(t, raw, 5*time.Second)
}

func TestPartitionCutsOpenConnectionsUntilHeal(t *testing.T) {
	n := NewNetwork(1)
	a, b, x := wrapped(t, n, "a"), wrapped(t, n, "b"), wrapped(t, n, "x")
	d, c := pair(t, a, b)
	xd, xc := pair(t, x, b)

	n.Partition([]string{"a"}, []string{"b"}) // x is in the rest, with neither
	send(t, d, "lost")
	send(t, c, "lost too")
	silent(t, c, 200*time.Millisecond)
	silent(t, d, 200*time.Millisecond)
	send(t, xd, "x->b") // x and b are cut as well: the rest is a group of its own
	silent(t, xc, 200*time.Millisecond)
	if st := n.Stats("a", "b"); st.Lost != 1 {
		t.Fatalf("a->b %+v", st)
	}

	// A broken connection stays broken: its stream lost bytes. Heal closes it.
	n.Heal()
	closedSoon(t, c, 5*time.Second)
	closedSoon(t, d, 5*time.Second)
	closedSoon(t, xc, 5*time.Second)
	d, c = pair(t, a, b)
	send(t, d, "again")
	receive(t, c, "again", 5*time.Second)
}

func TestIsolateCutsOneNodeOffFromAll(t *testing.T) {
	n := NewNetwork(1)
	a, b, x := wrapped(t, n, "a"), wrapped(t, n, "b"), wrapped(t, n, "x")
	ad, ac := pair(t, a, x)
	bd, bc := pair(t, b, x)
	n.Isolate("a")
	send(t, ad, "a->x")
	silent(t, ac, 200*time.Millisecond)
	send(t, bd, "b->x")
	receive(t, bc, "b->x", 5*time.Second)
}

func TestBlockIsOneWay(t *testing.T) {
	n := NewNetwork(1)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	ad, bc := pair(t, a, b) // a dialled b
	bd, ac := pair(t, b, a) // b dialled a

	n.Block("a", "b")
	send(t, ad, "request from a")
	silent(t, bc, 200*time.Millisecond)
	send(t, bd, "request from b")
	receive(t, ac, "request from b", 5*time.Second)
	send(t, ac, "answer from a") // a's answer on b's connection is lost
	silent(t, bd, 200*time.Millisecond)
	send(t, bc, "b->a still flows")
	receive(t, ad, "b->a still flows", 5*time.Second)

	// A new connection from a to b loses its preamble: b never accepts it.
	accepted := make(chan struct{})
	go func() {
		if _, err := b.Accept(); err == nil {
			close(accepted)
		}
	}()
	if _, err := a.Dial(raft.ServerAddress(b.Addr().String()), time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
		t.Fatal("b accepted a connection whose preamble a->b should have lost")
	case <-time.After(300 * time.Millisecond):
	}
	if st := n.Stats("a", "b"); st.Lost != 3 {
		t.Fatalf("a->b %+v, want the request, the answer and the preamble lost", st)
	}
}

func TestDelayHoldsMessagesInOrder(t *testing.T) {
	n := NewNetwork(1)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	d, c := pair(t, a, b)
	const delay = 150 * time.Millisecond
	n.Delay("a", "b", delay)
	start := time.Now()
	for _, m := range []string{"one ", "two ", "three"} {
		send(t, d, m)
	}
	receive(t, c, "one two three", 5*time.Second)
	if took := time.Since(start); took < delay {
		t.Fatalf("delayed messages arrived after %v, want at least %v", took, delay)
	}
	send(t, c, "back") // the other direction is not delayed
	receive(t, d, "back", 5*time.Second)
	if st := n.Stats("a", "b"); st.Delayed != 3 {
		t.Fatalf("a->b %+v", st)
	}
	if st := n.Stats("b", "a"); st.Delayed != 0 {
		t.Fatalf("b->a %+v", st)
	}
	// Once a connection has delayed a write, a write without delay still
	// waits for the ones before it.
	n.Delay("a", "b", 0)
	send(t, d, "later")
	receive(t, c, "later", 5*time.Second)
}

func TestDelayedMessageCaughtByPartitionIsLost(t *testing.T) {
	n := NewNetwork(1)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	d, c := pair(t, a, b)
	n.Delay("a", "b", 200*time.Millisecond)
	send(t, d, "in flight")
	n.Block("a", "b")
	silent(t, c, 400*time.Millisecond)
	if st := n.Stats("a", "b"); st.Lost != 1 || st.Delayed != 0 {
		t.Fatalf("a->b %+v", st)
	}
}

func TestDropLosesAFractionAndBreaksTheConnection(t *testing.T) {
	n := NewNetwork(42)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	d, c := pair(t, a, b)
	n.Drop("a", "b", 0.5)
	const writes = 400
	before := n.Stats("a", "b")
	for range writes {
		n.judge("a", "b", 1) // the draw alone, without a connection to break
	}
	st := n.Stats("a", "b")
	dropped := st.Dropped - before.Dropped
	if dropped < writes/4 || dropped > writes*3/4 {
		t.Fatalf("dropped %d of %d writes at p=0.5", dropped, writes)
	}

	// A dropped write breaks its connection: later writes are lost as well.
	n.Drop("a", "b", 1)
	send(t, d, "dropped")
	n.Drop("a", "b", 0)
	send(t, d, "after the drop")
	silent(t, c, 200*time.Millisecond)
	n.Heal()
	closedSoon(t, c, 5*time.Second)

	// The same seed draws the same losses.
	m := NewNetwork(42)
	m.Drop("a", "b", 0.5)
	for range writes {
		m.judge("a", "b", 1)
	}
	if got := m.Stats("a", "b").Dropped; got != dropped {
		t.Fatalf("seed 42 dropped %d, then %d", dropped, got)
	}
}

func TestStreamCloseClosesItsConnections(t *testing.T) {
	n := NewNetwork(1)
	a, b := wrapped(t, n, "a"), wrapped(t, n, "b")
	_, c := pair(t, a, b)
	a.Close()
	closedSoon(t, c, 5*time.Second)
}

// TestBlockMakesRaftTimeOut runs Raft's own network transport over the
// Network: a blocked AppendEntries is not refused but goes unanswered, and
// fails only when the transport's timeout passes.
func TestBlockMakesRaftTimeOut(t *testing.T) {
	n := NewNetwork(1)
	const timeout = 300 * time.Millisecond
	transport := func(id string) *raft.NetworkTransport {
		tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: wrapped(t, n, id), MaxPool: 2, Timeout: timeout,
		})
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := transport("a"), transport("b")
	go func() { // b answers every AppendEntries
		for rpc := range b.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		}
	}()
	appendEntries := func() (time.Duration, error) {
		start := time.Now()
		var resp raft.AppendEntriesResponse
		err := a.AppendEntries("b", b.LocalAddr(), &raft.AppendEntriesRequest{Term: 1, Leader: []byte(a.LocalAddr())}, &resp)
		return time.Since(start), err
	}
	if _, err := appendEntries(); err != nil {
		t.Fatalf("before the block: %v", err)
	}
	n.Block("a", "b")
	// Raft's codec flattens the error: "... i/o timeout" is what is left.
	timedOut := func(err error) bool { return err != nil && strings.Contains(err.Error(), "i/o timeout") }
	took, err := appendEntries()
	if !timedOut(err) || took < timeout {
		t.Fatalf("blocked AppendEntries: %v after %v; want a timeout after at least %v", err, took, timeout)
	}
	n.Heal()
	n.Block("b", "a") // the other way: b gets the request, its answer is lost
	took, err = appendEntries()
	if !timedOut(err) || took < timeout {
		t.Fatalf("AppendEntries with its answer blocked: %v after %v; want a timeout", err, took)
	}
	n.Heal()
	if _, err := appendEntries(); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}
