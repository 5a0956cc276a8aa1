package domain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The binary encoding of events (Raft entries) and of state records
// (snapshots, hashes): varints and length-prefixed strings, one version byte
// in front of each Raft entry. Hand-written because a flash crowd turns every
// accepted request into one encoded event on the hot path.

// Batch format versions: the first byte of every encoded Batch. A leader
// writes a version only once the cluster has committed that it may
// (logversion.go); every version up to BatchVersion decodes.
const (
	// BatchV1 is the event count and the events.
	BatchV1 = 1
	// BatchV2 is BatchV1 with the proposer's term (a uvarint, never 0)
	// after the version byte.
	BatchV2 = 2
	// BatchV3 is BatchV2 that may carry EvPrune events, which binaries of
	// version 2 do not know: a leader proposes EvPrune only once the log
	// format allows 3, and a stamped batch that carries one is written as
	// version 3, so an older node stops on the version byte.
	BatchV3 = 3
	// BatchV4 is BatchV3 under which the FSM numbers the change stream
	// (change.go) and that may carry webhook events, which binaries of
	// version 3 do not know; a stamped batch that carries one is written
	// as version 4.
	BatchV4 = 4
	// BatchVersion is the newest version this binary decodes.
	BatchVersion = BatchV4
)

// ErrCorrupt is returned for bytes that do not decode.
var ErrCorrupt = errors.New("corrupt encoding")

// maxPrealloc bounds the events DecodeBatch allocates ahead of decoding them.
const maxPrealloc = 1024

