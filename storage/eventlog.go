package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"allot/actors/domain"
)

const (
	// EventsDir is the directory under the data dir that holds EventsDBFile.
	EventsDir = "events"
	// EventsDBFile is the bbolt file with the node's copy of the change stream.
	EventsDBFile = "events.db"

	// eventsMmapSize is the initial mmap of the events file: a reader that
	// streams a snapshot holds a read transaction, and bbolt cannot grow
	// the mapping under one, so the mapping starts large (address space,
	// not memory).
	eventsMmapSize = 1 << 30
	// pruneMin is the fewest expired events one Append may delete: enough
	// that a backlog clears in a few batches, few enough to keep Apply short.
	pruneMin = 1024
	// restoreChunk is how many events a snapshot restore writes per
	// transaction.
	restoreChunk = 16 << 10
)

var (
	metaBucket = []byte("meta")
	liveKey    = []byte("live") // the name of the bucket the stream is in
)

// EventLog is this node's copy of the change stream (domain/change.go): the
// records the FSM made from committed entries, keyed by offset, in their
// own bbolt file beside the Raft log (which is truncated after snapshots,
// so it cannot hold them). Only the FSM goroutine writes; readers on any
// goroutine see records up to Head.
//
// The file is written without fsync. It is derived state: the snapshots
// carry the records the log no longer has, and the log tail makes the rest
// again on restart, so a lost write is made again rather than lost. A file
// that does not open (a crash of the machine, not of the process, can tear
// an unsynced file) is set aside and rebuilt the same way.
//
// A record is the leader time of its change (8 bytes, big endian), its type
// (1 byte), its resource id (uvarint length and bytes) and the change as the
// API shows it (JSON): readers filter by type and resource without decoding
// it and copy the JSON as it is, so serving many consumers renders nothing
// again.
type EventLog struct {
	db        *bbolt.DB
	retention int64 // ns; records older than the newest change's time minus this go, 0 = keep
	logger    *slog.Logger

	head atomic.Uint64 // the last offset readers may see

	changed atomic.Pointer[chan struct{}] // closed and replaced when head moves

	// pinMu orders pins against a restore's switch of buckets, so a bucket
	// is deleted exactly once: by the switch when unpinned, else by the
	// last Unpin.
	pinMu   sync.Mutex
	pins    []*EventPin     // snapshots being streamed
	retired map[string]bool // buckets switched away from while pinned
}

// OpenEventLog opens (creating if needed) the event log under dataDir. It
// keeps every record until SetRetention says otherwise.
func OpenEventLog(dataDir string, logger *slog.Logger) (*EventLog, error) {
	if logger == nil {
		logger = slog.Default()
	}
	dir := filepath.Join(dataDir, EventsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, EventsDBFile)
	db, err := openEventsDB(path)
	if err != nil && !errors.Is(err, bbolt.ErrTimeout) {
		aside := path + ".unreadable"
		logger.Warn("the event log does not open; it is set aside and rebuilt from the snapshot and the log",
			slog.String("error", err.Error()), slog.String("moved_to", aside))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("storage: set aside %s: %w", path, rerr)
		}
		db, err = openEventsDB(path)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open %s (in use by another process?): %w", path, err)
	}
	l := &EventLog{db: db, logger: logger, retired: make(map[string]bool)}
	ch := make(chan struct{})
	l.changed.Store(&ch)
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		name := meta.Get(liveKey)
		if name == nil {
			name = []byte("events.1")
			if err := meta.Put(liveKey, name); err != nil {
				return err
			}
		}
		name = append([]byte(nil), name...)
		if _, err = tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
		return dropOtherBuckets(tx, name)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: prepare %s: %w", path, err)
	}
	return l, nil
}

// dropOtherBuckets deletes the buckets a process that stopped left behind:
// one a snapshot still streamed when a restore switched away from it, or
// one a restore was writing.
func dropOtherBuckets(tx *bbolt.Tx, live []byte) error {
	var stale [][]byte
	err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if !bytes.Equal(name, metaBucket) && !bytes.Equal(name, live) {
			stale = append(stale, append([]byte(nil), name...))
		}
		return nil
	})
	for _, name := range stale {
		if err == nil {
			err = tx.DeleteBucket(name)
		}
	}
	return err
}

