// Package verify decides whether an allot cluster stayed correct under a
// load run. Verify is a pure function of what the load generator observed
// and what it read back afterwards, so every rule can be tested without a
// server.
package verify

import (
	"fmt"
	"sort"
	"time"
)

// Status names of API.md's reservation lifecycle.
const (
	StatusHeld      = "held"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
	StatusCheckedIn = "checked_in"
	StatusCompleted = "completed"
)

// Kinds of resource.
const (
	KindVoucher = "voucher"
	KindSlot    = "slot"
	KindRoom    = "room"
)

// maxExamples bounds the failure examples kept per check.
const maxExamples = 5

// Reservation is one reservation as read back from the server.
type Reservation struct {
	ID         string
	ResourceID string
	User       string
	Status     string
	Quantity   int64
	CheckIn    string // rooms: first night, YYYY-MM-DD
	CheckOut   string // rooms: day of departure (exclusive)
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero unless shown (the API shows it while held)
	UpdatedAt  time.Time
}

// Night is one night of a room type as read back.
type Night struct {
	Rooms     int64
	Available int64
}

// Resource is one resource as read back with its live counts and every
// reservation made on it.
type Resource struct {
	ID           string
	Kind         string
	Capacity     int64 // voucher, slot
	PerUserLimit int64 // 0 = no limit
	Available    int64 // voucher, slot
	Held         int64 // voucher, slot
	Confirmed    int64 // voucher, slot: confirmed, checked in or completed
	Nights       map[string]Night
	// Limits are the ids of the limit groups the resource names.
	Limits       []string
	Reservations []Reservation
	// ReadAt is the server's clock (its Date header) when the state was
	// read, before the reservations were listed. A hold whose expires_at is
	// more than Input.ExpiryGrace before ReadAt must have expired. The zero
	// ReadAt skips that check.
	ReadAt time.Time
}

// Ack is a reservation the server acknowledged with 201 during the run.
type Ack struct {
	ID         string
	ResourceID string
	User       string
	Key        string // Idempotency-Key of the reserve request
	Quantity   int64
	Status     string    // the last status the server acknowledged
	Maybe      []string  // targets of transitions whose outcome stayed unknown
	ExpiresAt  time.Time // of the hold as the 201 said; zero if not a hold
}

// SoldOut is a 409 sold_out answer the load generator saw. CheckIn and
// CheckOut are set for rooms.
type SoldOut struct {
	ResourceID string
	CheckIn    string
	CheckOut   string
	Quantity   int64
}

// Input is everything Verify looks at.
type Input struct {
	Resources []Resource
	Acks      []Ack
	SoldOut   []SoldOut
	// Responses counts the answers seen; Unexpected those of them that a
	// correct server never gives under this load (500, 400 on a well-formed
	// request, a transition refused from a state the run put it in...).
	Responses          int64
	Unexpected         int64
	UnexpectedExamples []string
	// ExpiryGrace is how long after expires_at a hold may still be held.
	ExpiryGrace time.Duration
	// Stream is the change stream read after the run; nil skips the
	// stream checks (the target has none).
	Stream *Stream
	// Limits are the run's limit groups as read back; nil with no
	// LimitsSkipped means the run has none (no limit checks at all).
	Limits []Limit
	// LimitsSkipped, when set, says why the limit checks could not run
	// (the target has no /v1/limits): they are reported as skipped.
	LimitsSkipped string
}

// Check is the outcome of one rule.
type Check struct {
	Name     string   `json:"name"`
	Checked  int64    `json:"checked"`
	Failures int64    `json:"failures"`
	Examples []string `json:"examples,omitempty"`
	// Skipped says why the check did not run; a skipped check neither
	// passes nor fails.
	Skipped string `json:"skipped,omitempty"`
}

// Result is the outcome of Verify: Pass is true when no check failed.
// Stream is set when Input.Stream was.
type Result struct {
	Pass   bool           `json:"pass"`
	Checks []Check        `json:"checks"`
	Stream *StreamSummary `json:"stream,omitempty"`
}

