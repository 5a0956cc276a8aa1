package linearize

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Violations of the final-state invariants; CheckFinal wraps them.
var (
	ErrOversold     = errors.New("oversold")
	ErrAckLost      = errors.New("acknowledged reservation lost")
	ErrKeyTwice     = errors.New("one Idempotency-Key made two reservations")
	ErrUserLimit    = errors.New("per-user limit passed")
	ErrDuplicateID  = errors.New("reservation listed twice")
	ErrCounts       = errors.New("live counts do not match the reservations")
	ErrStuckHold    = errors.New("hold past its expiry")
	ErrUnknownState = errors.New("unknown status")
)

// FinalState is what a caller read back after a run (GET
// /v1/resources/{id} and every page of GET /v1/reservations?resource={id}).
type FinalState struct {
	Resources []FinalResource
	// ReadAt is leader time when the state was read (the Date header
	// before listing); with ExpiryGrace it finds holds that should have
	// expired. Zero skips that check.
	ReadAt      time.Time
	ExpiryGrace time.Duration
}

// FinalResource is one resource as read back.
type FinalResource struct {
	ID   string
	Spec Spec
	// Reservations are every reservation of the resource.
	Reservations []Reservation
	// Counts, when read, are checked against Reservations.
	Counts *Counts
}

// Ack is a reservation a client was told was made: a 201 to a reserve.
type Ack struct {
	ID, Resource, User, Key string
	Quantity                int64
}

// Acks lists the 201 answers to reserves in h (replays too: they name the
// reservation their key made).
func Acks(h History) []Ack {
	var out []Ack
	for _, op := range h.Operations {
		ev, ok := op.Input.(*Invocation)
		o, ok2 := op.Output.(Output)
		if !ok || !ok2 || ev.Op != OpReserve || o.IsUnknown() || o.Status != http.StatusCreated || o.Reservation == nil {
			continue
		}
		out = append(out, Ack{ID: o.Reservation.ID, Resource: ev.Resource, User: ev.User, Key: ev.Key,
			Quantity: ev.quantity()})
	}
	return out
}

// CheckFinal checks the invariants that hold whatever the history: no
// resource (or night) has more units taken than it has, every acknowledged
// reservation is present with the user and quantity it was made with, one
// Idempotency-Key names one reservation, no user holds more than the
// per-user limit, live counts match the reservations, and no hold outlived
// its expiry by more than the grace. It returns every violation found,
// joined, each wrapping one of the Err values above; nil if none.
func CheckFinal(fs FinalState, acks []Ack) error {
	var errs []error
	fail := func(sentinel error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), sentinel))
	}
	byID := make(map[string]*Reservation)
	resOf := make(map[string]string)
	for i := range fs.Resources {
		fr := &fs.Resources[i]
		checkResource(fr, fs, fail)
		for j := range fr.Reservations {
			x := &fr.Reservations[j]
			if _, dup := byID[x.ID]; dup {
				fail(ErrDuplicateID, "reservation %s", x.ID)
				continue
			}
			byID[x.ID] = x
			resOf[x.ID] = fr.ID
		}
	}
	keyID := make(map[string]string)
	for _, a := range acks {
		x := byID[a.ID]
		switch {
		case x == nil || resOf[a.ID] != a.Resource:
			fail(ErrAckLost, "reservation %s of %s on %s", a.ID, a.User, a.Resource)
		case x.User != a.User || x.Quantity != a.Quantity:
			fail(ErrAckLost, "reservation %s was made for %s x%d, reads %s x%d", a.ID, a.User, a.Quantity, x.User, x.Quantity)
		}
		if a.Key == "" {
			continue
		}
		k := a.Resource + "\x00" + scopedKey(a.User, a.Key)
		if id, ok := keyID[k]; ok && id != a.ID {
			fail(ErrKeyTwice, "user %s key %q on %s: %s and %s", a.User, a.Key, a.Resource, id, a.ID)
		}
		keyID[k] = a.ID
	}
	return errors.Join(errs...)
}

func checkResource(fr *FinalResource, fs FinalState, fail func(error, string, ...any)) {
	sp, err := newRSpec(fr.ID, fr.Spec, time.Time{})
	if err != nil {
		fail(ErrUnknownState, "%v", err)
		return
	}
	taken := make(map[int32]int64) // per night; voucher and slot: night 0
	var held, conf int64
	perUser := make(map[string]int64)
	for _, x := range fr.Reservations {
		st, ok := parseStatus(x.Status)
		if !ok {
			fail(ErrUnknownState, "reservation %s: status %q", x.ID, x.Status)
			continue
		}
		if !st.taken() {
			continue
		}
		perUser[x.User] += x.Quantity
		if st == stHeld {
			held += x.Quantity
			if !fs.ReadAt.IsZero() && !x.ExpiresAt.IsZero() && fs.ReadAt.Sub(x.ExpiresAt) > fs.ExpiryGrace {
				fail(ErrStuckHold, "reservation %s on %s expired at %s, still held at %s", x.ID, fr.ID,
					x.ExpiresAt.UTC().Format(time.RFC3339Nano), fs.ReadAt.UTC().Format(time.RFC3339Nano))
			}
		} else {
			conf += x.Quantity
		}
		ci, co, ok := span(sp, Input{CheckIn: x.CheckIn, CheckOut: x.CheckOut})
		if !ok {
			fail(ErrUnknownState, "reservation %s: stay %q..%q", x.ID, x.CheckIn, x.CheckOut)
			continue
		}
		for _, n := range nights(sp, ci, co) {
			taken[n] += x.Quantity
		}
	}
	days := make([]int32, 0, len(taken))
	for n := range taken {
		days = append(days, n)
	}
	slices.Sort(days)
	for _, n := range days {
		if have := stock(sp, n); taken[n] > have {
			where := fr.ID
			if sp.room() {
				where += " night " + formatDay(n)
			}
			fail(ErrOversold, "%s: %d units taken of %d", where, taken[n], have)
		}
	}
	if lim := fr.Spec.PerUserLimit; lim > 0 {
		users := make([]string, 0, len(perUser))
		for u := range perUser {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			if perUser[u] > lim {
				fail(ErrUserLimit, "%s: user %s has %d units, limit %d", fr.ID, u, perUser[u], lim)
			}
		}
	}
	if c := fr.Counts; c != nil && sp.room() {
		for day, nc := range c.Nights {
			n, err := parseDay(day)
			if err != nil || nc.Rooms != stock(sp, n) || nc.Available != stock(sp, n)-taken[n] {
				fail(ErrCounts, "%s night %s: read rooms=%d available=%d, reservations give %d/%d", fr.ID, day,
					nc.Rooms, nc.Available, stock(sp, n), stock(sp, n)-taken[n])
			}
		}
	}
	if c := fr.Counts; c != nil && !sp.room() {
		if c.Held != held || c.Confirmed != conf || c.Available != sp.capacity-held-conf {
			fail(ErrCounts, "%s: read available=%d held=%d confirmed=%d, reservations give %d/%d/%d", fr.ID,
				c.Available, c.Held, c.Confirmed, sp.capacity-held-conf, held, conf)
		}
	}
}
