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

// The errors only the HTTP layer produces. They are domain sentinels, so
// that the one problem table (domain.Problems) holds their codes too.
var (
	errPayloadTooLarge  = domain.ErrPayloadTooLarge
	errMethodNotAllowed = domain.ErrMethodNotAllowed
	errRequestTimeout   = domain.ErrRequestTimeout
	errOffsetCompacted  = domain.ErrOffsetCompacted // events.go: the events after the cursor were pruned
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

// problemCodes lists every code classify can give: the problem table's.
var problemCodes = func() []string {
	rows := domain.Problems()
	codes := make([]string, len(rows))
	for i, p := range rows {
		codes[i] = string(p.Code)
	}
	return codes
}()

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
// two can never disagree; only context errors (a write whose deadline
// passed: outcome unknown) are the HTTP layer's own call, made here first.
func classify(err error) problemKind {
	code := domain.ErrorCode(err)
	if code != string(domain.CodeOutcomeUnknown) && !withoutContextErrors(err) &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		code = string(domain.CodeOutcomeUnknown)
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

// withoutContextErrors reports whether err and the errors it wraps form
// one chain of Unwrap() error without Is methods, none of them a context
// error: then errors.Is is false for both, found in one walk of the chain
// instead of one walk per error. It is false for anything else
// (errors.Join, several %w, an Is method), which takes the checks one by
// one.
func withoutContextErrors(err error) bool {
	for err != nil {
		if err == context.DeadlineExceeded || err == context.Canceled {
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

// problemStatus gives the HTTP status and title of a problem code, from
// the problem table.
func problemStatus(code string) (int, string) {
	p := domain.ProblemOf(domain.Code(code))
	return p.Status, p.Title
}

// handler is a gin handler that returns its failure instead of answering
// it; answer is the one place that turns such an error into a problem.
type handler func(c *gin.Context) error

// answer adapts h to gin: a non-nil error from h is answered with fail. A
// handler that has started its answer returns nil.
func (s *Server) answer(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			s.fail(c, err)
		}
	}
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
		if pk.code == string(domain.CodeOutcomeUnknown) {
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
	if pk.code == string(domain.CodeLimitExceeded) {
		if id, rule, ok := domain.LimitRefusal(err); ok {
			more = limitMembers{id: id, rule: rule}
		}
	}
	s.writeProblem(c, pk, detail, more)
}

// limitMembers are the "limit" and "rule" members of a limit_exceeded
// problem: the id of the limit group that refused ("" for the resource's
// own per_user_limit) and which of its bounds, "per_user" or "capacity".
type limitMembers struct{ id, rule string }

func (l limitMembers) appendProblemMembers(b []byte) []byte {
	b = append(b, `,"limit":`...)
	b = jsonview.AppendString(b, l.id)
	b = append(b, `,"rule":`...)
	return jsonview.AppendString(b, l.rule)
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
