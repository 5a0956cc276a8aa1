package verify

import (
	"strings"
	"testing"
)

// rsvEvent is a reservation event: rid moved from from to status on res.
func rsvEvent(off int64, res, rid, from, status string) Event {
	return Event{Offset: off, Type: "reservation." + status, From: from, ResourceID: res, ReservationID: rid, Status: status}
}

// consistentStream is the change stream that made consistent()'s state,
// with another run's reservation in it too.
func consistentStream() *Stream {
	evs := []Event{
		{Offset: 1, Type: "resource.created", ResourceID: "v1"},
		{Offset: 2, Type: "resource.created", ResourceID: "v2"},
		{Offset: 3, Type: "resource.created", ResourceID: "h1"},
		rsvEvent(4, "v1", "r1", "", StatusHeld),
		rsvEvent(5, "v1", "r2", "", StatusHeld),
		rsvEvent(6, "v1", "r3", "", StatusHeld),
		rsvEvent(7, "v1", "r2", StatusHeld, StatusConfirmed),
		rsvEvent(8, "v1", "r3", StatusHeld, StatusCancelled),
		rsvEvent(9, "v2", "r7", "", StatusConfirmed), // hold_seconds 0
		rsvEvent(10, "v2", "r7", StatusConfirmed, StatusCompleted),
		rsvEvent(11, "h1", "r4", "", StatusHeld),
		rsvEvent(12, "h1", "r4", StatusHeld, StatusConfirmed),
		rsvEvent(13, "h1", "r4", StatusConfirmed, StatusCheckedIn),
		rsvEvent(14, "h1", "r5", "", StatusHeld),
		rsvEvent(15, "h1", "r6", "", StatusHeld),
		rsvEvent(16, "h1", "r6", StatusHeld, StatusExpired),
		rsvEvent(17, "elsewhere", "x1", StatusCancelled, StatusConfirmed), // not this run's: not checked
	}
	return &Stream{After: 0, Head: 17, Events: evs}
}

func withStream() Input {
	in := consistent()
	in.Stream = consistentStream()
	return in
}

func TestConsistentStreamPasses(t *testing.T) {
	r := Verify(withStream())
	if !r.Pass {
		t.Fatalf("consistent stream failed: %+v", failed(r))
	}
	names := map[string]bool{}
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Name, "stream_") {
			names[c.Name] = true
			if c.Checked == 0 {
				t.Errorf("check %s looked at nothing", c.Name)
			}
		}
	}
	if len(names) != 5 {
		t.Errorf("stream checks %v, want 5", names)
	}
	want := StreamSummary{After: 0, Head: 17, Events: 17, Reservations: 7, Created: 7, Transitions: 6}
	if r.Stream == nil || *r.Stream != want {
		t.Errorf("summary %+v, want %+v", r.Stream, want)
	}
}

func TestNoStreamNoStreamChecks(t *testing.T) {
	r := Verify(consistent())
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Name, "stream_") {
			t.Errorf("check %s ran without a stream", c.Name)
		}
	}
	if r.Stream != nil {
		t.Errorf("summary %+v without a stream", r.Stream)
	}
}

// A stream read after older events were compacted starts at earliest.
func TestStreamAfterCompactionPasses(t *testing.T) {
	in := withStream()
	in.Stream.After = 3
	in.Stream.Events = in.Stream.Events[3:]
	if r := Verify(in); !r.Pass {
		t.Fatalf("failed: %+v", failed(r))
	}
}

// A hold read back as held may expire before the stream is read.
func TestHoldExpiredAfterTheReadBackPasses(t *testing.T) {
	in := withStream()
	s := in.Stream
	s.Events = append(s.Events, rsvEvent(18, "v1", "r1", StatusHeld, StatusExpired))
	s.Head = 18
	if r := Verify(in); !r.Pass {
		t.Fatalf("failed: %+v", failed(r))
	}
}

