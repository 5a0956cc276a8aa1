package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"

	"allot/actors/domain"
	"allot/cluster/testpki"
)

// handshakeFailures reads n's failure counter for reason.
func handshakeFailures(n *Node, reason string) float64 {
	var m dto.Metric
	if err := n.handshake.failures.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestHandshakeClusterReplicatesAndSharesItsID: with the handshake on, a
// three-node cluster forms and replicates, the joiners take the founder's
// cluster id from their first handshake and persist it, and no connection
// between them fails.
func TestHandshakeClusterReplicatesAndSharesItsID(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	if o := propose(t, leader, putVoucher("v1", 3)); o.err != nil {
		t.Fatal(o.err)
	}
	want := nodes[0].clusterID.String()
	if want == "" {
		t.Fatal("the founder has no cluster id")
	}
	for _, n := range nodes {
		waitFor(t, n.ID()+" has v1", func() error {
			found := false
			n.View(func(s *domain.State) { _, found = s.Resource("v1") })
			if !found {
				return errors.New("not yet")
			}
			return nil
		})
		if got := n.clusterID.String(); got != want {
			t.Errorf("%s: cluster id %q, want %q", n.ID(), got, want)
		}
		raw, err := os.ReadFile(filepath.Join(n.cfg.DataDir, ClusterIDFile))
		if err != nil || string(bytes.TrimSpace(raw)) != want {
			t.Errorf("%s: %s holds %q (%v)", n.ID(), ClusterIDFile, raw, err)
		}
		for _, r := range handshakeReasons {
			if f := handshakeFailures(n, r); f != 0 {
				t.Errorf("%s: %v handshake failures (%s)", n.ID(), f, r)
			}
		}
	}
}

// TestHandshakeRefusesAnotherClusterAndAnotherKey: a node of another
// cluster, keyed with the same secret, and a node with another secret
// both fail the handshake with a member, which counts why; the member's
// term and state do not move.
func TestHandshakeRefusesAnotherClusterAndAnotherKey(t *testing.T) {
	a := startNode(t, testConfig(t, t.TempDir(), nil))
	cfgB := testConfig(t, t.TempDir(), nil)
	cfgB.NodeID = "b1"
	b := startNode(t, cfgB)
	waitFor(t, "a leads", a.Ready)
	waitFor(t, "b leads", b.Ready)
	if a.clusterID.String() == b.clusterID.String() {
		t.Fatal("two founded clusters share an id")
	}
	termBefore, appliedBefore := a.Raft().CurrentTerm(), a.FSM().AppliedIndex()

	_, err := b.stream.Dial(raft.ServerAddress(a.RaftAddr()), time.Second)
	var he *handshakeError
	if !errors.As(err, &he) || he.reason != "cluster_id" {
		t.Fatalf("dialling another cluster: %v", err)
	}
	waitFor(t, "a counts the refusal", func() error {
		if handshakeFailures(a, "cluster_id") == 0 {
			return errors.New("no failure counted")
		}
		return nil
	})
	// The other cluster's leader is told to add the member: it cannot
	// reach it, and the member stays as it was.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	b.AddVoter(ctx, domain.Member{ID: "n1", RaftAddr: a.RaftAddr(), HTTPAddr: "http://127.0.0.1:18080"})
	cancel()

	other, err := newHandshaker([]byte("another secret, also of at least 32 bytes"), &clusterID{id: a.clusterID.get()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", a.RaftAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = other.dial(raw)
	raw.Close()
	if !errors.As(err, &he) || he.reason != "bad_proof" {
		t.Fatalf("dialling with another key: %v", err)
	}
	waitFor(t, "a counts the bad proof", func() error {
		if handshakeFailures(a, "bad_proof")+handshakeFailures(a, "io") == 0 {
			return errors.New("no failure counted")
		}
		return nil
	})
	assertUntouched(t, a, termBefore, appliedBefore, "forged")
	if servers, _ := a.servers(); len(servers) != 1 {
		t.Errorf("a's configuration: %v", servers)
	}
}

// useTLS puts a node on mutual TLS with a certificate of ca.
func useTLS(t *testing.T, ca *testpki.CA, c *Config) {
	cert := ca.Issue(t, c.NodeID)
	c.tlsConfigs = func() (*tls.Config, *tls.Config) { return mutualTLS(cert, ca.Pool) }
}

// TestForgedAppendEntriesOverMutualTLSIsRefused: in mutual TLS mode a
// forged AppendEntries gets nowhere over plain TCP, over TLS without a
// client certificate, over TLS with a certificate of another CA, or over
// TLS with a good certificate but no handshake; a two-node cluster on
// mutual TLS still forms and replicates.
func TestForgedAppendEntriesOverMutualTLSIsRefused(t *testing.T) {
	ca := testpki.NewCA(t)
	nodes := startCluster(t, 2, func(_ int, c *Config) { useTLS(t, ca, c) })
	leader := leaderOf(t, nodes)
	if o := propose(t, leader, putVoucher("real", 3)); o.err != nil {
		t.Fatal(o.err)
	}
	var follower *Node
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	waitFor(t, "the follower applied real", func() error {
		if follower.FSM().AppliedIndex() < leader.FSM().AppliedIndex() {
			return errors.New("behind")
		}
		return nil
	})
	termBefore, appliedBefore := follower.Raft().CurrentTerm(), follower.FSM().AppliedIndex()
	addr := follower.RaftAddr()
	tlsDial := func(certs ...tls.Certificate) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: &tls.Config{
				MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: certs,
			}}
			return d.Dial("tcp", addr)
		}
	}
	for name, dial := range map[string]func() (net.Conn, error){
		"plain tcp":          func() (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) },
		"no client cert":     tlsDial(),
		"another ca's cert":  tlsDial(testpki.NewCA(t).Issue(t, "mallory")),
		"good cert, no auth": tlsDial(ca.Issue(t, "mallory")),
	} {
		if err := forgeAppendEntries(t, follower, dial, "forged"); err == nil {
			t.Errorf("%s: the node answered a forged AppendEntries", name)
		}
	}
	assertUntouched(t, follower, termBefore, appliedBefore, "forged")
	if handshakeFailures(follower, "tls") == 0 {
		t.Error("no tls failure counted")
	}
}
