package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"allot/actors/domain"
)

// appendChanges appends changes first..last of resource "r" at leader times
// at(offset) through one batch.
func appendChanges(t *testing.T, l *EventLog, first, last uint64, at func(uint64) int64) {
	t.Helper()
	var b EventBatch
	for off := first; off <= last; off++ {
		ch := domain.Change{Offset: off, Type: domain.ChangeReservationHeld, At: at(off), ResourceID: "r"}
		b.End(fmt.Appendf(b.Add(&ch), `{"offset":%d}`, off))
	}
	if err := l.Append(&b); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, l *EventLog, after uint64) (offs []uint64, earliest uint64, err error) {
	t.Helper()
	earliest, err = l.Read(after, func(r EventRecord) bool {
		if want := fmt.Sprintf(`{"offset":%d}`, r.Offset); string(r.JSON()) != want || string(r.ResourceID()) != "r" || r.Type() != domain.ChangeReservationHeld {
			t.Fatalf("record %d: %q %q %v", r.Offset, r.JSON(), r.ResourceID(), r.Type())
		}
		offs = append(offs, r.Offset)
		return true
	})
	return offs, earliest, err
}

func TestEventLogAppendReadWake(t *testing.T) {
	l, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wake := l.Changed()
	appendChanges(t, l, 1, 5, func(uint64) int64 { return 1 })
	select {
	case <-wake:
	default:
		t.Fatal("Changed was not closed by an append")
	}
	if l.Head() != 5 {
		t.Fatalf("head %d", l.Head())
	}
	offs, earliest, err := readAll(t, l, 2)
	if err != nil || earliest != 1 || fmt.Sprint(offs) != "[3 4 5]" {
		t.Fatalf("after 2: %v earliest %d %v", offs, earliest, err)
	}
	if offs, _, _ := readAll(t, l, 5); len(offs) != 0 {
		t.Fatalf("after head: %v", offs)
	}
}

// Retention prunes by leader time, oldest first, never a pinned record; a
// read from before what is kept is refused with the oldest offset kept.
func TestEventLogRetentionAndPin(t *testing.T) {
	l, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetRetention(10 * time.Nanosecond)
	at := func(off uint64) int64 { return int64(off) }
	appendChanges(t, l, 1, 10, at)
	pin := l.Pin(5)
	appendChanges(t, l, 11, 30, at) // newest 30: cutoff 20, but 5.. is pinned
	if e := l.Earliest(); e != 5 {
		t.Fatalf("earliest with a pin at 5: %d", e)
	}
	pin.Unpin()
	appendChanges(t, l, 31, 31, at) // cutoff 21
	if e := l.Earliest(); e != 21 {
		t.Fatalf("earliest after unpin: %d", e)
	}
	_, _, err = readAll(t, l, 3)
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Earliest != 21 {
		t.Fatalf("read after 3: %v", err)
	}
	if offs, _, err := readAll(t, l, 20); err != nil || len(offs) != 11 || offs[0] != 21 {
		t.Fatalf("read after 20 (earliest-1): %v %v", offs, err)
	}
}

// A restore from a snapshot whose records this node holds writes nothing;
// one it lacks replaces the stream only on Commit, and an aborted one
// leaves it as it was.
func TestEventRestore(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenEventLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendChanges(t, l, 1, 8, func(uint64) int64 { return 1 })
	snap := map[uint64][]byte{}
	pin := l.Pin(3)
	if err := pin.EachUpTo(8, func(off uint64, raw []byte) error {
		snap[off] = append([]byte(nil), raw...)
		return nil
	}); err != nil || len(snap) != 6 {
		t.Fatalf("each: %d records, %v", len(snap), err)
	}
	pin.Unpin()
	restore := func(first, head uint64, commit bool) error {
		r := l.BeginRestore(head)
		for off := first; off <= head; off++ {
			if err := r.Add(off, snap[off]); err != nil {
				return err
			}
		}
		if !commit {
			r.Abort()
			return nil
		}
		return r.Commit()
	}
	// Its own snapshot: kept as is, records 1..8 stay, head 6 visible.
	if err := restore(3, 6, true); err != nil {
		t.Fatal(err)
	}
	if offs, e, _ := readAll(t, l, 0); e != 1 || fmt.Sprint(offs) != "[1 2 3 4 5 6]" {
		t.Fatalf("after own restore: %v earliest %d", offs, e)
	}
	appendChanges(t, l, 7, 8, func(uint64) int64 { return 1 })

	// A wiped node's stream: the snapshot's records replace it.
	other, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	appendChanges(t, other, 1, 1, func(uint64) int64 { return 1 })
	r := other.BeginRestore(8)
	for off := uint64(3); off <= 8; off++ {
		if err := r.Add(off, snap[off]); err != nil {
			t.Fatal(err)
		}
	}
	if other.Head() != 1 {
		t.Fatal("records visible before Commit")
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if offs, e, _ := readAll(t, other, 2); e != 3 || fmt.Sprint(offs) != "[3 4 5 6 7 8]" {
		t.Fatalf("installed: %v earliest %d", offs, e)
	}
	// Out of order and beyond head are corruption.
	r = other.BeginRestore(8)
	if err := r.Add(3, snap[3]); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(5, snap[5]); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("gap: %v", err)
	}
	r.Abort()
	if offs, _, _ := readAll(t, other, 2); fmt.Sprint(offs) != "[3 4 5 6 7 8]" {
		t.Fatalf("after abort: %v", offs)
	}
}

// A file that does not open is set aside and a new one made: the stream
// is rebuilt from snapshot and log.
func TestEventLogUnreadableFileSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, EventsDir, EventsDBFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAB}, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := OpenEventLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendChanges(t, l, 1, 2, func(uint64) int64 { return 1 })
	if _, err := os.Stat(path + ".unreadable"); err != nil {
		t.Fatal(err)
	}
}

// The snapshot stream carries the event head and records; ReadSnapshotWith
// hands them to the sink in order.
func TestSnapshotCarriesEvents(t *testing.T) {
	l, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendChanges(t, l, 1, 4, func(uint64) int64 { return 1 })
	st := domain.NewState()
	st.LoadEventHead(4)
	var buf bytes.Buffer
	if err := WriteSnapshotWith(&buf, st, func(fn func(uint64, []byte) error) error {
		pin := l.Pin(2)
		defer pin.Unpin()
		return pin.EachUpTo(4, fn)
	}); err != nil {
		t.Fatal(err)
	}
	if v := buf.Bytes()[len(snapshotMagic)]; v != SnapshotVersion {
		t.Fatalf("version %d", v)
	}
	other, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var r *EventRestore
	got, err := ReadSnapshotWith(bytes.NewReader(buf.Bytes()), func(head uint64) EventSink {
		r = other.BeginRestore(head)
		return r
	})
	if err != nil || got.EventHead() != 4 {
		t.Fatalf("read: head %v, %v", got, err)
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if offs, e, _ := readAll(t, other, 1); e != 2 || fmt.Sprint(offs) != "[2 3 4]" {
		t.Fatalf("restored: %v earliest %d", offs, e)
	}
	// A flipped byte in an event record fails the checksum.
	data := bytes.Clone(buf.Bytes())
	data[len(data)-20] ^= 1
	if _, err := ReadSnapshot(bytes.NewReader(data)); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
}
