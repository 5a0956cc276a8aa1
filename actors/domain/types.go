package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Kind is the kind of a bookable resource.
type Kind uint8

// The kinds of API.md.
const (
	KindVoucher Kind = iota + 1 // units of stock, e.g. a seckill voucher
	KindSlot                    // units of a schedule slot, e.g. a doctor's 8:00 appointment
	KindRoom                    // a hotel room type with per-night inventory
)

var kindNames = [...]string{KindVoucher: "voucher", KindSlot: "slot", KindRoom: "room"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind turns "voucher", "slot" or "room" into a Kind.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name != "" && name == s {
			return Kind(k), nil
		}
	}
	return 0, invalidf("kind must be voucher, slot or room, not %q", s)
}

// Status is the lifecycle state of a reservation.
type Status uint8

// Reservation statuses, see the lifecycle table of API.md.
const (
	StatusHeld Status = iota + 1
	StatusConfirmed
	StatusCancelled
	StatusExpired
	StatusCheckedIn
	StatusCompleted
)

var statusNames = [...]string{
	StatusHeld: "held", StatusConfirmed: "confirmed", StatusCancelled: "cancelled",
	StatusExpired: "expired", StatusCheckedIn: "checked_in", StatusCompleted: "completed",
}

func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus turns a status name into a Status.
func ParseStatus(s string) (Status, error) {
	for st, name := range statusNames {
		if name != "" && name == s {
			return Status(st), nil
		}
	}
	return 0, invalidf("unknown status %q", s)
}

// Taken reports whether units in this status count against capacity and
// the per-user limit (held, confirmed, checked in, completed).
func (s Status) Taken() bool { return s != StatusCancelled && s != StatusExpired }

// Day is a calendar date as days since 1970-01-01 (UTC).
type Day int32

// ParseDay parses YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, invalidf("bad date %q, want YYYY-MM-DD", s)
	}
	return Day(t.Unix() / 86400), nil
}

func (d Day) String() string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

// Limits that keep one request or one resource from growing without bound.
const (
	MaxIDLen         = 128
	MaxAttributes    = 32
	MaxAttributeLen  = 256
	MaxInventoryRows = 366
	MaxNights        = 1830 // a room type's inventory spans at most ~5 years
	MaxStayNights    = 366
	MaxQuantity      = 1_000_000
	MaxCapacity      = 1 << 40
	MaxRoomsPerNight = 1 << 30
	MaxHoldSeconds   = 7 * 24 * 3600
	MaxUserLen       = 256
	MaxIdemKeyLen    = 255
)

// ValidID reports whether s is a resource id: 1–128 chars of [A-Za-z0-9._:-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// InventoryRow gives Rooms per night for the nights [From, To).
type InventoryRow struct {
	From, To Day
	Rooms    int64
}

// Spec is what an admin says about a resource; everything but Kind may change.
// Times are Unix nanoseconds, 0 meaning "not set".
type Spec struct {
	Kind           Kind
	Capacity       int64          // voucher, slot
	Inventory      []InventoryRow // room; later rows win
	PerUserLimit   int64          // 0 = no limit
	OpensAt        int64
	ClosesAt       int64
	HoldSeconds    int64 // 0 = reservations are confirmed at once
	CancelDeadline int64
	Attributes     map[string]string
	Limits         []string // limit groups (limits.go) the resource's reservations count against, sorted
}

// Validate checks a spec on its own (not against current bookings).
func (s *Spec) Validate() error {
	switch s.Kind {
	case KindVoucher, KindSlot:
		if s.Capacity < 0 || s.Capacity > MaxCapacity {
			return invalidf("capacity must be between 0 and %d", int64(MaxCapacity))
		}
		if len(s.Inventory) > 0 {
			return invalidf("inventory is for rooms only")
		}
	case KindRoom:
		if s.Capacity != 0 {
			return invalidf("capacity is for vouchers and slots; rooms use inventory")
		}
		if len(s.Inventory) > MaxInventoryRows {
			return invalidf("at most %d inventory rows", MaxInventoryRows)
		}
		if len(s.Inventory) > 0 {
			// In int64: far-apart days would overflow Day and pass.
			lo, hi := inventorySpan(s.Inventory)
			if span := int64(hi) - int64(lo); span > MaxNights {
				return invalidf("inventory spans %d nights, at most %d", span, MaxNights)
			}
		}
		for _, r := range s.Inventory {
			if r.To <= r.From {
				return invalidf("inventory row %s..%s: to must be after from", r.From, r.To)
			}
			if r.Rooms < 0 || r.Rooms > MaxRoomsPerNight {
				return invalidf("inventory rooms must be between 0 and %d", MaxRoomsPerNight)
			}
		}
	default:
		return invalidf("kind must be voucher, slot or room")
	}
	if s.PerUserLimit < 0 {
		return invalidf("per_user_limit must be >= 0")
	}
	if s.HoldSeconds < 0 || s.HoldSeconds > MaxHoldSeconds {
		return invalidf("hold_seconds must be between 0 and %d", MaxHoldSeconds)
	}
	if s.OpensAt != 0 && s.ClosesAt != 0 && s.ClosesAt <= s.OpensAt {
		return invalidf("closes_at must be after opens_at")
	}
	if len(s.Limits) > MaxLimitsPerResource {
		return invalidf("at most %d limits per resource", MaxLimitsPerResource)
	}
	for i, id := range s.Limits {
		if !ValidID(id) {
			return invalidf("bad limit id %q", id)
		}
		if i > 0 && s.Limits[i-1] >= id {
			return invalidf("limits must be distinct and sorted")
		}
	}
	return validAttributes(s.Attributes)
}

