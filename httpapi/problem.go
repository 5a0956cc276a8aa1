package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
)

// Errors that only the HTTP layer produces; the rest are domain sentinels.
var (
	errPayloadTooLarge  = errors.New("payload too large")
	errMethodNotAllowed = errors.New("method not allowed")
	errRequestTimeout   = errors.New("request body not received in time")
	errOffsetCompacted  = errors.New("offset compacted") // events.go: the events after the cursor were pruned
)

// problemMembers is an error that adds members to its problem body
// (offset_compacted's "earliest"): b is the body so far, without its
// closing brace.
type problemMembers interface {
	appendProblemMembers(b []byte) []byte
}

// Problem types are "https://allot.dev/problems/<code>": one stable URI per
// code, so that a client may dispatch on either field.
const typeBase = "https://allot.dev/problems/"

// problemKind is the fixed part of a problem details body. head and tail
// are that part encoded once: the members before "detail", and "code".
type problemKind struct {
	status int
	code   string
	typ    string
	title  string
	head   []byte // {"type":...,"title":...,"status":...,"detail":
	tail   []byte // ,"code":"..."
}

// problemCodes lists every code classify can give.
var problemCodes = [...]string{
	"invalid_argument", "unauthenticated", "permission_denied", "not_found",
	"sold_out", "limit_exceeded", "not_open", "closed", "invalid_state", "expired",
	"request_in_progress", "method_not_allowed", "request_timeout", "offset_compacted",
	"payload_too_large", "idempotency_key_reused", "rate_limited", "unavailable",
	"outcome_unknown", "internal",
}

// problemKinds holds the kind of every code, encoded once: a rejection
// then costs a map lookup, not the building of its constant members.
var problemKinds = func() map[string]problemKind {
	m := make(map[string]problemKind, len(problemCodes))
	for _, code := range problemCodes {
		m[code] = newProblemKind(code)
	}
	return m
}()

func newProblemKind(code string) problemKind {
	status, title := problemStatus(code)
	pk := problemKind{status: status, code: code, typ: typeBase + code, title: title}
	b := append([]byte(`{"type":"`), pk.typ...)
	b = append(b, `","title":"`...)
	b = append(b, pk.title...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(pk.status), 10)
	pk.head = append(b, `,"detail":`...)
	b = append([]byte(`,"code":"`), pk.code...)
	pk.tail = append(b, '"')
	return pk
}

// classify is the one mapping from errors to HTTP status and problem code.
// The code comes from domain.ErrorCode (which also labels metrics), so the
// two can never disagree; only the errors that the HTTP layer makes itself
// and context errors (a write whose deadline passed: outcome unknown) are
// handled here first.
func classify(err error) problemKind {
	code := domain.ErrorCode(err)
	if code != "outcome_unknown" && withoutLayerSentinels(err) {
		// None of the cases below can match: the domain's code stands.
		return kindOf(code)
	}
	switch {
	case code == "outcome_unknown", errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = "outcome_unknown"
	case errors.Is(err, errPayloadTooLarge):
		code = "payload_too_large"
	case errors.Is(err, errMethodNotAllowed):
		code = "method_not_allowed"
	case errors.Is(err, errRequestTimeout):
		code = "request_timeout"
	case errors.Is(err, errOffsetCompacted):
		code = "offset_compacted"
	}
	return kindOf(code)
}

// kindOf is the problem kind of a code.
func kindOf(code string) problemKind {
	if pk, ok := problemKinds[code]; ok {
		return pk
	}
	return newProblemKind(code)
}

// withoutLayerSentinels reports whether err and the errors it wraps form
// one chain of Unwrap() error without Is methods, none of them one of the
// sentinels classify checks besides the domain's code: then errors.Is is
// false for each of them, found in one walk of the chain instead of one
// walk per sentinel. It is false for anything else (errors.Join, several
// %w, an Is method), which takes the checks one by one.
func withoutLayerSentinels(err error) bool {
	for err != nil {
		if isLayerSentinel(err) {
			return false
		}
		if _, custom := err.(interface{ Is(error) bool }); custom {
			return false
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return false
		default:
			return true
		}
	}
	return true
}

// isLayerSentinel reports whether err is one of the errors classify looks
// for besides the domain's code.
func isLayerSentinel(err error) bool {
	switch err {
	case context.DeadlineExceeded, context.Canceled, errPayloadTooLarge, errMethodNotAllowed, errRequestTimeout, errOffsetCompacted:
		return true
	}
	return false
}

// problemStatus gives the HTTP status and title of a problem code.
func problemStatus(code string) (int, string) {
	switch code {
	case "invalid_argument":
		return 400, "Invalid argument"
	case "unauthenticated":
		return 401, "Unauthenticated"
	case "permission_denied":
		return 403, "Permission denied"
	case "not_found":
		return 404, "Not found"
	case "sold_out":
		return 409, "Sold out"
	case "limit_exceeded":
		return 409, "Limit exceeded"
	case "not_open":
		return 409, "Not open yet"
	case "closed":
		return 409, "Closed"
	case "invalid_state":
		return 409, "Invalid state"
	case "expired":
		return 409, "Hold expired"
	case "request_in_progress":
		return 409, "Request in progress"
	case "method_not_allowed":
		return 405, "Method not allowed"
	case "request_timeout":
		return 408, "Request timeout"
	case "offset_compacted":
		return 410, "Offset compacted"
	case "payload_too_large":
		return 413, "Payload too large"
	case "idempotency_key_reused":
		return 422, "Idempotency key reused"
	case "rate_limited":
		return 429, "Rate limited"
	case "unavailable":
		return 503, "Unavailable"
	case "outcome_unknown":
		return 503, "Outcome unknown"
	}
	return 500, "Internal error"
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
	var more problemMembers
	if m, ok := errors.AsType[interface {
		error
		problemMembers
	}](err); ok {
		more = m
	}
	if pk.code == "limit_exceeded" {
		if id, ok := domain.LimitExceededID(err); ok {
			more = limitMember(id)
		}
	}
	s.writeProblem(c, pk, detail, more)
}

// limitMember is the "limit" member of a limit_exceeded problem: the id of
// the limit group that refused, "" for the resource's own per_user_limit.
type limitMember string

func (l limitMember) appendProblemMembers(b []byte) []byte {
	b = append(b, `,"limit":`...)
	return jsonview.AppendString(b, string(l))
}

// writeProblem writes an RFC 9457 body by hand, into a pooled buffer:
// rejections (sold out, over the limit) are most of a flash crowd's
// answers.
func (s *Server) writeProblem(c *gin.Context, pk problemKind, detail string, more problemMembers) {
	bp := s.getAnswer()
	b := append((*bp)[:0], pk.head...)
	b = jsonview.AppendString(b, detail)
	b = append(b, pk.tail...)
	if more != nil {
		b = more.appendProblemMembers(b)
	}
	b = append(b, '}')
	writeData(c, pk.status, contentTypeProblem, b)
	s.putAnswer(bp, b)
}
