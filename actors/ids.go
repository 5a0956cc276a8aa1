package actors

import (
	"crypto/rand"
	"sync"
)

// crockford is a base-32 alphabet whose byte order is its numeric order, so
// ids sort by creation time.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

const (
	idTimeChars   = 10 // 50 bits of leader milliseconds: good until year 37 000
	idRandomChars = 18 // 90 bits from crypto/rand
	idLen         = idTimeChars + idRandomChars
	// idPoolSize is how much randomness one read of crypto/rand fetches, so
	// the reserve path does not make a system call per id.
	idPoolSize = 4096
)

// idGenerator makes reservation ids on the leader: 10 chars of millisecond
// leader time, then 18 chars (90 bits) from crypto/rand. 28 URL-safe chars,
// ordered by creation to the millisecond, and unguessable: knowing one id
// tells nothing about any other. Uniqueness across the cluster rests on the
// random part (a collision needs about 2^45 ids in one millisecond); Apply
// refuses a duplicate id anyway.
type idGenerator struct {
	mu   sync.Mutex // resource actors reserve concurrently
	pool [idPoolSize]byte
	used int // bytes of pool consumed; idPoolSize means empty
}

func newIDGenerator() *idGenerator {
	return &idGenerator{used: idPoolSize}
}

func (g *idGenerator) next(nowNanos int64) string {
	var b [idLen]byte
	encode(b[:idTimeChars], uint64(nowNanos/1e6))
	g.mu.Lock()
	if g.used+idRandomChars > idPoolSize {
		_, _ = rand.Read(g.pool[:]) // crypto/rand.Read never fails on supported platforms
		g.used = 0
	}
	r := g.pool[g.used : g.used+idRandomChars]
	for i, c := range r {
		// 256 is a multiple of 32, so the low 5 bits of a uniform byte are uniform.
		b[idTimeChars+i] = crockford[c&31]
	}
	clear(r) // a spent byte is never reused
	g.used += idRandomChars
	g.mu.Unlock()
	return string(b[:])
}

// encode writes the low 5*len(dst) bits of v into dst, most significant first.
func encode(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = crockford[v&31]
		v >>= 5
	}
}
