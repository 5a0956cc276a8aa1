package cluster

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// TestHello: a node's Raft port tells the log formats its binary knows,
// while Raft's own traffic on the same port goes on; a connection that
// starts like a hello but is not one is dropped.
func TestHello(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir(), nil))
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.Bootstrap, cfg.maxLogFormat = false, domain.BatchV1
	old := startNode(t, cfg)
	waitFor(t, "leader ready", n.Ready)
	for _, c := range []struct {
		to   *Node
		want byte
	}{{n, domain.BatchVersion}, {old, domain.BatchV1}} {
		got, err := askLogFormat(n.stream, raft.ServerAddress(c.to.RaftAddr()), domain.BatchVersion, time.Second)
		if err != nil || got != c.want {
			t.Fatalf("%s answers %d, %v; want %d", c.to.ID(), got, err, c.want)
		}
	}
	wantApplied(t, propose(t, n, putVoucher("v1", 1)), 1)

	conn, err := net.DialTimeout("tcp", n.RaftAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := n.handshake.dial(conn); err != nil { // a member's connection
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("\xa1not a hello at all")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(conn); len(b) != 0 || err != nil {
		t.Fatalf("a bad hello got %q, %v; want the connection closed", b, err)
	}
}