// EncodeBatch appends the encoding of b to dst: BatchV2 when b carries a
// term, else BatchV1 (which every node decodes). The proposer decides which
// by stamping the term or not.
func EncodeBatch(dst []byte, b *Batch) []byte {
	if b.Term != 0 {
		v := byte(BatchV2)
		if slices.ContainsFunc(b.Events, func(ev Event) bool { return ev.needsV4() }) {
			v = BatchV4
		} else if slices.ContainsFunc(b.Events, func(ev Event) bool { return ev.Type == EvPrune }) {
			v = BatchV3
		}
		dst = append(dst, v)
		dst = binary.AppendUvarint(dst, b.Term)
	} else {
		dst = append(dst, BatchV1)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	for i := range b.Events {
		dst = appendEvent(dst, &b.Events[i])
	}
	return dst
}

// needsV4 reports whether an event exists only from log format 4 on:
// webhook and limit events, and a resource that names limits.
func (ev *Event) needsV4() bool {
	return ev.Type.IsWebhookEvent() || ev.Type.IsLimitEvent() || ev.Type == EvPutResource && len(ev.Spec.Limits) > 0
}

// DecodeBatch decodes an entry made by EncodeBatch, of any version up to
// BatchVersion; a BatchV1 entry has Term 0.
func DecodeBatch(data []byte) (Batch, error) {
	d := decoder{buf: data}
	var term uint64
	v := d.byte()
	switch v {
	case BatchV1:
	case BatchV2, BatchV3, BatchV4:
		if term = d.uvarint(); term == 0 && d.err == nil {
			return Batch{}, fmt.Errorf("batch version %d with term 0: %w", v, ErrCorrupt)
		}
	default:
		return Batch{}, fmt.Errorf("batch version %d: %w", v, ErrCorrupt)
	}
	// An event takes at least 4 bytes (type, time, id length, idem flag).
	// Preallocating for at most a normal batch keeps a corrupt count from
	// reserving far more Event structs than the input has events.
	n := d.count(4)
	b := Batch{Term: term, Events: make([]Event, 0, min(n, maxPrealloc))}
	for i := 0; i < n && d.err == nil; i++ {
		var ev Event
		d.event(&ev)
		if ev.Type.IsWebhookEvent() && v < BatchV4 {
			d.fail("webhook event in a version %d batch", v)
		}
		if ev.needsV4() && !ev.Type.IsWebhookEvent() && v < BatchV4 {
			d.fail("limit event or resource limits in a version %d batch", v)
		}
		b.Events = append(b.Events, ev)
	}
	return b, d.finish()
}

func appendEvent(b []byte, ev *Event) []byte {
	b = append(b, byte(ev.Type))
	b = binary.AppendVarint(b, ev.At)
	b = appendString(b, ev.ResourceID)
	switch ev.Type {
	case EvPutResource:
		b = appendSpec(b, &ev.Spec)
	case EvReserve:
		b = appendReservation(b, &ev.Reservation)
	case EvTransition:
		b = appendString(b, ev.ReservationID)
		b = append(b, byte(ev.To))
	case EvSetMember:
		b = AppendMember(b, &ev.Member)
	case EvRemoveMember:
		b = appendString(b, ev.Member.ID)
	case EvLogFormat:
		b = append(b, ev.LogFormat)
	case EvPrune:
		b = binary.AppendVarint(b, ev.PruneBefore)
		b = binary.AppendUvarint(b, uint64(ev.PruneMax))
	case EvPutWebhook, EvDeleteWebhook, EvAdvanceWebhook, EvPauseWebhook, EvReplayWebhook:
		b = appendWebhookOp(b, ev.Type, ev.Hook)
	case EvPutLimit, EvDeleteLimit:
		b = appendLimitOp(b, ev.Type, ev.Limit)
	}
	if ev.Idem == nil {
		return append(b, 0)
	}
	return appendIdem(append(b, 1), ev.Idem)
}

func (d *decoder) event(ev *Event) {
	ev.Type = EventType(d.byte())
	ev.At = d.varint()
	ev.ResourceID = d.string()
	switch ev.Type {
	case EvPutResource:
		d.spec(&ev.Spec)
	case EvReserve:
		d.reservation(&ev.Reservation)
	case EvTransition:
		ev.ReservationID = d.string()
		ev.To = Status(d.byte())
	case EvSetMember:
		d.member(&ev.Member)
	case EvRemoveMember:
		ev.Member.ID = d.string()
	case EvLogFormat:
		ev.LogFormat = d.byte()
	case EvPrune:
		ev.PruneBefore = d.varint()
		if n := d.uvarint(); n <= MaxPrunePerEvent {
			ev.PruneMax = int(n)
		} else {
			d.fail("prune of %d reservations", n)
		}
	case EvPutWebhook, EvDeleteWebhook, EvAdvanceWebhook, EvPauseWebhook, EvReplayWebhook:
		ev.Hook = d.webhookOp(ev.Type)
	case EvPutLimit, EvDeleteLimit:
		ev.Limit = d.limitOp(ev.Type)
	case EvDeleteResource:
	default:
		d.fail("event type %d", ev.Type)
	}
	switch flag := d.byte(); flag {
	case 0:
	case 1:
		ev.Idem = new(IdemRecord)
		d.idem(ev.Idem)
	default:
		d.fail("idempotency flag %d", flag)
	}
}

func appendSpec(b []byte, s *Spec) []byte {
	b = append(b, byte(s.Kind))
	b = binary.AppendVarint(b, s.Capacity)
	b = binary.AppendUvarint(b, uint64(len(s.Inventory)))
	for _, r := range s.Inventory {
		b = binary.AppendVarint(b, int64(r.From))
		b = binary.AppendVarint(b, int64(r.To))
		b = binary.AppendVarint(b, r.Rooms)
	}
	b = binary.AppendVarint(b, s.PerUserLimit)
	b = binary.AppendVarint(b, s.OpensAt)
	b = binary.AppendVarint(b, s.ClosesAt)
	b = binary.AppendVarint(b, s.HoldSeconds)
	b = binary.AppendVarint(b, s.CancelDeadline)
	keys := make([]string, 0, len(s.Attributes)+1)
	for k := range s.Attributes {
		keys = append(keys, k)
	}
	if len(s.Limits) > 0 {
		keys = append(keys, limitsAttribute)
	}
	sort.Strings(keys) // canonical: hashes compare equal states
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		if k == limitsAttribute {
			b = appendString(appendString(b, k), strings.Join(s.Limits, ","))
			continue
		}
		b = appendString(appendString(b, k), s.Attributes[k])
	}
	return b
}

