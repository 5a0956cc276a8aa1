package verify

import (
	"fmt"
	"strings"
)

// Event is one event of the change stream, reduced to what the stream
// checks look at.
type Event struct {
	Offset     int64
	Type       string // "reservation.held", "resource.created", ...
	From       string // the status a reservation left; "" when new
	ResourceID string
	// ReservationID and Status are the reservation's id and its status
	// after the event; empty unless Type is reservation.*.
	ReservationID string
	Status        string
}

// Stream is the change stream as read from the target after the run: every
// event with an offset in (After, Head], oldest first.
type Stream struct {
	// After is the offset the read started after: 0, or earliest-1 when
	// the oldest events were no longer kept.
	After  int64
	Head   int64
	Events []Event
}

// StreamSummary counts what the stream checks saw. Skipped, when set,
// says why the stream was not checked (and then nothing else is set).
type StreamSummary struct {
	Skipped      string `json:"skipped,omitempty"`
	After        int64  `json:"after"`
	Head         int64  `json:"head"`
	Events       int    `json:"events"`
	Reservations int    `json:"reservations"` // of the run's resources
	Created      int    `json:"created"`      // their creating events
	Transitions  int    `json:"transitions"`  // their later events
}

const reservationPrefix = "reservation."

// next lists the statuses a reservation may move to from each status
// (API.md's lifecycle); a status missing here is final.
var next = map[string][]string{
	StatusHeld:      {StatusConfirmed, StatusCancelled, StatusExpired},
	StatusConfirmed: {StatusCancelled, StatusCheckedIn, StatusCompleted},
	StatusCheckedIn: {StatusCompleted},
}

func canMove(from, to string) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// creates reports whether e made its reservation: reservation.held, or
// reservation.confirmed on a resource with hold_seconds 0, from "".
func creates(e *Event) bool {
	return e.From == "" && (e.Type == reservationPrefix+StatusHeld || e.Type == reservationPrefix+StatusConfirmed)
}

// streamChecks holds the stream and its reservation events by id.
type streamChecks struct {
	in    *Input
	s     *Stream
	byRsv map[string][]*Event // the run's reservations' events, in offset order
}

// verifyStream runs the stream checks of in.Stream.
func (v *verifier) verifyStream() ([]Check, *StreamSummary) {
	sc := &streamChecks{in: &v.in, s: v.in.Stream, byRsv: make(map[string][]*Event)}
	sum := &StreamSummary{After: sc.s.After, Head: sc.s.Head, Events: len(sc.s.Events)}
	for i := range sc.s.Events {
		e := &sc.s.Events[i]
		if _, ours := v.res[e.ResourceID]; !ours || !strings.HasPrefix(e.Type, reservationPrefix) {
			continue // another run's, or not about a reservation
		}
		sc.byRsv[e.ReservationID] = append(sc.byRsv[e.ReservationID], e)
		if creates(e) {
			sum.Created++
		} else {
			sum.Transitions++
		}
	}
	sum.Reservations = len(sc.byRsv)
	return []Check{sc.contiguous(), sc.createdOnce(), sc.ackedTransitions(), sc.lifecycle(), sc.matchesState(v)}, sum
}

// contiguous: offsets rise by exactly one from After+1 to Head.
func (sc *streamChecks) contiguous() Check {
	c := Check{Name: "stream_offsets_contiguous", Checked: int64(len(sc.s.Events))}
	prev := sc.s.After
	for i := range sc.s.Events {
		off := sc.s.Events[i].Offset
		switch {
		case off <= prev:
			c.fail("offset %d after %d: out of order or repeated", off, prev)
			continue
		case off != prev+1:
			c.fail("gap: offsets %d..%d missing", prev+1, off-1)
		}
		prev = off
	}
	if prev != sc.s.Head {
		c.Checked++
		c.fail("the stream ends at %d, but head is %d", prev, sc.s.Head)
	}
	return c
}