// liveName is the name of the bucket the stream is in, as of tx: read in
// the transaction that uses it, so a restore's switch never leaves a reader
// with a bucket its transaction does not have.
func liveName(tx *bbolt.Tx) []byte { return tx.Bucket(metaBucket).Get(liveKey) }

func openEventsDB(path string) (*bbolt.DB, error) {
	return bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         openTimeout,
		NoSync:          true, // derived state, see EventLog
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: eventsMmapSize,
	})
}

// SetRetention makes Append prune records older than d before the newest
// change (by leader time); 0 keeps them. Call it before the FSM applies.
func (l *EventLog) SetRetention(d time.Duration) { l.retention = int64(d) }

// Close closes the file.
func (l *EventLog) Close() error { return l.db.Close() }

// Head is the offset of the newest record readers may see.
func (l *EventLog) Head() uint64 { return l.head.Load() }

// Changed returns a channel that is closed once Head has moved past what
// it was when Changed was called: a waiting reader selects on it and costs
// nothing until then. One channel serves every waiter.
func (l *EventLog) Changed() <-chan struct{} { return *l.changed.Load() }

// publish makes records up to head visible and wakes the waiters.
func (l *EventLog) publish(head uint64) {
	l.head.Store(head)
	ch := make(chan struct{})
	close(*l.changed.Swap(&ch))
}

// EventBatch collects the records of one FSM apply, to be appended in one
// transaction. Reuse it with Reset.
type EventBatch struct {
	buf    []byte
	ends   []int
	first  uint64
	lastAt int64
}

// Reset empties the batch, keeping its memory.
func (b *EventBatch) Reset() {
	b.buf, b.ends, b.first, b.lastAt = b.buf[:0], b.ends[:0], 0, 0
}

// Len is the number of records in the batch.
func (b *EventBatch) Len() int { return len(b.ends) }

// Add starts the record of change ch, which must have the next offset, and
// returns the buffer to append its JSON to; End finishes it.
func (b *EventBatch) Add(ch *domain.Change) []byte {
	if len(b.ends) == 0 {
		b.first = ch.Offset
	}
	b.lastAt = ch.At
	b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(ch.At))
	b.buf = append(b.buf, byte(ch.Type))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(ch.ResourceID)))
	b.buf = append(b.buf, ch.ResourceID...)
	return b.buf
}

// End records the buffer Add returned, with the JSON appended.
func (b *EventBatch) End(buf []byte) {
	b.buf = buf
	b.ends = append(b.ends, len(buf))
}

// Append writes the batch's records and makes them visible, and prunes
// records older than the retention before the batch's newest change.
// Writing a record that is there already (replay after a restart) writes
// the same bytes again.
func (l *EventLog) Append(b *EventBatch) error {
	if len(b.ends) == 0 {
		return nil
	}
	last := b.first + uint64(len(b.ends)) - 1
	// The pins are read before the transaction: a restore holds pinMu
	// while it waits for the writer's lock.
	l.pinMu.Lock()
	pins := slices.Clone(l.pins)
	l.pinMu.Unlock()
	err := l.db.Update(func(tx *bbolt.Tx) error {
		name := liveName(tx)
		bk := tx.Bucket(name)
		bk.FillPercent = 1 // keys only ever grow
		var key [8]byte
		start := 0
		for i, end := range b.ends {
			binary.BigEndian.PutUint64(key[:], b.first+uint64(i))
			if err := bk.Put(key[:], b.buf[start:end]); err != nil {
				return err
			}
			start = end
		}
		return l.prune(bk, lowestPin(pins, name), b.lastAt, max(2*len(b.ends), pruneMin))
	})
	if err != nil {
		return fmt.Errorf("storage: append events %d..%d: %w", b.first, last, err)
	}
	l.publish(last)
	return nil
}

