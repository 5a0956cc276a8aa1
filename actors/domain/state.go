package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/google/btree"
)

// State is the committed state of one shard: resources, reservations,
// per-user counts (inside resources), idempotency records and the index of
// held reservations that will expire, and the cluster's member records. It
// changes only through Apply (and the Load methods while restoring a
// snapshot). It is not safe for concurrent use; the FSM guards it.
//
// Freeze takes an immutable view of it in O(shards): the big maps are
// copy-on-write (cowmap.go), so the view and the state share everything
// until Apply writes to a part of it.
type State struct {
	resources    cowMap[owned[*Resource]]
	resourceIDs  *btree.BTreeG[string] // ordered, for paged listing
	reservations cowMap[Reservation]
	byUser       cowMap[idList]             // reservation ids, sorted
	byResource   cowMap[idList]             // reservation ids, sorted
	held         cowMap[struct{}]           // reservations in status held: the expiry index
	finished     *btree.BTreeG[finishedKey] // prunable reservations by finish time (retention.go)
	retired      cowMap[owned[*Retired]]    // units of pruned completed reservations, by resource

	idem     cowMap[IdemRecord]
	idemFIFO []string // idem keys in apply order, for pruning by age
	idemHead int
	// fifoEpoch is the epoch of the state that made idemFIFO's array:
	// only that one clears pruned keys in it, since a frozen view may still
	// read them. Appending never writes where a view reads: a view's slice
	// ends at the length it had when frozen, and its capacity too.
	fifoEpoch uint64

	members map[string]Member // cluster nodes by id

	webhooks map[string]*Webhook   // by id (webhooks.go)
	limits   cowMap[owned[*Limit]] // limit groups by id (limits.go)

	// epoch names this state among those sharing its shards: it writes in
	// place only to what carries its epoch (cowmap.go). epochs hands out
	// new ones to the states of one lineage.
	epoch  uint64
	epochs *atomic.Uint64

	// lastAt is the latest leader time of an applied event: a new leader
	// starts its clock at or after it, so leader time never goes back.
	lastAt int64

	// digest is the FSM's running digest of the log up to this state (see
	// LogDigest); Apply never touches it.
	digest LogDigest

	// logFormat is the newest batch format the committed log allows a
	// leader to write (raised by the FSM on EvLogFormat events and stamped
	// batches; 0 for a log that never said). Apply never touches it.
	logFormat uint8

	// eventHead is the offset of the last change of the stream (change.go).
	eventHead uint64
}

// LogDigest is a running digest of the Raft log entries a node applied to
// reach a state: the cluster's FSM folds every entry it applies into it, and
// nodes compare it to find one whose log or apply went astray
// (cluster/audit.go). The state carries it so that a snapshot hands it on
// with the state it describes: a node that restores the snapshot continues
// the same chain as the nodes that applied every entry. It describes the
// log, not the state, so Hash leaves it out.
type LogDigest struct {
	// Base is the index the chain starts after: 0 when it covers the log
	// from its first entry; the index of a snapshot without a digest (one
	// written before digests existed) when it starts there.
	Base uint64
	// Index is the last entry folded in, 0 for none.
	Index uint64
	// Sum is the digest of the entries after Base up to Index.
	Sum uint64
}

// LogDigest returns the digest of the log up to this state.
func (s *State) LogDigest() LogDigest { return s.digest }

// SetLogDigest records the digest of the log up to this state: the FSM
// does, after applying entries and when restoring a snapshot.
func (s *State) SetLogDigest(d LogDigest) { s.digest = d }

// NewState returns an empty State.
func NewState() *State {
	seed := maphash.MakeSeed()
	s := &State{
		resources:    newCowMap[owned[*Resource]](seed),
		resourceIDs:  btree.NewG(32, func(a, b string) bool { return a < b }),
		reservations: newCowMap[Reservation](seed),
		byUser:       newCowMap[idList](seed),
		byResource:   newCowMap[idList](seed),
		held:         newCowMap[struct{}](seed),
		finished:     newFinishedIndex(),
		retired:      newCowMap[owned[*Retired]](seed),
		idem:         newCowMap[IdemRecord](seed),
		members:      make(map[string]Member),
		webhooks:     make(map[string]*Webhook),
		limits:       newCowMap[owned[*Limit]](seed),
		epochs:       new(atomic.Uint64),
	}
	s.epoch = s.epochs.Add(1)
	s.fifoEpoch = s.epoch
	return s
}

