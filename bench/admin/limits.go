package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"allot/bench/scenario"
	"allot/bench/verify"
	"allot/client"
)

// ErrNoLimits is returned by PutLimits when the target answers 404 on
// PUT /v1/limits/{id}: it has no limit groups to use or check.
var ErrNoLimits = errors.New("the target answers 404 on /v1/limits: it has no limit groups")

// PutLimits creates (or updates) defs, parallel at a time. A 404 means
// the route does not exist (a PUT creates), and is ErrNoLimits.
func (a *Admin) PutLimits(ctx context.Context, defs []scenario.LimitDef, parallel int) error {
	return forEach(ctx, len(defs), parallel, func(ctx context.Context, i int) error {
		var spec client.LimitSpec
		if err := decodeStrict(defs[i].Body, &spec); err != nil {
			return fmt.Errorf("limit %s: %w", defs[i].ID, err)
		}
		_, _, err := a.c.PutLimit(ctx, defs[i].ID, spec)
		var pe *client.ProblemError
		if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
			return fmt.Errorf("%w (%v)", ErrNoLimits, err)
		}
		return err
	})
}

// ReadLimits reads the limits ids, parallel at a time, at the reader's
// consistency level. Setup created them, so a 404 now is a lost limit.
func (r *Reader) ReadLimits(ctx context.Context, ids []string, parallel int) ([]verify.Limit, error) {
	out := make([]verify.Limit, len(ids))
	err := forEach(ctx, len(ids), parallel, func(ctx context.Context, i int) error {
		l, err := r.c.GetLimit(ctx, ids[i], r.opts()...)
		if err != nil {
			return err
		}
		if l.ID == "" {
			l.ID = ids[i]
		}
		out[i] = verify.Limit{ID: l.ID, PerUser: l.PerUser, Capacity: l.Capacity, Taken: l.Taken, Resources: l.Resources}
		return nil
	})
	return out, err
}