// prune deletes up to n records older than the retention before newest,
// oldest first, none at or after pin (0: none pinned).
func (l *EventLog) prune(bk *bbolt.Bucket, pin uint64, newest int64, n int) error {
	if l.retention <= 0 {
		return nil
	}
	cutoff := newest - l.retention
	c := bk.Cursor()
	for k, v := c.First(); k != nil && n > 0; k, v = c.First() {
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) >= cutoff || (pin != 0 && binary.BigEndian.Uint64(k) >= pin) {
			return nil
		}
		if err := c.Delete(); err != nil {
			return err
		}
		n--
	}
	return nil
}

// EventRecord is one stored record, valid only inside the Read callback.
type EventRecord struct {
	Offset uint64
	raw    []byte
}

// At is the leader time of the change, Unix ns.
func (r EventRecord) At() int64 { return int64(binary.BigEndian.Uint64(r.raw)) }

// Type is the change type.
func (r EventRecord) Type() domain.ChangeType { return domain.ChangeType(r.raw[8]) }

// ResourceID is the resource the change is about (shared bytes: copy to keep).
func (r EventRecord) ResourceID() []byte {
	n, k := binary.Uvarint(r.raw[9:])
	return r.raw[9+k : 9+k+int(n)]
}

// JSON is the change as the API shows it (shared bytes: copy to keep).
func (r EventRecord) JSON() []byte {
	n, k := binary.Uvarint(r.raw[9:])
	return r.raw[9+k+int(n):]
}

// Raw is the whole record, as snapshots carry it.
func (r EventRecord) Raw() []byte { return r.raw }

// validRecord reports whether raw has the record layout.
func validRecord(raw []byte) bool {
	if len(raw) < 10 {
		return false
	}
	n, k := binary.Uvarint(raw[9:])
	return k > 0 && uint64(len(raw)-9-k) >= n
}

// CompactedError says the records after an offset were pruned.
type CompactedError struct {
	After    uint64
	Earliest uint64 // the oldest record kept
}

func (e *CompactedError) Error() string {
	return "events after " + strconv.FormatUint(e.After, 10) + " were pruned; the oldest kept is " + strconv.FormatUint(e.Earliest, 10)
}

// Read calls fn for the records with offsets after `after` up to Head,
// oldest first, until fn returns false. It returns the oldest offset kept
// (Head+1 when none), and a *CompactedError when records right after
// `after` are gone. fn runs inside a read transaction: it must not block.
func (l *EventLog) Read(after uint64, fn func(EventRecord) bool) (earliest uint64, err error) {
	head := l.head.Load()
	err = l.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(liveName(tx)).Cursor()
		k, _ := c.First()
		earliest = head + 1
		if k != nil && binary.BigEndian.Uint64(k) <= head {
			earliest = binary.BigEndian.Uint64(k)
		}
		if after >= head {
			return nil
		}
		if after+1 < earliest {
			return &CompactedError{After: after, Earliest: earliest}
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], after+1)
		for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
			off := binary.BigEndian.Uint64(k)
			if off > head || !fn(EventRecord{Offset: off, raw: v}) {
				return nil
			}
		}
		return nil
	})
	return earliest, err
}

// Earliest is the oldest offset kept (Head+1 when none).
func (l *EventLog) Earliest() uint64 {
	e, _ := l.Read(l.head.Load(), func(EventRecord) bool { return false })
	return e
}

// EventPin keeps the records of the stream from an offset on, as they
// were when it was taken, for a snapshot that streams them: retention
// prunes none of them, and a restore that replaces the stream meanwhile
// leaves the pinned bucket until Unpin, so the snapshot reads on from the
// bucket it started in.
type EventPin struct {
	l      *EventLog
	from   uint64
	bucket []byte
}

// Pin pins the records from offset from on.
func (l *EventLog) Pin(from uint64) *EventPin {
	p := &EventPin{l: l, from: max(from, 1)}
	l.pinMu.Lock() // a restore switches buckets under it
	defer l.pinMu.Unlock()
	_ = l.db.View(func(tx *bbolt.Tx) error {
		p.bucket = append([]byte(nil), liveName(tx)...)
		return nil
	})
	l.pins = append(l.pins, p)
	return p
}

