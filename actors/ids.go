package actors

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// crockford is a base-32 alphabet whose byte order is its numeric order, so
// ids sort by creation time.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// idGenerator makes reservation ids on the leader: 10 chars of millisecond
// time, 8 chars random per process, 8 chars of a counter. 26 URL-safe chars,
// unique across the cluster (the random part tells leaders apart; the log
// refuses a duplicate anyway) and roughly ordered by creation.
type idGenerator struct {
	node [8]byte
	seq  atomic.Uint64
}

func newIDGenerator() *idGenerator {
	g := &idGenerator{}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	encode(g.node[:], binary.BigEndian.Uint64(b[:]))
	g.seq.Store(binary.BigEndian.Uint64(b[:]) >> 24)
	return g
}

func (g *idGenerator) next(nowNanos int64) string {
	var b [26]byte
	encode(b[0:10], uint64(nowNanos/1e6))
	copy(b[10:18], g.node[:])
	encode(b[18:26], g.seq.Add(1))
	return string(b[:])
}

// encode writes the low 5*len(dst) bits of v into dst, most significant first.
func encode(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = crockford[v&31]
		v >>= 5
	}
}
