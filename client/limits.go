package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// PutLimit creates (created true) or updates the limit group id (admin).
func (c *Client) PutLimit(ctx context.Context, id string, spec LimitSpec, opts ...CallOption) (l *Limit, created bool, err error) {
	var status int
	l = new(Limit)
	err = c.do(ctx, request{method: http.MethodPut, path: "/v1/limits/" + url.PathEscape(id), body: spec, out: l, status: &status}, opts)
	if err != nil {
		return nil, false, err
	}
	return l, status == http.StatusCreated, nil
}

// GetLimit reads the limit group id (admin, consumer; a user with ForUser
// naming itself).
func (c *Client) GetLimit(ctx context.Context, id string, opts ...CallOption) (*Limit, error) {
	l := new(Limit)
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/limits/" + url.PathEscape(id), out: l}, opts); err != nil {
		return nil, err
	}
	return l, nil
}

// ForUser asks GetLimit for what user has taken too (Limit.UserTaken).
func ForUser(user string) CallOption {
	return func(c *call) {
		if c.query == nil {
			c.query = url.Values{}
		}
		c.query.Set("user", user)
	}
}

// DeleteLimit deletes the limit group id (admin); refused with
// domain.ErrInvalidState while a resource names it.
func (c *Client) DeleteLimit(ctx context.Context, id string, opts ...CallOption) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/limits/" + url.PathEscape(id)}, opts)
}

// LimitQuery selects limit groups to list; the zero value lists them all.
type LimitQuery struct {
	Prefix string
	After  string
	// PageSize is the limits per request (1–1000); 0 is the server's
	// default (100).
	PageSize int
}

// Limits iterates over the limit groups q selects, by id, a page at a
// time (admin, consumer). An error ends the iteration.
func (c *Client) Limits(ctx context.Context, q LimitQuery, opts ...CallOption) iter.Seq2[Limit, error] {
	return pages[Limit](ctx, c, "/v1/limits", url.Values{"prefix": {q.Prefix}}, q.After, q.PageSize, opts)
}
