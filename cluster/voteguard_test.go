package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testOutput(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func tcpTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// guardedPair is a guarded transport and a plain one that talks to it.
func guardedPair(t *testing.T, g *voteGuard) (*guardedTransport, *raft.NetworkTransport) {
	t.Helper()
	srv := guardTransport(tcpTransport(t), g, "srv")
	cli := tcpTransport(t)
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

func header(id string, tr raft.Transport) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: tr.EncodePeer(raft.ServerID(id), tr.LocalAddr())}
}

// noRPC fails if an RPC reached the consumer.
func noRPC(t *testing.T, tr raft.Transport) {
	t.Helper()
	select {
	case rpc := <-tr.Consumer():
		t.Fatalf("%T reached Raft", rpc.Command)
	default:
	}
}

// answer serves the next RPC on tr's consumer with resp, in the background.
func answer(tr raft.Transport, resp any) <-chan any {
	got := make(chan any, 1)
	go func() {
		rpc := <-tr.Consumer()
		got <- rpc.Command
		rpc.Respond(resp, nil)
	}()
	return got
}

// TestGuardedTransportInterfaces: the wrapper offers every optional
// interface hashicorp/raft type-asserts on a transport that the network
// transport offers, or Raft would quietly lose pre-vote or leave the
// transport open on shutdown.
func TestGuardedTransportInterfaces(t *testing.T) {
	inner := tcpTransport(t)
	defer inner.Close()
	var guarded raft.Transport = &guardedTransport{}
	for _, iface := range []reflect.Type{
		reflect.TypeFor[raft.WithPreVote](), reflect.TypeFor[raft.WithClose](), reflect.TypeFor[raft.WithPeers](),
	} {
		if reflect.TypeOf(inner).Implements(iface) && !reflect.TypeOf(guarded).Implements(iface) {
			t.Errorf("the network transport implements %v, the guarded one does not", iface)
		}
	}
	if strings.Contains(errNotCaughtUp.Error(), "unexpected command") {
		t.Fatal("raft would count a pre-vote failing with errNotCaughtUp as granted")
	}
}

