package domain

import (
	"math/bits"
	"slices"
)

// Bulk loading: how a snapshot's reservations and idempotency records go
// into an empty state.
//
// Loading them one at a time (LoadReservation) touches, for each, a shard
// of five maps at random: the reservation's resource, its user's and its
// resource's id lists, the reservations and the expiry index. With a
// million reservations every one of those touches misses the cache, and
// the shards split again and again as they fill. LoadReservations gets
// the same state by building each map in one go: it sizes the map's
// directory for the keys it will hold, then inserts them ordered by the
// shard they fall in, so that a shard is filled while it is in the cache
// (shardOrder), and each id list is built whole instead of appended to.

// loadFill is the most keys per shard, on average, that a map sized for a
// known number of keys gets (loadDepth): below maxShard, so that few
// shards of a random spread reach it and split while loading, and not much
// below what a map grown key by key averages (about 0.7 of maxShard), as
// every shard costs a table of maxShard slots. Depths come in powers of
// two, so the mean lies between half of it and it.
const loadFill = 96

// loadDepth is the directory depth for a map of n keys.
func loadDepth(n int) uint8 {
	d := uint8(0)
	for d < maxDepth && n>>d > loadFill {
		d++
	}
	return d
}

// presize gives c, an empty map that shares no shard, a directory of
// 1<<depth shards of the state of epoch, each with room for maxShard keys.
func (c *cowMap[V]) presize(epoch uint64, depth uint8) {
	dir := make([]*cowShard[V], 1<<depth)
	for i := range dir {
		dir[i] = &cowShard[V]{epoch: epoch, depth: depth, m: make(map[string]V, maxShard)}
	}
	c.dir, c.depth = dir, depth
}

// shardOrder returns the indices of hs, stably ordered by the low depth
// bits of each hash read backwards (bit 0 first). So for every d up to
// depth, the keys whose hashes end in the same d bits (the keys of one
// shard of local depth d) come next to one another, whatever depth the
// map they go into has. bounds[b] is where bucket b begins, and
// bounds[1<<depth] is len(hs).
func shardOrder(hs []uint64, depth uint8) (order []int32, bounds []int32) {
	bucket := func(h uint64) int {
		if depth == 0 {
			return 0
		}
		return int(bits.Reverse64(h) >> (64 - depth))
	}
	bounds = make([]int32, 1<<depth+1)
	for _, h := range hs {
		bounds[bucket(h)+1]++
	}
	for b := 1; b < len(bounds); b++ {
		bounds[b] += bounds[b-1]
	}
	next := slices.Clone(bounds[:len(bounds)-1])
	order = make([]int32, len(hs))
	for i, h := range hs {
		b := bucket(h)
		order[next[b]] = int32(i)
		next[b]++
	}
	return order, bounds
}

// LoadReservations adds rs, in their order, while restoring a snapshot:
// the same state as LoadReservation of each in turn, built faster when the
// state holds no reservations yet. It may change the strings of rs (to
// ones equal to them that the state holds already).
func (s *State) LoadReservations(rs *Slab[Reservation]) {
	if s.reservations.len() != 0 || s.byUser.len() != 0 || s.byResource.len() != 0 || s.held.len() != 0 {
		for i := range rs.Len() {
			s.LoadReservation(*rs.at(i))
		}
		return
	}
	hs := make([]uint64, rs.Len())
	s.loadLists(&s.byUser, rs, hs, func(res *Reservation) *string { return &res.User }, nil)
	s.loadLists(&s.byResource, rs, hs, func(res *Reservation) *string { return &res.ResourceID },
		func(h uint64, id string, members []int32) string {
			r, _ := s.resources.getH(h, id) // the maps of a state share their seed
			if r.v == nil {
				return id
			}
			for _, i := range members {
				if rs.at(int(i)).Status.Taken() {
					s.addShares(r.v, rs.at(int(i)), 1)
				}
			}
			return r.v.ID // as applyReserve shares it
		})

	nHeld := 0
	for i := range rs.Len() {
		hs[i] = s.reservations.hash(rs.at(i).ID)
		if rs.at(i).Status == StatusHeld {
			nHeld++
		}
	}
	order, _ := shardOrder(hs, loadDepth(rs.Len()))
	s.reservations.presize(s.epoch, loadDepth(rs.Len()))
	s.held.presize(s.epoch, loadDepth(nHeld))
	var finished []finishedKey
	for _, i := range order {
		res := rs.at(int(i))
		s.reservations.setH(s.epoch, hs[i], res.ID, *res)
		if res.Status == StatusHeld {
			s.held.setH(s.epoch, hs[i], res.ID, struct{}{})
		}
		if res.Status.Prunable() {
			finished = append(finished, finishedKey{at: res.UpdatedAt, id: res.ID})
		}
	}
	// In order, a btree fills its nodes one after another.
	slices.SortFunc(finished, func(a, b finishedKey) int {
		switch {
		case finishedLess(a, b):
			return -1
		case finishedLess(b, a):
			return 1
		}
		return 0
	})
	for _, k := range finished {
		s.finished.ReplaceOrInsert(k)
	}
}

