package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
)

func TestClassifyEverySentinel(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{domain.ErrInvalidArgument, 400, "invalid_argument"},
		{domain.ErrUnauthenticated, 401, "unauthenticated"},
		{domain.ErrPermissionDenied, 403, "permission_denied"},
		{domain.ErrNotFound, 404, "not_found"},
		{domain.ErrSoldOut, 409, "sold_out"},
		{domain.ErrLimitExceeded, 409, "limit_exceeded"},
		{domain.ErrNotOpen, 409, "not_open"},
		{domain.ErrClosed, 409, "closed"},
		{domain.ErrInvalidState, 409, "invalid_state"},
		{domain.ErrAlreadyExists, 409, "invalid_state"},
		{domain.ErrExpired, 409, "expired"},
		{domain.ErrRequestInProgress, 409, "request_in_progress"},
		{errMethodNotAllowed, 405, "method_not_allowed"},
		{errRequestTimeout, 408, "request_timeout"},
		{errPayloadTooLarge, 413, "payload_too_large"},
		{&compactedProblem{after: 1, earliest: 5}, 410, "offset_compacted"},
		{domain.ErrIdempotencyKeyReused, 422, "idempotency_key_reused"},
		{domain.ErrRateLimited, 429, "rate_limited"},
		{domain.ErrUnavailable, 503, "unavailable"},
		{domain.ErrNotLeader, 503, "unavailable"},
		{domain.ErrOutcomeUnknown, 503, "outcome_unknown"},
		{context.DeadlineExceeded, 503, "outcome_unknown"},
		{errors.New("boom"), 500, "internal"},
		// The most dangerous meaning wins when several sentinels are wrapped.
		{fmt.Errorf("%w: %w", domain.ErrInvalidState, domain.ErrOutcomeUnknown), 503, "outcome_unknown"},
	}
	for _, tc := range cases {
		wrapped := fmt.Errorf("detail: %w", tc.err)
		pk := classify(wrapped)
		if pk.status != tc.status || pk.code != tc.code || pk.typ != typeBase+tc.code || pk.title == "" {
			t.Errorf("classify(%v) = %+v, want %d %s", wrapped, pk, tc.status, tc.code)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "tab\tnl\ncr\r", "\x00\x1f\x7f", "héllo 世界", "bad\xffutf8", "<&>"} {
		var back string
		if err := json.Unmarshal(jsonview.AppendString(nil, s), &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, jsonview.AppendString(nil, s), err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if back != want {
			t.Errorf("round trip of %q gave %q, want %q", s, back, want)
		}
	}
}

// TestErrorCodesOverHTTP produces every code of API.md's table through the
// HTTP layer: validation for what the handlers decide, the real domain
// rules inside the fake engine for what the engine decides, and injected
// sentinels for cluster conditions.
func TestErrorCodesOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	now := testNow()
	e.putVoucher("v1", 1, `,"per_user_limit":0`)
	e.putVoucher("lim", 10, "")
	e.putVoucher("later", 10, fmt.Sprintf(`,"opens_at":%q`, rfc3339(now.Add(time.Hour))))
	e.putVoucher("over", 10, fmt.Sprintf(`,"closes_at":%q`, rfc3339(now.Add(-time.Minute))))
	e.putVoucher("hold", 10, `,"per_user_limit":0,"hold_seconds":60`)

	t.Run("invalid_argument", func(t *testing.T) {
		e.do("PUT", "/v1/resources/bad%20id", e.admin, `{"kind":"voucher"}`).wantProblem(t, 400, "invalid_argument")
		e.do("POST", "/v1/resources/v1/reservations", e.alice, `{"quantity":0}`).wantProblem(t, 400, "invalid_argument")
	})
	t.Run("unauthenticated", func(t *testing.T) {
		e.do("GET", "/v1/resources/v1", "", "").wantProblem(t, 401, "unauthenticated")
	})
	t.Run("permission_denied", func(t *testing.T) {
		e.do("PUT", "/v1/resources/x", e.alice, `{"kind":"voucher"}`).wantProblem(t, 403, "permission_denied")
	})
	t.Run("not_found", func(t *testing.T) {
		e.do("GET", "/v1/resources/nope", e.alice, "").wantProblem(t, 404, "not_found")
		e.do("POST", "/v1/resources/nope/reservations", e.alice, "").wantProblem(t, 404, "not_found")
		// An unknown reservation id may be one pruned after the retention period.
		if p := e.do("GET", "/v1/reservations/r-gone", e.alice, "").wantProblem(t, 404, "not_found"); !strings.Contains(p.Detail, "retention period") {
			t.Fatalf("detail %q does not mention the retention period", p.Detail)
		}
	})
	t.Run("sold_out", func(t *testing.T) {
		e.reserve("v1", e.alice, "")
		e.do("POST", "/v1/resources/v1/reservations", e.bob, "").wantProblem(t, 409, "sold_out")
	})
	t.Run("limit_exceeded", func(t *testing.T) {
		e.reserve("lim", e.alice, "")
		e.do("POST", "/v1/resources/lim/reservations", e.alice, "").wantProblem(t, 409, "limit_exceeded")
	})
	t.Run("not_open", func(t *testing.T) {
		e.do("POST", "/v1/resources/later/reservations", e.alice, "").wantProblem(t, 409, "not_open")
	})
	t.Run("closed", func(t *testing.T) {
		e.do("POST", "/v1/resources/over/reservations", e.alice, "").wantProblem(t, 409, "closed")
	})
	t.Run("invalid_state", func(t *testing.T) {
		res := e.reserve("hold", e.alice, "")
		e.do("POST", "/v1/reservations/"+res.ID+"/cancel", e.alice, "").want(t, 200, nil)
		e.do("POST", "/v1/reservations/"+res.ID+"/confirm", e.alice, "").wantProblem(t, 409, "invalid_state")
		// Lowering capacity below what is taken.
		e.do("PUT", "/v1/resources/v1", e.admin, `{"kind":"voucher","capacity":0}`).wantProblem(t, 409, "invalid_state")
	})
	t.Run("expired", func(t *testing.T) {
		res := e.reserve("hold", e.alice, "")
		e.eng.advance(61 * time.Second)
		e.do("POST", "/v1/reservations/"+res.ID+"/confirm", e.alice, "").wantProblem(t, 409, "expired")
	})
	t.Run("request_in_progress", func(t *testing.T) {
		e.eng.setHook(func(context.Context, string) error {
			return fmt.Errorf("key k1: %w", domain.ErrRequestInProgress)
		})
		defer e.eng.setHook(nil)
		e.do("POST", "/v1/resources/hold/reservations", e.alice, "", "Idempotency-Key", "k1").wantProblem(t, 409, "request_in_progress")
	})
	t.Run("already_exists_is_invalid_state", func(t *testing.T) {
		e.eng.setHook(func(context.Context, string) error { return fmt.Errorf("r1: %w", domain.ErrAlreadyExists) })
		defer e.eng.setHook(nil)
		e.do("POST", "/v1/resources/hold/reservations", e.alice, "").wantProblem(t, 409, "invalid_state")
	})
	t.Run("payload_too_large", func(t *testing.T) {
		big := `{"kind":"voucher","attributes":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`
		e.do("PUT", "/v1/resources/big", e.admin, big).wantProblem(t, 413, "payload_too_large")
	})
	t.Run("idempotency_key_reused", func(t *testing.T) {
		e.do("POST", "/v1/resources/hold/reservations", e.bob, `{"quantity":1}`, "Idempotency-Key", "k2").want(t, 201, nil)
		e.do("POST", "/v1/resources/hold/reservations", e.bob, `{"quantity":2}`, "Idempotency-Key", "k2").wantProblem(t, 422, "idempotency_key_reused")
	})
	t.Run("unavailable", func(t *testing.T) {
		e.eng.setReadErr(fmt.Errorf("read: %w", domain.ErrNotLeader))
		r := e.do("GET", "/v1/resources/v1", e.alice, "")
		e.eng.setReadErr(nil)
		r.wantProblem(t, 503, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Error("503 unavailable without Retry-After")
		}
		e.eng.setHook(func(context.Context, string) error { return fmt.Errorf("no leader: %w", domain.ErrUnavailable) })
		defer e.eng.setHook(nil)
		e.do("POST", "/v1/resources/hold/reservations", e.alice, "").wantProblem(t, 503, "unavailable")
	})
	t.Run("internal", func(t *testing.T) {
		e.eng.setHook(func(context.Context, string) error { return errors.New("disk on fire") })
		defer e.eng.setHook(nil)
		r := e.do("POST", "/v1/resources/hold/reservations", e.alice, "")
		p := r.wantProblem(t, 500, "internal")
		if strings.Contains(p.Detail, "disk on fire") {
			t.Errorf("internal error leaked to the client: %q", p.Detail)
		}
		if !strings.Contains(e.logs.String(), "disk on fire") {
			t.Errorf("internal error not logged; log:\n%s", e.logs.String())
		}
	})
}

// TestRequestTimeoutIsOutcomeUnknown checks that writes get a deadline of
// Config.RequestTimeout and that running into it is reported as ambiguous.
func TestRequestTimeoutIsOutcomeUnknown(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	e.putVoucher("v1", 10, "")
	e.eng.setHook(func(ctx context.Context, op string) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline on the engine call")
		}
		<-ctx.Done()
		return fmt.Errorf("waiting for commit: %w", domain.ErrOutcomeUnknown)
	})
	start := time.Now()
	r := e.do("POST", "/v1/resources/v1/reservations", e.alice, "", "Idempotency-Key", "k")
	r.wantProblem(t, 503, "outcome_unknown")
	if r.header.Get("Retry-After") == "" {
		t.Error("outcome_unknown without Retry-After")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("request took %s; the deadline was 50ms", d)
	}
	// A read running into the deadline has no outcome to lose.
	e.do("GET", "/v1/resources/v1", e.alice, "").wantProblem(t, 503, "unavailable")
}