// TestVoteGuardOverTCP drives a guarded transport with real RPCs: armed, it
// refuses votes, pre-votes and leadership transfers before Raft sees them,
// passes entries on and sends no vote requests of its own; disarmed at a
// floor, it refuses terms up to the floor only, and the floor survives a
// reopen.
func TestVoteGuardOverTCP(t *testing.T) {
	store := raft.NewInmemStore()
	g, err := openVoteGuard(store, store, false, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := guardedPair(t, g)
	hdr := header("cand", cli)
	vote := func(term uint64) (bool, error) {
		var resp raft.RequestVoteResponse
		err := cli.RequestVote("srv", srv.LocalAddr(), &raft.RequestVoteRequest{
			RPCHeader: hdr, Term: term, LastLogIndex: 1000, LastLogTerm: term - 1}, &resp)
		return resp.Granted, err
	}

	if granted, err := vote(7); err != nil || granted {
		t.Fatalf("armed: vote granted %v, %v", granted, err)
	}
	var pre raft.RequestPreVoteResponse
	if err := cli.RequestPreVote("srv", srv.LocalAddr(), &raft.RequestPreVoteRequest{
		RPCHeader: hdr, Term: 7, LastLogIndex: 1000, LastLogTerm: 6}, &pre); err != nil || pre.Granted {
		t.Fatalf("armed: pre-vote granted %v, %v", pre.Granted, err)
	}
	if err := cli.TimeoutNow("srv", srv.LocalAddr(), &raft.TimeoutNowRequest{RPCHeader: hdr}, &raft.TimeoutNowResponse{}); err == nil || !strings.Contains(err.Error(), "vote guard") {
		t.Fatalf("armed: TimeoutNow answered %v", err)
	}
	noRPC(t, srv)

	// Entries reach Raft, and contact is signalled.
	got := answer(srv, &raft.AppendEntriesResponse{Success: true, LastLog: 3})
	var ae raft.AppendEntriesResponse
	if err := cli.AppendEntries("srv", srv.LocalAddr(), &raft.AppendEntriesRequest{
		RPCHeader: hdr, Term: 7, PrevLogEntry: 2, PrevLogTerm: 7, LeaderCommitIndex: 3,
		Entries: []*raft.Log{{Index: 3, Term: 7, Type: raft.LogNoop}}}, &ae); err != nil || !ae.Success {
		t.Fatalf("append: %+v, %v", ae, err)
	}
	if _, ok := (<-got).(*raft.AppendEntriesRequest); !ok {
		t.Fatal("AppendEntries did not reach Raft")
	}
	select {
	case <-srv.contacted():
	default:
		t.Fatal("no contact signalled")
	}

	// Its own vote requests are not sent.
	var own raft.RequestVoteResponse
	if err := srv.RequestVote("cand", cli.LocalAddr(), &raft.RequestVoteRequest{RPCHeader: header("srv", srv), Term: 8}, &own); !errors.Is(err, errNotCaughtUp) {
		t.Fatalf("armed node's own vote request: %v", err)
	}
	if err := srv.RequestPreVote("cand", cli.LocalAddr(), &raft.RequestPreVoteRequest{RPCHeader: header("srv", srv), Term: 8}, &raft.RequestPreVoteResponse{}); !errors.Is(err, errNotCaughtUp) {
		t.Fatalf("armed node's own pre-vote request: %v", err)
	}
	noRPC(t, cli)

	g.disarm(5, "test")
	if granted, err := vote(5); err != nil || granted {
		t.Fatalf("vote at the floor granted %v, %v", granted, err)
	}
	noRPC(t, srv)
	got = answer(srv, &raft.RequestVoteResponse{Term: 6, Granted: true})
	if granted, err := vote(6); err != nil || !granted {
		t.Fatalf("vote above the floor: granted %v, %v", granted, err)
	}
	if cmd, ok := (<-got).(*raft.RequestVoteRequest); !ok || cmd.Term != 6 {
		t.Fatalf("Raft got %+v", cmd)
	}
	if n := g.refused.Load(); n != 3 {
		t.Fatalf("%d refusals counted, want 3", n)
	}

	reopened, err := openVoteGuard(store, store, true, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reopened.standing() || reopened.floor.Load() != 5 {
		t.Fatalf("reopened floor %s", reopened.floorString())
	}
}

// TestOpenVoteGuard: which data dirs arm the guard.
func TestOpenVoteGuard(t *testing.T) {
	for _, c := range []struct {
		name     string
		hasState bool
		floor    *uint64 // stored floor, nil for none
		logged   bool    // the log holds an entry
		want     uint64
	}{
		{name: "empty data dir", want: floorArmed},
		{name: "armed when it stopped", hasState: true, floor: ptr(uint64(floorArmed)), logged: true, want: floorArmed},
		{name: "caught up before it stopped", hasState: true, floor: ptr(uint64(4)), logged: true, want: 4},
		{name: "founder", hasState: true, floor: ptr(uint64(0)), logged: true, want: 0},
		{name: "from before the guard", hasState: true, logged: true, want: 0},
		{name: "raft database lost, snapshots left", hasState: true, want: floorArmed},
	} {
		t.Run(c.name, func(t *testing.T) {
			stores, err := storage.Open(t.TempDir(), io.Discard) // the real stores: a missing key is an error there
			if err != nil {
				t.Fatal(err)
			}
			defer stores.Close()
			store := stores.StableStore()
			if c.floor != nil {
				store.SetUint64(voteFloorKey, *c.floor)
			}
			if c.logged {
				stores.LogStore().StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogNoop})
			}
			g, err := openVoteGuard(store, stores.LogStore(), c.hasState, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := g.floor.Load(); got != c.want {
				t.Fatalf("floor %d, want %d", got, c.want)
			}
			stored, err := store.GetUint64(voteFloorKey)
			if c.want == floorArmed && (err != nil || stored != floorArmed) {
				t.Fatalf("armed but stored %d, %v", stored, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// gatedLog holds every write to the log until open is called: a node that
// cannot catch up.
type gatedLog struct {
	raft.LogStore
	gate chan struct{}
	once sync.Once
}

func (g *gatedLog) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedLog) StoreLog(l *raft.Log) error { <-g.gate; return g.LogStore.StoreLog(l) }

func (g *gatedLog) StoreLogs(ls []*raft.Log) error { <-g.gate; return g.LogStore.StoreLogs(ls) }

// TestDefect9JoinerVotesOnlyOnceCaughtUp: a joining node is a non-voter
// until its log has caught up (AddVoter answers unavailable meanwhile), the
// leader promotes it once it has, its vote guard opens only once it holds
// the leader's committed entries, and its floor survives a restart.
func TestDefect9JoinerVotesOnlyOnceCaughtUp(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	l := nodes[0]
	wantApplied(t, propose(t, l, putVoucher("v1", 10)), 1)
	if vs := l.VoteStatus(); !vs.CanVote || vs.Floor != 0 {
		t.Fatalf("founder: %+v", vs)
	}

	log := &gatedLog{gate: make(chan struct{})}
	cfg := testConfig(t, t.TempDir(), nil)
	cfg.NodeID, cfg.HTTPAddr, cfg.Bootstrap = "n2", "http://127.0.0.1:18082", false
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = l.cfg.HeartbeatTimeout, l.cfg.ElectionTimeout, l.cfg.LeaderLeaseTimeout
	cfg.WrapLogStore = func(s raft.LogStore) raft.LogStore { log.LogStore = s; return log }
	n2 := startNode(t, cfg)
	t.Cleanup(log.open) // before n2 shuts down
	m := domain.Member{ID: "n2", RaftAddr: n2.RaftAddr(), HTTPAddr: cfg.HTTPAddr}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := l.AddVoter(ctx, m)
	cancel()
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("AddVoter of a node that cannot catch up: %v", err)
	}
	if got := serverIDs(t, l); fmt.Sprint(got) != "[n1/Voter n2/Nonvoter]" {
		t.Fatalf("configuration %v", got)
	}
	if vs := n2.VoteStatus(); vs.CanVote {
		t.Fatalf("n2 can vote before it caught up: %+v", vs)
	}

	// Once it can catch up, the leader promotes it without being asked
	// again (a joiner may have given up), and a late retry succeeds.
	log.open()
	waitFor(t, "n2 promoted", func() error {
		if got := serverIDs(t, l); fmt.Sprint(got) != "[n1/Voter n2/Voter]" {
			return fmt.Errorf("configuration %v", got)
		}
		return nil
	})
	if err := l.AddVoter(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n2's vote guard opens", func() error {
		if vs := n2.VoteStatus(); !vs.CanVote {
			return fmt.Errorf("%+v", vs)
		}
		return nil
	})
	floor := n2.VoteStatus().Floor
	if term := l.Raft().CurrentTerm(); floor != term {
		t.Fatalf("floor %d, want the leader's term %d", floor, term)
	}

	if err := n2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	n2 = restart(t, n2, func(c *Config) { c.WrapLogStore = nil })
	if vs := n2.VoteStatus(); !vs.CanVote || vs.Floor != floor {
		t.Fatalf("after restart: %+v, want floor %d", vs, floor)
	}
}
