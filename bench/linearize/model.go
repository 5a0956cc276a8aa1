package linearize

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// model is the specification of one resource, with what it precomputed
// about the history it checks. It is read-only while porcupine runs (the
// partitions are checked in parallel).
type model struct {
	epoch      time.Time
	skew, late int64
	horizon    bool // unknown outcomes return by Options.UnknownHorizon
	specs      map[string]*rspec
	// keyTotal counts the operations of each (user, key) in the history.
	keyTotal map[string]int
	// orphan ids are named by outputs but made by no known fresh 201 of a
	// reserve without a key: only they can name an anonymous reservation.
	orphan map[string]bool
	// idLast is the latest return of an operation naming the id (open if
	// one had an unknown outcome); binderLast the same for lists and
	// operations naming orphans, per resource.
	idLast     map[string]int64
	binderLast map[string]int64
}

func newModel(ops []porcupine.Operation, specs map[string]*rspec, epoch time.Time, skew, late, horizon time.Duration) *model {
	m := &model{epoch: epoch, skew: int64(skew), late: int64(late), horizon: horizon > 0, specs: specs,
		keyTotal: make(map[string]int), orphan: make(map[string]bool),
		idLast: make(map[string]int64), binderLast: make(map[string]int64)}
	made := make(map[string]bool)
	for _, op := range ops {
		ev, out := op.Input.(*Invocation), op.Output.(Output)
		if ev.Key != "" {
			m.keyTotal[scopedKey(ev.User, ev.Key)]++
		}
		if ev.Op == OpReserve && ev.Key == "" && out.Status == http.StatusCreated && !out.Replayed && out.Reservation != nil {
			made[out.Reservation.ID] = true
		}
	}
	for _, op := range ops {
		ev, out := op.Input.(*Invocation), op.Output.(Output)
		ret := ev.Return
		if out.IsUnknown() {
			ret = open
		}
		ids := mentioned(ev, &out)
		binder := ev.Op == OpListReservations
		for _, id := range ids {
			m.idLast[id] = max(m.idLast[id], ret)
			if !made[id] {
				m.orphan[id] = true
				// a reserve makes or replays its id, it never binds one by it
				binder = binder || ev.Op != OpReserve
			}
		}
		if binder {
			m.binderLast[ev.Resource] = max(m.binderLast[ev.Resource], ret)
		}
	}
	return m
}

// mentioned lists the reservation ids an operation names.
func mentioned(ev *Invocation, out *Output) []string {
	var ids []string
	if ev.ID != "" {
		ids = append(ids, ev.ID)
	}
	if r := out.Reservation; r != nil && r.ID != "" && r.ID != ev.ID {
		ids = append(ids, r.ID)
	}
	for _, r := range out.List {
		ids = append(ids, r.ID)
	}
	return ids
}

// stateSet is the powerset construction: every state the resource may be
// in. A step keeps the states that could have given the output.
type stateSet []*state

func (m *model) porcupine() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByResource,
		Init:      func() any { return stateSet{(&state{}).seal()} },
		Step: func(st, in, out any) (bool, any) {
			ev, o := in.(*Invocation), out.(Output)
			var next stateSet
			for _, s := range st.(stateSet) {
				for _, n := range m.step(s, ev, &o) {
					next = next.add(n)
				}
			}
			return len(next) > 0, next
		},
		Equal: func(a, b any) bool { return a.(stateSet).equal(b.(stateSet)) },
		Hash:  func(st any) uint64 { return st.(stateSet).hash() },
		DescribeOperation: func(in, out any) string {
			return fmt.Sprintf("%s -> %s", in.(*Invocation).Input, out.(Output))
		},
		DescribeState: func(st any) string { return st.(stateSet).describe() },
	}
}

func (ss stateSet) add(s *state) stateSet {
	for _, o := range ss {
		if o.equal(s) {
			return ss
		}
	}
	return append(ss, s)
}

func (ss stateSet) hash() uint64 {
	h := uint64(len(ss))
	for _, s := range ss {
		h ^= s.hash
	}
	return h
}

func (ss stateSet) equal(o stateSet) bool {
	if len(ss) != len(o) {
		return false
	}
	for _, s := range ss {
		if !slices.ContainsFunc(o, s.equal) {
			return false
		}
	}
	return true
}

func (ss stateSet) describe() string {
	const shown = 4
	var parts []string
	for i, s := range ss {
		if i == shown {
			parts = append(parts, fmt.Sprintf("... %d more", len(ss)-shown))
			break
		}
		parts = append(parts, s.describe())
	}
	return fmt.Sprintf("%d state(s): {%s}", len(ss), strings.Join(parts, " | "))
}

// partitionByResource checks each resource on its own: operations on
// different resources never constrain each other (keys are per resource,
// which Check makes sure of).
func partitionByResource(ops []porcupine.Operation) [][]porcupine.Operation {
	idx := make(map[string]int)
	var parts [][]porcupine.Operation
	for _, op := range ops {
		r := op.Input.(*Invocation).Resource
		i, ok := idx[r]
		if !ok {
			i = len(parts)
			idx[r] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}
