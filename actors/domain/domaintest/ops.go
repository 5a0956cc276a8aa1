package domaintest

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"allot/actors/domain"
)

// put creates a resource or updates one: mostly a small change of its spec
// (capacity or a night's rooms up or down, limit, hold time, window,
// deadline), sometimes a whole new spec, now and then of another kind or
// malformed.
func (g *Gen) put(st *domain.State) (domain.Event, error) {
	id := g.poolResource()
	ev := domain.Event{Type: domain.EvPutResource, At: g.now, ResourceID: id}
	c := &domain.Resource{ID: id}
	decide := func() error {
		if err := c.CheckUpdate(&ev.Spec); err != nil {
			return err
		}
		return st.CheckResourceLimits(c, &ev.Spec)
	}
	if r, ok := st.Resource(id); ok {
		c = r.Clone()
		if g.chance(85) {
			ev.Spec = g.changeSpec(c.Spec)
			return ev, decide()
		}
	}
	kind := c.Spec.Kind
	if kind == 0 || g.chance(10) {
		kind = domain.Kind(1 + g.intn(3))
	}
	ev.Spec = g.newSpec(kind)
	return ev, decide()
}

// limitPool are the ids of limit groups; limit-z is never created.
var limitPool = [...]string{"limit-a", "limit-b", "limit-c", "limit-z"}

// someLimits returns the limits a generated spec names: mostly none, else
// one or two of the pool, sorted, now and then one that does not exist.
func (g *Gen) someLimits() []string {
	if !g.limits || !g.chance(50) {
		return nil
	}
	first := g.intn(3)
	if g.chance(5) {
		first = 3
	}
	ids := []string{limitPool[first]}
	if g.chance(30) && first < 2 {
		ids = append(ids, limitPool[first+1+g.intn(2-first)])
	}
	return ids
}

// limitOp creates, changes or deletes a limit group: mostly small bounds
// that reservations will run into, sometimes a bad spec.
func (g *Gen) limitOp(st *domain.State) (domain.Event, error) {
	id := limitPool[g.intn(3)]
	if g.chance(15) {
		ev := domain.Event{Type: domain.EvDeleteLimit, At: g.now, Limit: &domain.LimitOp{ID: id}}
		return ev, st.CheckDeleteLimit(id)
	}
	op := &domain.LimitOp{ID: id, Spec: domain.LimitSpec{PerUser: g.pick(0, 1, 1, 2, 3), Capacity: g.pick(0, 0, 2, 4, 8, 20)}}
	if g.chance(10) {
		op.Spec.Attributes = map[string]string{"hospital": "north"}
	}
	if g.chance(3) {
		op.Spec.PerUser = -1
	}
	ev := domain.Event{Type: domain.EvPutLimit, At: g.now, Limit: op}
	return ev, st.CheckPutLimit(op)
}

func (g *Gen) newSpec(kind domain.Kind) domain.Spec {
	s := domain.Spec{Kind: kind, HoldSeconds: g.pick(0, 1, 60, 900, 900)}
	if kind == domain.KindRoom {
		s.Inventory = g.inventory()
		s.PerUserLimit = g.pick(0, 0, 0, 2, 4)
	} else {
		s.Capacity = g.pick(0, 1, 2, 3, 5, 8, 20, 50)
		s.PerUserLimit = g.pick(0, 0, 1, 2, 3)
	}
	g.window(&s)
	if g.chance(20) {
		s.CancelDeadline = g.now + g.pick(sec, 10*minute, 3*hour)
	}
	if g.chance(10) {
		s.Attributes = map[string]string{"doctor": "Dr. Li", "floor": strconv.Itoa(g.intn(9))}
	}
	s.Limits = g.someLimits()
	if g.chance(3) {
		g.spoil(&s)
	}
	return s
}

// changeSpec returns s (a deep copy the caller owns) with one thing changed.
func (g *Gen) changeSpec(s domain.Spec) domain.Spec {
	switch g.intn(10) {
	case 0, 1, 2:
		if s.Kind == domain.KindRoom {
			g.changeInventory(&s)
		} else {
			s.Capacity = max(0, s.Capacity+g.pick(-3, -1, -1, 1, 2, 5, 10))
		}
	case 3:
		s.PerUserLimit = g.pick(0, 1, 2, 3)
	case 4:
		s.HoldSeconds = g.pick(0, 1, 60, 900)
	case 5, 6:
		s.OpensAt, s.ClosesAt = 0, 0
		g.window(&s)
	case 7, 8:
		s.CancelDeadline = 0
		if g.chance(70) {
			s.CancelDeadline = g.now + g.pick(sec, 10*minute, 3*hour)
		}
	default:
		switch {
		case g.limits && g.chance(50):
			s.Limits = g.someLimits() // refused while units are taken
		case g.chance(50):
			s.Kind = s.Kind%3 + 1 // refused: the kind never changes
		default:
			g.spoil(&s)
		}
	}
	return s
}

