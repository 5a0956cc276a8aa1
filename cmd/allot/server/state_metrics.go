package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

const (
	// unitsMaxAge is how long a scan of all resources answers scrapes, so
	// that a second Prometheus (HA pair) or a curl does not scan again.
	unitsMaxAge = 10 * time.Second
	// unitsChunk is how many resources one read lock covers during a scan,
	// so that Raft's apply never waits for more than a short chunk.
	unitsChunk = 1024
)

// stateCollector reports this node's committed state: units and resources
// by kind, summed over a scan of every resource, and the counts the state
// keeps anyway (holds, reservations, idempotency records).
//
// The scan reads resources in chunks of unitsChunk under the read lock,
// releasing it in between, so a scrape never stalls the FSM for long; the
// totals are therefore not one atomic snapshot while writes go on, which is
// fine for gauges. A scan costs O(resources) plus O(nights) for rooms: about
// 0.3 s of CPU for a million resources (BenchmarkUnitsScan), each chunk
// holding the lock for about 0.3 ms. Its result is reused for unitsMaxAge,
// so a 15 s scrape interval spends about 2% of a core on it at that size.
type stateCollector struct {
	view   func(func(*domain.State))
	maxAge time.Duration

	mu     sync.Mutex // one scan at a time; guards what follows
	at     time.Time
	totals unitTotals
}

// unitTotals are the summed counts per kind (index domain.Kind-1). For rooms
// a unit is a room-night, over every night of the inventory.
type unitTotals struct {
	resources, held, confirmed, available [len(kinds)]int64
}

func newStateCollector(view func(func(*domain.State))) *stateCollector {
	return &stateCollector{view: view, maxAge: unitsMaxAge}
}

var (
	descUnits = prometheus.NewDesc("allot_units",
		"Units summed over all resources of a kind, by state (held, confirmed, available); room units are room-nights. At most 10s old.",
		[]string{"kind", "state"}, nil)
	descResources = prometheus.NewDesc("allot_resources",
		"Resources in committed state, by kind.", []string{"kind"}, nil)
	descHoldsExpiring = prometheus.NewDesc("allot_holds_expiring",
		"Reservations held in committed state: each expires unless confirmed or cancelled first.", nil, nil)
	descReservationsStored = prometheus.NewDesc("allot_reservations_stored",
		"Reservations kept in committed state, in any status.", nil, nil)
	descIdemRecords = prometheus.NewDesc("allot_idempotency_records",
		"Stored Idempotency-Key answers (kept 24 hours).", nil, nil)
	descFinished = prometheus.NewDesc("allot_reservations_finished",
		"Finished reservations (cancelled, expired, completed) kept until retention prunes them.", nil, nil)
	descOldestFinishedAge = prometheus.NewDesc("allot_reservations_oldest_finished_age_seconds",
		"How long ago the oldest finished reservation in committed state finished; 0 when none. Above --retention plus a few minutes, pruning is stuck.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUnits, descResources, descHoldsExpiring, descReservationsStored, descIdemRecords, descFinished, descOldestFinishedAge} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var reservations, idem, held, finished int
	var oldest int64
	var anyFinished bool
	c.view(func(st *domain.State) {
		_, reservations, idem, held = st.Counts()
		finished = st.Finished()
		oldest, anyFinished = st.OldestFinished()
	})
	age := 0.0
	if anyFinished {
		age = max(0, time.Since(time.Unix(0, oldest)).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descFinished, prometheus.GaugeValue, float64(finished))
	ch <- prometheus.MustNewConstMetric(descOldestFinishedAge, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(descHoldsExpiring, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(descReservationsStored, prometheus.GaugeValue, float64(reservations))
	ch <- prometheus.MustNewConstMetric(descIdemRecords, prometheus.GaugeValue, float64(idem))

	t := c.unitTotals()
	for k, kind := range kinds {
		name := kind.String()
		ch <- prometheus.MustNewConstMetric(descResources, prometheus.GaugeValue, float64(t.resources[k]), name)
		ch <- prometheus.MustNewConstMetric(descUnits, prometheus.GaugeValue, float64(t.held[k]), name, "held")
		ch <- prometheus.MustNewConstMetric(descUnits, prometheus.GaugeValue, float64(t.confirmed[k]), name, "confirmed")
		ch <- prometheus.MustNewConstMetric(descUnits, prometheus.GaugeValue, float64(t.available[k]), name, "available")
	}
}

// unitTotals returns the cached totals, scanning again when they are older
// than maxAge.
func (c *stateCollector) unitTotals() unitTotals {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.maxAge {
		return c.totals
	}
	c.totals = c.scan()
	c.at = time.Now()
	return c.totals
}

// scan sums every resource, unitsChunk at a time, in id order.
func (c *stateCollector) scan() unitTotals {
	var t unitTotals
	after := ""
	for {
		n := 0
		c.view(func(st *domain.State) {
			st.ListResources("", after, func(r *domain.Resource) bool {
				t.add(r)
				after = r.ID
				n++
				return n < unitsChunk
			})
		})
		if n < unitsChunk {
			return t
		}
	}
}

func (t *unitTotals) add(r *domain.Resource) {
	k := int(r.Spec.Kind) - 1
	if k < 0 || k >= len(kinds) {
		return
	}
	t.resources[k]++
	if r.Spec.Kind != domain.KindRoom {
		t.held[k] += r.Held
		t.confirmed[k] += r.Confirmed
		t.available[k] += r.Available()
		return
	}
	for _, night := range r.Nights {
		t.held[k] += int64(night.Held)
		t.confirmed[k] += int64(night.Confirmed)
		t.available[k] += int64(night.Available())
	}
}
