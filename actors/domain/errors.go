// Package domain holds allot's pure booking rules: the kinds of bookable
// resources, reservations and their lifecycle, the events that change them and
// the committed State they change. It does no I/O, reads no clock and draws no
// random numbers, so the leader's actors (deciding) and every node's FSM
// (applying) compute exactly the same thing from the same events.
package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every layer. Each layer wraps them with detail
// (fmt.Errorf("...: %w", ErrX)); exactly one function in httpapi maps them to
// an HTTP status and problem code.
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

// ErrorCode is the stable machine-readable code of err (the problem "code" of
// API.md), or "internal" for an error that is none of ours.
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// ErrorOfCode is the sentinel error of a problem code, the inverse of
// ErrorCode (the first sentinel of that code), or nil for a code that has
// none: clients turn a problem body back into an error errors.Is matches.
func ErrorOfCode(code string) error {
	for _, c := range errorCodes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// errorCodes is ordered: for an error that wraps several sentinels the first
// match wins, and "outcome unknown" outranks everything, because a client
// that takes an ambiguous write for a failure may book twice.
var errorCodes = [...]struct {
	err  error
	code string
}{
	{ErrOutcomeUnknown, "outcome_unknown"},
	{ErrUnavailable, "unavailable"},
	{ErrNotLeader, "unavailable"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrUnauthenticated, "unauthenticated"},
	{ErrPermissionDenied, "permission_denied"},
	{ErrNotFound, "not_found"},
	{ErrSoldOut, "sold_out"},
	{ErrLimitExceeded, "limit_exceeded"},
	{ErrNotOpen, "not_open"},
	{ErrClosed, "closed"},
	{ErrExpired, "expired"},
	{ErrInvalidState, "invalid_state"},
	{ErrAlreadyExists, "invalid_state"},
	{ErrRequestInProgress, "request_in_progress"},
	{ErrIdempotencyKeyReused, "idempotency_key_reused"},
	{ErrRateLimited, "rate_limited"},
}
