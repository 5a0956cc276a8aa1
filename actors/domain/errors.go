// Package domain holds allot's pure booking rules: the kinds of bookable
// resources, reservations and their lifecycle, the events that change them and
// the committed State they change. It does no I/O, reads no clock and draws no
// random numbers, so the leader's actors (deciding) and every node's FSM
// (applying) compute exactly the same thing from the same events.
package domain

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors shared by every layer. Each layer wraps them with detail
// (fmt.Errorf("...: %w", ErrX)); the problem table below gives each its code,
// HTTP status and title, and httpapi answers them from it in one place.
var (
	ErrInvalidArgument      = errors.New("invalid argument")
	ErrUnauthenticated      = errors.New("unauthenticated")
	ErrPermissionDenied     = errors.New("permission denied")
	ErrNotFound             = errors.New("not found")
	ErrSoldOut              = errors.New("sold out")
	ErrLimitExceeded        = errors.New("limit exceeded")
	ErrNotOpen              = errors.New("not open yet")
	ErrClosed               = errors.New("closed")
	ErrInvalidState         = errors.New("invalid state")
	ErrExpired              = errors.New("hold expired")
	ErrAlreadyExists        = errors.New("already exists")
	ErrRequestInProgress    = errors.New("request in progress")
	ErrIdempotencyKeyReused = errors.New("idempotency key reused")
	ErrRateLimited          = errors.New("rate limited")

	// ErrNotLeader is returned before anything was enqueued: the request is
	// safe to forward or retry anywhere.
	ErrNotLeader = errors.New("not the leader")
	// ErrUnavailable means the node cannot take the request now (no leader,
	// leadership changing, not ready, shutting down); nothing was written.
	ErrUnavailable = errors.New("unavailable")
	// ErrOutcomeUnknown means the write may or may not have committed; the
	// client retries with the same Idempotency-Key to learn which.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// Errors that only the HTTP layer produces. They are here, with the rest,
// so that one table holds every code and a client decoding a problem can
// match any of them with errors.Is.
var (
	ErrPayloadTooLarge  = errors.New("payload too large")
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrRequestTimeout   = errors.New("request body not received in time")
	// ErrOffsetCompacted: the events after the cursor were pruned.
	ErrOffsetCompacted = errors.New("offset compacted")
	// ErrInternal is the error of the code "internal", which the server
	// gives any error that is none of the above; it is for clients, which
	// get it back from ErrorOfCode.
	ErrInternal = errors.New("internal error")
)

// ErrDuplicateKey is what State.Apply returns (inside a DuplicateKeyError)
// for an event whose Idempotency-Key already has a committed answer.
var ErrDuplicateKey = errors.New("idempotency key already answered")

// DuplicateKeyError carries the committed answer an event's Idempotency-Key
// already has; the event changed nothing, and its request gets this answer.
type DuplicateKeyError struct {
	Record IdemRecord
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("idempotency key %q of user %q already answered: %v", e.Record.Key, e.Record.User, ErrDuplicateKey)
}

// Unwrap makes errors.Is(err, ErrDuplicateKey) hold.
func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// invalidf wraps ErrInvalidArgument with a formatted detail.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidArgument)
}

// stateErrf wraps err with a formatted detail.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// Code is a problem code: the stable machine-readable "code" member of an
// error answer (API.md's error table).
type Code string

// The problem codes.
const (
	CodeInvalidArgument      Code = "invalid_argument"
	CodeUnauthenticated      Code = "unauthenticated"
	CodePermissionDenied     Code = "permission_denied"
	CodeNotFound             Code = "not_found"
	CodeSoldOut              Code = "sold_out"
	CodeLimitExceeded        Code = "limit_exceeded"
	CodeNotOpen              Code = "not_open"
	CodeClosed               Code = "closed"
	CodeInvalidState         Code = "invalid_state"
	CodeExpired              Code = "expired"
	CodeRequestInProgress    Code = "request_in_progress"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeRequestTimeout       Code = "request_timeout"
	CodeOffsetCompacted      Code = "offset_compacted"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeRateLimited          Code = "rate_limited"
	CodeUnavailable          Code = "unavailable"
	CodeOutcomeUnknown       Code = "outcome_unknown"
	CodeInternal             Code = "internal"
)

// Problem is one row of the problem table: a code, the sentinel error it
// stands for, and how it is answered over HTTP. The domain does no I/O;
// Status is the plain HTTP status number.
type Problem struct {
	Code   Code
	Err    error
	Status int
	Title  string
	// also are further sentinels answered with this code.
	also []error
}

