package verify

import (
	"slices"
)

// Limit is one limit group as read back (GET /v1/limits/{id}): its
// bounds, its committed count and the resources that name it.
type Limit struct {
	ID        string
	PerUser   int64 // 0 = no per-user bound
	Capacity  int64 // 0 = no shared bound
	Taken     int64
	Resources []string // members as the limit lists them
}

// Names of the limit checks, in the order Verify reports them.
const (
	CheckLimitTaken    = "limit_taken_matches_members"
	CheckLimitCapacity = "limit_capacity"
	CheckLimitPerUser  = "limit_per_user"
	CheckLimitAcks     = "limit_acknowledged_per_user"
)

// limitChecks are the checks of limit groups: none when the run has no
// limits, all skipped when the target could not be asked about them.
func (v *verifier) limitChecks() []Check {
	names := []string{CheckLimitTaken, CheckLimitCapacity, CheckLimitPerUser, CheckLimitAcks}
	if v.in.LimitsSkipped != "" {
		out := make([]Check, len(names))
		for i, n := range names {
			out[i] = Check{Name: n, Skipped: v.in.LimitsSkipped}
		}
		return out
	}
	if v.in.Limits == nil {
		return nil
	}
	members := v.limitMembers()
	return []Check{v.limitTaken(members), v.limitCapacity(), v.limitPerUser(members), v.limitAcks()}
}

// limitMembers maps each limit id to the resources read back that name it.
func (v *verifier) limitMembers() map[string][]*Resource {
	out := make(map[string][]*Resource)
	for i := range v.in.Resources {
		r := &v.in.Resources[i]
		for _, id := range r.Limits {
			out[id] = append(out[id], r)
		}
	}
	return out
}

// takenUnits sums the units of r's reservations in a status that holds
// a share (held, confirmed, checked in, completed).
func takenUnits(r *Resource) int64 {
	var n int64
	for _, x := range r.Reservations {
		if taken(x.Status) {
			n += x.Quantity
		}
	}
	return n
}

// limitTaken: a limit's committed count is the sum of the taken units of
// its members, and the members it lists are those that name it.
func (v *verifier) limitTaken(members map[string][]*Resource) Check {
	c := Check{Name: CheckLimitTaken}
	for _, l := range v.in.Limits {
		c.Checked++
		var sum int64
		ids := make([]string, 0, len(members[l.ID]))
		for _, r := range members[l.ID] {
			sum += takenUnits(r)
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		listed := slices.Clone(l.Resources)
		slices.Sort(listed)
		switch {
		case l.Taken != sum:
			c.fail("limit %s: taken %d, but its %d members' reservations take %d", l.ID, l.Taken, len(ids), sum)
		case !slices.Equal(ids, listed):
			c.fail("limit %s lists members %v, but %v name it", l.ID, listed, ids)
		}
	}
	return c
}

// limitCapacity: a shared quota is never exceeded.
func (v *verifier) limitCapacity() Check {
	c := Check{Name: CheckLimitCapacity}
	for _, l := range v.in.Limits {
		if l.Capacity <= 0 {
			continue
		}
		c.Checked++
		if l.Taken > l.Capacity || l.Taken < 0 {
			c.fail("limit %s: taken %d of capacity %d", l.ID, l.Taken, l.Capacity)
		}
	}
	return c
}

// limitPerUser: no user holds more units across a limit's members than
// its per_user bound, counted from the reservations read back.
func (v *verifier) limitPerUser(members map[string][]*Resource) Check {
	c := Check{Name: CheckLimitPerUser}
	for _, l := range v.in.Limits {
		if l.PerUser <= 0 {
			continue
		}
		units := make(map[string]int64)
		for _, r := range members[l.ID] {
			for _, x := range r.Reservations {
				if taken(x.Status) {
					units[x.User] += x.Quantity
				}
			}
		}
		for _, u := range sortedKeys(units) {
			c.Checked++
			if units[u] > l.PerUser {
				c.fail("limit %s: user %s holds %d units across its members, per_user %d", l.ID, u, units[u], l.PerUser)
			}
		}
	}
	return c
}

// settled reports whether an acknowledgement proves that its reservation
// still holds its share: confirmed or later, with no cancel or other
// transition of unknown outcome that might have given it back. A hold is
// not proof: it may have expired before the user's next booking.
func settled(a *Ack) bool {
	switch a.Status {
	case StatusConfirmed, StatusCheckedIn, StatusCompleted:
	default:
		return false
	}
	for _, m := range a.Maybe {
		if !taken(m) {
			return false
		}
	}
	return true
}

// limitAcks: from the run's own answers, no user was acknowledged more
// units across a limit's members than per_user that no cancel or expiry
// explains, whatever the state read back says. It needs the resources
// read back only to know which limits each resource names.
func (v *verifier) limitAcks() Check {
	c := Check{Name: CheckLimitAcks}
	perUser := make(map[string]int64, len(v.in.Limits))
	for _, l := range v.in.Limits {
		if l.PerUser > 0 {
			perUser[l.ID] = l.PerUser
		}
	}
	type key struct{ limit, user string }
	units := make(map[key]int64)
	seen := make(map[key]bool)
	var order []key
	for i := range v.in.Acks {
		a := &v.in.Acks[i]
		r, ok := v.res[a.ResourceID]
		if !ok {
			continue // reported by acknowledged_reservations_present
		}
		for _, id := range r.Limits {
			if perUser[id] == 0 {
				continue
			}
			k := key{id, a.User}
			if !seen[k] {
				seen[k] = true
				order = append(order, k)
			}
			if settled(a) {
				units[k] += a.Quantity
			}
		}
	}
	for _, k := range order {
		c.Checked++
		if units[k] > perUser[k.limit] {
			c.fail("limit %s: user %s was acknowledged %d units that no cancel or expiry explains, per_user %d", k.limit, k.user, units[k], perUser[k.limit])
		}
	}
	return c
}
