package redislua

import (
	"context"
	"fmt"
	"sort"
)

// maxAuditExamples bounds the failures an Audit lists.
const maxAuditExamples = 5

// Audit is the check of a run's end state in Redis against what the
// service was seeded with and what its clients were told: the comparison
// only counts if the script did not oversell either.
type Audit struct {
	Pass         bool     `json:"pass"`
	Vouchers     int      `json:"vouchers"`
	Sold         int64    `json:"sold"` // buyers recorded in Redis
	Acknowledged int64    `json:"acknowledged"`
	Failures     []string `json:"failures,omitempty"`
}

// Audit reads every seeded voucher back. It fails when stock went below
// zero, stock left and buyers do not add up to the seeded stock, or the
// buyers are fewer than the 201s acked says a voucher answered, or more
// than those plus unknown (reserves whose answer was lost).
func (s *Server) Audit(ctx context.Context, acked map[string]int64, unknown int64) (Audit, error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.caps))
	for id := range s.caps {
		ids = append(ids, id)
	}
	caps := make(map[string]int64, len(s.caps))
	for id, n := range s.caps {
		caps[id] = n
	}
	s.mu.Unlock()
	sort.Strings(ids)
	a := Audit{Pass: true, Vouchers: len(ids)}
	fail := func(format string, args ...any) {
		a.Pass = false
		if len(a.Failures) < maxAuditExamples {
			a.Failures = append(a.Failures, fmt.Sprintf(format, args...))
		}
	}
	var extra int64
	for _, id := range ids {
		stock, buyers, err := State(ctx, s.rdb, id)
		if err != nil {
			return a, fmt.Errorf("redislua: reading %s back: %w", id, err)
		}
		a.Sold += buyers
		a.Acknowledged += acked[id]
		switch {
		case stock < 0:
			fail("%s: stock %d below zero", id, stock)
		case stock+buyers != caps[id]:
			fail("%s: %d left + %d buyers != %d seeded", id, stock, buyers, caps[id])
		case buyers < acked[id]:
			fail("%s: %d buyers recorded, %d answered 201", id, buyers, acked[id])
		}
		extra += max(buyers-acked[id], 0)
	}
	for id := range acked {
		if _, ok := caps[id]; !ok {
			fail("%s: answered 201 but never seeded", id)
		}
	}
	if extra > unknown {
		fail("%d buyers more than the 201s answered, but only %d outcomes unknown", extra, unknown)
	}
	return a, nil
}
