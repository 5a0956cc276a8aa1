package actors_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors"
	"allot/actors/domain"
	"allot/cluster"
)

// Engine micro-benchmarks, no HTTP. Compare them with each other in one run:
//
//	go test -run='^$' -bench=Reserve -benchmem ./actors/
//
// ReserveSoldOut is the flash-crowd path (decide and reject, nothing logged);
// ReserveCommitRaft is decide + group commit on a real single-node Raft log
// with bbolt on disk; ReserveCommitRaft3 the same on a 3-node cluster over
// loopback (every entry on a quorum's disks before the answer).

func BenchmarkReserveSoldOut(b *testing.B) {
	e := startLocal(b, 0)
	benchReserveCrowds(b, e)
}

func BenchmarkReserveCommitRaft(b *testing.B) {
	e := startLocal(b, 1<<40)
	benchReserveCrowds(b, e)
}

func BenchmarkReserveCommitRaft3(b *testing.B) {
	e := startCluster(b, 3, 1<<40)
	benchReserveCrowds(b, e)
}

// crowds are the numbers of concurrent clients the engine benchmarks wait
// on: a small crowd, a large one, and a flash crowd.
var crowds = []int{64, 1024, 4096}

// benchReserveCrowds runs benchReserveOn "v" once per crowd size, on the
// same engine (the voucher's stock is unlimited or zero, so the runs do not
// change each other's answers).
func benchReserveCrowds(b *testing.B, e *actors.Engine) {
	for _, n := range crowds {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchReserveClients(b, e, "v", n) })
	}
}

// The same on a resource that names a limit group (claims on the leader's
// limit actor before the commit), in one run with the unlimited ones:
// ReserveCommitRaftLimited accepts every request (a limit that never binds),
// ReserveSoldOutLimited is refused by the stock before any limit is asked,
// ReserveLimitRefused is refused by the limit's quota after a claim.
func BenchmarkReserveCommitRaftLimited(b *testing.B) {
	e := startLocal(b, 1<<40)
	limitVoucher(b, e, 1<<40, domain.LimitSpec{PerUser: 1 << 30})
	benchReserveOn(b, e, "lv")
}

func BenchmarkReserveSoldOutLimited(b *testing.B) {
	e := startLocal(b, 0)
	limitVoucher(b, e, 0, domain.LimitSpec{PerUser: 1})
	benchReserveOn(b, e, "lv")
}

func BenchmarkReserveLimitRefused(b *testing.B) {
	e := startLocal(b, 1<<40)
	limitVoucher(b, e, 1<<40, domain.LimitSpec{Capacity: 1})
	benchReserveOn(b, e, "lv")
}

// limitVoucher creates limit group "l" and voucher "lv" of the given
// stock naming it.
func limitVoucher(b *testing.B, e *actors.Engine, capacity int64, spec domain.LimitSpec) {
	b.Helper()
	ctx := context.Background()
	if _, _, err := e.PutLimit(ctx, "l", spec); err != nil {
		b.Fatal(err)
	}
	if _, _, err := e.PutResource(ctx, "lv", domain.Spec{Kind: domain.KindVoucher, Capacity: capacity, Limits: []string{"l"}}); err != nil {
		b.Fatal(err)
	}
}

func startLocal(b *testing.B, capacity int64) *actors.Engine { return startCluster(b, 1, capacity) }

// startCluster runs an engine on each of n Raft nodes over loopback (bbolt
// logs in temp dirs), waits for n1 to lead with every node a voter, creates a
// voucher "v" of the given capacity without a per-user limit, and returns
// the leader's engine.
func startCluster(b *testing.B, n int, capacity int64) *actors.Engine {
	b.Helper()
	leading := make(chan string, 4*n)
	var leader *actors.Engine
	var nodes []*cluster.Node
	for i := 1; i <= n; i++ {
		cfg := cluster.DefaultConfig()
		cfg.NodeID, cfg.RaftAddr, cfg.DataDir = fmt.Sprintf("n%d", i), "127.0.0.1:0", b.TempDir()
		cfg.Secret = []byte("a benchmark secret of at least 32 bytes")
		cfg.HTTPAddr = fmt.Sprintf("http://127.0.0.1:%d", 18000+i) // recorded only; nothing listens
		cfg.Bootstrap = i == 1
		cfg.Logger = slog.New(slog.DiscardHandler)
		engineSet := make(chan *actors.Engine, 1)
		cfg.OnLeadership = func(l bool) {
			e := <-engineSet
			e.SetLeader(l)
			engineSet <- e
			if l {
				leading <- cfg.NodeID
			}
		}
		node, err := cluster.Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		e := actors.New(node, actors.DefaultConfig(), actors.Hooks{})
		engineSet <- e
		b.Cleanup(func() { e.Close(); _ = node.Shutdown() })
		nodes = append(nodes, node)
		if i == 1 {
			leader = e
			select {
			case <-leading:
			case <-time.After(10 * time.Second):
				b.Fatal("no leader")
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = nodes[0].AddVoter(ctx, domain.Member{ID: cfg.NodeID, RaftAddr: node.RaftAddr(), HTTPAddr: cfg.HTTPAddr})
		cancel()
		if err != nil {
			b.Fatalf("add %s: %v", cfg.NodeID, err)
		}
	}
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: capacity}
	if _, _, err := leader.PutResource(context.Background(), "v", spec); err != nil {
		b.Fatal(err)
	}
	return leader
}

// benchUsers is how many distinct user names the benchmarks cycle through:
// named up front so that making a name is not part of the measured path.
const benchUsers = 1 << 16

func benchReserveOn(b *testing.B, e *actors.Engine, resource string) {
	benchReserveClients(b, e, resource, 64)
}

// benchReserveClients reserves one unit of resource per operation from
// clients concurrent callers (rounded to a multiple of GOMAXPROCS), each a
// user of its own per operation.
func benchReserveClients(b *testing.B, e *actors.Engine, resource string, clients int) {
	users := make([]string, benchUsers)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	var user atomic.Int64
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0))) // many clients, like a crowd: lets group commit batch
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			u := users[user.Add(1)%benchUsers]
			_, err := e.Reserve(ctx, domain.ReserveCommand{ResourceID: resource, Caller: domain.Principal{User: u},
				Request: domain.ReserveRequest{User: u, Quantity: 1}})
			if code := domain.ErrorCode(err); err != nil && code != "sold_out" && code != "limit_exceeded" {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reservations/s")
}
