package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// PutResource creates (created true) or replaces the resource id (admin).
func (c *Client) PutResource(ctx context.Context, id string, spec ResourceSpec, opts ...CallOption) (res *Resource, created bool, err error) {
	var status int
	res = new(Resource)
	err = c.do(ctx, request{method: http.MethodPut, path: "/v1/resources/" + url.PathEscape(id), body: spec, out: res, status: &status}, opts)
	if err != nil {
		return nil, false, err
	}
	return res, status == http.StatusCreated, nil
}

// GetResource reads the resource id with its live counts (for rooms, see
// Nights).
func (c *Client) GetResource(ctx context.Context, id string, opts ...CallOption) (*Resource, error) {
	res := new(Resource)
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/resources/" + url.PathEscape(id), out: res}, opts); err != nil {
		return nil, err
	}
	return res, nil
}

// DeleteResource deletes the resource id (admin); refused with
// domain.ErrInvalidState while units are taken.
func (c *Client) DeleteResource(ctx context.Context, id string, opts ...CallOption) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/resources/" + url.PathEscape(id)}, opts)
}

// ResourceQuery selects resources to list; the zero value lists them all.
type ResourceQuery struct {
	Kind   Kind
	Prefix string // ids starting with it
	After  string // start after this id
	// PageSize is the resources per request (1–1000); 0 is the server's
	// default (100).
	PageSize int
}

// Resources iterates over the resources q selects, by id, a page at a
// time. An error ends the iteration.
func (c *Client) Resources(ctx context.Context, q ResourceQuery, opts ...CallOption) iter.Seq2[Resource, error] {
	v := url.Values{"kind": {string(q.Kind)}, "prefix": {q.Prefix}}
	return pages[Resource](ctx, c, "/v1/resources", v, q.After, q.PageSize, opts)
}
