package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// pages iterates over every item of a paged list (API.md: "items" by id
// and "next", the after value of the next page), one request a page, from
// the page after after. An error ends the iteration, as its last pair.
func pages[T any](ctx context.Context, c *Client, path string, q url.Values, after string, pageSize int, opts []CallOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for {
			pq := url.Values{}
			for k, v := range q {
				if len(v) > 0 && v[0] != "" {
					pq[k] = v
				}
			}
			if pageSize > 0 {
				pq.Set("limit", strconv.Itoa(pageSize))
			}
			if after != "" {
				pq.Set("after", after)
			}
			var p page[T]
			if err := c.do(ctx, request{method: http.MethodGet, path: path, query: pq, out: &p}, opts); err != nil {
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			switch {
			case p.Next == "":
				return
			case p.Next == after:
				yield(zero, fmt.Errorf("client: GET %s: paging does not advance past %q", path, after))
				return
			}
			after = p.Next
		}
	}
}
