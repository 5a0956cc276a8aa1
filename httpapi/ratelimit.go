package httpapi

import (
	"hash/maphash"
	"sync"
	"time"
)

// limiterShards spreads users over independently locked maps so that a
// flash crowd of distinct users does not serialise on one mutex.
const limiterShards = 64

// minSweepInterval bounds how often one shard is scanned for idle buckets.
const minSweepInterval = time.Second

// rateLimiter is a set of per-key token buckets with bounded memory. A
// bucket that has been idle long enough to be full again is equivalent to no
// bucket at all, so sweeps drop those; a shard at its size bound drops an
// arbitrary bucket, which can only ever admit a request early.
type rateLimiter struct {
	perNs    float64 // tokens added per nanosecond
	burst    float64
	perShard int
	full     int64 // ns for an empty bucket to fill up: idle longer and it is dropped
	sweep    int64 // ns between sweeps of one shard
	seed     maphash.Seed
	base     time.Time // origin of the monotonic clock at reads
	shards   [limiterShards]limiterShard
}

type limiterShard struct {
	mu        sync.Mutex
	buckets   map[string]bucket
	lastSweep int64
	_         [32]byte // keep neighbouring shards' locks off one cache line
}

type bucket struct {
	tokens float64
	last   int64 // limiter time of the last refill
}

func newRateLimiter(cfg RateLimit) *rateLimiter {
	l := &rateLimiter{
		perNs:    cfg.PerSecond / 1e9,
		burst:    float64(cfg.Burst),
		perShard: max(1, (cfg.MaxUsers+limiterShards-1)/limiterShards),
		seed:     maphash.MakeSeed(),
		base:     time.Now(),
	}
	l.full = int64(l.burst / l.perNs)
	l.sweep = max(l.full, int64(minSweepInterval))
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]bucket)
	}
	return l
}

// at is the limiter's monotonic clock in nanoseconds at t, a reading of
// time.Now.
func (l *rateLimiter) at(t time.Time) int64 { return int64(t.Sub(l.base)) }

// allow takes one token from key's bucket at limiter time now. When none is
// left it returns false and how long until one will be.
func (l *rateLimiter) allow(key string, now int64) (bool, time.Duration) {
	sh := &l.shards[maphash.String(l.seed, key)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep >= l.sweep {
		sh.dropIdle(now, l.full)
		sh.lastSweep = now
	}
	b, ok := sh.buckets[key]
	if ok {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)*l.perNs)
	} else {
		if len(sh.buckets) >= l.perShard {
			for k := range sh.buckets {
				delete(sh.buckets, k)
				break
			}
		}
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		sh.buckets[key] = b
		return true, 0
	}
	sh.buckets[key] = b
	return false, time.Duration((1 - b.tokens) / l.perNs)
}

// dropIdle deletes the buckets that have refilled completely.
func (sh *limiterShard) dropIdle(now, full int64) {
	for k, b := range sh.buckets {
		if now-b.last >= full {
			delete(sh.buckets, k)
		}
	}
}

// size is the number of tracked keys (tests).
func (l *rateLimiter) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}
