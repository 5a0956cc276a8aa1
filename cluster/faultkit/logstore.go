package faultkit

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrInjected is the error of every write a fault injector fails on purpose.
var ErrInjected = errors.New("faultkit: injected fault")

// SlowLogStore wraps a Raft log store (cluster.Config.WrapLogStore) to slow
// down or fail its writes: a disk whose fsync takes long, or fails. Only
// StoreLog and StoreLogs are affected; reads and deletions pass through.
// A leader whose write fails steps down; a follower's fails the
// AppendEntries it was answering.
type SlowLogStore struct {
	raft.LogStore

	mu       sync.Mutex
	delay    time.Duration
	failNext int
	stats    LogStoreStats
}

// LogStoreStats counts the writes a SlowLogStore saw.
type LogStoreStats struct {
	// Writes counts calls of StoreLog and StoreLogs, Entries the entries
	// they carried.
	Writes, Entries uint64
	// Delayed counts the writes slowed by SetDelay, Failed those failed by
	// FailNext.
	Delayed, Failed uint64
}

var _ raft.MonotonicLogStore = (*SlowLogStore)(nil)

// NewSlowLogStore wraps inner; it behaves as inner until told otherwise.
func NewSlowLogStore(inner raft.LogStore) *SlowLogStore {
	return &SlowLogStore{LogStore: inner}
}

// SetDelay makes every later write wait d before it is done; 0 restores
// full speed.
func (s *SlowLogStore) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// FailNext makes the next n writes fail with ErrInjected, storing nothing.
func (s *SlowLogStore) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// Stats reports the writes seen so far.
func (s *SlowLogStore) Stats() LogStoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// StoreLog stores one entry, slowly or not at all if so told.
func (s *SlowLogStore) StoreLog(l *raft.Log) error {
	if err := s.before(1); err != nil {
		return err
	}
	return s.LogStore.StoreLog(l)
}

// StoreLogs stores entries, slowly or not at all if so told.
func (s *SlowLogStore) StoreLogs(logs []*raft.Log) error {
	if err := s.before(len(logs)); err != nil {
		return err
	}
	return s.LogStore.StoreLogs(logs)
}

// IsMonotonic passes the inner store's answer on, so that wrapping it does
// not change how Raft treats it after a snapshot restore.
func (s *SlowLogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// before counts a write of n entries, waits for the delay and reports the
// injected failure, if any.
func (s *SlowLogStore) before(n int) error {
	s.mu.Lock()
	s.stats.Writes++
	s.stats.Entries += uint64(n)
	d := s.delay
	if d > 0 {
		s.stats.Delayed++
	}
	fail := s.failNext > 0
	if fail {
		s.failNext--
		s.stats.Failed++
	}
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d) // the slow disk itself: the caller is meant to wait
	}
	if fail {
		return fmt.Errorf("store %d log entries: %w", n, ErrInjected)
	}
	return nil
}
