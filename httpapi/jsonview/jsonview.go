// Package jsonview renders domain values as the API shows them, with
// appenders that reflect on nothing and allocate only the bytes they add:
// reservations are rendered on every answer of a flash crowd, and every
// committed change is rendered once into the change stream.
package jsonview

import (
	"strconv"
	"time"
	"unicode/utf8"

	"allot/actors/domain"
)

// AppendString appends s as a JSON string. Control characters are
// escaped and invalid UTF-8 becomes U+FFFD, as encoding/json does.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendTime appends Unix nanoseconds as RFC 3339 in UTC, as
// domain.FormatTime renders them.
func AppendTime(b []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
}

// AppendReservation encodes a reservation as API.md shows it: check_in and
// check_out for rooms only, expires_at only while held.
func AppendReservation(b []byte, r *domain.Reservation) []byte {
	b = append(b, `{"id":`...)
	b = AppendString(b, r.ID)
	b = append(b, `,"resource_id":`...)
	b = AppendString(b, r.ResourceID)
	b = append(b, `,"kind":`...)
	b = AppendString(b, r.Kind.String())
	b = append(b, `,"user":`...)
	b = AppendString(b, r.User)
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, r.Quantity, 10)
	b = append(b, `,"status":`...)
	b = AppendString(b, r.Status.String())
	if r.Kind == domain.KindRoom {
		b = append(b, `,"check_in":"`...)
		b = AppendDay(b, r.CheckIn)
		b = append(b, `","check_out":"`...)
		b = AppendDay(b, r.CheckOut)
		b = append(b, '"')
	}
	b = append(b, `,"created_at":"`...)
	b = AppendTime(b, r.CreatedAt)
	if r.Status == domain.StatusHeld && r.ExpiresAt != 0 {
		b = append(b, `","expires_at":"`...)
		b = AppendTime(b, r.ExpiresAt)
	}
	b = append(b, `","updated_at":"`...)
	b = AppendTime(b, r.UpdatedAt)
	return append(b, `"}`...)
}

// AppendDay appends d as YYYY-MM-DD, as domain.Day.String renders it.
func AppendDay(b []byte, d domain.Day) []byte {
	return time.Unix(int64(d)*86400, 0).UTC().AppendFormat(b, time.DateOnly)
}
