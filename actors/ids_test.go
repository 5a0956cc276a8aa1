package actors

import (
	"math"
	"strings"
	"sync"
	"testing"
)

// decodeCrockford is the inverse of encode, for the tests.
func decodeCrockford(t *testing.T, s string) uint64 {
	t.Helper()
	var v uint64
	for _, c := range s {
		i := strings.IndexRune(crockford, c)
		if i < 0 {
			t.Fatalf("%q: %q is not crockford base32", s, c)
		}
		v = v<<5 | uint64(i)
	}
	return v
}

func TestIDFormat(t *testing.T) {
	g := newIDGenerator()
	const now = int64(1_796_000_000_123_456_789) // 2026, ns
	id := g.next(now)
	if len(id) != idLen || idLen > 64 {
		t.Fatalf("id %q: %d chars, want %d (at most 64)", id, len(id), idLen)
	}
	if strings.Trim(id, crockford) != "" {
		t.Fatalf("id %q has characters outside %q", id, crockford)
	}
	if ms := decodeCrockford(t, id[:idTimeChars]); ms != uint64(now/1e6) {
		t.Fatalf("time prefix %d, want %d", ms, now/1e6)
	}
	if 5*idRandomChars < 80 {
		t.Fatalf("random part holds %d bits, want at least 80", 5*idRandomChars)
	}
}

// TestIDsUnguessable makes 100k ids in one millisecond (so only the random
// part tells them apart) and checks that they are distinct, that each of the
// random bits is set about half the time, and that consecutive ids differ in
// about half of their random bits (no counter, no shared structure). The
// tolerances are eight standard deviations: a false alarm is below 1e-13.
func TestIDsUnguessable(t *testing.T) {
	const n = 100_000
	const bits = 5 * idRandomChars
	g := newIDGenerator()
	now := int64(1_796_000_000_000_000_000)
	seen := make(map[string]bool, n)
	var ones [bits]int
	diffs := 0
	prev := ""
	prefix := g.next(now)[:idTimeChars]
	for range n {
		id := g.next(now)
		if id[:idTimeChars] != prefix {
			t.Fatal("ids of one millisecond have different time prefixes")
		}
		r := id[idTimeChars:]
		if seen[r] {
			t.Fatalf("random part %q repeated", r)
		}
		seen[r] = true
		v := randomBits(t, r)
		for i := range bits {
			ones[i] += int(v[i])
		}
		if prev != "" {
			p := randomBits(t, prev)
			for i := range bits {
				if p[i] != v[i] {
					diffs++
				}
			}
		}
		prev = r
	}
	sd := math.Sqrt(n * 0.25)
	for i, c := range ones {
		if math.Abs(float64(c)-n/2) > 8*sd {
			t.Errorf("random bit %d set %d times in %d ids", i, c, n)
		}
	}
	pairs := float64(n - 1)
	mean, sdPairs := pairs*bits/2, math.Sqrt(pairs*bits*0.25)
	if math.Abs(float64(diffs)-mean) > 8*sdPairs {
		t.Errorf("consecutive ids differ in %d random bits, want about %.0f", diffs, mean)
	}
}

func randomBits(t *testing.T, r string) [5 * idRandomChars]byte {
	t.Helper()
	var out [5 * idRandomChars]byte
	for i, c := range r {
		v := strings.IndexRune(crockford, c)
		if v < 0 {
			t.Fatalf("%q is not crockford base32", r)
		}
		for j := range 5 {
			out[5*i+j] = byte(v>>j) & 1
		}
	}
	return out
}

// TestIDsSortByMillisecond: an id of a later millisecond sorts after every
// id of an earlier one; ids of the same millisecond are distinct and compare
// consistently (a total order, not a creation order).
func TestIDsSortByMillisecond(t *testing.T) {
	g := newIDGenerator()
	base := int64(1_796_000_000_000_000_000)
	var early, late []string
	for range 1000 {
		early = append(early, g.next(base+999_999)) // the same ms as base
		late = append(late, g.next(base+1_000_000))
	}
	for _, e := range early {
		for _, l := range late[:10] {
			if !(e < l) {
				t.Fatalf("%q of an earlier millisecond does not sort before %q", e, l)
			}
		}
	}
	if early[0] == early[1] || (early[0] < early[1]) == (early[1] < early[0]) {
		t.Fatalf("same-millisecond ids %q, %q do not compare sanely", early[0], early[1])
	}
}

// TestIDsConcurrent: resource actors call next concurrently; the shared
// pool must hand each byte out once (run with -race).
func TestIDsConcurrent(t *testing.T) {
	g := newIDGenerator()
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 0, 2000)
			for range 2000 {
				local = append(local, g.next(int64(w)))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("id %q handed out twice", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}