// limitsAttribute is the key under which a spec's limits travel among its
// attributes: every encoding of a spec (entries, snapshots, hashes) then
// stays what it was for a resource without limits, and no version needs to
// say whether the field is there. No attribute of an admin's may start with
// a NUL byte (Spec.Validate).
const limitsAttribute = "\x00limits"

func (d *decoder) spec(s *Spec) {
	s.Kind = Kind(d.byte())
	s.Capacity = d.varint()
	if n := d.count(3); n > 0 {
		s.Inventory = make([]InventoryRow, n)
		for i := range s.Inventory {
			s.Inventory[i] = InventoryRow{From: Day(d.varint()), To: Day(d.varint()), Rooms: d.varint()}
		}
	}
	s.PerUserLimit = d.varint()
	s.OpensAt = d.varint()
	s.ClosesAt = d.varint()
	s.HoldSeconds = d.varint()
	s.CancelDeadline = d.varint()
	if n := d.count(2); n > 0 {
		s.Attributes = make(map[string]string, n)
		for i := 0; i < n; i++ {
			k, v := d.string(), d.string()
			if k == limitsAttribute {
				s.Limits = strings.Split(v, ",")
				continue
			}
			s.Attributes[k] = v
		}
		if len(s.Attributes) == 0 {
			s.Attributes = nil
		}
	}
}

func appendReservation(b []byte, r *Reservation) []byte {
	b = appendString(b, r.ID)
	b = appendString(b, r.ResourceID)
	b = append(b, byte(r.Kind), byte(r.Status))
	b = appendString(b, r.User)
	b = binary.AppendVarint(b, r.Quantity)
	b = binary.AppendVarint(b, int64(r.CheckIn))
	b = binary.AppendVarint(b, int64(r.CheckOut))
	b = binary.AppendVarint(b, r.CreatedAt)
	b = binary.AppendVarint(b, r.ExpiresAt)
	return binary.AppendVarint(b, r.UpdatedAt)
}

func (d *decoder) reservation(r *Reservation) {
	r.ID = d.string()
	r.ResourceID = d.string()
	r.Kind = Kind(d.byte())
	r.Status = Status(d.byte())
	r.User = d.string()
	r.Quantity = d.varint()
	r.CheckIn = Day(d.varint())
	r.CheckOut = Day(d.varint())
	r.CreatedAt = d.varint()
	r.ExpiresAt = d.varint()
	r.UpdatedAt = d.varint()
}

func appendIdem(b []byte, rec *IdemRecord) []byte {
	b = appendString(b, rec.User)
	b = appendString(b, rec.Key)
	b = append(b, rec.Fingerprint[:]...)
	b = binary.AppendVarint(b, int64(rec.Code))
	b = appendReservation(b, &rec.Reservation)
	return binary.AppendVarint(b, rec.CreatedAt)
}

func (d *decoder) idem(rec *IdemRecord) {
	rec.User = d.string()
	rec.Key = d.string()
	copy(rec.Fingerprint[:], d.bytes(len(rec.Fingerprint)))
	rec.Code = int(d.varint())
	d.reservation(&rec.Reservation)
	rec.CreatedAt = d.varint()
}

func appendResource(b []byte, r *Resource) []byte {
	b = appendString(b, r.ID)
	b = appendSpec(b, &r.Spec)
	b = binary.AppendVarint(b, r.CreatedAt)
	b = binary.AppendVarint(b, r.UpdatedAt)
	b = binary.AppendVarint(b, r.Held)
	b = binary.AppendVarint(b, r.Confirmed)
	b = binary.AppendVarint(b, int64(r.NightBase))
	b = binary.AppendUvarint(b, uint64(len(r.Nights)))
	for _, n := range r.Nights {
		b = binary.AppendVarint(b, int64(n.Rooms))
		b = binary.AppendVarint(b, int64(n.Held))
		b = binary.AppendVarint(b, int64(n.Confirmed))
	}
	return appendUserUnits(b, r.UserUnits)
}

