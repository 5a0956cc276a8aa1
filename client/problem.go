package client

import (
	"encoding/json"
	"fmt"

	"allot/actors/domain"
)

// Errors of the problem codes the HTTP layer itself answers, for
// errors.Is; the same values as package domain's.
var (
	// ErrOffsetCompacted: the events after the asked offset are no longer
	// kept (410 offset_compacted); ProblemError.Earliest is the oldest kept.
	ErrOffsetCompacted = domain.ErrOffsetCompacted
	// ErrPayloadTooLarge: the request body is over the server's limit.
	ErrPayloadTooLarge = domain.ErrPayloadTooLarge
	// ErrInternal: the server failed (500 internal); the detail names the
	// request id to look up in its log.
	ErrInternal = domain.ErrInternal
)

// ProblemError is an RFC 9457 problem answer (any status from 400 up).
// errors.Is matches it against the sentinel of its code: domain.ErrSoldOut
// for "sold_out", domain.ErrOutcomeUnknown for "outcome_unknown",
// domain.ErrOffsetCompacted (also ErrOffsetCompacted here) for
// "offset_compacted", and so on.
type ProblemError struct {
	// Method and Path are the request's ("POST /v1/resources/x/reservations").
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Code is the stable machine-readable problem code ("sold_out"); for
	// an answer that was not a problem body it is empty.
	Code   string
	Title  string
	Detail string
	// Limit is the limit group that refused a reservation (limit_exceeded;
	// "" for the resource's own per_user_limit).
	Limit string
	// Rule is the bound of the limit that refused (limit_exceeded):
	// "per_user" or "capacity".
	Rule string
	// Earliest is the oldest offset still kept (offset_compacted).
	Earliest int64
	// Node is the node that answered (its X-Allot-Node header).
	Node string
	// Body is the answer's body as received.
	Body []byte
}

func (e *ProblemError) Error() string {
	code := e.Code
	if code == "" {
		code = "no problem code"
	}
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap is the sentinel error of the problem's code (domain.ErrorOfCode),
// so that errors.Is matches it; nil for a code without one.
func (e *ProblemError) Unwrap() error { return domain.ErrorOfCode(e.Code) }

// Retryable reports whether the same request, with the same
// Idempotency-Key, may succeed later: rate_limited, unavailable,
// outcome_unknown and request_in_progress.
func (e *ProblemError) Retryable() bool {
	switch e.Code {
	case "rate_limited", "unavailable", "outcome_unknown", "request_in_progress":
		return true
	}
	return e.Code == "" && (e.Status == 429 || e.Status == 502 || e.Status == 503 || e.Status == 504)
}

// problemBody is the part of a problem body ProblemError keeps.
type problemBody struct {
	Code     string `json:"code"`
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	Limit    string `json:"limit"`
	Rule     string `json:"rule"`
	Earliest int64  `json:"earliest"`
}

// newProblem makes the error of a non-2xx answer.
func newProblem(method, path string, status int, node string, body []byte) *ProblemError {
	e := &ProblemError{Method: method, Path: path, Status: status, Node: node, Body: body}
	var p problemBody
	if json.Unmarshal(body, &p) == nil {
		e.Code, e.Title, e.Detail, e.Limit, e.Rule, e.Earliest = p.Code, p.Title, p.Detail, p.Limit, p.Rule, p.Earliest
	} else {
		e.Detail = string(body[:min(len(body), 200)])
	}
	return e
}
