package domain

import (
	"math/rand/v2"
	"testing"
)

// TestShardOrder: the order is a permutation, stable, and for every depth
// up to the one asked for it keeps the keys of one shard together, so a
// map of any depth is filled one shard after another.
func TestShardOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 1000, 20000} {
		hs := make([]uint64, n)
		for i := range hs {
			hs[i] = rnd.Uint64()
		}
		const depth = 9
		order, bounds := shardOrder(hs, depth)
		if len(order) != n || int(bounds[len(bounds)-1]) != n {
			t.Fatalf("n=%d: %d indices, bounds end at %d", n, len(order), bounds[len(bounds)-1])
		}
		seen := make([]bool, n)
		for _, i := range order {
			if seen[i] {
				t.Fatalf("n=%d: index %d twice", n, i)
			}
			seen[i] = true
		}
		for d := uint(0); d <= depth; d++ {
			mask := uint64(1)<<d - 1
			done := map[uint64]bool{} // shards already left behind
			for j, i := range order {
				sh := hs[i] & mask
				if j > 0 {
					prev := order[j-1]
					if p := hs[prev] & mask; p != sh {
						done[p] = true
					} else if d == depth && prev > i {
						t.Fatalf("n=%d: indices %d and %d of one shard out of order", n, prev, i)
					}
				}
				if done[sh] {
					t.Fatalf("n=%d, depth %d: shard %d comes back at position %d", n, d, sh, j)
				}
			}
		}
	}
}