// appendUserUnits encodes units per user in key order, so that equal maps
// encode (and hash) equally.
func appendUserUnits(b []byte, m map[string]int64) []byte {
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	sort.Strings(users)
	b = binary.AppendUvarint(b, uint64(len(users)))
	for _, u := range users {
		b = binary.AppendVarint(appendString(b, u), m[u])
	}
	return b
}

// userUnits reads what appendUserUnits wrote.
func (d *decoder) userUnits() map[string]int64 {
	n := d.count(2)
	m := make(map[string]int64, n)
	for i := 0; i < n && d.err == nil; i++ {
		u := d.string()
		m[u] = d.varint()
	}
	return m
}

func (d *decoder) resource(r *Resource) {
	r.ID = d.string()
	d.spec(&r.Spec)
	r.CreatedAt = d.varint()
	r.UpdatedAt = d.varint()
	r.Held = d.varint()
	r.Confirmed = d.varint()
	r.NightBase = Day(d.varint())
	if n := d.count(3); n > 0 {
		r.Nights = make([]Night, n)
		for i := range r.Nights {
			r.Nights[i] = Night{Rooms: int32(d.varint()), Held: int32(d.varint()), Confirmed: int32(d.varint())}
		}
	}
	r.UserUnits = d.userUnits()
}

// AppendResource, AppendReservation and AppendIdem encode state records
// (snapshot streams); the Decode functions read them back.
func AppendResource(b []byte, r *Resource) []byte       { return appendResource(b, r) }
func AppendReservation(b []byte, r *Reservation) []byte { return appendReservation(b, r) }
func AppendIdem(b []byte, rec *IdemRecord) []byte       { return appendIdem(b, rec) }
func DecodeResource(data []byte) (r *Resource, err error) {
	return decodeWith(data, (*decoder).resource)
}
func DecodeReservation(data []byte) (Reservation, error) {
	return decodeValue(data, (*decoder).reservation)
}
func DecodeIdem(data []byte) (rec IdemRecord, err error) { return decodeValue(data, (*decoder).idem) }

// DecodeReservationInto is DecodeReservation into *r, and DecodeIdemInto
// DecodeIdem into *rec: restoring a snapshot decodes millions of them
// straight into the slices it loads from, each without an allocation of
// its own.
func DecodeReservationInto(r *Reservation, data []byte) error {
	d := decoder{buf: data}
	d.reservation(r)
	return d.finish()
}

// DecodeIdemInto: see DecodeReservationInto.
func DecodeIdemInto(rec *IdemRecord, data []byte) error {
	d := decoder{buf: data}
	d.idem(rec)
	return d.finish()
}

func decodeWith[T any](data []byte, fn func(*decoder, *T)) (*T, error) {
	v := new(T)
	d := decoder{buf: data}
	fn(&d, v)
	return v, d.finish()
}

func decodeValue[T any](data []byte, fn func(*decoder, *T)) (T, error) {
	v, err := decodeWith(data, fn)
	return *v, err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads what the append functions wrote. The first error sticks;
// later reads return zero values, so callers check once at the end.
type decoder struct {
	buf []byte
	err error

	// recent are the last strings decoded, handed out again when the same
	// bytes come next: one reservation event names its resource, user and
	// id twice or three times (event, reservation, idempotency record), and
	// a batch's events mostly name the same few resources. Sharing them
	// saves an allocation each on the apply path and their bytes in state.
	recent [4]string
	next   int
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
	}
	d.buf = nil
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return d.err
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("short")
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if len(d.buf) < n {
		d.fail("short")
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a length whose items take at least minSize bytes each, so a
// corrupt length cannot make us allocate more than the input could hold.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)/minSize) {
		d.fail("count %d too large", n)
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail("string length %d", n)
		return ""
	}
	raw := d.buf[:n]
	d.buf = d.buf[n:]
	for _, r := range d.recent {
		if r == string(raw) { // compared in place, no copy
			return r
		}
	}
	s := string(raw)
	d.recent[d.next] = s
	d.next = (d.next + 1) % len(d.recent)
	return s
}
