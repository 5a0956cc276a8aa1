package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"allot/bench/verify"
)

// Read-back limits.
const (
	pageSize = 1000
	maxPages = 100_000
	// stableTries bounds the re-reads of a resource whose counts changed
	// while its reservations were listed (a hold expiring meanwhile).
	stableTries = 5
)

// wireResource is the part of GET /v1/resources/{id} the verifier needs.
type wireResource struct {
	ID           string               `json:"id"`
	Kind         string               `json:"kind"`
	Capacity     int64                `json:"capacity"`
	PerUserLimit int64                `json:"per_user_limit"`
	Available    int64                `json:"available"`
	Held         int64                `json:"held"`
	Confirmed    int64                `json:"confirmed"`
	Nights       map[string]wireNight `json:"nights"`
	Limits       []string             `json:"limits"`
}

type wireNight struct {
	Rooms     int64  `json:"rooms"`
	Available int64  `json:"available"`
	Held      *int64 `json:"held"` // not promised by the API; nil when absent
}

type wireReservation struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	User       string `json:"user"`
	Status     string `json:"status"`
	Quantity   int64  `json:"quantity"`
	CheckIn    string `json:"check_in"`
	CheckOut   string `json:"check_out"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at"`
	UpdatedAt  string `json:"updated_at"`
}

type wirePage struct {
	Items []wireReservation `json:"items"`
	Next  string            `json:"next"`
}

// Reader reads the final state of a run's resources.
type Reader struct {
	c     *Client
	level string // ?consistency= value; "" for the default
}

// NewReader returns a Reader that reads linearizably if the cluster
// supports it (probed with the first id), else at the default level.
func (c *Client) NewReader(ctx context.Context, probeID string) (*Reader, error) {
	r := &Reader{c: c, level: "linearizable"}
	_, _, err := r.resource(ctx, probeID)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusBadRequest {
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
// nothing about it can change without new requests.
func (r *Reader) resource(ctx context.Context, id string) (res verify.Resource, settled bool, err error) {
	path := "/v1/resources/" + id
	if r.level != "" {
		path += "?consistency=" + r.level
	}
	rep, err := r.c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return res, false, err
	}
	var w wireResource
	if err := json.Unmarshal(rep.body, &w); err != nil {
		return res, false, fmt.Errorf("resource %s: decoding: %w", id, err)
	}
	if w.ID == "" {
		w.ID = id
	}
	res = verify.Resource{ID: w.ID, Kind: w.Kind, Capacity: w.Capacity, PerUserLimit: w.PerUserLimit,
		Available: w.Available, Held: w.Held, Confirmed: w.Confirmed, Limits: w.Limits, ReadAt: rep.date}
	settled = w.Held == 0
	if len(w.Nights) > 0 {
		res.Nights = make(map[string]verify.Night, len(w.Nights))
		for d, n := range w.Nights {
			res.Nights[d] = verify.Night{Rooms: n.Rooms, Available: n.Available}
			settled = settled && n.Held != nil && *n.Held == 0
		}
	}
	return res, settled, nil
}

func (r *Reader) reservations(ctx context.Context, id string) ([]verify.Reservation, error) {
	var out []verify.Reservation
	after := ""
	for range maxPages {
		path := fmt.Sprintf("/v1/reservations?resource=%s&limit=%d", url.QueryEscape(id), pageSize)
		if r.level != "" {
			path += "&consistency=" + r.level
		}
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		rep, err := r.c.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		var p wirePage
		if err := json.Unmarshal(rep.body, &p); err != nil {
			return nil, fmt.Errorf("reservations of %s: decoding: %w", id, err)
		}
		for _, w := range p.Items {
			x, err := w.reservation()
			if err != nil {
				return nil, fmt.Errorf("reservations of %s: %w", id, err)
			}
			out = append(out, x)
		}
		if p.Next == "" {
			return out, nil
		}
		if p.Next == after {
			return nil, fmt.Errorf("reservations of %s: paging does not advance past %q", id, after)
		}
		after = p.Next
	}
	return nil, fmt.Errorf("reservations of %s: more than %d pages", id, maxPages)
}

func (w *wireReservation) reservation() (verify.Reservation, error) {
	x := verify.Reservation{ID: w.ID, ResourceID: w.ResourceID, User: w.User, Status: w.Status,
		Quantity: w.Quantity, CheckIn: w.CheckIn, CheckOut: w.CheckOut}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&x.CreatedAt, w.CreatedAt}, {&x.ExpiresAt, w.ExpiresAt}, {&x.UpdatedAt, w.UpdatedAt}} {
		if f.src == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.src)
		if err != nil {
			return x, fmt.Errorf("reservation %s: bad time %q: %w", w.ID, f.src, err)
		}
		*f.dst = t
	}
	return x, nil
}
