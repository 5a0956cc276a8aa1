package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"allot/bench/verify"
	"allot/client"
)

// ErrNoStream is returned by ReadStream when the target answers 404 on
// GET /v1/events: it has no change stream to check.
var ErrNoStream = errors.New("the target answers 404 on GET /v1/events: it has no change stream")

// ReadStream reads the whole change stream of shard 0, unfiltered, a
// thousand events a page, until it has caught up with the head of the
// node it reads from. When the oldest events are no longer kept it starts
// at the earliest one, and Stream.After says so.
func (a *Admin) ReadStream(ctx context.Context) (verify.Stream, error) {
	var s verify.Stream
	r := a.c.EventReader(0, client.EventQuery{PageSize: pageSize})
	started := false
	for range maxPages {
		after := r.Next()
		p, err := r.Page(ctx, 0)
		var pe *client.ProblemError
		problem := errors.As(err, &pe)
		switch {
		case problem && pe.Status == http.StatusNotFound && !started:
			return s, ErrNoStream
		case problem && errors.Is(err, client.ErrOffsetCompacted) && !started && pe.Earliest > after+1:
			r.SetNext(pe.Earliest - 1) // older events were compacted; read what is kept
			s.After = pe.Earliest - 1
			continue
		case err != nil:
			return s, fmt.Errorf("reading the change stream after %d: %w", after, err)
		}
		started = true
		for _, e := range p.Events {
			ve := verify.Event{Offset: e.Offset, Type: e.Type, From: string(e.From), ResourceID: e.ResourceID}
			if e.Reservation != nil {
				ve.ReservationID, ve.Status = e.Reservation.ID, string(e.Reservation.Status)
			}
			s.Events = append(s.Events, ve)
		}
		s.Head = p.Head
		if p.Next >= p.Head {
			return s, nil
		}
		if p.Next <= after {
			return s, fmt.Errorf("reading the change stream: next %d does not move past %d (head %d)", p.Next, after, p.Head)
		}
	}
	return s, fmt.Errorf("reading the change stream: more than %d pages", maxPages)
}