// Apply validates ev against the state and applies it, or changes nothing
// and returns why not. A leader only proposes events its actors accepted, so
// an error here is a bug (a violated invariant) and is the same on every node.
//
// An event that carries an Idempotency-Key already answered (and not yet
// pruned) changes nothing and returns a *DuplicateKeyError with the answer
// on record: the FSM, not only the leader's actors, makes sure one key
// never takes effect twice.
func (s *State) Apply(ev *Event) error {
	if ev.Idem != nil {
		if rec, ok := s.idem.get(idemMapKey(ev.Idem.User, ev.Idem.Key)); ok && rec.CreatedAt >= ev.At-IdemTTL {
			return &DuplicateKeyError{Record: rec}
		}
	}
	var err error
	switch ev.Type {
	case EvPutResource:
		err = s.applyPut(ev)
	case EvDeleteResource:
		err = s.applyDelete(ev)
	case EvReserve:
		err = s.applyReserve(ev)
	case EvTransition:
		err = s.applyTransition(ev)
	case EvSetMember:
		err = s.applySetMember(ev)
	case EvRemoveMember:
		err = s.applyRemoveMember(ev)
	case EvPrune:
		err = s.applyPrune(ev)
	case EvPutWebhook, EvDeleteWebhook, EvAdvanceWebhook, EvPauseWebhook, EvReplayWebhook:
		err = s.applyWebhook(ev)
	case EvPutLimit:
		err = s.applyPutLimit(ev)
	case EvDeleteLimit:
		err = s.applyDeleteLimit(ev)
	default:
		err = invalidf("unknown event type %d", ev.Type)
	}
	if err != nil {
		return err
	}
	// Pruning only after success keeps a refused event free of side
	// effects; before putIdem, so an expired record's key can be reused.
	s.lastAt = max(s.lastAt, ev.At)
	s.pruneIdem(s.lastAt)
	if ev.Idem != nil {
		s.putIdem(s.sharedIdem(*ev.Idem))
	}
	return nil
}

// sharedIdem returns rec with its strings shared with what the state holds
// already, where they are equal: a record that repeats the reservation it
// answers with costs no second copy of its strings. Only memory changes.
func (s *State) sharedIdem(rec IdemRecord) IdemRecord {
	if res, ok := s.reservations.get(rec.Reservation.ID); ok && res == rec.Reservation {
		rec.Reservation = res
	}
	if rec.User == rec.Reservation.User {
		rec.User = rec.Reservation.User
	}
	return rec
}

// LogFormat is the newest batch format the committed log allows; 0 if it
// never said (format 1).
func (s *State) LogFormat() uint8 { return s.logFormat }

// RaiseLogFormat records that the committed log allows format v; it never
// lowers it. The FSM calls it for EvLogFormat events and stamped batches,
// and restoring a snapshot calls it too.
func (s *State) RaiseLogFormat(v uint8) { s.logFormat = max(s.logFormat, v) }

// LastTime is the latest leader time of an applied event (Unix ns), 0 for
// an empty log.
func (s *State) LastTime() int64 { return s.lastAt }

// LoadLastTime sets LastTime while restoring a snapshot.
func (s *State) LoadLastTime(at int64) { s.lastAt = max(s.lastAt, at) }

