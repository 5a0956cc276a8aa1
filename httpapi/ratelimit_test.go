package httpapi

import (
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRateLimiterBucket(t *testing.T) {
	l := newRateLimiter(RateLimit{PerSecond: 10, Burst: 3, MaxUsers: 100})
	const sec = int64(time.Second)
	now := int64(0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("u", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("u", now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%s, want refused with 100ms", ok, wait)
	}
	// Another user has their own bucket.
	if ok, _ := l.allow("v", now); !ok {
		t.Fatal("other user refused")
	}
	// One token back after 100ms, not before.
	if ok, _ := l.allow("u", now+sec/20); ok {
		t.Fatal("token back after 50ms at 10/s")
	}
	if ok, _ := l.allow("u", now+sec/10); !ok {
		t.Fatal("no token after 100ms at 10/s")
	}
	// Refill stops at the burst.
	now += 10 * sec
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("u", now); !ok {
			t.Fatalf("after idling, request %d refused", i)
		}
	}
	if ok, _ := l.allow("u", now); ok {
		t.Fatal("bucket refilled beyond its burst")
	}
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := newRateLimiter(RateLimit{PerSecond: 100, Burst: 10, MaxUsers: limiterShards * 4})
	for i := 0; i < 10_000; i++ {
		l.allow("user-"+strconv.Itoa(i), 0)
	}
	if n := l.size(); n > limiterShards*4 {
		t.Fatalf("%d buckets kept, bound %d", n, limiterShards*4)
	}
	// Buckets idle long enough to be full again are dropped when their
	// shard is next swept: touch every shard once, a sweep interval later.
	later := int64(2 * time.Second)
	touched := map[uint64]bool{}
	for i := 0; len(touched) < limiterShards; i++ {
		k := "probe-" + strconv.Itoa(i)
		if sh := maphash.String(l.seed, k) % limiterShards; !touched[sh] {
			touched[sh] = true
			l.allow(k, later)
		}
	}
	if n := l.size(); n != limiterShards {
		t.Errorf("%d buckets after the sweep, want only the %d probes", n, limiterShards)
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	l := newRateLimiter(RateLimit{PerSecond: 1, Burst: 5, MaxUsers: 1000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := fmt.Sprintf("u%d", i%10)
				if ok, _ := l.allow(key, 0); ok {
					mu.Lock()
					allowed[key]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 10; i++ {
		if n := allowed[fmt.Sprintf("u%d", i)]; n != 5 {
			t.Errorf("u%d: %d allowed at one instant, want the burst of 5", i, n)
		}
	}
}

func TestRateLimitOverHTTP(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 2, MaxUsers: 10} })
	e.do("GET", "/v1/cluster", e.alice, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/cluster", e.alice, "").want(t, http.StatusOK, nil)
	r := e.do("GET", "/v1/cluster", e.alice, "")
	r.wantProblem(t, http.StatusTooManyRequests, "rate_limited")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 seconds at 0.5/s", r.header.Get("Retry-After"))
	}
	// Per user: bob is not affected; unauthenticated routes are not limited.
	e.do("GET", "/v1/cluster", e.bob, "").want(t, http.StatusOK, nil)
	for i := 0; i < 5; i++ {
		e.do("GET", "/healthz", "", "").want(t, http.StatusOK, nil)
	}
}
