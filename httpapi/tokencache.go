package httpapi

import (
	"hash/maphash"
	"sync"
)

// tokenCacheShards spreads tokens over independently locked maps.
const tokenCacheShards = 16

// tokenCache remembers bearer tokens that verified, until their exp, so
// that a client sending the same token again (the norm: a flash crowd
// retries) skips the claims decoding and HMAC check, most of the cost of
// authenticating. Keys are the whole token, signature included, so only a
// token that verified byte for byte can hit. Memory is bounded: a full
// shard drops an arbitrary entry.
type tokenCache struct {
	perShard int
	seed     maphash.Seed
	shards   [tokenCacheShards]tokenShard
}

type tokenShard struct {
	mu      sync.Mutex
	entries map[string]cachedToken
	_       [40]byte // keep neighbouring shards' locks off one cache line
}

type cachedToken struct {
	c   caller
	exp int64 // Unix nanoseconds
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{perShard: max(1, (size+tokenCacheShards-1)/tokenCacheShards), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) shard(tok string) *tokenShard {
	return &c.shards[maphash.String(c.seed, tok)%tokenCacheShards]
}

// get returns the caller of a token verified before that has not expired
// at now (Unix nanoseconds).
func (c *tokenCache) get(tok string, now int64) (caller, bool) {
	sh := c.shard(tok)
	sh.mu.Lock()
	e, ok := sh.entries[tok]
	if ok && now >= e.exp {
		delete(sh.entries, tok)
		ok = false
	}
	sh.mu.Unlock()
	return e.c, ok
}

// put remembers a verified token until exp.
func (c *tokenCache) put(tok string, who caller, exp int64) {
	sh := c.shard(tok)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.entries) >= c.perShard {
		sh.evict()
	}
	sh.entries[tok] = cachedToken{c: who, exp: exp}
}

// evict drops an arbitrary entry (map order is random), making room for
// one more in O(1); expired entries also go when they are next looked up.
func (sh *tokenShard) evict() {
	for k := range sh.entries {
		delete(sh.entries, k)
		return
	}
}

// size is the number of cached tokens (tests).
func (c *tokenCache) size() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