// window sets opens_at (in about a third of the specs) and closes_at (in a
// fifth) around the current leader time.
func (g *Gen) window(s *domain.Spec) {
	if g.chance(30) {
		s.OpensAt = g.now + g.pick(-hour, 0, sec, 2*minute, 30*minute)
	}
	if g.chance(20) {
		s.ClosesAt = max(s.OpensAt, g.now) + g.pick(sec, 5*minute, 2*hour, 25*hour)
	}
}

// inventory returns a room type's rows: one long row, sometimes starting a
// day or two late, then up to two short rows that override it.
func (g *Gen) inventory() []domain.InventoryRow {
	from := g.baseDay + domain.Day(g.intn(3))
	rows := []domain.InventoryRow{{From: from, To: from + domain.Day(7+g.intn(invSpan-8)), Rooms: g.pick(1, 2, 3, 5)}}
	for n := g.intn(3); n > 0; n-- {
		rows = append(rows, g.shortRow())
	}
	return rows
}

func (g *Gen) shortRow() domain.InventoryRow {
	from := g.baseDay + domain.Day(g.intn(invSpan))
	return domain.InventoryRow{From: from, To: from + domain.Day(1+g.intn(5)), Rooms: g.pick(0, 1, 2, 4)}
}

func (g *Gen) changeInventory(s *domain.Spec) {
	rows := s.Inventory
	switch n := g.intn(3); {
	case n == 0 || len(rows) == 0:
		rows = append(rows, g.shortRow())
	case n == 1:
		i := g.intn(len(rows))
		rows[i].Rooms = max(0, rows[i].Rooms+g.pick(-2, -1, 1, 2))
	case len(rows) > 1:
		rows = rows[:len(rows)-1]
	default:
		last := &rows[len(rows)-1]
		last.To = max(last.From+1, last.To-domain.Day(1+g.intn(3)))
	}
	if len(rows) > maxRows {
		rows = rows[len(rows)-maxRows:]
	}
	s.Inventory = rows
}

// spoil breaks s in one of the ways Spec.Validate refuses.
func (g *Gen) spoil(s *domain.Spec) {
	switch g.intn(6) {
	case 0:
		s.Capacity = -1
	case 1:
		s.HoldSeconds = domain.MaxHoldSeconds + 1
	case 2:
		s.OpensAt, s.ClosesAt = g.now, g.now
	case 3:
		s.PerUserLimit = -1
	case 4:
		if s.Kind == domain.KindRoom {
			s.Inventory = append(s.Inventory, domain.InventoryRow{From: g.baseDay + 2, To: g.baseDay + 2, Rooms: 1})
		} else {
			s.Inventory = []domain.InventoryRow{{From: g.baseDay, To: g.baseDay + 1, Rooms: 1}}
		}
	default:
		s.Kind = domain.Kind(4 + g.intn(250))
	}
}

// delete removes a resource, refused while units are taken.
func (g *Gen) delete(st *domain.State) (domain.Event, error) {
	id := g.poolResource()
	if r := g.anyResource(st); r != nil && g.chance(70) {
		id = r.ID
	}
	ev := domain.Event{Type: domain.EvDeleteResource, At: g.now, ResourceID: id}
	r, ok := st.Resource(id)
	switch {
	case !ok:
		return ev, fmt.Errorf("delete %s: %w", id, domain.ErrNotFound)
	case r.HasTaken():
		return ev, fmt.Errorf("delete %s with units taken: %w", id, domain.ErrInvalidState)
	}
	return ev, nil
}