// Unpin releases the pin; a bucket a restore switched away from goes with
// its last pin. Calling it again does nothing.
func (p *EventPin) Unpin() {
	l := p.l
	l.pinMu.Lock()
	found := false
	for i, q := range l.pins {
		if q == p {
			l.pins = append(l.pins[:i], l.pins[i+1:]...)
			found = true
			break
		}
	}
	drop := found && l.retired[string(p.bucket)] && !l.pinnedLocked(p.bucket)
	if drop {
		delete(l.retired, string(p.bucket))
	}
	l.pinMu.Unlock()
	if !drop {
		return
	}
	if err := l.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(p.bucket) }); err != nil {
		l.logger.Warn("the events a snapshot streamed before a restore are not deleted; the next start deletes them",
			slog.String("bucket", string(p.bucket)), slog.String("error", err.Error()))
	}
}

// pinnedLocked reports whether a pin holds bucket; pinMu is held.
func (l *EventLog) pinnedLocked(bucket []byte) bool {
	for _, p := range l.pins {
		if bytes.Equal(p.bucket, bucket) {
			return true
		}
	}
	return false
}

// lowestPin is the lowest offset pins pin in bucket, 0 when none.
func lowestPin(pins []*EventPin, bucket []byte) uint64 {
	var low uint64
	for _, p := range pins {
		if bytes.Equal(p.bucket, bucket) && (low == 0 || p.from < low) {
			low = p.from
		}
	}
	return low
}

// EachUpTo calls fn with the raw records of the pinned bucket from the
// pin's offset up to head, in chunks read in short transactions (fn runs
// outside them, so a slow snapshot sink holds up no writer).
func (p *EventPin) EachUpTo(head uint64, fn func(off uint64, raw []byte) error) error {
	const chunk = 4096
	var buf []byte
	var offs []uint64
	var ends []int
	next := p.from
	for next <= head {
		buf, offs, ends = buf[:0], offs[:0], ends[:0]
		err := p.l.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(p.bucket).Cursor()
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], next)
			for k, v := c.Seek(key[:]); k != nil && len(offs) < chunk; k, v = c.Next() {
				off := binary.BigEndian.Uint64(k)
				if off > head {
					break
				}
				buf = append(buf, v...)
				offs, ends = append(offs, off), append(ends, len(buf))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: read events from %d: %w", next, err)
		}
		if len(offs) == 0 {
			return nil
		}
		start := 0
		for i, off := range offs {
			if off != next {
				return fmt.Errorf("storage: event %d missing while streaming a snapshot (found %d): %w", next, off, domain.ErrCorrupt)
			}
			if err := fn(off, buf[start:ends[i]]); err != nil {
				return err
			}
			start = ends[i]
			next++
		}
	}
	return nil
}

// EventRestore replaces the stream with a snapshot's records: Add each of
// them in offset order, then Commit with the snapshot's head, or Abort. When
// this node's stream already holds every record of the snapshot (a restart
// from its own snapshot), nothing is written; else the records go into a new
// bucket that replaces the old one only on Commit, so a snapshot that turns
// out corrupt changes nothing.
type EventRestore struct {
	l       *EventLog
	head    uint64 // the snapshot's
	first   uint64 // of the snapshot's records, 0 before the first
	next    uint64
	keep    bool   // the live bucket holds the snapshot's records already
	staged  []byte // the new bucket's name, nil while nothing is written
	pending []restoreRec
	size    int
	err     error
}

type restoreRec struct {
	off uint64
	raw []byte
}

// BeginRestore starts replacing the stream with that of a snapshot whose
// last change has offset head.
func (l *EventLog) BeginRestore(head uint64) *EventRestore { return &EventRestore{l: l, head: head} }