func (c *Check) fail(format string, args ...any) {
	c.Failures++
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// Verify checks in against allot's invariants: no oversell (per resource
// and per night), live counts that match the reservations, no user above
// its limit, every acknowledged reservation present with a status its
// history allows, idempotency keys that map to one reservation, no sold_out
// while units were free, and expiry that is neither early nor late. With a
// Stream it also checks the change stream: offsets without gaps, every 201
// created by exactly one event and its acknowledged transitions there, each
// reservation's events in lifecycle order, and the stream's last word on
// each reservation equal to the state read back. With Limits it checks
// every limit group: its count equal to its members' taken units, within
// its capacity, no user above per_user in the final state or in the run's
// acknowledgements (see limits.go).
func Verify(in Input) Result {
	v := verifier{in: in, byID: make(map[string]*Reservation)}
	v.index()
	checks := []Check{
		v.oversell(),
		v.counts(),
		v.userLimits(),
		v.acksPresent(),
		v.idempotency(),
		v.falseSoldOut(),
		v.expiry(),
		v.unexpected(),
	}
	checks = append(checks, v.limitChecks()...)
	var sum *StreamSummary
	if in.Stream != nil {
		var sc []Check
		sc, sum = v.verifyStream()
		checks = append(checks, sc...)
	}
	res := Result{Pass: true, Checks: checks, Stream: sum}
	for _, c := range checks {
		if c.Failures > 0 {
			res.Pass = false
		}
	}
	return res
}

type verifier struct {
	in    Input
	byID  map[string]*Reservation
	dupes []string             // reservation ids listed more than once
	res   map[string]*Resource // by id
}

func (v *verifier) index() {
	v.res = make(map[string]*Resource, len(v.in.Resources))
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		v.res[r.ID] = r
		for j := range r.Reservations {
			x := &r.Reservations[j]
			if _, ok := v.byID[x.ID]; ok {
				v.dupes = append(v.dupes, x.ID)
				continue
			}
			v.byID[x.ID] = x
		}
	}
}

// taken reports whether units in status s count against capacity.
func taken(s string) bool {
	switch s {
	case StatusHeld, StatusConfirmed, StatusCheckedIn, StatusCompleted:
		return true
	}
	return false
}

func knownStatus(s string) bool { return taken(s) || s == StatusCancelled || s == StatusExpired }

// nightsTaken sums the taken rooms per night over r's reservations.
func nightsTaken(r *Resource) (map[string]int64, error) {
	out := make(map[string]int64)
	for _, x := range r.Reservations {
		if !taken(x.Status) {
			continue
		}
		nights, err := stayNights(x.CheckIn, x.CheckOut)
		if err != nil {
			return nil, fmt.Errorf("reservation %s: %w", x.ID, err)
		}
		for _, n := range nights {
			out[n] += x.Quantity
		}
	}
	return out, nil
}

// stayNights lists the nights [in, out) as YYYY-MM-DD.
func stayNights(in, out string) ([]string, error) {
	a, err := time.Parse(time.DateOnly, in)
	if err != nil {
		return nil, fmt.Errorf("bad check_in %q", in)
	}
	b, err := time.Parse(time.DateOnly, out)
	if err != nil {
		return nil, fmt.Errorf("bad check_out %q", out)
	}
	if !b.After(a) || b.Sub(a) > 366*24*time.Hour {
		return nil, fmt.Errorf("bad stay %s..%s", in, out)
	}
	var nights []string
	for d := a; d.Before(b); d = d.AddDate(0, 0, 1) {
		nights = append(nights, d.Format(time.DateOnly))
	}
	return nights, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// oversell: never more units taken than exist, per resource and per night.
func (v *verifier) oversell() Check {
	c := Check{Name: "no_oversell"}
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		if r.Kind != KindRoom {
			c.Checked++
			var sum int64
			for _, x := range r.Reservations {
				if taken(x.Status) {
					sum += x.Quantity
				}
			}
			switch {
			case r.Held+r.Confirmed > r.Capacity || r.Available < 0:
				c.fail("%s: capacity %d, held %d, confirmed %d, available %d", r.ID, r.Capacity, r.Held, r.Confirmed, r.Available)
			case sum > r.Capacity:
				c.fail("%s: capacity %d but reservations take %d", r.ID, r.Capacity, sum)
			}
			continue
		}
		tk, err := nightsTaken(r)
		if err != nil {
			c.Checked++
			c.fail("%s: %v", r.ID, err)
			continue
		}
		for _, day := range sortedKeys(r.Nights) {
			c.Checked++
			if n := r.Nights[day]; n.Available < 0 || tk[day] > n.Rooms {
				c.fail("%s night %s: %d rooms, %d taken, %d available", r.ID, day, n.Rooms, tk[day], n.Available)
			}
		}
		for _, day := range sortedKeys(tk) {
			if _, ok := r.Nights[day]; !ok && tk[day] > 0 {
				c.Checked++
				c.fail("%s night %s: no inventory but %d taken", r.ID, day, tk[day])
			}
		}
	}
	return c
}

