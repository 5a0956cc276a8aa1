package orders

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"allot/examples/sqlite-consumer/feed"
)

// idlePause is the pause after a page that brought nothing.
const idlePause = 200 * time.Millisecond

// Source is what Consume reads: feed.Client's Poll.
type Source interface {
	Poll(ctx context.Context, after int64) (*feed.Page, error)
}

// Consume reads shard's events from src into st until ctx ends or src
// fails for good, one transaction per page. It starts after the offset
// stored in st, so a restart resumes exactly where the last committed page
// left off. It returns ctx's cause when stopped, a *feed.CompactedError
// when the events it needs are no longer kept (resynchronise: see
// docs/DOWNSTREAM.md), and any other error of src or st.
func Consume(ctx context.Context, src Source, st *Store, shard int, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	after, err := st.Offset(ctx, shard)
	if err != nil {
		return fmt.Errorf("reading the stored offset: %w", err)
	}
	log.Info("consuming events", "shard", shard, "after", after)
	for {
		page, err := src.Poll(ctx, after)
		if err != nil {
			return err
		}
		off, n, err := st.Apply(ctx, shard, page.Events, page.Next)
		if err != nil {
			return fmt.Errorf("applying events after %d: %w", after, err)
		}
		if n > 0 || off != after {
			log.Debug("page applied", "after", after, "offset", off, "applied", n, "received", len(page.Events), "head", page.Head)
		}
		if len(page.Events) == 0 && off == after {
			// An empty page after a long-poll timed out; a pause keeps a
			// server that ignores wait from being polled in a tight loop.
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(idlePause):
			}
		}
		after = off
	}
}

// StateSource is what Resync reads: feed.Client's Head and EachReservation.
type StateSource interface {
	Head(ctx context.Context) (int64, error)
	EachReservation(ctx context.Context, fn func(feed.Reservation) error) error
}

// Resync rebuilds st from src's current state and sets its offset to the
// head read first: "read the state, then stream from head". Consume goes on
// from there. It returns the head.
func Resync(ctx context.Context, src StateSource, st *Store, shard int, log *slog.Logger) (int64, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	head, err := src.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the head: %w", err)
	}
	n, err := st.Resync(ctx, shard, head, func(put func(feed.Reservation) error) error {
		return src.EachReservation(ctx, put)
	})
	if err != nil {
		return 0, fmt.Errorf("resynchronising: %w", err)
	}
	log.Info("resynchronised from the current state", "reservations", n, "offset", head)
	return head, nil
}
