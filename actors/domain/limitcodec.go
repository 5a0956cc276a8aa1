package domain

import (
	"encoding/binary"
	"sort"
)

// The binary encoding of limit events and records.

func appendLimitSpec(b []byte, s *LimitSpec) []byte {
	b = binary.AppendVarint(b, s.PerUser)
	b = binary.AppendVarint(b, s.Capacity)
	keys := make([]string, 0, len(s.Attributes))
	for k := range s.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(appendString(b, k), s.Attributes[k])
	}
	return b
}

func (d *decoder) limitSpec(s *LimitSpec) {
	s.PerUser = d.varint()
	s.Capacity = d.varint()
	if n := d.count(2); n > 0 {
		s.Attributes = make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.string()
			s.Attributes[k] = d.string()
		}
	}
}

// appendLimitOp encodes the payload of EvPutLimit (id and spec) or
// EvDeleteLimit (id).
func appendLimitOp(b []byte, t EventType, op *LimitOp) []byte {
	if op == nil {
		op = &LimitOp{}
	}
	b = appendString(b, op.ID)
	if t == EvPutLimit {
		b = appendLimitSpec(b, &op.Spec)
	}
	return b
}

func (d *decoder) limitOp(t EventType) *LimitOp {
	op := &LimitOp{ID: d.string()}
	if t == EvPutLimit {
		d.limitSpec(&op.Spec)
	}
	return op
}

// AppendLimit encodes a limit's snapshot record: id, spec and times. Its
// counts and members are not in it: restoring rebuilds them from the
// resources and reservations (State.LoadLimit).
func AppendLimit(b []byte, l *Limit) []byte {
	b = appendString(b, l.ID)
	b = appendLimitSpec(b, &l.Spec)
	b = binary.AppendVarint(b, l.CreatedAt)
	return binary.AppendVarint(b, l.UpdatedAt)
}

// DecodeLimit reads what AppendLimit wrote.
func DecodeLimit(data []byte) (*Limit, error) {
	return decodeWith(data, func(d *decoder, l *Limit) {
		l.ID = d.string()
		d.limitSpec(&l.Spec)
		l.CreatedAt = d.varint()
		l.UpdatedAt = d.varint()
	})
}

// appendLimitState encodes a limit with its counts and members, for the
// state hash.
func appendLimitState(b []byte, l *Limit) []byte {
	b = AppendLimit(b, l)
	b = binary.AppendVarint(b, l.Taken)
	b = appendUserUnits(b, l.UserTaken)
	b = binary.AppendUvarint(b, uint64(len(l.members)))
	for _, m := range l.members {
		b = appendString(b, m)
	}
	return b
}