// reserve asks for units of a resource, mostly one that exists.
func (g *Gen) reserve(st *domain.State) (domain.Event, error) {
	id := g.poolResource()
	r, ok := st.Resource(id)
	if other := g.anyResource(st); other != nil && !ok && g.chance(80) {
		id, r, ok = other.ID, other, true
	}
	kind := domain.KindVoucher
	if ok {
		kind = r.Spec.Kind
	}
	req := g.request(kind)
	rid := g.newReservationID(st)
	ev := domain.Event{Type: domain.EvReserve, At: g.now, ResourceID: id}
	if !ok {
		ev.Reservation = g.draft(id, kind, req, rid, 900)
		return ev, fmt.Errorf("reserve %s: %w", id, domain.ErrNotFound)
	}
	c := r.Clone()
	res, err := c.DecideReserve(req, rid, g.now)
	if res.ID == "" { // refused before a reservation was made
		res = g.draft(id, kind, req, rid, r.Spec.HoldSeconds)
	}
	if err == nil {
		err = st.CheckShares(r, &res)
	}
	ev.Reservation = res
	if err == nil && g.chance(idemPercent) {
		ev.Idem = g.idem(st, res.User, http.StatusCreated, res)
	}
	return ev, err
}

// draft builds the reservation DecideReserve would make for req.
func (g *Gen) draft(resource string, kind domain.Kind, req domain.ReserveRequest, rid string, holdSeconds int64) domain.Reservation {
	res := domain.Reservation{
		ID: rid, ResourceID: resource, Kind: kind, User: req.User, Quantity: req.Quantity,
		Status: domain.StatusConfirmed, CheckIn: req.CheckIn, CheckOut: req.CheckOut,
		CreatedAt: g.now, UpdatedAt: g.now,
	}
	if holdSeconds > 0 {
		res.Status, res.ExpiresAt = domain.StatusHeld, g.now+holdSeconds*sec
	}
	return res
}

// request is what a user asks for: mostly one unit, sometimes a few,
// rarely none or far too many; rooms add a stay around the inventory, now and
// then empty, too long or on nights without inventory.
func (g *Gen) request(kind domain.Kind) domain.ReserveRequest {
	q := domain.ReserveRequest{User: g.user(), Quantity: 1}
	switch n := g.intn(100); {
	case n < 80:
	case n < 95:
		q.Quantity = int64(2 + g.intn(2))
	case n < 97:
		q.Quantity = 0
	default:
		q.Quantity = int64(10 + g.intn(40))
	}
	if kind != domain.KindRoom {
		if g.chance(2) {
			q.CheckIn, q.CheckOut = g.baseDay, g.baseDay+1
		}
		return q
	}
	q.CheckIn = g.baseDay - 3 + domain.Day(g.intn(invSpan+6))
	switch n := g.intn(100); {
	case n < 88:
		q.CheckOut = q.CheckIn + domain.Day(1+g.intn(4))
	case n < 95:
		q.CheckOut = q.CheckIn + domain.Day(5+g.intn(10))
	case n < 98:
		q.CheckOut = q.CheckIn - domain.Day(g.intn(2))
	default:
		q.CheckOut = q.CheckIn + domain.MaxStayNights + 1
	}
	return q
}

// idem returns a record answering for res under one of user's keys, or nil
// when that key holds a live answer: the leader would have replayed it
// rather than decide again.
func (g *Gen) idem(st *domain.State, user string, code int, res domain.Reservation) *domain.IdemRecord {
	key := "key-" + strconv.Itoa(g.intn(keyPool))
	if rec, ok := st.Idem(user, key); ok && rec.CreatedAt >= g.now-domain.IdemTTL {
		return nil
	}
	rec := &domain.IdemRecord{User: user, Key: key, Code: code, Reservation: res, CreatedAt: g.now}
	binary.BigEndian.PutUint64(rec.Fingerprint[:], g.seq)
	copy(rec.Fingerprint[8:], res.ID)
	return rec
}

// transition moves a reservation, mostly one in a status of from, to status
// to. It reserves instead when there is nothing to move.
func (g *Gen) transition(st *domain.State, to domain.Status, from ...domain.Status) (domain.Event, error) {
	res, r, ok := g.pickReservation(st, from...)
	if !ok {
		return g.reserve(st)
	}
	return g.decideTransition(st, r, res, to)
}