// Add adds the record at offset off.
func (r *EventRestore) Add(off uint64, raw []byte) error {
	if r.err != nil {
		return r.err
	}
	if !validRecord(raw) || off == 0 || off > r.head || (r.first != 0 && off != r.next) {
		return fmt.Errorf("snapshot event %d (expected %d, head %d): %w", off, r.next, r.head, domain.ErrCorrupt)
	}
	if r.first == 0 {
		r.first = off
		r.keep = r.covered(off, r.head)
	}
	r.next = off + 1
	if r.keep {
		return nil
	}
	r.pending = append(r.pending, restoreRec{off, append([]byte(nil), raw...)})
	r.size += len(raw)
	if len(r.pending) >= restoreChunk || r.size >= 16<<20 {
		r.err = r.flush()
	}
	return r.err
}

// covered reports whether the live bucket holds offsets first..last.
func (r *EventRestore) covered(first, last uint64) bool {
	ok := false
	_ = r.l.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(liveName(tx)).Cursor()
		k, _ := c.First()
		lk, _ := c.Last()
		ok = k != nil && binary.BigEndian.Uint64(k) <= first && binary.BigEndian.Uint64(lk) >= last
		return nil
	})
	return ok
}

// flush writes the pending records into the staged bucket, creating it on
// the first flush.
func (r *EventRestore) flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	defer func() { r.pending, r.size = r.pending[:0], 0 }()
	return r.l.db.Update(func(tx *bbolt.Tx) error {
		if r.staged == nil {
			name := []byte("events." + strconv.FormatUint(nextBucket(liveName(tx)), 10))
			_ = tx.DeleteBucket(name) // left by a restore that did not finish
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
			r.staged = name
		}
		bk := tx.Bucket(r.staged)
		bk.FillPercent = 1
		var key [8]byte
		for _, rec := range r.pending {
			binary.BigEndian.PutUint64(key[:], rec.off)
			if err := bk.Put(key[:], rec.raw); err != nil {
				return err
			}
		}
		return nil
	})
}

func nextBucket(name []byte) uint64 {
	n, _ := strconv.ParseUint(string(name[len("events."):]), 10, 64)
	return n + 1
}

// Commit makes the snapshot's stream the node's.
func (r *EventRestore) Commit() error {
	head := r.head
	if r.err != nil {
		return r.err
	}
	if r.first != 0 && r.next != head+1 {
		return fmt.Errorf("snapshot events end at %d, its head is %d: %w", r.next-1, head, domain.ErrCorrupt)
	}
	// Keep the live records if they hold the snapshot's already (or, for a
	// snapshot without records, reach its head).
	if r.keep || r.first == 0 && (head == 0 || r.covered(head, head)) {
		r.l.publish(head)
		return nil
	}
	if err := r.flushAll(); err != nil {
		return err
	}
	// A bucket a snapshot still streams stays until its last Unpin.
	l := r.l
	l.pinMu.Lock()
	var old []byte
	err := l.db.Update(func(tx *bbolt.Tx) error {
		old = append([]byte(nil), liveName(tx)...)
		if err := tx.Bucket(metaBucket).Put(liveKey, r.staged); err != nil {
			return err
		}
		if l.pinnedLocked(old) {
			return nil
		}
		return tx.DeleteBucket(old)
	})
	if err == nil && l.pinnedLocked(old) {
		l.retired[string(old)] = true
	}
	l.pinMu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: switch to the snapshot's events: %w", err)
	}
	l.publish(head)
	return nil
}

// flushAll writes what is pending, creating the staged bucket even when
// the snapshot has no records.
func (r *EventRestore) flushAll() error {
	if err := r.flush(); err != nil {
		return err
	}
	if r.staged != nil {
		return nil
	}
	return r.l.db.Update(func(tx *bbolt.Tx) error {
		name := []byte("events." + strconv.FormatUint(nextBucket(liveName(tx)), 10))
		_ = tx.DeleteBucket(name)
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
		r.staged = name
		return nil
	})
}

// Abort drops what a restore that failed wrote.
func (r *EventRestore) Abort() {
	if r.staged == nil {
		return
	}
	_ = r.l.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(r.staged) })
}