func (s *State) applyPut(ev *Event) error {
	if !ValidID(ev.ResourceID) {
		return invalidf("bad resource id %q", ev.ResourceID)
	}
	r := s.resource(ev.ResourceID)
	isNew := r == nil
	if isNew {
		r = &Resource{ID: ev.ResourceID}
	}
	if err := r.CheckUpdate(&ev.Spec); err != nil {
		return err
	}
	if err := s.CheckResourceLimits(r, &ev.Spec); err != nil {
		return err
	}
	s.setMembership(r.ID, r.Spec.Limits, ev.Spec.Limits)
	if isNew {
		s.resources.set(s.epoch, r.ID, owned[*Resource]{v: r, epoch: s.epoch})
		s.resourceIDs.ReplaceOrInsert(r.ID)
	} else {
		r = s.writableResource(r.ID)
	}
	r.ApplyUpdate(ev.Spec, ev.At)
	return nil
}

func (s *State) applyDelete(ev *Event) error {
	r := s.resource(ev.ResourceID)
	if r == nil {
		return wrapf(ErrNotFound, "resource %s", ev.ResourceID)
	}
	if r.HasTaken() {
		return wrapf(ErrInvalidState, "resource %s has held or confirmed reservations", r.ID)
	}
	s.setMembership(r.ID, r.Spec.Limits, nil)
	s.resources.del(s.epoch, r.ID)
	s.resourceIDs.Delete(r.ID)
	return nil
}

func (s *State) applyReserve(ev *Event) error {
	res := ev.Reservation
	hr := s.resources.hash(res.ResourceID)
	re, _ := s.resources.getH(hr, res.ResourceID)
	r := re.v
	if r == nil || res.ResourceID != ev.ResourceID {
		return wrapf(ErrNotFound, "resource %s", res.ResourceID)
	}
	if res.ID == "" {
		return invalidf("reservation without id")
	}
	h := s.reservations.hash(res.ID)
	if _, dup := s.reservations.getH(h, res.ID); dup {
		return wrapf(ErrAlreadyExists, "reservation %s", res.ID)
	}
	if err := r.CheckReserve(&res); err != nil {
		return err
	}
	if err := s.CheckShares(r, &res); err != nil {
		return err
	}
	r = s.ownResource(hr, re)
	res.ResourceID = r.ID // equal: one copy of the id for all its reservations
	r.ApplyReserve(&res)
	s.addShares(r, &res, 1)
	s.addReservation(h, &res)
	return nil
}

// addReservation stores a new reservation, whose id hashes to h, and
// indexes it.
func (s *State) addReservation(h uint64, res *Reservation) {
	s.reservations.setH(s.epoch, h, res.ID, *res) // the held index below shares the seed
	insertID(&s.byUser, s.epoch, res.User, res.ID)
	insertID(&s.byResource, s.epoch, res.ResourceID, res.ID)
	if res.Status == StatusHeld {
		s.held.setH(s.epoch, h, res.ID, struct{}{})
	}
	s.indexFinished(res)
}

// resource returns the committed resource id, nil if none; it is shared
// with frozen views: write only to what writableResource returns.
func (s *State) resource(id string) *Resource {
	e, _ := s.resources.get(id)
	return e.v
}

// writableResource returns resource id for Apply to change in place,
// copied first if a frozen view may share it.
func (s *State) writableResource(id string) *Resource {
	r, _ := writableOwned(&s.resources, s.epoch, id, (*Resource).cowClone)
	return r
}

// ownResource is writableResource for the entry e of a resource whose id
// hashes to h, already looked up.
func (s *State) ownResource(h uint64, e owned[*Resource]) *Resource {
	if e.epoch != s.epoch {
		e = owned[*Resource]{v: e.v.cowClone(), epoch: s.epoch}
		s.resources.setH(s.epoch, h, e.v.ID, e)
	}
	return e.v
}

