package domain

import (
	"encoding/binary"
	"slices"
	"sort"
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
	rt := s.retired[res.ResourceID]
	if rt == nil {
		rt = &Retired{ResourceID: res.ResourceID, Nights: map[Day]int64{}, Users: map[string]int64{}}
		s.retired[res.ResourceID] = rt
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
	ids := make([]string, 0, len(s.retired))
	for id := range s.retired {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := fn(s.retired[id]); err != nil {
			return err
		}
	}
	return nil
}

// RetiredResources is how many resources have retired units.
func (s *State) RetiredResources() int { return len(s.retired) }

// LoadRetired adds a resource's retired units while restoring a snapshot.
func (s *State) LoadRetired(r *Retired) { s.retired[r.ResourceID] = r }

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
