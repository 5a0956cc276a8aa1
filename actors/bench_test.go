package actors_test

import (
	"context"
	"fmt"
	"log/slog"
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
// with bbolt on disk.

func BenchmarkReserveSoldOut(b *testing.B) {
	e := startLocal(b, 0)
	benchReserve(b, e)
}

func BenchmarkReserveCommitRaft(b *testing.B) {
	e := startLocal(b, 1<<40)
	benchReserve(b, e)
}

// startLocal runs an engine on a one-node Raft cluster in a temp dir with a
// voucher "v" of the given capacity and no per-user limit.
func startLocal(b *testing.B, capacity int64) *actors.Engine {
	b.Helper()
	cfg := cluster.DefaultConfig()
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.DataDir = "n1", "127.0.0.1:0", "http://127.0.0.1:0", b.TempDir()
	cfg.Bootstrap = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	leading := make(chan bool, 4)
	engineSet := make(chan *actors.Engine, 1)
	cfg.OnLeadership = func(l bool) {
		e := <-engineSet
		e.SetLeader(l)
		engineSet <- e
		leading <- l
	}
	node, err := cluster.Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := actors.New(node, actors.DefaultConfig(), actors.Hooks{})
	engineSet <- e
	select {
	case <-leading:
	case <-time.After(10 * time.Second):
		b.Fatal("no leader")
	}
	b.Cleanup(func() { e.Close(); _ = node.Shutdown() })
	spec := domain.Spec{Kind: domain.KindVoucher, Capacity: capacity}
	if _, _, err := e.PutResource(context.Background(), "v", spec); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchReserve(b *testing.B, e *actors.Engine) {
	var user atomic.Int64
	b.SetParallelism(32) // many clients, like a crowd: lets group commit batch
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			u := fmt.Sprintf("u%d", user.Add(1))
			_, err := e.Reserve(ctx, domain.ReserveCommand{ResourceID: "v", Caller: domain.Principal{User: u},
				Request: domain.ReserveRequest{User: u, Quantity: 1}})
			if err != nil && domain.ErrorCode(err) != "sold_out" {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reservations/s")
}
