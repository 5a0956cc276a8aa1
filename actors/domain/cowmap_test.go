package domain

import (
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestCowMapViews drives a cowMap through random sets and deletes, far past
// maxShard so that shards split and the directory doubles, freezing views
// at random points; every view must keep exactly the entries of a plain map
// copied at its point, and every map must yield each entry once.
func TestCowMapViews(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var epochs uint64 = 1
	live := newCowMap[int](maphash.MakeSeed())
	epoch := epochs
	ref := map[string]int{}
	type view struct {
		m   cowMap[int]
		ref map[string]int
	}
	var views []view
	check := func(name string, c *cowMap[int], want map[string]int) {
		t.Helper()
		if c.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", name, c.len(), len(want))
		}
		seen := 0
		for k, v := range c.all() {
			seen++
			if w, ok := want[k]; !ok || w != v {
				t.Fatalf("%s: %q = %d, want %d (present %v)", name, k, v, w, ok)
			}
		}
		if seen != len(want) {
			t.Fatalf("%s: yielded %d entries, want %d", name, seen, len(want))
		}
		for k, w := range want {
			if v, ok := c.get(k); !ok || v != w {
				t.Fatalf("%s: get %q = %d %v, want %d", name, k, v, ok, w)
			}
		}
	}
	for step := range 60_000 {
		k := strconv.Itoa(rnd.IntN(20_000))
		if rnd.IntN(4) == 0 {
			live.del(epoch, k)
			delete(ref, k)
		} else {
			live.set(epoch, k, step)
			ref[k] = step
		}
		if rnd.IntN(3000) == 0 {
			views = append(views, view{m: live.freeze(), ref: maps.Clone(ref)})
			epochs++
			epoch = epochs // the view's epoch is never written with here
		}
	}
	if live.depth < 6 {
		t.Fatalf("directory depth %d: the test did not split shards", live.depth)
	}
	check("live", &live, ref)
	if len(views) < 5 {
		t.Fatalf("only %d views", len(views))
	}
	for i := range views {
		check("view "+strconv.Itoa(i), &views[i].m, views[i].ref)
	}
}