// counts: the live counters agree with capacity and with the reservations.
func (v *verifier) counts() Check {
	c := Check{Name: "counts_consistent"}
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		for _, x := range r.Reservations {
			if !knownStatus(x.Status) {
				c.Checked++
				c.fail("%s: reservation %s has unknown status %q", r.ID, x.ID, x.Status)
			}
			if x.ResourceID != "" && x.ResourceID != r.ID {
				c.Checked++
				c.fail("%s: listed reservation %s belongs to %s", r.ID, x.ID, x.ResourceID)
			}
		}
		if r.Kind != KindRoom {
			c.Checked++
			var held, confirmed int64
			for _, x := range r.Reservations {
				switch {
				case x.Status == StatusHeld:
					held += x.Quantity
				case taken(x.Status):
					confirmed += x.Quantity
				}
			}
			switch {
			case r.Available+r.Held+r.Confirmed != r.Capacity:
				c.fail("%s: available %d + held %d + confirmed %d != capacity %d", r.ID, r.Available, r.Held, r.Confirmed, r.Capacity)
			case r.Held != held || r.Confirmed != confirmed:
				c.fail("%s: counters say held %d confirmed %d, reservations say held %d confirmed %d", r.ID, r.Held, r.Confirmed, held, confirmed)
			}
			continue
		}
		tk, err := nightsTaken(r)
		if err != nil {
			continue // reported by no_oversell
		}
		for _, day := range sortedKeys(r.Nights) {
			c.Checked++
			if n := r.Nights[day]; n.Available != n.Rooms-tk[day] {
				c.fail("%s night %s: %d rooms, reservations take %d, but available is %d", r.ID, day, n.Rooms, tk[day], n.Available)
			}
		}
	}
	c.Checked += int64(len(v.dupes))
	for _, id := range v.dupes {
		c.fail("reservation %s is listed more than once", id)
	}
	return c
}

// userLimits: no user holds more units of a resource than per_user_limit.
func (v *verifier) userLimits() Check {
	c := Check{Name: "per_user_limit"}
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		if r.PerUserLimit <= 0 {
			continue
		}
		units := make(map[string]int64)
		for _, x := range r.Reservations {
			if taken(x.Status) {
				units[x.User] += x.Quantity
			}
		}
		for _, u := range sortedKeys(units) {
			c.Checked++
			if units[u] > r.PerUserLimit {
				c.fail("%s: user %s holds %d units, limit %d", r.ID, u, units[u], r.PerUserLimit)
			}
		}
	}
	return c
}

// allowedStatus reports whether a reservation whose last acknowledged status
// is acked, with transitions to maybe of unknown outcome, may now be in s.
func allowedStatus(s, acked string, maybe []string) bool {
	if s == acked || acked == StatusHeld && s == StatusExpired {
		return true
	}
	for _, m := range maybe {
		if s == m {
			return true
		}
	}
	return false
}

// acksPresent: every 201 the load generator saw is in the final state, on
// the right resource and user, with a status its history allows.
func (v *verifier) acksPresent() Check {
	c := Check{Name: "acknowledged_reservations_present"}
	for _, a := range v.in.Acks {
		c.Checked++
		x, ok := v.byID[a.ID]
		switch {
		case !ok:
			c.fail("reservation %s (201 for %s on %s) is missing", a.ID, a.User, a.ResourceID)
		case x.ResourceID != "" && x.ResourceID != a.ResourceID || x.User != a.User || x.Quantity != a.Quantity:
			c.fail("reservation %s: acknowledged %s x%d on %s, stored %s x%d on %s", a.ID, a.User, a.Quantity, a.ResourceID, x.User, x.Quantity, x.ResourceID)
		case !allowedStatus(x.Status, a.Status, a.Maybe):
			c.fail("reservation %s: last acknowledged %s (unknown: %v), stored %s", a.ID, a.Status, a.Maybe, x.Status)
		}
	}
	return c
}