func (s *State) applyTransition(ev *Event) error {
	h := s.reservations.hash(ev.ReservationID)
	res, ok := s.reservations.getH(h, ev.ReservationID)
	if !ok {
		return wrapf(ErrNotFound, "reservation %s", ev.ReservationID)
	}
	hr := s.resources.hash(res.ResourceID)
	re, _ := s.resources.getH(hr, res.ResourceID)
	r := re.v
	if r == nil || res.ResourceID != ev.ResourceID {
		return wrapf(ErrNotFound, "resource %s", res.ResourceID)
	}
	noop, err := r.CheckTransition(&res, ev.To, ev.At)
	if err != nil {
		return err
	}
	if noop {
		return wrapf(ErrInvalidState, "reservation %s already %s", res.ID, ev.To)
	}
	if res.Status.Taken() && !ev.To.Taken() {
		s.addShares(r, &res, -1)
	}
	r = s.ownResource(hr, re)
	r.ApplyTransition(&res, ev.To, ev.At)
	s.reservations.setH(s.epoch, h, res.ID, res)
	if res.Status != StatusHeld {
		s.held.delH(s.epoch, h, res.ID)
	}
	s.indexFinished(&res)
	return nil
}

func insertSorted(ids []string, id string) []string {
	if n := len(ids); n == 0 || ids[n-1] < id {
		return append(ids, id) // the usual case: ids grow with time
	}
	i, _ := slices.BinarySearch(ids, id)
	return slices.Insert(ids, i, id)
}

func idemMapKey(user, key string) string { return user + "\x00" + key }

func (s *State) putIdem(rec IdemRecord) {
	k := idemMapKey(rec.User, rec.Key)
	if _, ok := s.idem.get(k); ok {
		return // the first answer stays
	}
	rec.Key = k[len(rec.User)+1:] // shares the map key's bytes
	s.idem.set(s.epoch, k, rec)
	s.idemFIFO = append(s.idemFIFO, k)
}

// pruneIdem drops records older than IdemTTL before leader time at, oldest
// applied first.
func (s *State) pruneIdem(at int64) {
	cutoff := at - IdemTTL
	for s.idemHead < len(s.idemFIFO) {
		k := s.idemFIFO[s.idemHead]
		if rec, ok := s.idem.get(k); ok && rec.CreatedAt >= cutoff {
			break
		}
		s.idem.del(s.epoch, k)
		if s.fifoEpoch == s.epoch {
			s.idemFIFO[s.idemHead] = "" // let the key go; a frozen view may still read a shared array
		}
		s.idemHead++
	}
	if s.idemHead > 1024 && s.idemHead*2 > len(s.idemFIFO) {
		s.idemFIFO = append([]string(nil), s.idemFIFO[s.idemHead:]...)
		s.idemHead = 0
		s.fifoEpoch = s.epoch
	}
}

// Resource returns the committed resource (shared: do not modify; Clone it).
func (s *State) Resource(id string) (*Resource, bool) {
	r := s.resource(id)
	return r, r != nil
}

// Reservation returns a reservation by id.
func (s *State) Reservation(id string) (Reservation, bool) {
	return s.reservations.get(id)
}

// Idem returns the stored answer for (user, key).
func (s *State) Idem(user, key string) (IdemRecord, bool) {
	return s.idem.get(idemMapKey(user, key))
}

// Counts returns how many resources, reservations and idempotency records the
// state holds.
func (s *State) Counts() (resources, reservations, idem, held int) {
	return s.resources.len(), s.reservations.len(), s.idem.len(), s.held.len()
}

// ListResources calls fn for resources with ids after `after` (and with
// prefix), in id order, until fn returns false.
func (s *State) ListResources(prefix, after string, fn func(*Resource) bool) {
	start := max(after, prefix)
	s.resourceIDs.AscendGreaterOrEqual(start, func(id string) bool {
		if id == after {
			return true
		}
		if len(id) < len(prefix) || id[:len(prefix)] != prefix {
			return false
		}
		return fn(s.resource(id))
	})
}

// ListReservations calls fn for reservations in id order after `after`:
// those of user (when set), else of resource (when set), else all.
// It stops when fn returns false.
func (s *State) ListReservations(user, resource, after string, fn func(Reservation) bool) {
	var ids []string
	switch {
	case user != "":
		e, _ := s.byUser.get(user)
		ids = e.v
	case resource != "":
		e, _ := s.byResource.get(resource)
		ids = e.v
	default:
		ids = s.reservations.sortedKeys()
	}
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	for ; i < len(ids); i++ {
		res, _ := s.reservations.get(ids[i])
		if !fn(res) {
			return
		}
	}
}

