// Package admin is the load generator's admin side of allot's HTTP API,
// over package allot/client: it waits for readiness, creates the limit
// groups and resources a scenario needs, and reads the final state and the
// change stream back for the verifier. Calls are retried by the client
// (429 and 503 after Retry-After or a backoff, the next target after a
// transport error).
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"allot/bench/scenario"
	"allot/client"
)

// Retry policy of admin calls.
const (
	maxAttempts   = 10
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 2 * time.Second
	maxRetryAfter = 5 * time.Second
)

// Admin talks to one allot cluster as an admin. It is safe for concurrent
// use.
type Admin struct {
	c *client.Client
}

// New returns an Admin of the cluster at targets that authenticates with
// adminTokens, taking turns. The server rate-limits each user, so several
// admin identities let setup and read-back run in parallel without being
// throttled; a 429 is still waited out politely.
func New(targets []string, hc *http.Client, adminTokens []string) (*Admin, error) {
	if len(adminTokens) == 0 {
		return nil, fmt.Errorf("admin: no token")
	}
	var turn atomic.Uint64
	c, err := client.New(targets, client.Options{
		HTTPClient: hc,
		TokenSource: func(context.Context) (string, error) {
			return adminTokens[turn.Add(1)%uint64(len(adminTokens))], nil
		},
		MaxAttempts: maxAttempts, MinBackoff: minBackoff, MaxBackoff: maxBackoff, MaxRetryAfter: maxRetryAfter,
	})
	if err != nil {
		return nil, err
	}
	return &Admin{c: c}, nil
}

// Client is the API client the Admin calls through.
func (a *Admin) Client() *client.Client { return a.c }

// WaitReady polls GET /readyz on every target until each answers 200.
func (a *Admin) WaitReady(ctx context.Context) error { return a.c.WaitReady(ctx) }

// PutResources creates (or updates) defs, parallel at a time.
func (a *Admin) PutResources(ctx context.Context, defs []scenario.ResourceDef, parallel int) error {
	return forEach(ctx, len(defs), parallel, func(ctx context.Context, i int) error {
		var spec client.ResourceSpec
		if err := decodeStrict(defs[i].Body, &spec); err != nil {
			return fmt.Errorf("resource %s: %w", defs[i].ID, err)
		}
		_, _, err := a.c.PutResource(ctx, defs[i].ID, spec)
		return err
	})
}

// decodeStrict decodes a scenario's body into the client's request type,
// refusing a field the type does not have (which would be lost).
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding the scenario's body %s: %w", body, err)
	}
	return nil
}

// forEach runs fn(i) for i in [0, n), parallel at a time, and returns the
// first error; after one, the rest are skipped.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range max(1, min(parallel, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel(err) })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
