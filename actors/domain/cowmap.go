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
// A cowMap is a map split by key hash into small shards. Every shard
// records the epoch of the state that made it; a state writes in place
// only to its own shards and copies any other shard first. Freeze gives
// the view and the state new epochs and a copy of the shard directory
// each, so the shards they share stay as they were for both: the first
// write to a shard after a snapshot copies that shard, and later writes to
// it are plain map writes.
//
// Shards stay small however large the map grows (extendible hashing): a
// shard that outgrows maxShard splits in two by one more bit of the hash,
// doubling the directory when it is as deep as the directory. So the copy
// a write pays after a snapshot is bounded (one shard per map it writes
// to), and Freeze costs a copy of the directory, one pointer per 40
// entries or so.
//
// A value that points at something Apply mutates in place (a *Resource, a
// []string appended to) is wrapped in owned, which records the epoch of the
// state that may mutate it; any other state clones it before a write.

// maxShard is the size at which a shard splits: 7/8 of 128, what a Go map
// of 128 slots holds before it grows, and each half starts with room for
// it. Shards then stay between half and fully loaded, as in any extendible
// hash, without regrowing their tables.
const maxShard = 112

// maxDepth bounds the directory (2^maxDepth entries): past it, shards
// grow instead of splitting.
const maxDepth = 26

type cowMap[V any] struct {
	seed maphash.Seed // places the keys: the same for every map of a state and its views (getH)
	// dir holds 1<<depth entries: entry i is the shard of the keys whose
	// hash ends in the bits of i. A shard of local depth d holds every key
	// whose hash ends in its d bits, so 1<<(depth-d) entries point at it.
	// A state's dir is its own (Freeze copies it); shards are shared.
	dir   []*cowShard[V]
	depth uint8
	n     int
}

type cowShard[V any] struct {
	epoch uint64 // of the state that made it: the only one that writes to it
	depth uint8  // local depth: its keys share the low depth bits of their hash
	m     map[string]V
}

// owned is a map value pointing at mutable data, with the epoch of the
// state that may change that data in place.
type owned[T any] struct {
	v     T
	epoch uint64
}

func newCowMap[V any](seed maphash.Seed) cowMap[V] {
	return cowMap[V]{seed: seed, dir: []*cowShard[V]{{}}} // epoch 0 is no state's: the first write makes its own
}

func (c *cowMap[V]) hash(k string) uint64 { return maphash.String(c.seed, k) }

func (c *cowMap[V]) index(h uint64) int { return int(h & (1<<c.depth - 1)) }

func (c *cowMap[V]) get(k string) (V, bool) { return c.getH(c.hash(k), k) }

// getH is get with k's hash h: a state's maps share their seed, so one
// hash serves every map it looks k up in.
func (c *cowMap[V]) getH(h uint64, k string) (V, bool) {
	v, ok := c.dir[c.index(h)].m[k]
	return v, ok
}

// writable returns the shard at directory index i for a state of epoch to
// write to, copied first unless that state made it.
func (c *cowMap[V]) writable(i int, epoch uint64) *cowShard[V] {
	sh := c.dir[i]
	if sh.epoch == epoch {
		return sh
	}
	m := maps.Clone(sh.m)
	if m == nil {
		m = make(map[string]V)
	}
	cp := &cowShard[V]{epoch: epoch, depth: sh.depth, m: m}
	step := 1 << sh.depth
	for j := i & (step - 1); j < len(c.dir); j += step {
		c.dir[j] = cp
	}
	return cp
}

func (c *cowMap[V]) set(epoch uint64, k string, v V) { c.setH(epoch, c.hash(k), k, v) }

// setH is set with k's hash h (see getH).
func (c *cowMap[V]) setH(epoch uint64, h uint64, k string, v V) {
	i := c.index(h)
	sh := c.writable(i, epoch)
	n := len(sh.m)
	sh.m[k] = v
	if len(sh.m) > n {
		c.n++
		if len(sh.m) >= maxShard && sh.depth < maxDepth {
			c.split(i, sh)
		}
	}
}

// split replaces sh, a shard of the state's own at directory index i, by
// two shards one bit deeper.
func (c *cowMap[V]) split(i int, sh *cowShard[V]) {
	if sh.depth == c.depth {
		c.dir = append(c.dir, c.dir...)
		c.depth++
	}
	bit := 1 << sh.depth
	// Two new maps, not one and sh's with half deleted: a Go map's deleted
	// slots do not make room for new entries, so sh's would soon grow.
	lo := &cowShard[V]{epoch: sh.epoch, depth: sh.depth + 1, m: make(map[string]V, maxShard)}
	hi := &cowShard[V]{epoch: sh.epoch, depth: sh.depth + 1, m: make(map[string]V, maxShard)}
	for k, v := range sh.m {
		if c.hash(k)&uint64(bit) == 0 {
			lo.m[k] = v
		} else {
			hi.m[k] = v
		}
	}
	for j := i & (bit - 1); j < len(c.dir); j += bit {
		if j&bit == 0 {
			c.dir[j] = lo
		} else {
			c.dir[j] = hi
		}
	}
}

func (c *cowMap[V]) del(epoch uint64, k string) { c.delH(epoch, c.hash(k), k) }

// delH is del with k's hash h (see getH).
func (c *cowMap[V]) delH(epoch uint64, h uint64, k string) {
	i := c.index(h)
	if _, ok := c.dir[i].m[k]; !ok {
		return
	}
	delete(c.writable(i, epoch).m, k)
	c.n--
}

func (c *cowMap[V]) len() int { return c.n }

// all yields every entry, in no defined order.
func (c *cowMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for j, sh := range c.dir {
			if j >= 1<<sh.depth {
				continue // visited at its first entry
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
	return cowMap[V]{seed: c.seed, dir: slices.Clone(c.dir), depth: c.depth, n: c.n}
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

// insertID inserts id into the sorted list of k for a state of epoch: a
// list that another state may share is clipped first, so that appending or
// inserting reallocates it instead of writing into the shared array.
func insertID(c *cowMap[idList], epoch uint64, k, id string) {
	h := c.hash(k)
	e, _ := c.getH(h, k)
	if e.epoch != epoch {
		e = idList{v: slices.Clip(e.v), epoch: epoch}
	}
	e.v = insertSorted(e.v, id)
	c.setH(epoch, h, k, e)
}
