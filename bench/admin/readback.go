package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"allot/bench/verify"
	"allot/client"
)

// Read-back limits.
const (
	pageSize = 1000
	maxPages = 100_000
	// stableTries bounds the re-reads of a resource whose counts changed
	// while its reservations were listed (a hold expiring meanwhile).
	stableTries = 5
)

// Reader reads the final state of a run's resources.
type Reader struct {
	c     *client.Client
	level client.Consistency // "" for the server's default
}

// NewReader returns a Reader that reads linearizably if the cluster
// supports it (probed with the first id), else at the default level.
func (a *Admin) NewReader(ctx context.Context, probeID string) (*Reader, error) {
	r := &Reader{c: a.c, level: client.Linearizable}
	_, _, err := r.resource(ctx, probeID)
	var pe *client.ProblemError
	if errors.As(err, &pe) && pe.Status == http.StatusBadRequest {
		r.level = ""
		_, _, err = r.resource(ctx, probeID)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Linearizable reports whether reads use ?consistency=linearizable.
func (r *Reader) Linearizable() bool { return r.level != "" }

func (r *Reader) opts(more ...client.CallOption) []client.CallOption {
	if r.level != "" {
		more = append(more, client.WithConsistency(r.level))
	}
	return more
}

// ReadAll reads every resource of ids with all its reservations, parallel
// at a time.
func (r *Reader) ReadAll(ctx context.Context, ids []string, parallel int) ([]verify.Resource, error) {
	out := make([]verify.Resource, len(ids))
	err := forEach(ctx, len(ids), parallel, func(ctx context.Context, i int) error {
		res, err := r.ReadResource(ctx, ids[i])
		out[i] = res
		return err
	})
	return out, err
}

// ReadResource reads one resource and every reservation on it. Once the
// load has stopped only expiry changes state, so a resource without holds
// stays as read; one with holds is read again after the listing and must not
// have changed, so that counts and listing describe the same state.
func (r *Reader) ReadResource(ctx context.Context, id string) (verify.Resource, error) {
	for range stableTries {
		before, settled, err := r.resource(ctx, id)
		if err != nil {
			return verify.Resource{}, err
		}
		list, err := r.reservations(ctx, id)
		if err != nil {
			return verify.Resource{}, err
		}
		if settled {
			before.Reservations = list
			return before, nil
		}
		after, _, err := r.resource(ctx, id)
		if err != nil {
			return verify.Resource{}, err
		}
		if sameCounts(before, after) {
			before.Reservations = list
			return before, nil
		}
	}
	return verify.Resource{}, fmt.Errorf("resource %s kept changing while it was read %d times", id, stableTries)
}

func sameCounts(a, b verify.Resource) bool {
	if a.Available != b.Available || a.Held != b.Held || a.Confirmed != b.Confirmed || len(a.Nights) != len(b.Nights) {
		return false
	}
	for d, n := range a.Nights {
		if b.Nights[d] != n {
			return false
		}
	}
	return true
}

// resource reads one resource; settled reports that it has no holds, so
// nothing about it can change without new requests. ReadAt is the
// server's Date of the answer.
func (r *Reader) resource(ctx context.Context, id string) (res verify.Resource, settled bool, err error) {
	var resp client.Response
	w, err := r.c.GetResource(ctx, id, r.opts(client.Capture(&resp))...)
	if err != nil {
		return res, false, err
	}
	if w.ID == "" {
		w.ID = id
	}
	res = verify.Resource{ID: w.ID, Kind: string(w.Kind), Capacity: w.Capacity, PerUserLimit: w.PerUserLimit,
		Available: w.Available, Held: w.Held, Confirmed: w.Confirmed, Limits: w.Limits, ReadAt: resp.Date}
	settled = w.Held == 0
	if len(w.Nights) > 0 {
		res.Nights = make(map[string]verify.Night, len(w.Nights))
		for d, n := range w.Nights {
			res.Nights[d] = verify.Night{Rooms: n.Rooms, Available: n.Available}
			settled = settled && n.Held == 0
		}
	}
	return res, settled, nil
}

func (r *Reader) reservations(ctx context.Context, id string) ([]verify.Reservation, error) {
	var out []verify.Reservation
	for x, err := range r.c.Reservations(ctx, client.ReservationQuery{Resource: id, PageSize: pageSize}, r.opts()...) {
		if err != nil {
			return nil, fmt.Errorf("reservations of %s: %w", id, err)
		}
		out = append(out, verify.Reservation{ID: x.ID, ResourceID: x.ResourceID, User: x.User, Status: string(x.Status),
			Quantity: x.Quantity, CheckIn: x.CheckIn, CheckOut: x.CheckOut,
			CreatedAt: x.CreatedAt, ExpiresAt: x.ExpiresAt, UpdatedAt: x.UpdatedAt})
	}
	return out, nil
}