func (g *Gen) decideTransition(st *domain.State, r *domain.Resource, res domain.Reservation, to domain.Status) (domain.Event, error) {
	ev := domain.Event{Type: domain.EvTransition, At: g.now, ResourceID: res.ResourceID, ReservationID: res.ID, To: to}
	c := r.Clone()
	noop, err := c.CheckTransition(&res, to, g.now)
	if noop {
		return ev, fmt.Errorf("reservation %s is already %s, answered without an event: %w", res.ID, to, domain.ErrInvalidState)
	}
	if err == nil && g.chance(idemPercent) {
		after := res
		c.ApplyTransition(&after, to, g.now)
		ev.Idem = g.idem(st, res.User, http.StatusOK, after)
	}
	return ev, err
}

// expire is the leader's expiry timer: it moves the clock to a hold's
// expires_at (or a little later) and expires it. Now and then it fires early,
// which no correct leader does.
func (g *Gen) expire(st *domain.State) (domain.Event, error) {
	res, r, ok := g.pickReservation(st, domain.StatusHeld)
	if !ok {
		return g.reserve(st)
	}
	if res.Status == domain.StatusHeld && g.now < res.ExpiresAt && !g.chance(5) {
		g.now = res.ExpiresAt + g.pick(0, 0, msec, 2*sec)
	}
	return g.decideTransition(st, r, res, domain.StatusExpired)
}

// prune is the leader's retention sweep: it drops the finished
// reservations older than a cutoff, all of them (a bounded prune applied
// twice would drop more the second time, which checkStream forbids). The
// cutoff is just past the oldest finished instant, so that the history keeps
// most of its past for the tests that need a large state.
func (g *Gen) prune(st *domain.State) (domain.Event, error) {
	before := g.now - domain.IdemTTL
	if oldest, ok := st.OldestFinished(); ok {
		before = min(g.now, oldest+1)
	}
	return domain.Event{Type: domain.EvPrune, At: g.now, PruneBefore: before, PruneMax: domain.MaxPrunePerEvent}, nil
}

// invalid builds one of the events no correct leader proposes (see Next).
func (g *Gen) invalid(st *domain.State) (domain.Event, error) {
	ev := domain.Event{At: g.now, ResourceID: g.poolResource()}
	old, r, ok := g.pickReservation(st)
	switch n := g.intn(6); {
	case n == 0 && ok: // a reservation id made twice
		ev.Type, ev.ResourceID = domain.EvReserve, r.ID
		req := g.request(r.Spec.Kind)
		ev.Reservation = g.draft(r.ID, r.Spec.Kind, req, old.ID, r.Spec.HoldSeconds)
		return ev, fmt.Errorf("reservation id %s made twice: %w", old.ID, domain.ErrAlreadyExists)
	case n == 1 && ok: // an event filed under another resource
		ev.Type, ev.ReservationID, ev.To = domain.EvTransition, old.ID, domain.StatusCancelled
		ev.ResourceID = old.ResourceID + "-x"
		return ev, fmt.Errorf("reservation %s filed under %s: %w", old.ID, ev.ResourceID, domain.ErrNotFound)
	case n == 2 && ok: // a reservation that does not fit its resource
		ev.Type, ev.ResourceID = domain.EvReserve, r.ID
		res := g.draft(r.ID, r.Spec.Kind, g.request(r.Spec.Kind), g.newReservationID(st), 1)
		if g.chance(50) {
			res.Kind = res.Kind%3 + 1
		} else {
			res.ExpiresAt = res.CreatedAt
		}
		ev.Reservation = res
		return ev, r.Clone().CheckReserve(&res)
	case n == 3:
		ev.Type, ev.To = domain.EvTransition, domain.StatusConfirmed
		ev.ReservationID = "rsv-missing-" + strconv.Itoa(g.intn(10))
		return ev, fmt.Errorf("reservation %s: %w", ev.ReservationID, domain.ErrNotFound)
	case n == 4:
		ev.Type = domain.EventType(128 + g.intn(128)) // far above the types in use
		return ev, fmt.Errorf("event type %d: %w", ev.Type, domain.ErrInvalidArgument)
	default:
		ev.Type = domain.EvPutResource
		ev.ResourceID = g.badID()
		ev.Spec = g.newSpec(domain.Kind(1 + g.intn(3)))
		return ev, fmt.Errorf("resource id %q: %w", ev.ResourceID, domain.ErrInvalidArgument)
	}
}

func (g *Gen) badID() string {
	switch g.intn(3) {
	case 0:
		return ""
	case 1:
		return "res a/b"
	default:
		return strings.Repeat("r", domain.MaxIDLen+1)
	}
}
