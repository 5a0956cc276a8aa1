package domain

import (
	"hash/maphash"
	"iter"
	"maps"
	"slices"
)

// Copy-on-write maps: what lets State.Freeze take a view of a state of
// millions of reservations in O(shards) while Apply goes on mutating it.
//
// A cowMap is a map split by key hash into a fixed number of shards. Every
// shard records the epoch of the state that made it; a state writes in
// place only to its own shards and copies any other shard first. Freeze
// gives the view and the state new epochs and a copy of the shard table
// each, so the shards they share stay as they were for both: the first
// write to a shard after a snapshot copies that shard (about 1/cowShards of
// the map), and later writes to it are plain map writes.
//
// A value that points at something Apply mutates in place (a *Resource, a
// []string appended to) is wrapped in owned, which records the epoch of the
// state that may mutate it; any other state clones it before a write.

// cowShards is the number of shards of every cowMap: a power of two, large
// enough that one shard of ten million reservations copies in well under a
// millisecond.
const cowShards = 4096

type cowMap[V any] struct {
	seed   maphash.Seed // shared by every view of the map: it places the keys
	shards []*cowShard[V]
	n      int
}

type cowShard[V any] struct {
	epoch uint64 // of the state that made it: the only one that writes to it
	m     map[string]V
}

// owned is a map value pointing at mutable data, with the epoch of the
// state that may change that data in place.
type owned[T any] struct {
	v     T
	epoch uint64
}

func newCowMap[V any](seed maphash.Seed) cowMap[V] {
	return cowMap[V]{seed: seed, shards: make([]*cowShard[V], cowShards)}
}

func (c *cowMap[V]) shardOf(k string) int {
	return int(maphash.String(c.seed, k) & (cowShards - 1))
}

func (c *cowMap[V]) get(k string) (V, bool) {
	if sh := c.shards[c.shardOf(k)]; sh != nil {
		v, ok := sh.m[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// writable returns shard i's map for a state of epoch to write to, copied
// first unless that state made it.
func (c *cowMap[V]) writable(i int, epoch uint64) map[string]V {
	sh := c.shards[i]
	switch {
	case sh == nil:
		sh = &cowShard[V]{epoch: epoch, m: make(map[string]V)}
		c.shards[i] = sh
	case sh.epoch != epoch:
		sh = &cowShard[V]{epoch: epoch, m: maps.Clone(sh.m)}
		c.shards[i] = sh
	}
	return sh.m
}

func (c *cowMap[V]) set(epoch uint64, k string, v V) {
	m := c.writable(c.shardOf(k), epoch)
	n := len(m)
	m[k] = v
	c.n += len(m) - n
}

func (c *cowMap[V]) del(epoch uint64, k string) {
	i := c.shardOf(k)
	if sh := c.shards[i]; sh == nil {
		return
	} else if _, ok := sh.m[k]; !ok {
		return
	}
	delete(c.writable(i, epoch), k)
	c.n--
}

func (c *cowMap[V]) len() int { return c.n }

// all yields every entry, in no defined order.
func (c *cowMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, sh := range c.shards {
			if sh == nil {
				continue
			}
			for k, v := range sh.m {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// sortedKeys returns every key in order.
func (c *cowMap[V]) sortedKeys() []string {
	ids := make([]string, 0, c.n)
	for k := range c.all() {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	return ids
}

// freeze returns a map sharing every shard with c; the caller gives both
// states new epochs, so neither writes to a shared shard.
func (c *cowMap[V]) freeze() cowMap[V] {
	return cowMap[V]{seed: c.seed, shards: slices.Clone(c.shards), n: c.n}
}

// writableOwned returns the value of k for a state of epoch to mutate in
// place: clone makes a private copy first unless that state owns it.
func writableOwned[T any](c *cowMap[owned[T]], epoch uint64, k string, clone func(T) T) (T, bool) {
	e, ok := c.get(k)
	if !ok {
		var zero T
		return zero, false
	}
	if e.epoch != epoch {
		e = owned[T]{v: clone(e.v), epoch: epoch}
		c.set(epoch, k, e)
	}
	return e.v, true
}

// idList is a sorted list of reservation ids (byUser, byResource).
type idList = owned[[]string]

// writableIDs returns the list of k for a state of epoch to change: one
// that another state may share is clipped, so that appending or inserting
// reallocates it instead of writing into the shared array.
func writableIDs(c *cowMap[idList], epoch uint64, k string) []string {
	e, _ := c.get(k)
	if e.epoch != epoch {
		return slices.Clip(e.v)
	}
	return e.v
}
