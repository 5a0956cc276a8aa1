package jsonview

import (
	"slices"
	"strconv"

	"allot/actors/domain"
)

// AppendChange renders a change of the stream as API.md "Events" shows it.
// The output depends only on the change, so every node stores the same
// bytes for the same offset.
func AppendChange(b []byte, ch *domain.Change) []byte {
	b = append(b, `{"offset":`...)
	b = strconv.AppendUint(b, ch.Offset, 10)
	b = append(b, `,"shard":0,"type":"`...)
	b = append(b, ch.Type.String()...)
	b = append(b, `","at":"`...)
	b = AppendTime(b, ch.At)
	b = append(b, '"')
	if ch.Type == domain.ChangeLimitUpdated || ch.Type == domain.ChangeLimitDeleted {
		b = append(b, `,"limit_id":`...)
		b = AppendString(b, ch.Limit.ID)
		if ch.Type == domain.ChangeLimitUpdated {
			b = append(b, `,"limit":`...)
			b = AppendStoredLimit(b, ch.Limit)
		}
		return append(b, '}')
	}
	b = append(b, `,"resource_id":`...)
	b = AppendString(b, ch.ResourceID)
	b = append(b, `,"kind":`...)
	b = AppendString(b, ch.Kind.String())
	switch {
	case ch.Resource != nil:
		b = append(b, `,"resource":`...)
		b = AppendStoredResource(b, ch.Resource)
	case ch.Reservation.ID != "":
		b = append(b, `,"from":"`...)
		if ch.From != 0 {
			b = append(b, ch.From.String()...)
		}
		b = append(b, `","reservation":`...)
		b = AppendReservation(b, &ch.Reservation)
	}
	if ch.IdemKey != "" {
		b = append(b, `,"idempotency_key":`...)
		b = AppendString(b, ch.IdemKey)
	}
	return append(b, '}')
}

// AppendStoredResource renders a resource as stored: its spec and times,
// without live counts (fields as GET /v1/resources/{id} names them).
func AppendStoredResource(b []byte, r *domain.Resource) []byte {
	sp := &r.Spec
	b = append(b, `{"id":`...)
	b = AppendString(b, r.ID)
	b = append(b, `,"kind":`...)
	b = AppendString(b, sp.Kind.String())
	b = append(b, `,"capacity":`...)
	b = strconv.AppendInt(b, sp.Capacity, 10)
	b = append(b, `,"inventory":[`...)
	for i, row := range sp.Inventory {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"from":"`...)
		b = AppendDay(b, row.From)
		b = append(b, `","to":"`...)
		b = AppendDay(b, row.To)
		b = append(b, `","rooms":`...)
		b = strconv.AppendInt(b, row.Rooms, 10)
		b = append(b, '}')
	}
	b = append(b, `],"per_user_limit":`...)
	b = strconv.AppendInt(b, sp.PerUserLimit, 10)
	b = appendOptionalTime(b, `,"opens_at":"`, sp.OpensAt)
	b = appendOptionalTime(b, `,"closes_at":"`, sp.ClosesAt)
	b = append(b, `,"hold_seconds":`...)
	b = strconv.AppendInt(b, sp.HoldSeconds, 10)
	b = appendOptionalTime(b, `,"cancel_deadline":"`, sp.CancelDeadline)
	b = append(b, `,"attributes":`...)
	b = appendAttributes(b, sp.Attributes)
	b = append(b, `,"limits":[`...)
	for i, id := range sp.Limits {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, id)
	}
	b = append(b, `],"created_at":"`...)
	b = AppendTime(b, r.CreatedAt)
	b = append(b, `","updated_at":"`...)
	b = AppendTime(b, r.UpdatedAt)
	return append(b, `"}`...)
}

// AppendStoredLimit renders a limit as stored: its spec and times, without
// counts (fields as GET /v1/limits/{id} names them).
func AppendStoredLimit(b []byte, l *domain.Limit) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, l.ID)
	b = append(b, `,"per_user":`...)
	b = strconv.AppendInt(b, l.Spec.PerUser, 10)
	b = append(b, `,"capacity":`...)
	b = strconv.AppendInt(b, l.Spec.Capacity, 10)
	b = append(b, `,"attributes":`...)
	b = appendAttributes(b, l.Spec.Attributes)
	b = append(b, `,"created_at":"`...)
	b = AppendTime(b, l.CreatedAt)
	b = append(b, `","updated_at":"`...)
	b = AppendTime(b, l.UpdatedAt)
	return append(b, `"}`...)
}

// appendAttributes renders attributes as an object in key order: map order
// is random, and the stream's bytes must not be.
func appendAttributes(b []byte, attrs map[string]string) []byte {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		b = AppendString(b, attrs[k])
	}
	return append(b, '}')
}

func appendOptionalTime(b []byte, key string, ns int64) []byte {
	if ns == 0 {
		return b
	}
	b = append(b, key...)
	b = AppendTime(b, ns)
	return append(b, '"')
}