// idempotency: one (user, Idempotency-Key) never yields two reservations.
func (v *verifier) idempotency() Check {
	c := Check{Name: "idempotency"}
	type key struct{ user, key string }
	seen := make(map[key]string, len(v.in.Acks))
	for _, a := range v.in.Acks {
		if a.Key == "" {
			continue
		}
		c.Checked++
		k := key{a.User, a.Key}
		if id, ok := seen[k]; ok && id != a.ID {
			c.fail("user %s key %s answered with reservations %s and %s", a.User, a.Key, id, a.ID)
			continue
		}
		seen[k] = a.ID
	}
	return c
}

// falseSoldOut: on a resource where no units were ever returned (nothing
// cancelled or expired), availability only falls, so a sold_out answer means
// the final state must still lack the units asked for.
func (v *verifier) falseSoldOut() Check {
	c := Check{Name: "no_false_sold_out"}
	returned := make(map[string]bool)
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		for _, x := range r.Reservations {
			if x.Status == StatusCancelled || x.Status == StatusExpired {
				returned[r.ID] = true
				break
			}
		}
	}
	for _, s := range v.in.SoldOut {
		r, ok := v.res[s.ResourceID]
		if !ok {
			c.Checked++
			c.fail("sold_out for %s, which was not read back", s.ResourceID)
			continue
		}
		if returned[r.ID] {
			continue
		}
		c.Checked++
		if r.Kind != KindRoom {
			if r.Available >= s.Quantity {
				c.fail("%s: answered sold_out for %d, yet %d still available and none ever returned", r.ID, s.Quantity, r.Available)
			}
			continue
		}
		nights, err := stayNights(s.CheckIn, s.CheckOut)
		if err != nil {
			c.fail("%s: sold_out for a bad stay: %v", r.ID, err)
			continue
		}
		short := false
		for _, n := range nights {
			if r.Nights[n].Available < s.Quantity {
				short = true
				break
			}
		}
		if !short {
			c.fail("%s: answered sold_out for %d rooms %s..%s, yet every night has them and none ever returned", r.ID, s.Quantity, s.CheckIn, s.CheckOut)
		}
	}
	return c
}

// expiry: a hold never expires before expires_at, and not much after it.
// An expired reservation may no longer show expires_at; the one its 201
// gave is used then.
func (v *verifier) expiry() Check {
	c := Check{Name: "expiry_on_time"}
	acked := make(map[string]time.Time)
	for _, a := range v.in.Acks {
		if !a.ExpiresAt.IsZero() {
			acked[a.ID] = a.ExpiresAt
		}
	}
	for i := range v.in.Resources {
		readAt := v.in.Resources[i].ReadAt
		for _, x := range v.in.Resources[i].Reservations {
			switch {
			case x.Status == StatusExpired:
				at := x.ExpiresAt
				if at.IsZero() {
					at = acked[x.ID]
				}
				if at.IsZero() {
					continue // neither the state nor the run knows when it was due
				}
				c.Checked++
				if x.UpdatedAt.Before(at) {
					c.fail("reservation %s expired at %s, before its expires_at %s", x.ID, x.UpdatedAt.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
				}
			case x.Status == StatusHeld && !readAt.IsZero() && !x.ExpiresAt.IsZero():
				c.Checked++
				if late := readAt.Sub(x.ExpiresAt); late > v.in.ExpiryGrace {
					c.fail("reservation %s still held %s after its expires_at %s", x.ID, late.Round(time.Millisecond), x.ExpiresAt.Format(time.RFC3339))
				}
			}
		}
	}
	return c
}

func (v *verifier) unexpected() Check {
	c := Check{Name: "no_unexpected_responses", Checked: v.in.Responses, Failures: v.in.Unexpected}
	if n := min(len(v.in.UnexpectedExamples), maxExamples); n > 0 {
		c.Examples = append([]string(nil), v.in.UnexpectedExamples[:n]...)
	}
	return c
}
