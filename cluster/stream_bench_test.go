package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors"
	"allot/actors/domain"
)

// BenchmarkReserveCommitStream is actors' BenchmarkReserveCommitRaft (decide
// + group commit on a single-node Raft log on disk, 32 clients per core)
// with the change stream off (a binary whose newest log format is 3) and on,
// in one run: the ratio of reservations/s is what the stream costs the
// whole accept path below HTTP.
//
//	go test -run '^$' -bench ReserveCommitStream -benchmem ./cluster
func BenchmarkReserveCommitStream(b *testing.B) {
	for _, stream := range []bool{false, true} {
		b.Run("stream="+map[bool]string{false: "off", true: "on"}[stream], func(b *testing.B) {
			e, n := startStreamBench(b, stream)
			var user atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					u := "u" + strconv.FormatInt(user.Add(1), 10)
					if _, err := e.Reserve(ctx, domain.ReserveCommand{ResourceID: "v", Caller: domain.Principal{User: u},
						Request: domain.ReserveRequest{User: u, Quantity: 1}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reservations/s")
			if got := n.fsm.EventLog().Head() > 0; got != stream {
				b.Fatalf("stream %v, but the event head is %d", stream, n.fsm.EventLog().Head())
			}
		})
	}
}

func startStreamBench(b *testing.B, stream bool) (*actors.Engine, *Node) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.RaftAddr, cfg.DataDir = "n1", "127.0.0.1:0", b.TempDir()
	cfg.Secret = []byte("a benchmark secret of at least 32 bytes")
	cfg.HTTPAddr = "http://127.0.0.1:18001" // recorded only; nothing listens
	cfg.Bootstrap = true
	cfg.Logger = quietLogger()
	if !stream {
		cfg.maxLogFormat = domain.BatchV3
	}
	engineSet := make(chan *actors.Engine, 1)
	leading := make(chan struct{}, 4)
	cfg.OnLeadership = func(l bool) {
		e := <-engineSet
		e.SetLeader(l)
		engineSet <- e
		if l {
			leading <- struct{}{}
		}
	}
	node, err := Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := actors.New(node, actors.DefaultConfig(), actors.Hooks{})
	engineSet <- e
	b.Cleanup(func() { e.Close(); _ = node.Shutdown() })
	select {
	case <-leading:
	case <-time.After(10 * time.Second):
		b.Fatal("no leader")
	}
	if _, _, err := e.PutResource(context.Background(), "v", domain.Spec{Kind: domain.KindVoucher, Capacity: 1 << 40}); err != nil {
		b.Fatal(fmt.Errorf("put: %w", err))
	}
	return e, node
}
