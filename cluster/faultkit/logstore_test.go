package faultkit

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestSlowLogStoreDelaysWrites(t *testing.T) {
	s := NewSlowLogStore(raft.NewInmemStore())
	const d = 100 * time.Millisecond
	s.SetDelay(d)
	start := time.Now()
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < d {
		t.Fatalf("a slow write took %v, want at least %v", took, d)
	}
	s.SetDelay(0)
	if err := s.StoreLog(&raft.Log{Index: 3, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 3 {
		t.Fatalf("last index %d", last)
	}
	if st := s.Stats(); st.Writes != 2 || st.Entries != 3 || st.Delayed != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSlowLogStoreFailsTheNextWrites(t *testing.T) {
	s := NewSlowLogStore(raft.NewInmemStore())
	s.FailNext(2)
	for i := range 2 {
		err := s.StoreLog(&raft.Log{Index: 1, Term: 1})
		if !errors.Is(err, ErrInjected) {
			t.Fatalf("write %d: %v, want ErrInjected", i, err)
		}
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("a failed write stored its entry: %v", err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}}); err != nil {
		t.Fatalf("third write: %v", err)
	}
	if st := s.Stats(); st.Writes != 3 || st.Failed != 2 {
		t.Fatalf("stats %+v", st)
	}
	if s.IsMonotonic() {
		t.Fatal("an in-memory store is not monotonic")
	}
}
