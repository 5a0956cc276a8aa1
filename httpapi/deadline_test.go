package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSharedDeadlinesBounds checks that every call's deadline lies within
// (timeout-window, timeout] of its start, that calls in one window share a
// context and later ones get a new one, and that the deadline fires.
func TestSharedDeadlinesBounds(t *testing.T) {
	const timeout = 640 * time.Millisecond
	d := newSharedDeadlines(timeout)
	if d.window != 10*time.Millisecond {
		t.Fatalf("window %s, want 10ms", d.window)
	}
	t0 := time.Now()
	first := d.context(t0)
	for _, off := range []time.Duration{0, time.Millisecond, 9 * time.Millisecond} {
		now := t0.Add(off)
		ctx := d.context(now)
		if ctx != first {
			t.Errorf("call %s into the window got a new context", off)
		}
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if left := dl.Sub(now); left > timeout || left <= timeout-d.window {
			t.Errorf("call %s into the window: deadline %s ahead, want within (%s, %s]", off, left, timeout-d.window, timeout)
		}
	}
	later := t0.Add(d.window)
	next := d.context(later)
	if next == first {
		t.Error("a call after the window reused the old context")
	}
	if dl, _ := next.Deadline(); !dl.Equal(later.Add(timeout)) {
		t.Errorf("new context deadline %s, want %s", dl, later.Add(timeout))
	}
	select {
	case <-first.Done():
		if !errors.Is(first.Err(), context.DeadlineExceeded) {
			t.Errorf("Err %v, want deadline exceeded", first.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the shared deadline never fired")
	}
}

// TestSharedDeadlinesShortTimeout checks that a timeout below 640 ms gets
// a proportionally short window: the deadline is never much earlier than
// asked.
func TestSharedDeadlinesShortTimeout(t *testing.T) {
	d := newSharedDeadlines(64 * time.Millisecond)
	if d.window != time.Millisecond {
		t.Fatalf("window %s, want 1ms", d.window)
	}
}