// loadLists builds c, an empty id-list index, from rs: the list of key k
// holds the ids of the reservations whose key (what key points at) is k,
// in their order in rs, sorted as insertID would keep it. Every
// reservation's key is set to one string per key: what canon returns, if
// set, given the key's hash (in the state's seed) and the indices in rs of
// the reservations that have it, else the first of them. hs is scratch
// space of rs.Len() entries.
func (s *State) loadLists(c *cowMap[idList], rs *Slab[Reservation], hs []uint64,
	key func(*Reservation) *string, canon func(h uint64, k string, members []int32) string) {
	for i := range rs.Len() {
		hs[i] = c.hash(*key(rs.at(i)))
	}
	order, bounds := shardOrder(hs, loadDepth(rs.Len()))
	type list struct {
		h       uint64
		key     string
		n       int
		members []int32 // indices in rs
		ids     []string
	}
	var lists []list
	group := make(map[string]int32) // key → its list, within one bucket
	var of []int32                  // of[j]: the list of bucket[j]
	for b := 0; b+1 < len(bounds); b++ {
		bucket := order[bounds[b]:bounds[b+1]]
		clear(group)
		of = of[:0]
		first := len(lists)
		for _, i := range bucket {
			k := *key(rs.at(int(i)))
			g, ok := group[k]
			if !ok {
				g = int32(len(lists))
				group[k] = g
				lists = append(lists, list{h: hs[i], key: k})
			}
			of = append(of, g)
			lists[g].n++
		}
		// One array for the bucket's lists, each capped at its length so
		// that a later insert into one reallocates it instead of writing
		// over the next (the array lives on while any list still in it
		// does: at most what the lists took when loaded).
		ids := make([]string, len(bucket))
		members := make([]int32, len(bucket))
		at := 0
		for g := first; g < len(lists); g++ {
			n := lists[g].n
			lists[g].members, lists[g].ids = members[at:at:at+n], ids[at:at:at+n]
			at += n
		}
		for j, i := range bucket {
			l := &lists[of[j]]
			l.members = append(l.members, i)
			l.ids = append(l.ids, rs.at(int(i)).ID)
		}
		for g := first; g < len(lists); g++ {
			l := &lists[g]
			if canon != nil {
				l.key = canon(l.h, l.key, l.members)
			}
			for _, i := range l.members {
				*key(rs.at(int(i))) = l.key
			}
			if !slices.IsSorted(l.ids) {
				slices.Sort(l.ids) // a stream not in id order: where insertID would have put them
			}
			l.members = nil
		}
	}
	c.presize(s.epoch, loadDepth(len(lists)))
	for _, l := range lists {
		c.setH(s.epoch, l.h, l.key, idList{v: l.ids, epoch: s.epoch})
	}
}

// LoadIdems adds recs, in apply order, while restoring a snapshot: the same
// state as LoadIdem of each in turn, built faster when the state holds no
// idempotency records yet (as LoadReservations).
func (s *State) LoadIdems(recs *Slab[IdemRecord]) {
	if s.idem.len() != 0 {
		for i := range recs.Len() {
			s.LoadIdem(*recs.at(i))
		}
		return
	}
	hs := make([]uint64, recs.Len())
	for i := range recs.Len() {
		hs[i] = s.reservations.hash(recs.at(i).Reservation.ID)
	}
	order, _ := shardOrder(hs, loadDepth(recs.Len()))
	for _, i := range order {
		*recs.at(int(i)) = s.sharedIdem(*recs.at(int(i))) // looks the reservation up by hs[i]'s shard
	}
	keys := make([]string, recs.Len())
	for i := range recs.Len() {
		keys[i] = idemMapKey(recs.at(i).User, recs.at(i).Key)
		hs[i] = s.idem.hash(keys[i])
	}
	order, _ = shardOrder(hs, loadDepth(recs.Len()))
	s.idem.presize(s.epoch, loadDepth(recs.Len()))
	kept := make([]bool, recs.Len())
	for _, i := range order { // stable: of records with one key, the first applied stays
		k := keys[i]
		if _, dup := s.idem.getH(hs[i], k); dup {
			continue
		}
		rec := *recs.at(int(i))
		rec.Key = k[len(rec.User)+1:] // shares the map key's bytes
		s.idem.setH(s.epoch, hs[i], k, rec)
		kept[i] = true
	}
	for i, k := range keys {
		if kept[i] {
			s.idemFIFO = append(s.idemFIFO, k)
		}
	}
}

// Slab holds the records of a run for a bulk load (LoadReservations,
// LoadIdems) in chunks that never move: adding one copies none of those
// before it, as growing one slice of a million reservations would, again
// and again.
type Slab[T any] struct {
	chunks [][]T
	n      int
}

// slabChunk is the number of records of a chunk, a power of two.
const slabChunk = 1 << 14

// Add returns a new zero record at the end of the slab.
func (sl *Slab[T]) Add() *T {
	if sl.n%slabChunk == 0 {
		sl.chunks = append(sl.chunks, make([]T, slabChunk))
	}
	p := sl.at(sl.n)
	sl.n++
	return p
}

// Len is the number of records added.
func (sl *Slab[T]) Len() int { return sl.n }

func (sl *Slab[T]) at(i int) *T { return &sl.chunks[i/slabChunk][i%slabChunk] }
