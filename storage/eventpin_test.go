package storage

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// A restore that replaces the stream while a snapshot streams it does not
// change what the snapshot reads: it goes on with the records of the
// bucket it was pinned on, and that bucket goes once it is unpinned.
func TestEventPinOutlivesRestore(t *testing.T) {
	l, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const head = 10000 // more than one chunk of EachUpTo
	appendChanges(t, l, 1, head, func(uint64) int64 { return 1 })

	// The leader's snapshot, as a lagging follower installs it: its records
	// start later (the leader pruned more) and reach further.
	leader, err := OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	appendChanges(t, leader, 1, head+10, func(uint64) int64 { return 1 })
	snap := map[uint64][]byte{}
	lp := leader.Pin(1)
	if err := lp.EachUpTo(head+10, func(off uint64, raw []byte) error {
		if off >= 6000 {
			snap[off] = append([]byte(nil), raw...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lp.Unpin()

	p := l.Pin(l.Earliest())
	restored := make(chan error, 1)
	var got []uint64
	err = p.EachUpTo(head, func(off uint64, raw []byte) error {
		if want := fmt.Sprintf(`{"offset":%d}`, off); !bytes.HasSuffix(raw, []byte(want)) {
			return fmt.Errorf("record %d is %q", off, raw)
		}
		got = append(got, off)
		if off == 100 { // Persist is under way: the FSM goroutine restores
			go func() {
				r := l.BeginRestore(head + 10)
				for o := uint64(6000); o <= head+10; o++ {
					if err := r.Add(o, snap[o]); err != nil {
						restored <- err
						return
					}
				}
				restored <- r.Commit()
			}()
			if err := <-restored; err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
		return nil
	})
	if err != nil || len(got) != head || got[head-1] != head {
		t.Fatalf("streamed %d records (last %v) across a restore: %v", len(got), got[len(got)-1:], err)
	}
	if offs, e, err := readAll(t, l, 5999); err != nil || e != 6000 || len(offs) != head+10-5999 {
		t.Fatalf("after the restore: %d records, earliest %d, %v", len(offs), e, err)
	}
	if n := l.buckets(t); n != 3 { // meta, the live one, the pinned old one
		t.Fatalf("%d buckets while the old one is pinned", n)
	}
	p.Unpin()
	if n := l.buckets(t); n != 2 {
		t.Fatalf("%d buckets after the unpin", n)
	}
}

// buckets counts the buckets of the file.
func (l *EventLog) buckets(t *testing.T) int {
	t.Helper()
	n := 0
	if err := l.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func([]byte, *bbolt.Bucket) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention is per node: the same appends leave a node that was streaming
// a snapshot (a pin) with an older earliest than one that was not, at the
// same head, until a later append prunes on.
func TestEventLogEarliestIsPerNode(t *testing.T) {
	at := func(off uint64) int64 { return int64(off) }
	open := func() *EventLog {
		l, err := OpenEventLog(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		l.SetRetention(10 * time.Nanosecond)
		appendChanges(t, l, 1, 10, at)
		return l
	}
	a, b := open(), open()
	pin := b.Pin(b.Earliest())
	appendChanges(t, a, 11, 30, at)
	appendChanges(t, b, 11, 30, at)
	pin.Unpin()
	if a.Head() != b.Head() || a.Earliest() != 20 || b.Earliest() != 1 {
		t.Fatalf("head %d and %d, earliest %d and %d", a.Head(), b.Head(), a.Earliest(), b.Earliest())
	}
	if _, err := b.Read(5, func(EventRecord) bool { return true }); err != nil {
		t.Fatalf("read after 5 where it is kept: %v", err)
	}
	if _, err := a.Read(5, func(EventRecord) bool { return true }); err == nil {
		t.Fatal("read after 5 where it is pruned: no error")
	}
	appendChanges(t, b, 31, 31, at)
	if a.Earliest() != 20 || b.Earliest() != 21 {
		t.Fatalf("after the next append: earliest %d and %d", a.Earliest(), b.Earliest())
	}
}
