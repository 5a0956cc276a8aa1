package domain

import (
	"fmt"
	"slices"
	"sort"
)

// Limit groups (API.md "Limit groups"): a quota that spans resources. "One
// booking per account per day at this hospital" is a limit with per_user 1
// that the day's slots name; "these vouchers share 1,000 units" is one with
// capacity 1000. A reservation takes its resource's stock and its share of
// every limit the resource names in one event, or nothing: State.Apply
// checks all of them before it changes any, so a refused event changes
// nothing.
//
// "Taken" counts units in a taken status (held, confirmed, checked in,
// completed), as a resource's per-user limit does. Cancel and expiry give a
// reservation's shares back, and so does retention when it prunes a
// completed reservation: the limit then counts only reservations the state
// still holds, which CheckInvariants recounts.
//
// A resource's limits cannot change while it has taken units (the shares
// of its reservations are those of its limits), and a limit cannot be
// deleted while a resource names it. Limit events are log format BatchV4.

// Bounds of limits.
const (
	MaxLimitsPerResource = 8
	MaxLimits            = 100_000
)

// LimitSpec is what an admin says about a limit.
type LimitSpec struct {
	PerUser    int64 // units one user may have taken across the members at once; 0 = none
	Capacity   int64 // units all users together may have taken; 0 = none
	Attributes map[string]string
}

// Validate checks a spec on its own.
func (s *LimitSpec) Validate() error {
	if s.PerUser < 0 || s.PerUser > MaxCapacity {
		return invalidf("per_user must be between 0 and %d", int64(MaxCapacity))
	}
	if s.Capacity < 0 || s.Capacity > MaxCapacity {
		return invalidf("capacity must be between 0 and %d", int64(MaxCapacity))
	}
	return validAttributes(s.Attributes)
}

// Limit is one committed limit group with its counts.
type Limit struct {
	ID        string
	Spec      LimitSpec
	CreatedAt int64
	UpdatedAt int64

	Taken     int64            // units taken across the members
	UserTaken map[string]int64 // per user, only users above 0
	members   []string         // resources that name it, sorted (derived from the resources)
}

// Members are the ids of the resources that name the limit, sorted. The
// slice is the state's: do not modify it.
func (l *Limit) Members() []string { return l.members }

// Clone returns a deep copy.
func (l *Limit) Clone() *Limit {
	c := *l
	c.UserTaken = make(map[string]int64, len(l.UserTaken))
	for u, n := range l.UserTaken {
		c.UserTaken[u] = n
	}
	c.members = slices.Clone(l.members)
	return &c
}

// LimitOp is the payload of EvPutLimit (ID and Spec) and EvDeleteLimit (ID).
type LimitOp struct {
	ID   string
	Spec LimitSpec
}

// IsLimitEvent reports whether t is a limit event (log format BatchV4).
func (t EventType) IsLimitEvent() bool { return t == EvPutLimit || t == EvDeleteLimit }

// CheckShare says whether user may take q more units of the limit, given
// pending units already granted but not committed (0 in Apply).
func (l *Limit) CheckShare(user string, q, pendingTotal, pendingUser int64) error {
	if c := l.Spec.Capacity; c > 0 && l.Taken+pendingTotal+q > c {
		return &refusal{err: ErrLimitExceeded, id: l.ID, limit: true, total: true, n: c, m: l.Taken + pendingTotal}
	}
	if p := l.Spec.PerUser; p > 0 && l.UserTaken[user]+pendingUser+q > p {
		return &refusal{err: ErrLimitExceeded, id: l.ID, limit: true, n: p, m: l.UserTaken[user] + pendingUser}
	}
	return nil
}

// addShare adds sign*q units of user to the limit.
func (l *Limit) addShare(user string, q, sign int64) {
	l.Taken += sign * q
	if l.UserTaken == nil {
		l.UserTaken = make(map[string]int64)
	}
	if n := l.UserTaken[user] + sign*q; n > 0 {
		l.UserTaken[user] = n
	} else {
		delete(l.UserTaken, user)
	}
}

// The bounds a limit_exceeded refusal can be about.
const (
	// LimitRulePerUser: the units one user may have taken (a limit
	// group's per_user, or the resource's own per_user_limit).
	LimitRulePerUser = "per_user"
	// LimitRuleCapacity: the units all users together may have taken of a
	// limit group. A request that passes both bounds is refused for its
	// capacity: that is checked first.
	LimitRuleCapacity = "capacity"
)

