package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"allot/client"
)

// ResourceIDs lists the id of every resource of the cluster, in id order.
func (a *Admin) ResourceIDs(ctx context.Context) ([]string, error) {
	var ids []string
	for r, err := range a.c.Resources(ctx, client.ResourceQuery{PageSize: pageSize}) {
		if err != nil {
			return nil, fmt.Errorf("listing the resources: %w", err)
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// LimitIDs lists the id of every limit group of the cluster, in id order;
// ErrNoLimits when the target has no /v1/limits.
func (a *Admin) LimitIDs(ctx context.Context) ([]string, error) {
	var ids []string
	for l, err := range a.c.Limits(ctx, client.LimitQuery{PageSize: pageSize}) {
		var pe *client.ProblemError
		if errors.As(err, &pe) && pe.Status == http.StatusNotFound && len(ids) == 0 {
			return nil, fmt.Errorf("%w (%v)", ErrNoLimits, err)
		}
		if err != nil {
			return nil, fmt.Errorf("listing the limit groups: %w", err)
		}
		ids = append(ids, l.ID)
	}
	return ids, nil
}
