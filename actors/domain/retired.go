package domain

import (
	"encoding/binary"
	"slices"
)

// Retired is what the completed reservations pruned from one resource still
// take. Completed units stay taken (in Confirmed, the nights and UserUnits:
// a redeemed voucher does not go back on sale, and still counts against its
// user's limit), so pruning a completed reservation leaves the resource's
// counts alone and moves its units here, where CheckInvariants and the
// snapshot find them. It lives as long as its resource, which HasTaken keeps
// from being deleted.
type Retired struct {
	ResourceID string
	Units      int64            // vouchers and slots
	Nights     map[Day]int64    // rooms, per night
	Users      map[string]int64 // per user
}

func (s *State) retire(res *Reservation) {
	rt, ok := writableOwned(&s.retired, s.epoch, res.ResourceID, (*Retired).clone)
	if !ok {
		rt = &Retired{ResourceID: res.ResourceID, Nights: map[Day]int64{}, Users: map[string]int64{}}
		s.retired.set(s.epoch, res.ResourceID, owned[*Retired]{v: rt, epoch: s.epoch})
	}
	if res.Kind == KindRoom {
		for d := res.CheckIn; d < res.CheckOut; d++ {
			rt.Nights[d] += res.Quantity
		}
	} else {
		rt.Units += res.Quantity
	}
	rt.Users[res.User] += res.Quantity
}

func (r *Retired) clone() *Retired {
	c := *r
	c.Nights = make(map[Day]int64, len(r.Nights))
	for d, n := range r.Nights {
		c.Nights[d] = n
	}
	c.Users = make(map[string]int64, len(r.Users))
	for u, n := range r.Users {
		c.Users[u] = n
	}
	return &c
}

// EachRetired calls fn for every resource's retired units, in resource id
// order (snapshots).
func (s *State) EachRetired(fn func(*Retired) error) error {
	for _, id := range s.retired.sortedKeys() {
		e, _ := s.retired.get(id)
		if err := fn(e.v); err != nil {
			return err
		}
	}
	return nil
}

// RetiredResources is how many resources have retired units.
func (s *State) RetiredResources() int { return s.retired.len() }

// LoadRetired adds a resource's retired units while restoring a snapshot.
func (s *State) LoadRetired(r *Retired) {
	s.retired.set(s.epoch, r.ResourceID, owned[*Retired]{v: r, epoch: s.epoch})
}

// AppendRetired encodes r canonically (snapshots, hashes).
func AppendRetired(b []byte, r *Retired) []byte {
	b = appendString(b, r.ResourceID)
	b = binary.AppendVarint(b, r.Units)
	days := make([]Day, 0, len(r.Nights))
	for d := range r.Nights {
		days = append(days, d)
	}
	slices.Sort(days)
	b = binary.AppendUvarint(b, uint64(len(days)))
	for _, d := range days {
		b = binary.AppendVarint(binary.AppendVarint(b, int64(d)), r.Nights[d])
	}
	return appendUserUnits(b, r.Users)
}

// DecodeRetired reads what AppendRetired wrote.
func DecodeRetired(data []byte) (*Retired, error) { return decodeWith(data, (*decoder).retired) }

func (d *decoder) retired(r *Retired) {
	r.ResourceID = d.string()
	r.Units = d.varint()
	n := d.count(2)
	r.Nights = make(map[Day]int64, n)
	for i := 0; i < n && d.err == nil; i++ {
		day := Day(d.varint())
		r.Nights[day] = d.varint()
	}
	r.Users = d.userUnits()
}