func TestBrokenStreamsFail(t *testing.T) {
	replace := func(s *Stream, off int64, e Event) {
		e.Offset = off
		s.Events[off-1-s.After] = e
	}
	tests := []struct {
		name   string
		checks []string // checks that must fail
		mutate func(in *Input)
	}{
		{"201 missing from the stream", []string{"stream_acks_created_once", "stream_matches_state"}, func(in *Input) {
			replace(in.Stream, 4, Event{Type: "resource.updated", ResourceID: "v1"})
		}},
		{"201 created twice", []string{"stream_acks_created_once", "stream_lifecycle_order"}, func(in *Input) {
			s := in.Stream
			s.Events = append(s.Events, rsvEvent(18, "v1", "r1", "", StatusHeld))
			s.Head = 18
		}},
		{"created on another resource", []string{"stream_acks_created_once"}, func(in *Input) {
			replace(in.Stream, 4, rsvEvent(0, "v2", "r1", "", StatusHeld))
		}},
		{"offsets out of order", []string{"stream_offsets_contiguous"}, func(in *Input) {
			s := in.Stream
			s.Events[6], s.Events[7] = s.Events[7], s.Events[6]
		}},
		{"offset repeated", []string{"stream_offsets_contiguous"}, func(in *Input) {
			s := in.Stream
			s.Events = append(s.Events[:6], append([]Event{s.Events[5]}, s.Events[6:]...)...)
		}},
		{"transitions out of order", []string{"stream_lifecycle_order"}, func(in *Input) {
			// r2 confirmed at 5, made at 7: the offsets are fine, the order is not.
			replace(in.Stream, 5, rsvEvent(0, "v1", "r2", StatusHeld, StatusConfirmed))
			replace(in.Stream, 7, rsvEvent(0, "v1", "r2", "", StatusHeld))
		}},
		{"gap", []string{"stream_offsets_contiguous"}, func(in *Input) {
			s := in.Stream
			s.Events = append(s.Events[:9:9], s.Events[10:]...) // 10 is gone
		}},
		{"stream short of head", []string{"stream_offsets_contiguous"}, func(in *Input) {
			in.Stream.Head = 20
		}},
		{"leaves a status it was not in", []string{"stream_lifecycle_order"}, func(in *Input) {
			replace(in.Stream, 7, rsvEvent(0, "v1", "r2", StatusCheckedIn, StatusConfirmed))
		}},
		{"not a lifecycle transition", []string{"stream_lifecycle_order"}, func(in *Input) {
			replace(in.Stream, 16, rsvEvent(0, "h1", "r6", StatusHeld, StatusCheckedIn))
		}},
		{"moves after a final status", []string{"stream_lifecycle_order"}, func(in *Input) {
			s := in.Stream
			s.Events = append(s.Events, rsvEvent(18, "v1", "r3", StatusCancelled, StatusConfirmed))
			s.Head = 18
		}},
		{"status disagrees with type", []string{"stream_lifecycle_order"}, func(in *Input) {
			e := rsvEvent(0, "v1", "r3", StatusHeld, StatusCancelled)
			e.Status = StatusConfirmed
			replace(in.Stream, 8, e)
		}},
		{"acknowledged transition missing", []string{"stream_acknowledged_transitions"}, func(in *Input) {
			replace(in.Stream, 10, Event{Type: "resource.updated", ResourceID: "v2"}) // r7 never completed
		}},
		{"stream and state disagree", []string{"stream_matches_state"}, func(in *Input) {
			s := in.Stream
			s.Events = append(s.Events, rsvEvent(18, "v1", "r1", StatusHeld, StatusConfirmed))
			s.Head = 18
		}},
		{"state has a reservation the stream lacks", []string{"stream_matches_state"}, func(in *Input) {
			replace(in.Stream, 14, Event{Type: "resource.updated", ResourceID: "h1"}) // r5
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := withStream()
			tt.mutate(&in)
			r := Verify(in)
			if r.Pass {
				t.Fatal("broken stream passed")
			}
			f := failed(r)
			for _, name := range tt.checks {
				c, ok := f[name]
				if !ok {
					t.Fatalf("check %s did not fail; failed: %+v", name, f)
				}
				if len(c.Examples) == 0 {
					t.Errorf("check %s failed without an example", name)
				}
			}
			for name := range f {
				if !strings.HasPrefix(name, "stream_") {
					t.Errorf("a state check failed too: %s", name)
				}
			}
		})
	}
}