// createdOnce: every 201 appears as exactly one creating event, on its
// resource.
func (sc *streamChecks) createdOnce() Check {
	c := Check{Name: "stream_acks_created_once"}
	for _, a := range sc.in.Acks {
		c.Checked++
		var made []*Event
		for _, e := range sc.byRsv[a.ID] {
			if creates(e) {
				made = append(made, e)
			}
		}
		switch {
		case len(sc.byRsv[a.ID]) == 0:
			c.fail("reservation %s (201 for %s on %s) has no event", a.ID, a.User, a.ResourceID)
		case len(made) == 0:
			c.fail("reservation %s has no creating event (first: %s at %d)", a.ID, sc.byRsv[a.ID][0].Type, sc.byRsv[a.ID][0].Offset)
		case len(made) > 1:
			c.fail("reservation %s is created %d times (offsets %s)", a.ID, len(made), offsets(made))
		case made[0].ResourceID != a.ResourceID:
			c.fail("reservation %s is created on %s, acknowledged on %s", a.ID, made[0].ResourceID, a.ResourceID)
		}
	}
	return c
}

// ackedTransitions: the last status the run saw acknowledged is one the
// stream says the reservation went through.
func (sc *streamChecks) ackedTransitions() Check {
	c := Check{Name: "stream_acknowledged_transitions"}
	for _, a := range sc.in.Acks {
		evs := sc.byRsv[a.ID]
		if len(evs) == 0 || a.Status == "" {
			continue // reported by stream_acks_created_once
		}
		c.Checked++
		found := false
		for _, e := range evs {
			found = found || e.Status == a.Status
		}
		if !found {
			c.fail("reservation %s: %s was acknowledged, the stream shows %s", a.ID, a.Status, path(evs))
		}
	}
	return c
}

// lifecycle: each reservation's events start with its creation and then
// follow the lifecycle, each leaving the status the previous one entered.
func (sc *streamChecks) lifecycle() Check {
	c := Check{Name: "stream_lifecycle_order"}
	for _, id := range sortedKeys(sc.byRsv) {
		evs := sc.byRsv[id]
		c.Checked++
		if msg := lifecycleError(evs); msg != "" {
			c.fail("reservation %s: %s (%s)", id, msg, path(evs))
		}
	}
	return c
}

func lifecycleError(evs []*Event) string {
	status := ""
	for i, e := range evs {
		to := strings.TrimPrefix(e.Type, reservationPrefix)
		switch {
		case e.Status != "" && e.Status != to:
			return fmt.Sprintf("%s at %d carries status %s", e.Type, e.Offset, e.Status)
		case i == 0 && !creates(e):
			return fmt.Sprintf("first event %s from %q at %d does not create it", e.Type, e.From, e.Offset)
		case i > 0 && creates(e):
			return fmt.Sprintf("created again at %d", e.Offset)
		case i > 0 && e.From != status:
			return fmt.Sprintf("%s at %d leaves %q, but it was %s", e.Type, e.Offset, e.From, status)
		case i > 0 && !canMove(status, to):
			return fmt.Sprintf("%s -> %s at %d is not a transition of the lifecycle", status, to, e.Offset)
		}
		status = to
	}
	return ""
}

// matchesState: every reservation read back is in the stream, and its last
// event gives the status it was read in. The stream is read after the
// state, so a hold read back may have expired since.
func (sc *streamChecks) matchesState(v *verifier) Check {
	c := Check{Name: "stream_matches_state"}
	for _, id := range sortedKeys(v.byID) {
		x := v.byID[id]
		c.Checked++
		evs := sc.byRsv[id]
		if len(evs) == 0 {
			c.fail("reservation %s (%s on %s) is in the state but not in the stream", id, x.Status, x.ResourceID)
			continue
		}
		last := strings.TrimPrefix(evs[len(evs)-1].Type, reservationPrefix)
		if last != x.Status && !(x.Status == StatusHeld && last == StatusExpired) {
			c.fail("reservation %s is %s in the state, %s in the stream (%s)", id, x.Status, last, path(evs))
		}
	}
	return c
}

func offsets(evs []*Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprint(e.Offset)
	}
	return strings.Join(parts, ",")
}

// path renders a reservation's events: "held@3 confirmed@9".
func path(evs []*Event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("%s@%d", strings.TrimPrefix(e.Type, reservationPrefix), e.Offset)
	}
	return strings.Join(parts, " ")
}
