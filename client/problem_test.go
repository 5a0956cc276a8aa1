package client_test

import (
	"errors"
	"fmt"
	"testing"

	"allot/actors/domain"
	"allot/client"
)

// TestEveryCodeMatchesItsSentinel: each problem code of API.md's table
// unwraps to the error errors.Is expects, and to no other.
func TestEveryCodeMatchesItsSentinel(t *testing.T) {
	all := []error{domain.ErrInvalidArgument, domain.ErrUnauthenticated, domain.ErrPermissionDenied, domain.ErrNotFound,
		domain.ErrSoldOut, domain.ErrLimitExceeded, domain.ErrNotOpen, domain.ErrClosed, domain.ErrInvalidState,
		domain.ErrExpired, domain.ErrRequestInProgress, domain.ErrIdempotencyKeyReused, domain.ErrRateLimited,
		domain.ErrUnavailable, domain.ErrOutcomeUnknown, client.ErrOffsetCompacted, client.ErrPayloadTooLarge, client.ErrInternal}
	for code, want := range map[string]error{
		"invalid_argument": domain.ErrInvalidArgument, "unauthenticated": domain.ErrUnauthenticated,
		"permission_denied": domain.ErrPermissionDenied, "not_found": domain.ErrNotFound, "sold_out": domain.ErrSoldOut,
		"limit_exceeded": domain.ErrLimitExceeded, "not_open": domain.ErrNotOpen, "closed": domain.ErrClosed,
		"invalid_state": domain.ErrInvalidState, "expired": domain.ErrExpired,
		"request_in_progress": domain.ErrRequestInProgress, "idempotency_key_reused": domain.ErrIdempotencyKeyReused,
		"rate_limited": domain.ErrRateLimited, "unavailable": domain.ErrUnavailable,
		"outcome_unknown": domain.ErrOutcomeUnknown, "offset_compacted": client.ErrOffsetCompacted,
		"payload_too_large": client.ErrPayloadTooLarge, "internal": client.ErrInternal,
	} {
		body := fmt.Appendf(nil, `{"code":%q,"detail":"d","status":409}`, code)
		var err error = &client.ProblemError{Code: code, Body: body}
		for _, other := range all {
			if got := errors.Is(err, other); got != (other == want) {
				t.Errorf("%s: errors.Is(err, %v) = %v", code, other, got)
			}
		}
		if domain.ErrorOfCode(code) != nil && domain.ErrorCode(domain.ErrorOfCode(code)) != code {
			t.Errorf("%s: ErrorCode(ErrorOfCode) = %s", code, domain.ErrorCode(domain.ErrorOfCode(code)))
		}
	}
	if err := (&client.ProblemError{Code: "no_such_code"}); errors.Unwrap(err) != nil {
		t.Error("an unknown code matches a sentinel")
	}
}
