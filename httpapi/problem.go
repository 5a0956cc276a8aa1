package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// Errors that only the HTTP layer produces; the rest are domain sentinels.
var (
	errPayloadTooLarge = errors.New("payload too large")
)

// Problem types are "https://allot.dev/problems/<code>": one stable URI per
// code, so that a client may dispatch on either field.
const typeBase = "https://allot.dev/problems/"

// problemKind is the fixed part of a problem details body.
type problemKind struct {
	status int
	code   string
	typ    string
	title  string
}

// classify is the one mapping from errors to HTTP status and problem code.
// Order matters only for errors that wrap several sentinels: the first
// match wins, and "unknown outcome" outranks everything because a client
// that takes an ambiguous write for a failure may book twice.
func classify(err error) problemKind {
	switch {
	case errors.Is(err, domain.ErrOutcomeUnknown),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return problemKind{503, "outcome_unknown", typeBase + "outcome_unknown", "Outcome unknown"}
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, domain.ErrNotLeader):
		return problemKind{503, "unavailable", typeBase + "unavailable", "Unavailable"}
	case errors.Is(err, domain.ErrInvalidArgument):
		return problemKind{400, "invalid_argument", typeBase + "invalid_argument", "Invalid argument"}
	case errors.Is(err, domain.ErrUnauthenticated):
		return problemKind{401, "unauthenticated", typeBase + "unauthenticated", "Unauthenticated"}
	case errors.Is(err, domain.ErrPermissionDenied):
		return problemKind{403, "permission_denied", typeBase + "permission_denied", "Permission denied"}
	case errors.Is(err, domain.ErrNotFound):
		return problemKind{404, "not_found", typeBase + "not_found", "Not found"}
	case errors.Is(err, domain.ErrSoldOut):
		return problemKind{409, "sold_out", typeBase + "sold_out", "Sold out"}
	case errors.Is(err, domain.ErrLimitExceeded):
		return problemKind{409, "limit_exceeded", typeBase + "limit_exceeded", "Per-user limit exceeded"}
	case errors.Is(err, domain.ErrNotOpen):
		return problemKind{409, "not_open", typeBase + "not_open", "Not open yet"}
	case errors.Is(err, domain.ErrClosed):
		return problemKind{409, "closed", typeBase + "closed", "Closed"}
	case errors.Is(err, domain.ErrExpired):
		return problemKind{409, "expired", typeBase + "expired", "Hold expired"}
	case errors.Is(err, domain.ErrInvalidState), errors.Is(err, domain.ErrAlreadyExists):
		return problemKind{409, "invalid_state", typeBase + "invalid_state", "Invalid state"}
	case errors.Is(err, domain.ErrRequestInProgress):
		return problemKind{409, "request_in_progress", typeBase + "request_in_progress", "Request in progress"}
	case errors.Is(err, errPayloadTooLarge):
		return problemKind{413, "payload_too_large", typeBase + "payload_too_large", "Payload too large"}
	case errors.Is(err, domain.ErrIdempotencyKeyReused):
		return problemKind{422, "idempotency_key_reused", typeBase + "idempotency_key_reused", "Idempotency key reused"}
	case errors.Is(err, domain.ErrRateLimited):
		return problemKind{429, "rate_limited", typeBase + "rate_limited", "Rate limited"}
	}
	return problemKind{500, "internal", typeBase + "internal", "Internal error"}
}

// fail answers err as a problem details body. 5xx answers are logged; a
// 500's detail is generic so internals do not leak to clients.
func (s *Server) fail(c *gin.Context, err error) {
	pk := classify(err)
	detail := err.Error()
	switch pk.status {
	case http.StatusInternalServerError:
		detail = "internal error; see the server log for request " + c.Writer.Header().Get(headerRequestID)
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", c.Writer.Header().Get(headerRequestID)),
			slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
			slog.String("error", err.Error()))
	case http.StatusServiceUnavailable:
		if c.Writer.Header().Get("Retry-After") == "" {
			c.Header("Retry-After", "1")
		}
		if pk.code == "outcome_unknown" {
			s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "write outcome unknown",
				slog.String("request_id", c.Writer.Header().Get(headerRequestID)),
				slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
				slog.String("error", err.Error()))
		}
	case http.StatusTooManyRequests:
		if c.Writer.Header().Get("Retry-After") == "" {
			c.Header("Retry-After", "1")
		}
	}
	writeProblem(c, pk, detail)
}

// writeProblem writes an RFC 9457 body by hand: rejections (sold out, over
// the limit) are most of a flash crowd's answers.
func writeProblem(c *gin.Context, pk problemKind, detail string) {
	b := make([]byte, 0, 160+len(detail))
	b = append(b, `{"type":"`...)
	b = append(b, pk.typ...)
	b = append(b, `","title":"`...)
	b = append(b, pk.title...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(pk.status), 10)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, detail)
	b = append(b, `,"code":"`...)
	b = append(b, pk.code...)
	b = append(b, `"}`...)
	c.Data(pk.status, "application/problem+json", b)
}

// appendJSONString appends s as a JSON string. Control characters are
// escaped and invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
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
