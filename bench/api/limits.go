package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"allot/bench/scenario"
	"allot/bench/verify"
)

// ErrNoLimits is returned by PutLimits when the target answers 404 on
// PUT /v1/limits/{id}: it has no limit groups to use or check.
var ErrNoLimits = errors.New("the target answers 404 on /v1/limits: it has no limit groups")

// wireLimit is the part of GET /v1/limits/{id} the verifier needs.
type wireLimit struct {
	ID        string   `json:"id"`
	PerUser   int64    `json:"per_user"`
	Capacity  int64    `json:"capacity"`
	Taken     int64    `json:"taken"`
	Resources []string `json:"resources"`
}

// PutLimits creates (or updates) defs, parallel at a time. A 404 means
// the route does not exist (a PUT creates), and is ErrNoLimits.
func (c *Client) PutLimits(ctx context.Context, defs []scenario.LimitDef, parallel int) error {
	return forEach(ctx, len(defs), parallel, func(ctx context.Context, i int) error {
		d := defs[i]
		r, err := c.do(ctx, http.MethodPut, "/v1/limits/"+d.ID, d.Body)
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			return fmt.Errorf("%w (%v)", ErrNoLimits, err)
		}
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			return fmt.Errorf("PUT /v1/limits/%s: unexpected status %d", d.ID, r.status)
		}
		return nil
	})
}

// ReadLimits reads the limits ids, parallel at a time, at the reader's
// consistency level. Setup created them, so a 404 now is a lost limit.
func (r *Reader) ReadLimits(ctx context.Context, ids []string, parallel int) ([]verify.Limit, error) {
	out := make([]verify.Limit, len(ids))
	err := forEach(ctx, len(ids), parallel, func(ctx context.Context, i int) error {
		path := "/v1/limits/" + ids[i]
		if r.level != "" {
			path += "?consistency=" + r.level
		}
		rep, err := r.c.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		var w wireLimit
		if err := json.Unmarshal(rep.body, &w); err != nil {
			return fmt.Errorf("limit %s: decoding: %w", ids[i], err)
		}
		if w.ID == "" {
			w.ID = ids[i]
		}
		out[i] = verify.Limit{ID: w.ID, PerUser: w.PerUser, Capacity: w.Capacity, Taken: w.Taken, Resources: w.Resources}
		return nil
	})
	return out, err
}