// EachHeldOf calls fn for every held reservation of one resource.
func (s *State) EachHeldOf(resourceID string, fn func(Reservation)) {
	e, _ := s.byResource.get(resourceID)
	for _, id := range e.v {
		if res, _ := s.reservations.get(id); res.Status == StatusHeld {
			fn(res)
		}
	}
}

// EachHeld calls fn for every held reservation (the expiry index).
func (s *State) EachHeld(fn func(Reservation)) {
	for id := range s.held.all() {
		res, _ := s.reservations.get(id)
		fn(res)
	}
}

// EachResource calls fn for every resource in id order (snapshots).
func (s *State) EachResource(fn func(*Resource) error) error {
	var err error
	s.resourceIDs.Ascend(func(id string) bool {
		err = fn(s.resource(id))
		return err == nil
	})
	return err
}

// EachReservation calls fn for every reservation in id order (snapshots).
func (s *State) EachReservation(fn func(Reservation) error) error {
	for _, id := range s.reservations.sortedKeys() {
		res, _ := s.reservations.get(id)
		if err := fn(res); err != nil {
			return err
		}
	}
	return nil
}

// EachIdem calls fn for every idempotency record in apply order (snapshots:
// restoring in this order keeps pruning identical).
func (s *State) EachIdem(fn func(IdemRecord) error) error {
	for _, k := range s.idemFIFO[s.idemHead:] {
		if rec, ok := s.idem.get(k); ok {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// LoadResource adds a resource while restoring a snapshot.
func (s *State) LoadResource(r *Resource) {
	if r.UserUnits == nil {
		r.UserUnits = make(map[string]int64)
	}
	s.setMembership(r.ID, nil, r.Spec.Limits)
	s.resources.set(s.epoch, r.ID, owned[*Resource]{v: r, epoch: s.epoch})
	s.resourceIDs.ReplaceOrInsert(r.ID)
}

// LoadReservation adds a reservation while restoring a snapshot.
func (s *State) LoadReservation(res Reservation) {
	r := s.resource(res.ResourceID)
	if r != nil {
		res.ResourceID = r.ID // as applyReserve shares it
	}
	s.addReservation(s.reservations.hash(res.ID), &res)
	if r != nil && res.Status.Taken() {
		s.addShares(r, &res, 1)
	}
}

// LoadIdem adds an idempotency record while restoring a snapshot.
func (s *State) LoadIdem(rec IdemRecord) { s.putIdem(s.sharedIdem(rec)) }

// Clone returns a deep copy that shares nothing with s. It only reads s,
// so it may run alongside other readers (and other Clones); Freeze is the
// O(shards) way to a view that writes to s do not change.
func (s *State) Clone() *State {
	c := NewState()
	for id, e := range s.resources.all() {
		c.resources.set(c.epoch, id, owned[*Resource]{v: e.v.Clone(), epoch: c.epoch})
	}
	// Not btree's Clone: that writes to the original's copy-on-write context.
	s.resourceIDs.Ascend(func(id string) bool {
		c.resourceIDs.ReplaceOrInsert(id)
		return true
	})
	for id, res := range s.reservations.all() {
		c.reservations.set(c.epoch, id, res)
	}
	for u, e := range s.byUser.all() {
		c.byUser.set(c.epoch, u, idList{v: slices.Clone(e.v), epoch: c.epoch})
	}
	for r, e := range s.byResource.all() {
		c.byResource.set(c.epoch, r, idList{v: slices.Clone(e.v), epoch: c.epoch})
	}
	for id := range s.held.all() {
		c.held.set(c.epoch, id, struct{}{})
	}
	s.finished.Ascend(func(k finishedKey) bool { // not btree's Clone, as above
		c.finished.ReplaceOrInsert(k)
		return true
	})
	for id, e := range s.retired.all() {
		c.retired.set(c.epoch, id, owned[*Retired]{v: e.v.clone(), epoch: c.epoch})
	}
	for k, rec := range s.idem.all() {
		c.idem.set(c.epoch, k, rec)
	}
	c.idemFIFO = slices.Clone(s.idemFIFO[s.idemHead:])
	for id, m := range s.members {
		c.members[id] = m
	}
	s.cloneWebhooks(c)
	for id, e := range s.limits.all() {
		c.limits.set(c.epoch, id, owned[*Limit]{v: e.v.Clone(), epoch: c.epoch})
	}
	c.lastAt = s.lastAt
	c.digest = s.digest
	c.logFormat = s.logFormat
	c.eventHead = s.eventHead
	return c
}

// Freeze returns a view of the state as it is now, which later writes to
// s do not change: what a snapshot streams while Apply goes on. It costs
// O(shards), not O(state): the view shares everything with s, and each
// writes in place only to parts it made or copied after the freeze
// (cowmap.go). The view may be read on another goroutine while s is
// applied to; it may be applied to as well, like a Clone.
//
// Freeze writes to s (its epoch, its btrees' copy-on-write contexts), so
// it needs s to itself, as Apply does: no reader may run alongside it.
func (s *State) Freeze() *State {
	v := *s
	v.resources = s.resources.freeze()
	v.resourceIDs = s.resourceIDs.Clone()
	v.reservations = s.reservations.freeze()
	v.byUser = s.byUser.freeze()
	v.byResource = s.byResource.freeze()
	v.held = s.held.freeze()
	v.finished = s.finished.Clone()
	v.retired = s.retired.freeze()
	v.idem = s.idem.freeze()
	v.idemFIFO = slices.Clip(s.idemFIFO[s.idemHead:])
	v.idemHead = 0
	v.members = maps.Clone(s.members)
	v.webhooks = make(map[string]*Webhook, len(s.webhooks))
	s.cloneWebhooks(&v)
	v.limits = s.limits.freeze()
	v.epoch = s.epochs.Add(1)
	s.epoch = s.epochs.Add(1)
	// Neither may clear keys in the array they now share.
	v.fifoEpoch, s.fifoEpoch = 0, 0
	return &v
}

// CheckInvariants recounts every resource from its reservations and checks
// that available + held + confirmed == capacity (per night for rooms), that
// nothing is negative and that per-user counts match. O(state); for tests,
// fuzzing and the bench verifier.
func (s *State) CheckInvariants() error {
	type counts struct {
		held, confirmed int64
		nights          map[Day][2]int64
		users           map[string]int64
	}
	want := make(map[string]*counts)
	held, finished := 0, 0
	for _, res := range s.reservations.all() {
		if res.Status == StatusHeld {
			held++
		}
		if _, indexed := s.finished.Get(finishedKey{at: res.UpdatedAt, id: res.ID}); res.Status.Prunable() != indexed {
			return fmt.Errorf("reservation %s: status %s but finished index says %v", res.ID, res.Status, indexed)
		} else if indexed {
			finished++
		}
		if !res.Status.Taken() {
			continue
		}
		r := s.resource(res.ResourceID)
		if r == nil || r.Spec.Kind != res.Kind {
			return fmt.Errorf("reservation %s (%s) takes units of %s, which is not a %s", res.ID, res.Status, res.ResourceID, res.Kind)
		}
		c := want[r.ID]
		if c == nil {
			c = &counts{nights: map[Day][2]int64{}, users: map[string]int64{}}
			want[r.ID] = c
		}
		c.users[res.User] += res.Quantity
		isHeld := res.Status == StatusHeld
		if _, indexed := s.held.get(res.ID); isHeld != indexed {
			return fmt.Errorf("reservation %s: status %s but expiry index says held=%v", res.ID, res.Status, indexed)
		}
		if r.Spec.Kind != KindRoom {
			if isHeld {
				c.held += res.Quantity
			} else {
				c.confirmed += res.Quantity
			}
			continue
		}
		for d := res.CheckIn; d < res.CheckOut; d++ {
			n := c.nights[d]
			if isHeld {
				n[0] += res.Quantity
			} else {
				n[1] += res.Quantity
			}
			c.nights[d] = n
		}
	}
	for id, e := range s.retired.all() {
		rt := e.v
		r := s.resource(id)
		if r == nil {
			return fmt.Errorf("retired units of %s, which does not exist", id)
		}
		c := want[id]
		if c == nil {
			c = &counts{nights: map[Day][2]int64{}, users: map[string]int64{}}
			want[id] = c
		}
		c.confirmed += rt.Units
		for d, n := range rt.Nights {
			w := c.nights[d]
			w[1] += n
			c.nights[d] = w
		}
		for u, n := range rt.Users {
			c.users[u] += n
		}
	}
	if finished != s.finished.Len() {
		return fmt.Errorf("%d reservations are finished but the finished index has %d", finished, s.finished.Len())
	}
	if held != s.held.len() {
		return fmt.Errorf("%d reservations are held but the expiry index has %d", held, s.held.len())
	}
	for id, e := range s.resources.all() {
		r := e.v
		if err := r.CheckInvariant(); err != nil {
			return err
		}
		c := want[id]
		if c == nil {
			c = &counts{}
		}
		if r.Held != c.held || r.Confirmed != c.confirmed {
			return fmt.Errorf("%s: counts held %d confirmed %d, reservations say %d and %d", id, r.Held, r.Confirmed, c.held, c.confirmed)
		}
		for i, n := range r.Nights {
			d := r.NightBase + Day(i)
			if w := c.nights[d]; int64(n.Held) != w[0] || int64(n.Confirmed) != w[1] {
				return fmt.Errorf("%s night %s: held %d confirmed %d, reservations say %d and %d", id, d, n.Held, n.Confirmed, w[0], w[1])
			}
			delete(c.nights, d)
		}
		if len(c.nights) > 0 {
			return fmt.Errorf("%s: reservations on nights outside the inventory", id)
		}
		if len(r.UserUnits) != len(c.users) {
			return fmt.Errorf("%s: %d users counted, reservations say %d", id, len(r.UserUnits), len(c.users))
		}
		for u, n := range c.users {
			if r.UserUnits[u] != n {
				return fmt.Errorf("%s: user %q counted %d, reservations say %d", id, u, r.UserUnits[u], n)
			}
		}
	}
	return s.checkLimitInvariants()
}

// Hash is a digest of the whole state in a canonical order: equal states give
// equal hashes on every node.
func (s *State) Hash() [32]byte {
	h := sha256.New()
	var buf []byte
	_ = s.EachResource(func(r *Resource) error {
		buf = appendResource(buf[:0], r)
		h.Write(buf)
		return nil
	})
	_ = s.EachReservation(func(res Reservation) error {
		buf = appendReservation(buf[:0], &res)
		h.Write(buf)
		return nil
	})
	_ = s.EachIdem(func(rec IdemRecord) error {
		buf = appendIdem(buf[:0], &rec)
		h.Write(buf)
		return nil
	})
	_ = s.EachRetired(func(rt *Retired) error {
		buf = AppendRetired(buf[:0], rt)
		h.Write(buf)
		return nil
	})
	buf = binary.AppendUvarint(buf[:0], uint64(s.held.len()))
	h.Write(buf)
	s.hashMembers(buf, func(b []byte) { h.Write(b) })
	h.Write(binary.AppendVarint(buf[:0], s.lastAt))
	h.Write([]byte{s.logFormat})
	if s.eventHead != 0 { // absent before the stream, so older states hash as they did
		h.Write(binary.AppendUvarint(buf[:0], s.eventHead))
	}
	s.hashWebhooks(buf, func(b []byte) { h.Write(b) })
	_ = s.EachLimit(func(l *Limit) error { // none before limits existed: older states hash as they did
		buf = appendLimitState(buf[:0], l)
		h.Write(buf)
		return nil
	})
	var out [32]byte
	h.Sum(out[:0])
	return out
}
