// Package domaintest generates deterministic, realistic streams of domain
// events for tests and fuzzing. A Gen plays the leader: it picks a request,
// decides it against the committed State with the domain's own rules and
// stamps the event with a simulated leader clock, so a test can drive a State
// (or an FSM, or a whole engine) through long, colliding histories and check
// invariants after every step.
package domaintest

import (
	"math/rand/v2"
	"strconv"
	"time"

	"allot/actors/domain"
)

// Sizes of the pools that requests draw from: small, so that requests
// collide on the same resources, users and idempotency keys.
const (
	resourcePool = 6  // resource ids res-a ... res-f
	userPool     = 12 // users user-a ... user-l
	keyPool      = 4  // idempotency keys per user
	invSpan      = 30 // room inventory lies in the first invSpan days from the start
	maxRows      = 8  // inventory rows a generated room type keeps at most
	idemPercent  = 15 // share of accepted reservation events that carry an IdemRecord
)

const (
	msec   = int64(time.Millisecond)
	sec    = int64(time.Second)
	minute = 60 * sec
	hour   = 60 * minute
)

// Gen is a deterministic source of events: the same seed (or the same fuzz
// bytes) and the same sequence of states give the same events. It is not
// safe for concurrent use.
type Gen struct {
	rnd  *rand.Rand // nil when the choices come from data
	data []byte
	done bool

	limits  bool       // also limit groups (WithLimits)
	now     int64      // simulated leader clock, Unix nanoseconds, never goes back
	baseDay domain.Day // the day the clock starts on; room inventory starts here
	seq     uint64     // last reservation number handed out

	// Scratch space reused between calls.
	resources    []*domain.Resource
	reservations []domain.Reservation
}

// NewSeeded returns a generator whose choices come from a PCG seeded with seed.
func NewSeeded(seed uint64) *Gen {
	return newGen(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), nil)
}

// NewFromBytes returns a generator whose choices are read from data, for
// go test -fuzz: the fuzzer's mutations become changes of the history. When
// data runs out every further choice is 0 and Done reports true.
func NewFromBytes(data []byte) *Gen { return newGen(nil, data) }

func newGen(rnd *rand.Rand, data []byte) *Gen {
	start := time.Date(2026, time.December, 1, 8, 0, 0, 0, time.UTC)
	return &Gen{rnd: rnd, data: data, now: start.UnixNano(), baseDay: domain.Day(start.Unix() / 86400)}
}

// WithLimits makes the generator use limit groups too: limit events, and
// resources that name limits (a few ids, some missing). Their events need
// log format 4 (stamped batches).
func (g *Gen) WithLimits() *Gen {
	g.limits = true
	return g
}

// Done reports whether a generator made by NewFromBytes has used up its
// input. A seeded generator is never done.
func (g *Gen) Done() bool { return g.done }

// Now is the simulated leader clock: the At of the last event returned.
func (g *Gen) Now() int64 { return g.now }

// Next returns the next event to propose, decided against st (the committed
// state) the way the leader's actors decide. decideErr is the leader's
// verdict: nil means the event is accepted and should be applied; otherwise
// the leader would answer the client with decideErr and propose nothing, so
// the event must not be applied (State.Apply refuses it with an error
// matching the same sentinel, and changes nothing).
//
// Most rejections are the ordinary ones of a busy system: sold out, limit
// exceeded, not open, closed, expired, invalid state (including a repeated
// transition, which the leader answers without an event), not found, invalid
// argument (quantity 0, empty stay, bad spec). About 4% of events are
// deliberately invalid ones no correct leader would build, to exercise
// Apply's own validation:
//   - a reserve reusing an existing reservation id (ErrAlreadyExists);
//   - a reservation whose kind does not match its resource, or whose hold
//     ends when it starts (ErrInvalidArgument);
//   - an event whose ResourceID is not the reservation's, or a transition of
//     an unknown reservation id (ErrNotFound);
//   - an expiry before expires_at (ErrInvalidState);
//   - an unknown event type (128 to 255), or a put with a malformed
//     resource id (ErrInvalidArgument).
//
// About 15% of accepted reserve and transition events carry an IdemRecord,
// under one of a few keys per user whose earlier answer, if any, has passed
// IdemTTL (a live one would have been replayed, not decided again).
//
// One event in about 2000 is a retention prune of the oldest finished
// reservations (see prune).
//
// Next reads st and never changes it; it decides on clones.
func (g *Gen) Next(st *domain.State) (ev domain.Event, decideErr error) {
	g.tick(st)
	if n, _, _, _ := st.Counts(); n == 0 || n < 3 && g.chance(40) {
		return g.put(st)
	}
	if g.limits && g.chance(5) {
		return g.limitOp(st)
	}
	switch n := g.intn(100); {
	case n < 7:
		return g.put(st)
	case n < 9:
		return g.delete(st)
	case n < 50:
		return g.reserve(st)
	case n < 66:
		return g.transition(st, domain.StatusConfirmed, domain.StatusHeld)
	case n < 74:
		return g.transition(st, domain.StatusCancelled, domain.StatusHeld, domain.StatusConfirmed)
	case n < 80:
		return g.transition(st, domain.StatusCheckedIn, domain.StatusConfirmed)
	case n < 87:
		return g.transition(st, domain.StatusCompleted, domain.StatusConfirmed, domain.StatusCheckedIn)
	case n < 96:
		if g.chance(5) {
			return g.prune(st)
		}
		return g.expire(st)
	default:
		return g.invalid(st)
	}
}