// validAttributes checks free-form attributes of a resource or limit.
func validAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return invalidf("at most %d attributes", MaxAttributes)
	}
	for k, v := range attrs {
		if k == "" || len(k) > MaxAttributeLen || len(v) > MaxAttributeLen {
			return invalidf("attribute keys must be 1-%d bytes and values at most %d", MaxAttributeLen, MaxAttributeLen)
		}
		if k[0] == 0 {
			return invalidf("attribute keys must not start with a NUL byte")
		}
	}
	return nil
}

func inventorySpan(rows []InventoryRow) (lo, hi Day) {
	lo, hi = rows[0].From, rows[0].To
	for _, r := range rows[1:] {
		lo, hi = min(lo, r.From), max(hi, r.To)
	}
	return lo, hi
}

// Night is one night of a room type.
type Night struct {
	Rooms     int32 // capacity of the night
	Held      int32
	Confirmed int32 // confirmed, checked in or completed
}

// Available is the number of rooms still free on the night.
func (n Night) Available() int32 { return n.Rooms - n.Held - n.Confirmed }

// Resource is a bookable thing with its live counts as committed (or, in an
// actor, as decided so far).
type Resource struct {
	ID        string
	Spec      Spec
	CreatedAt int64
	UpdatedAt int64

	// Voucher and slot counts.
	Held      int64
	Confirmed int64 // confirmed, checked in or completed: "stay taken"

	// Room nights: Nights[i] is day NightBase+i.
	NightBase Day
	Nights    []Night

	// UserUnits counts the taken units (any Taken status) per user.
	UserUnits map[string]int64
}

// Available is the units still free (vouchers and slots).
func (r *Resource) Available() int64 { return r.Spec.Capacity - r.Held - r.Confirmed }

// Night returns the counts of day d (zero rooms outside the inventory).
func (r *Resource) Night(d Day) Night {
	i := int64(d) - int64(r.NightBase) // Day arithmetic could wrap
	if i < 0 || i >= int64(len(r.Nights)) {
		return Night{}
	}
	return r.Nights[i]
}

// HasTaken reports whether any reservation still takes units of the
// resource: held, confirmed, checked in or completed (completed units stay
// taken, so a resource with redeemed bookings cannot be deleted and come
// back with counts that its old reservations contradict).
func (r *Resource) HasTaken() bool { return r.Held > 0 || r.Confirmed > 0 || r.roomsTaken() }

func (r *Resource) roomsTaken() bool {
	for _, n := range r.Nights {
		if n.Held > 0 || n.Confirmed > 0 {
			return true
		}
	}
	return false
}

// Clone returns a deep copy.
func (r *Resource) Clone() *Resource {
	c := *r
	c.Spec.Inventory = append([]InventoryRow(nil), r.Spec.Inventory...)
	if r.Spec.Attributes != nil {
		c.Spec.Attributes = make(map[string]string, len(r.Spec.Attributes))
		for k, v := range r.Spec.Attributes {
			c.Spec.Attributes[k] = v
		}
	}
	c.Nights = append([]Night(nil), r.Nights...)
	c.UserUnits = make(map[string]int64, len(r.UserUnits))
	for k, v := range r.UserUnits {
		c.UserUnits[k] = v
	}
	return &c
}

// cowClone returns a copy for Apply to change in place while frozen views
// keep the original (cowmap.go): the counts are copied, the spec is shared,
// since Apply replaces a spec whole and never changes one in place.
func (r *Resource) cowClone() *Resource {
	c := *r
	c.Nights = slices.Clone(r.Nights)
	c.UserUnits = maps.Clone(r.UserUnits)
	return &c
}

// Reservation is one booking of Quantity units (rooms: per night of the
// stay). The fields are ordered to pack: the state holds millions.
type Reservation struct {
	ID         string
	ResourceID string
	User       string
	Quantity   int64
	CheckIn    Day // rooms only
	CheckOut   Day // rooms only, exclusive
	Kind       Kind
	Status     Status
	CreatedAt  int64
	ExpiresAt  int64 // held only
	UpdatedAt  int64
}

// IdemRecord is a stored answer to an idempotent request: a retry with the
// same (User, Key) and Fingerprint gets Code and Reservation back.
type IdemRecord struct {
	User        string
	Key         string
	Fingerprint [16]byte // hash of endpoint and body
	Code        int      // HTTP status of the first answer
	Reservation Reservation
	CreatedAt   int64
}

// IdemTTL is how long idempotency records are kept (leader time).
const IdemTTL = int64(24 * time.Hour)
