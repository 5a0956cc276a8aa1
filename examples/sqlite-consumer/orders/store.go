// Package orders keeps an order table in SQLite from allot's change
// stream, exactly once per event even though the stream delivers at least
// once: the effects of a page of events and the offset they bring the
// consumer to are written in one transaction, and events at or below the
// stored offset are skipped. A crash before the commit loses both, a crash
// after it keeps both, so a re-read never applies an event twice.
package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver (cgo)

	"allot/examples/sqlite-consumer/feed"
)

// schema is created on Open. orders holds one row per reservation, as of
// the last event applied to it; order_events is its history, one row per
// applied event (its primary key would refuse a second application);
// consumer_offset holds, per shard, the offset the table reflects.
const schema = `
CREATE TABLE IF NOT EXISTS orders (
	reservation_id  TEXT PRIMARY KEY,
	resource_id     TEXT NOT NULL,
	kind            TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	quantity        INTEGER NOT NULL,
	status          TEXT NOT NULL,
	check_in        TEXT NOT NULL DEFAULT '',
	check_out       TEXT NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	last_offset     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_events (
	shard          INTEGER NOT NULL,
	event_offset   INTEGER NOT NULL,
	reservation_id TEXT NOT NULL,
	type           TEXT NOT NULL,
	from_status    TEXT NOT NULL,
	at             TEXT NOT NULL,
	PRIMARY KEY (shard, event_offset)
);
CREATE INDEX IF NOT EXISTS order_events_by_reservation ON order_events (reservation_id, event_offset);
CREATE TABLE IF NOT EXISTS consumer_offset (
	shard       INTEGER PRIMARY KEY,
	last_offset INTEGER NOT NULL
);
`

// Store is the SQLite order book. It is safe for concurrent use; writes
// are serialised by SQLite.
type Store struct {
	db *sql.DB
	// beforeCommit, when set (by tests), runs inside each page's
	// transaction after its effects were written and before the commit; an
	// error rolls the whole page back, as a crash there would.
	beforeCommit func(events []feed.Event) error
}

// Open opens (creating if needed) the database at path. Writes are
// durable when Apply returns: journal in WAL mode with synchronous=FULL.
func Open(path string) (*Store, error) {
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises them anyway
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the schema in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB is the database, for reading the orders.
func (s *Store) DB() *sql.DB { return s.db }

// Offset is the offset of shard the table reflects: read on from there.
func (s *Store) Offset(ctx context.Context, shard int) (int64, error) {
	var off int64
	err := s.db.QueryRowContext(ctx, `SELECT last_offset FROM consumer_offset WHERE shard = ?`, shard).Scan(&off)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return off, err
}

// Apply writes the effects of events (one shard's, in offset order) and
// moves the shard's offset to upTo, in one transaction. Events at or
// below the stored offset were applied before — a re-read after a crash,
// a webhook batch re-sent after a leader change — and are skipped. The
// offset never moves back (a lagging node may answer with an older next).
// It returns the offset now stored and how many events it applied.
func (s *Store) Apply(ctx context.Context, shard int, events []feed.Event, upTo int64) (offset int64, applied int, err error) {
	for i := range events {
		if events[i].Shard != shard {
			return 0, 0, fmt.Errorf("event %d is of shard %d, not %d", events[i].Offset, events[i].Shard, shard)
		}
		if i > 0 && events[i].Offset <= events[i-1].Offset {
			return 0, 0, fmt.Errorf("events out of order: %d after %d", events[i].Offset, events[i-1].Offset)
		}
	}
	if n := len(events); n > 0 {
		upTo = max(upTo, events[n-1].Offset)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback() // a no-op after Commit
	var cur int64
	err = tx.QueryRowContext(ctx, `SELECT last_offset FROM consumer_offset WHERE shard = ?`, shard).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, err
	}
	if upTo <= cur {
		return cur, 0, nil // nothing new: leave the database alone
	}
	var fresh []feed.Event
	for i := range events {
		if events[i].Offset > cur {
			fresh = events[i:]
			break
		}
	}
	for i := range fresh {
		if err := applyEvent(ctx, tx, &fresh[i]); err != nil {
			return 0, 0, fmt.Errorf("event %d (%s): %w", fresh[i].Offset, fresh[i].Type, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO consumer_offset (shard, last_offset) VALUES (?, ?)
		ON CONFLICT (shard) DO UPDATE SET last_offset = excluded.last_offset`, shard, upTo)
	if err != nil {
		return 0, 0, err
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(fresh); err != nil {
			return 0, 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return upTo, len(fresh), nil
}

// applyEvent writes one event's effect: a reservation event upserts its
// order and adds a history row; other events change no order.
func applyEvent(ctx context.Context, tx *sql.Tx, e *feed.Event) error {
	if !e.IsReservation() {
		return nil
	}
	r := e.Reservation
	if r.ID == "" || r.Status == "" {
		return errors.New("reservation without id or status")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO order_events (shard, event_offset, reservation_id, type, from_status, at)
		VALUES (?, ?, ?, ?, ?, ?)`, e.Shard, e.Offset, r.ID, e.Type, e.From, e.At.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	if err != nil {
		return err
	}
	// idempotency_key is the key of the request that made the reservation:
	// later events carry their own request's key, so an update keeps it.
	_, err = tx.ExecContext(ctx, `INSERT INTO orders (reservation_id, resource_id, kind, user_id, quantity, status,
			check_in, check_out, idempotency_key, created_at, updated_at, last_offset)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (reservation_id) DO UPDATE SET
			status = excluded.status, quantity = excluded.quantity, updated_at = excluded.updated_at,
			last_offset = excluded.last_offset
		WHERE excluded.last_offset > orders.last_offset`,
		r.ID, firstNonEmpty(r.ResourceID, e.ResourceID), firstNonEmpty(r.Kind, e.Kind), r.User, r.Quantity, r.Status,
		r.CheckIn, r.CheckOut, e.IdempotencyKey, r.CreatedAt, r.UpdatedAt, e.Offset)
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Resync rebuilds the order book from the current state, for a consumer
// whose next events were compacted away: every reservation fill gives is
// written as of offset head, and the offset becomes head, in one
// transaction. head must have been read before the state, so that the
// state already holds every event up to head; the events after it that the
// state also holds are applied again later, which converges, since each
// event carries the whole reservation. Orders the state no longer has
// (finished and past the cluster's --retention) are kept as they were.
// There is no history row for what happened in the gap.
func (s *Store) Resync(ctx context.Context, shard int, head int64, fill func(put func(feed.Reservation) error) error) (n int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	err = fill(func(r feed.Reservation) error {
		n++
		_, err := tx.ExecContext(ctx, `INSERT INTO orders (reservation_id, resource_id, kind, user_id, quantity, status,
				check_in, check_out, created_at, updated_at, last_offset)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (reservation_id) DO UPDATE SET
				status = excluded.status, quantity = excluded.quantity, updated_at = excluded.updated_at,
				last_offset = excluded.last_offset
			WHERE excluded.last_offset > orders.last_offset`,
			r.ID, r.ResourceID, r.Kind, r.User, r.Quantity, r.Status, r.CheckIn, r.CheckOut, r.CreatedAt, r.UpdatedAt, head)
		return err
	})
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO consumer_offset (shard, last_offset) VALUES (?, ?)
		ON CONFLICT (shard) DO UPDATE SET last_offset = max(consumer_offset.last_offset, excluded.last_offset)`, shard, head)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
