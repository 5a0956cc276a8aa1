package server

import (
	"fmt"
	"testing"
	"time"

	"allot/actors"
	"allot/actors/domain"
	"allot/storage"
)

// TestEventSourcePruned: the event log answers a read from behind its
// retention with a *storage.CompactedError; webhook delivery is given the
// oldest offset kept and no error instead, which it takes as "skip to
// there" (actors.EventSource), not as a failure to retry for ever.
func TestEventSourcePruned(t *testing.T) {
	l, err := storage.OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetRetention(10 * time.Nanosecond)
	var b storage.EventBatch
	for off := uint64(1); off <= 30; off++ {
		ch := domain.Change{Offset: off, Type: domain.ChangeReservationHeld, At: int64(off), ResourceID: "r"}
		b.End(fmt.Appendf(b.Add(&ch), `{"offset":%d}`, off))
	}
	if err := l.Append(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(3, func(storage.EventRecord) bool { return true }); err == nil {
		t.Fatal("the log read from behind its retention without an error")
	}
	src := eventSource{l}
	calls := 0
	earliest, err := src.ReadEvents(3, func(actors.StreamEvent) bool { calls++; return true })
	if err != nil || earliest != 20 || calls != 0 {
		t.Fatalf("read after 3, records from 20 on: earliest %d, %d events, %v", earliest, calls, err)
	}
	var offs []uint64
	earliest, err = src.ReadEvents(earliest-1, func(ev actors.StreamEvent) bool { offs = append(offs, ev.Offset); return true })
	if err != nil || earliest != 20 || len(offs) != 11 || offs[0] != 20 {
		t.Fatalf("read after earliest-1: %v, earliest %d, %v", offs, earliest, err)
	}
}
