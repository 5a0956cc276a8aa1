package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// stateTimeout bounds one request of a resync.
const stateTimeout = 30 * time.Second

// Head returns the newest offset committed on the node that answers: the
// offset a resync continues from. It asks for one event after the oldest
// kept, without waiting.
func (c *Client) Head(ctx context.Context) (int64, error) {
	var after int64
	for range 2 {
		q := url.Values{}
		q.Set("after", strconv.FormatInt(after, 10))
		q.Set("limit", "1")
		if c.cfg.Shard != 0 {
			q.Set("shard", strconv.Itoa(c.cfg.Shard))
		}
		body, err := c.get(ctx, "/v1/events?"+q.Encode(), stateTimeout)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusGone && se.earliest > after+1:
			after = se.earliest - 1
			continue
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			return 0, ErrNoStream
		case err != nil:
			return 0, err
		}
		var p Page
		if err := json.Unmarshal(body, &p); err != nil {
			return 0, fmt.Errorf("decoding a page of events: %w", err)
		}
		return p.Head, nil
	}
	return 0, errors.New("the server keeps answering offset_compacted")
}

// listPage is a page of GET /v1/resources or /v1/reservations.
type listPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// list pages through path (which has a query already) to the end, calling
// fn on every item.
func list[T any](ctx context.Context, c *Client, path string, fn func(T) error) error {
	after := ""
	for {
		p := path + "&limit=1000"
		if after != "" {
			p += "&after=" + url.QueryEscape(after)
		}
		body, err := c.get(ctx, p, stateTimeout)
		if err != nil {
			return err
		}
		var page listPage[T]
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("decoding %s: %w", path, err)
		}
		for _, it := range page.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if page.Next == "" || page.Next == after {
			return nil
		}
		after = page.Next
	}
}

// EachReservation calls fn on every reservation of every resource, read
// linearizably: a state at least as new as any head read before.
func (c *Client) EachReservation(ctx context.Context, fn func(Reservation) error) error {
	var ids []string
	err := list(ctx, c, "/v1/resources?consistency=linearizable", func(r struct {
		ID string `json:"id"`
	}) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing resources: %w", err)
	}
	for _, id := range ids {
		err := list(ctx, c, "/v1/reservations?consistency=linearizable&resource="+url.QueryEscape(id), fn)
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			continue // deleted since it was listed: no reservations left
		}
		if err != nil {
			return fmt.Errorf("listing the reservations of %s: %w", id, err)
		}
	}
	return nil
}
