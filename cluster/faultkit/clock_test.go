package faultkit

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClockSkewAndStep(t *testing.T) {
	c := NewClock()
	near := func(want time.Duration) {
		t.Helper()
		got := c.Now().Sub(time.Now().Round(0))
		if d := got - want; d < -time.Minute || d > time.Minute {
			t.Fatalf("clock is %v off the machine's, want %v", got, want)
		}
		if c.Offset() != want {
			t.Fatalf("offset %v, want %v", c.Offset(), want)
		}
	}
	near(0)
	c.Skew(time.Hour)
	near(time.Hour)
	c.Step(-90 * time.Minute)
	near(-30 * time.Minute)
	c.Skew(10 * time.Minute) // Skew sets, Step adds
	near(10 * time.Minute)
	if strings.Contains(c.Now().String(), "m=") {
		t.Fatalf("%v carries a monotonic reading: comparisons would hide the skew", c.Now())
	}
	if c.Reads() < 5 {
		t.Fatalf("reads %d", c.Reads())
	}
}

func TestClockIsSafeForConcurrentUse(t *testing.T) {
	c := NewClock()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Step(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if c.Offset() != 4*time.Second {
		t.Fatalf("offset %v after 4000 steps of 1ms", c.Offset())
	}
}