// tick advances the leader clock: often not at all (events of one batch
// share a time), mostly by milliseconds, sometimes by a jump past hold times,
// windows and the idempotency TTL, or exactly onto an instant that matters to
// some resource (opens_at, closes_at, cancel_deadline, a hold's expires_at).
func (g *Gen) tick(st *domain.State) {
	switch n := g.intn(200); {
	case n < 80:
	case n < 194:
		g.now += int64(1+g.intn(20)) * msec
	case n < 198:
		g.now += g.pick(sec+1, minute+sec, 15*minute+sec, hour, domain.IdemTTL+sec)
	default:
		g.jumpToInstant(st)
	}
}

func (g *Gen) jumpToInstant(st *domain.State) {
	r := g.anyResource(st)
	if r == nil {
		g.now += sec
		return
	}
	var instants []int64
	for _, t := range [...]int64{r.Spec.OpensAt, r.Spec.ClosesAt, r.Spec.CancelDeadline} {
		if t > g.now {
			instants = append(instants, t)
		}
	}
	st.ListReservations("", r.ID, "", func(res domain.Reservation) bool {
		if res.Status == domain.StatusHeld && res.ExpiresAt > g.now {
			instants = append(instants, res.ExpiresAt)
		}
		return len(instants) < 16
	})
	if len(instants) == 0 {
		g.now += sec
		return
	}
	g.now = instants[g.intn(len(instants))]
}

// intn returns a choice in [0, n).
func (g *Gen) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if g.rnd != nil {
		return g.rnd.IntN(n)
	}
	var v uint64
	for need := uint64(n - 1); ; need >>= 8 {
		if len(g.data) == 0 {
			g.done = true
			return 0
		}
		v = v<<8 | uint64(g.data[0])
		g.data = g.data[1:]
		if need < 256 {
			break
		}
	}
	return int(v % uint64(n))
}

// chance is true in about pct of 100 calls.
func (g *Gen) chance(pct int) bool { return g.intn(100) < pct }

// pick returns one of xs.
func (g *Gen) pick(xs ...int64) int64 { return xs[g.intn(len(xs))] }

func (g *Gen) poolResource() string { return "res-" + string(rune('a'+g.intn(resourcePool))) }

func (g *Gen) user() string { return "user-" + string(rune('a'+g.intn(userPool))) }

// anyResource returns one of the first 64 resources of st, or nil.
func (g *Gen) anyResource(st *domain.State) *domain.Resource {
	rs := g.listResources(st)
	if len(rs) == 0 {
		return nil
	}
	r := rs[g.intn(len(rs))]
	clear(g.resources) // hold no references into st between calls
	return r
}

func (g *Gen) listResources(st *domain.State) []*domain.Resource {
	g.resources = g.resources[:0]
	st.ListResources("", "", func(r *domain.Resource) bool {
		g.resources = append(g.resources, r)
		return len(g.resources) < 64
	})
	return g.resources
}

// newReservationID returns a leader-made id that st does not hold yet. Ids
// sort in the order they were made.
func (g *Gen) newReservationID(st *domain.State) string {
	for {
		g.seq++
		id := "rsv-" + pad10(g.seq)
		if _, taken := st.Reservation(id); !taken {
			return id
		}
	}
}

func pad10(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for len(s) < 10 {
		s = "0" + s
	}
	return s
}

// pickReservation returns a reservation, mostly one in a status of want
// (from the first resource, starting at a random one, that has such) so that
// most transitions make sense, sometimes any of a random resource, so that
// wrong ones happen too. ok is false when there is nothing to pick.
func (g *Gen) pickReservation(st *domain.State, want ...domain.Status) (res domain.Reservation, r *domain.Resource, ok bool) {
	rs := g.listResources(st)
	defer clear(g.resources)
	if len(rs) == 0 {
		return res, nil, false
	}
	first, tries := g.intn(len(rs)), 1
	if g.chance(90) {
		tries = len(rs)
	}
	for i := range tries {
		r = rs[(first+i)%len(rs)]
		all := g.reservations[:0]
		st.ListReservations("", r.ID, "", func(res domain.Reservation) bool {
			if tries == 1 || len(want) == 0 || hasStatus(res.Status, want) {
				all = append(all, res)
			}
			return true
		})
		g.reservations = all
		if len(all) > 0 {
			return all[g.intn(len(all))], r, true
		}
	}
	return res, nil, false
}

func hasStatus(s domain.Status, in []domain.Status) bool {
	for _, x := range in {
		if s == x {
			return true
		}
	}
	return false
}
