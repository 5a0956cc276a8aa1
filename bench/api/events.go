package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"allot/bench/verify"
)

// ErrNoStream is returned by ReadStream when the target answers 404 on
// GET /v1/events: it has no change stream to check.
var ErrNoStream = errors.New("the target answers 404 on GET /v1/events: it has no change stream")

// wireEvent is the part of an event the stream checks need.
type wireEvent struct {
	Offset      int64  `json:"offset"`
	Type        string `json:"type"`
	From        string `json:"from"`
	ResourceID  string `json:"resource_id"`
	Reservation *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"reservation"`
}

type wireEventPage struct {
	Events   []wireEvent `json:"events"`
	Next     int64       `json:"next"`
	Earliest int64       `json:"earliest"`
	Head     int64       `json:"head"`
}

// ReadStream reads the whole change stream of shard 0, unfiltered, a
// thousand events a page, until it has caught up with the head of the
// node it reads from. When the oldest events are no longer kept it starts
// at the earliest one, and Stream.After says so.
func (c *Client) ReadStream(ctx context.Context) (verify.Stream, error) {
	var s verify.Stream
	after, started := int64(0), false
	for range maxPages {
		rep, err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=%d", after, pageSize), nil)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusNotFound && !started:
			return s, ErrNoStream
		case errors.As(err, &se) && se.Status == http.StatusGone && !started && se.Earliest > after+1:
			after = se.Earliest - 1 // older events were compacted; read what is kept
			s.After = after
			continue
		case err != nil:
			return s, fmt.Errorf("reading the change stream after %d: %w", after, err)
		}
		started = true
		var p wireEventPage
		if err := json.Unmarshal(rep.body, &p); err != nil {
			return s, fmt.Errorf("reading the change stream after %d: decoding: %w", after, err)
		}
		for _, w := range p.Events {
			e := verify.Event{Offset: w.Offset, Type: w.Type, From: w.From, ResourceID: w.ResourceID}
			if w.Reservation != nil {
				e.ReservationID, e.Status = w.Reservation.ID, w.Reservation.Status
			}
			s.Events = append(s.Events, e)
		}
		s.Head = p.Head
		if p.Next >= p.Head {
			return s, nil
		}
		if p.Next <= after {
			return s, fmt.Errorf("reading the change stream: next %d does not move past %d (head %d)", p.Next, after, p.Head)
		}
		after = p.Next
	}
	return s, fmt.Errorf("reading the change stream: more than %d pages", maxPages)
}