// LimitExceededID returns the id of the limit a limit_exceeded refusal is
// about: "" for a resource's own per_user_limit; ok is false for other
// errors.
func LimitExceededID(err error) (id string, ok bool) {
	id, _, ok = LimitRefusal(err)
	return id, ok
}

// LimitRefusal returns the limit a limit_exceeded refusal is about ("" for
// the resource's own per_user_limit) and the bound that refused
// (LimitRulePerUser or LimitRuleCapacity); ok is false for other errors.
func LimitRefusal(err error) (id, rule string, ok bool) {
	var r *refusal
	if !asRefusal(err, &r) || r.err != ErrLimitExceeded {
		return "", "", false
	}
	switch {
	case !r.limit:
		return "", LimitRulePerUser, true
	case r.total:
		return r.id, LimitRuleCapacity, true
	}
	return r.id, LimitRulePerUser, true
}

// Limit returns a committed limit (shared: do not modify; Clone it).
func (s *State) Limit(id string) (*Limit, bool) {
	l := s.limit(id)
	return l, l != nil
}

// limit returns limit id, nil if none; it is shared with frozen views:
// write only to what writableLimit returns.
func (s *State) limit(id string) *Limit {
	e, _ := s.limits.get(id)
	return e.v
}

// writableLimit returns limit id for Apply to change in place, copied
// first if a frozen view may share it; nil if none.
func (s *State) writableLimit(id string) *Limit {
	l, _ := writableOwned(&s.limits, s.epoch, id, (*Limit).Clone)
	return l
}

// LimitCount is how many limits the state holds.
func (s *State) LimitCount() int { return s.limits.len() }

// ListLimits calls fn for limits with ids after `after` (and with prefix),
// in id order, until fn returns false.
func (s *State) ListLimits(prefix, after string, fn func(*Limit) bool) {
	for _, id := range s.limits.sortedKeys() {
		if id > after && len(id) >= len(prefix) && id[:len(prefix)] == prefix && !fn(s.limit(id)) {
			return
		}
	}
}

// EachLimit calls fn for every limit in id order (snapshots, hashes).
func (s *State) EachLimit(fn func(*Limit) error) error {
	for _, id := range s.limits.sortedKeys() {
		if err := fn(s.limit(id)); err != nil {
			return err
		}
	}
	return nil
}

// LoadLimit adds a limit (spec and times) while restoring a snapshot,
// before the resources and reservations that rebuild its members and
// counts. It reports false for an id loaded already.
func (s *State) LoadLimit(l *Limit) bool {
	if _, dup := s.limits.get(l.ID); dup {
		return false
	}
	l.Taken, l.UserTaken, l.members = 0, make(map[string]int64), nil
	s.limits.set(s.epoch, l.ID, owned[*Limit]{v: l, epoch: s.epoch})
	return true
}

// CheckPutLimit says whether a limit may be created or updated with op: a
// valid id and spec, and neither bound below what is taken now.
func (s *State) CheckPutLimit(op *LimitOp) error {
	if op == nil || !ValidID(op.ID) {
		return invalidf("bad limit id")
	}
	if err := op.Spec.Validate(); err != nil {
		return err
	}
	l := s.limit(op.ID)
	if l == nil {
		if s.limits.len() >= MaxLimits {
			return wrapf(ErrInvalidState, "at most %d limits", MaxLimits)
		}
		return nil
	}
	if c := op.Spec.Capacity; c > 0 && c < l.Taken {
		return wrapf(ErrInvalidState, "capacity %d is below the %d units taken", c, l.Taken)
	}
	if p := op.Spec.PerUser; p > 0 {
		for u, n := range l.UserTaken {
			if n > p {
				return wrapf(ErrInvalidState, "per_user %d is below the %d units user %q has taken", p, n, u)
			}
		}
	}
	return nil
}

// CheckDeleteLimit says whether limit id may be deleted: it exists and no
// resource names it.
func (s *State) CheckDeleteLimit(id string) error {
	l := s.limit(id)
	if l == nil {
		return wrapf(ErrNotFound, "limit %s", id)
	}
	if len(l.members) > 0 {
		return wrapf(ErrInvalidState, "limit %s is named by %d resources (%s first)", l.ID, len(l.members), l.members[0])
	}
	return nil
}

func (s *State) applyPutLimit(ev *Event) error {
	if err := s.CheckPutLimit(ev.Limit); err != nil {
		return err
	}
	l := s.writableLimit(ev.Limit.ID)
	if l == nil {
		l = &Limit{ID: ev.Limit.ID, CreatedAt: ev.At, UserTaken: make(map[string]int64)}
		s.limits.set(s.epoch, l.ID, owned[*Limit]{v: l, epoch: s.epoch})
	}
	l.Spec, l.UpdatedAt = ev.Limit.Spec, ev.At
	return nil
}