// problems is the one table of problem codes. It is ordered: for an error
// that wraps several sentinels the first row that matches wins. "Outcome
// unknown" outranks everything, because a client that takes an ambiguous
// write for a failure may book twice; the HTTP layer's own errors come next,
// as they say what went wrong with the request itself. "internal" is last:
// it is what matches nothing else.
var problems = [...]Problem{
	{Code: CodeOutcomeUnknown, Err: ErrOutcomeUnknown, Status: 503, Title: "Outcome unknown"},
	{Code: CodePayloadTooLarge, Err: ErrPayloadTooLarge, Status: 413, Title: "Payload too large"},
	{Code: CodeMethodNotAllowed, Err: ErrMethodNotAllowed, Status: 405, Title: "Method not allowed"},
	{Code: CodeRequestTimeout, Err: ErrRequestTimeout, Status: 408, Title: "Request timeout"},
	{Code: CodeOffsetCompacted, Err: ErrOffsetCompacted, Status: 410, Title: "Offset compacted"},
	{Code: CodeUnavailable, Err: ErrUnavailable, Status: 503, Title: "Unavailable", also: []error{ErrNotLeader}},
	{Code: CodeInvalidArgument, Err: ErrInvalidArgument, Status: 400, Title: "Invalid argument"},
	{Code: CodeUnauthenticated, Err: ErrUnauthenticated, Status: 401, Title: "Unauthenticated"},
	{Code: CodePermissionDenied, Err: ErrPermissionDenied, Status: 403, Title: "Permission denied"},
	{Code: CodeNotFound, Err: ErrNotFound, Status: 404, Title: "Not found"},
	{Code: CodeSoldOut, Err: ErrSoldOut, Status: 409, Title: "Sold out"},
	{Code: CodeLimitExceeded, Err: ErrLimitExceeded, Status: 409, Title: "Limit exceeded"},
	{Code: CodeNotOpen, Err: ErrNotOpen, Status: 409, Title: "Not open yet"},
	{Code: CodeClosed, Err: ErrClosed, Status: 409, Title: "Closed"},
	{Code: CodeExpired, Err: ErrExpired, Status: 409, Title: "Hold expired"},
	{Code: CodeInvalidState, Err: ErrInvalidState, Status: 409, Title: "Invalid state", also: []error{ErrAlreadyExists}},
	{Code: CodeRequestInProgress, Err: ErrRequestInProgress, Status: 409, Title: "Request in progress"},
	{Code: CodeIdempotencyKeyReused, Err: ErrIdempotencyKeyReused, Status: 422, Title: "Idempotency key reused"},
	{Code: CodeRateLimited, Err: ErrRateLimited, Status: 429, Title: "Rate limited"},
	{Code: CodeInternal, Err: ErrInternal, Status: 500, Title: "Internal error"},
}

// Problems returns every row of the problem table, in the order ErrorCode
// tries them.
func Problems() []Problem { return slices.Clone(problems[:]) }

// ProblemOf returns the row of code; a code not in the table gets the row
// of "internal".
func ProblemOf(code Code) Problem {
	for _, p := range problems {
		if p.Code == code {
			return p
		}
	}
	return problems[len(problems)-1]
}

// ErrorCode is the stable machine-readable code of err (the problem "code" of
// API.md, also a metric label), or "internal" for an error that is none of
// ours.
func ErrorCode(err error) string {
	if i, ok := rowOfChain(err); ok {
		return string(problems[i].Code)
	}
	for i := range problems {
		p := &problems[i]
		if errors.Is(err, p.Err) {
			return string(p.Code)
		}
		for _, e := range p.also {
			if errors.Is(err, e) {
				return string(p.Code)
			}
		}
	}
	return string(CodeInternal)
}

// rowOfChain finds err's row in one walk of its chain when the chain is
// plain: each error wraps at most one other (Unwrap() error) and none has
// an Is method. errors.Is(err, s) then holds exactly when s is in the
// chain, so the first row of any error in the chain is the row the loop of
// ErrorCode would find, without its walk of the chain per row (rejections
// are most of a flash crowd's answers). ok is false for any other chain.
func rowOfChain(err error) (row int, ok bool) {
	row = len(problems) - 1 // "internal"
	for err != nil {
		if _, custom := err.(interface{ Is(error) bool }); custom {
			return 0, false
		}
		row = min(row, rowOf(err))
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return 0, false
		default:
			err = nil
		}
	}
	return row, true
}

// rowOf is the row whose sentinel err is, len(problems) for none. Every
// sentinel is comparable, so == cannot panic.
func rowOf(err error) int {
	for i := range problems {
		if err == problems[i].Err {
			return i
		}
		for _, e := range problems[i].also {
			if err == e {
				return i
			}
		}
	}
	return len(problems)
}

// ErrorOfCode is the inverse of ErrorCode: the sentinel error of a problem
// code, so that a client that decoded a problem can match it with
// errors.Is. It is nil for a code not in the table.
func ErrorOfCode(code string) error {
	for _, p := range problems {
		if string(p.Code) == code {
			return p.Err
		}
	}
	return nil
}
