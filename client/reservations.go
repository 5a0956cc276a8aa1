package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// Reserve reserves units of the resource id as the token's user: held
// until confirmed, or confirmed at once on a resource without holds. It is
// retried with one Idempotency-Key, so it books at most once however the
// attempts end. Refusals match domain.ErrSoldOut, domain.ErrLimitExceeded
// (ProblemError.Limit names the limit), domain.ErrNotOpen,
// domain.ErrClosed, domain.ErrNotFound, domain.ErrInvalidArgument.
func (c *Client) Reserve(ctx context.Context, resourceID string, r ReserveRequest, opts ...CallOption) (*Reservation, error) {
	out := new(Reservation)
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/resources/" + url.PathEscape(resourceID) + "/reservations", body: r, out: out}, opts)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Confirm moves a held reservation to confirmed (owner, admin). A late one
// is domain.ErrExpired.
func (c *Client) Confirm(ctx context.Context, reservationID string, opts ...CallOption) (*Reservation, error) {
	return c.transition(ctx, reservationID, "confirm", opts)
}

// Cancel cancels a held or confirmed reservation (owner, admin),
// returning its units.
func (c *Client) Cancel(ctx context.Context, reservationID string, opts ...CallOption) (*Reservation, error) {
	return c.transition(ctx, reservationID, "cancel", opts)
}

// CheckIn moves a confirmed slot or room reservation to checked_in (admin).
func (c *Client) CheckIn(ctx context.Context, reservationID string, opts ...CallOption) (*Reservation, error) {
	return c.transition(ctx, reservationID, "check-in", opts)
}

// Complete moves a confirmed or checked-in reservation to completed (admin).
func (c *Client) Complete(ctx context.Context, reservationID string, opts ...CallOption) (*Reservation, error) {
	return c.transition(ctx, reservationID, "complete", opts)
}

// transition posts one lifecycle transition. Repeating one that already
// happened answers the reservation unchanged; any other wrong transition
// is domain.ErrInvalidState.
func (c *Client) transition(ctx context.Context, id, name string, opts []CallOption) (*Reservation, error) {
	out := new(Reservation)
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/reservations/" + url.PathEscape(id) + "/" + name, out: out}, opts)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetReservation reads one reservation (owner, admin).
func (c *Client) GetReservation(ctx context.Context, id string, opts ...CallOption) (*Reservation, error) {
	out := new(Reservation)
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/reservations/" + url.PathEscape(id), out: out}, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// ReservationQuery selects reservations to list. A user sees only its own
// (User defaults to the caller); an admin may name any user or resource,
// or neither for every reservation.
type ReservationQuery struct {
	User     string
	Resource string
	Status   Status
	After    string // start after this reservation id
	// PageSize is the reservations per request (1–1000); 0 is the
	// server's default (100).
	PageSize int
}

// Reservations iterates over the reservations q selects, by id, a page at
// a time. An error ends the iteration.
func (c *Client) Reservations(ctx context.Context, q ReservationQuery, opts ...CallOption) iter.Seq2[Reservation, error] {
	v := url.Values{"user": {q.User}, "resource": {q.Resource}, "status": {string(q.Status)}}
	return pages[Reservation](ctx, c, "/v1/reservations", v, q.After, q.PageSize, opts)
}
