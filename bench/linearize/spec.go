package linearize

import (
	"fmt"
	"math"
	"time"
)

// Spec is a resource as the run configured it; it must not change during
// the history.
type Spec struct {
	Kind string // "voucher", "slot" or "room"
	// Capacity in units (voucher, slot).
	Capacity int64
	// Inventory of a room: rooms per night (YYYY-MM-DD); a night not listed
	// has none.
	Inventory map[string]int64
	// PerUserLimit is the resource's per_user_limit as stored; 0 = none.
	// (The API's default for vouchers and slots is 1: pass what was set.)
	PerUserLimit int64
	// Hold is hold_seconds: how long a new reservation is held; 0 =
	// reservations are confirmed at once.
	Hold time.Duration
	// CancelDeadline, when set, is the leader time after which a confirmed
	// reservation cannot be cancelled.
	CancelDeadline time.Time
	// ExternalLimits is set when the resource belongs to limit groups: a
	// limit_exceeded may then come from a group the model does not see, and
	// is accepted whenever it is returned.
	ExternalLimits bool
}

// rspec is a Spec on the history's time axis.
type rspec struct {
	id        string
	kind      string
	capacity  int64
	nights    map[int32]int64 // rooms only
	limit     int64
	hold      int64 // ns
	cancelBy  int64 // ns on the history axis; 0 = none
	extLimits bool
}

func (s *rspec) room() bool { return s.kind == "room" }

func newRSpec(id string, sp Spec, epoch time.Time) (*rspec, error) {
	r := &rspec{id: id, kind: sp.Kind, capacity: sp.Capacity, limit: sp.PerUserLimit,
		hold: int64(sp.Hold), extLimits: sp.ExternalLimits}
	switch sp.Kind {
	case "voucher", "slot":
		if sp.Capacity < 0 {
			return nil, fmt.Errorf("resource %s: negative capacity", id)
		}
	case "room":
		r.nights = make(map[int32]int64, len(sp.Inventory))
		for d, n := range sp.Inventory {
			day, err := parseDay(d)
			if err != nil {
				return nil, fmt.Errorf("resource %s: inventory: %w", id, err)
			}
			r.nights[day] = n
		}
	default:
		return nil, fmt.Errorf("resource %s: unknown kind %q", id, sp.Kind)
	}
	if !sp.CancelDeadline.IsZero() {
		r.cancelBy = onAxis(sp.CancelDeadline, epoch)
	}
	return r, nil
}

// onAxis places a wall time on the history's axis.
func onAxis(t, epoch time.Time) int64 {
	d := t.Round(0).Sub(epoch.Round(0))
	return int64(d)
}

// parseDay turns YYYY-MM-DD into days since 1970-01-01.
func parseDay(s string) (int32, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	days := t.Unix() / 86400
	if days < math.MinInt32 || days > math.MaxInt32 {
		return 0, fmt.Errorf("day %s out of range", s)
	}
	return int32(days), nil
}

func formatDay(d int32) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}