func (s *State) applyDeleteLimit(ev *Event) error {
	if ev.Limit == nil {
		return invalidf("limit event without a limit")
	}
	if err := s.CheckDeleteLimit(ev.Limit.ID); err != nil {
		return err
	}
	s.limits.del(s.epoch, ev.Limit.ID)
	return nil
}

// CheckResourceLimits says whether a resource may name the limits of spec:
// each one exists, and a resource with taken units keeps the ones it has.
func (s *State) CheckResourceLimits(r *Resource, spec *Spec) error {
	for _, id := range spec.Limits {
		if s.limit(id) == nil {
			return invalidf("limit %s does not exist", id)
		}
	}
	if r.HasTaken() && !slices.Equal(r.Spec.Limits, spec.Limits) {
		return wrapf(ErrInvalidState, "resource %s has taken units: its limits cannot change", r.ID)
	}
	return nil
}

// setMembership moves resource id from the members of limits old to those
// of limits new.
func (s *State) setMembership(id string, old, new []string) {
	if slices.Equal(old, new) {
		return // the usual update: nothing moves, nothing to copy
	}
	for _, lid := range old {
		if l := s.writableLimit(lid); l != nil {
			if i, ok := slices.BinarySearch(l.members, id); ok {
				l.members = slices.Delete(l.members, i, i+1)
			}
		}
	}
	for _, lid := range new {
		if l := s.writableLimit(lid); l != nil {
			l.members = insertSorted(l.members, id)
		}
	}
}

// CheckShares says whether res may take its share of every limit of r in
// committed state.
func (s *State) CheckShares(r *Resource, res *Reservation) error {
	for _, lid := range r.Spec.Limits {
		l := s.limit(lid)
		if l == nil {
			return wrapf(ErrNotFound, "limit %s of resource %s", lid, r.ID)
		}
		if err := l.CheckShare(res.User, res.Quantity, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// addShares adds (sign 1) or gives back (sign -1) res's share of every
// limit of its resource.
func (s *State) addShares(r *Resource, res *Reservation, sign int64) {
	for _, lid := range r.Spec.Limits {
		if l := s.writableLimit(lid); l != nil {
			l.addShare(res.User, res.Quantity, sign)
		}
	}
}

// checkLimitInvariants recounts every limit from the reservations of its
// members: taken and per-user counts match, nothing above the capacity or
// per_user, and the members are exactly the resources that name it.
func (s *State) checkLimitInvariants() error {
	taken := make(map[string]int64)
	user := make(map[string]map[string]int64)
	members := make(map[string][]string)
	for id, e := range s.resources.all() {
		for _, lid := range e.v.Spec.Limits {
			members[lid] = append(members[lid], id)
		}
	}
	for _, res := range s.reservations.all() {
		if !res.Status.Taken() {
			continue
		}
		r := s.resource(res.ResourceID)
		if r == nil {
			continue
		}
		for _, lid := range r.Spec.Limits {
			taken[lid] += res.Quantity
			if user[lid] == nil {
				user[lid] = make(map[string]int64)
			}
			user[lid][res.User] += res.Quantity
		}
	}
	for id, e := range s.limits.all() {
		l := e.v
		if l.Taken != taken[id] {
			return fmt.Errorf("limit %s: taken %d, its members' reservations hold %d", id, l.Taken, taken[id])
		}
		if c := l.Spec.Capacity; c > 0 && l.Taken > c {
			return fmt.Errorf("limit %s: taken %d above capacity %d", id, l.Taken, c)
		}
		if len(l.UserTaken) != len(user[id]) {
			return fmt.Errorf("limit %s: %d users counted, %d users hold units", id, len(l.UserTaken), len(user[id]))
		}
		for u, n := range user[id] {
			if l.UserTaken[u] != n {
				return fmt.Errorf("limit %s user %q: counted %d, holds %d", id, u, l.UserTaken[u], n)
			}
			if p := l.Spec.PerUser; p > 0 && n > p {
				return fmt.Errorf("limit %s user %q: %d above per_user %d", id, u, n, p)
			}
		}
		m := members[id]
		sort.Strings(m)
		if !slices.Equal(m, l.members) {
			return fmt.Errorf("limit %s: members %v, resources naming it %v", id, l.members, m)
		}
	}
	for lid := range members {
		if s.limit(lid) == nil {
			return fmt.Errorf("resources name limit %s, which does not exist", lid)
		}
	}
	return nil
}
