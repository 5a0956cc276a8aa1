package httpapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"allot/actors/domain"
)

// isCanceled claims to be context.Canceled through an Is method only.
type isCanceled struct{}

func (isCanceled) Error() string        { return "canceled, by its Is method" }
func (isCanceled) Is(target error) bool { return target == context.Canceled }

// TestClassifyShortcutKeepsMeaning covers the errors classify's one-walk
// shortcut must hand to the full checks: the layer's own sentinels deep in
// a chain, several wrapped errors, and an Is method.
func TestClassifyShortcutKeepsMeaning(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", fmt.Errorf("c: %w", errPayloadTooLarge))), "payload_too_large"},
		{errors.Join(domain.ErrSoldOut, context.DeadlineExceeded), "outcome_unknown"},
		{fmt.Errorf("%w and %w", domain.ErrSoldOut, errRequestTimeout), "request_timeout"},
		{fmt.Errorf("x: %w", isCanceled{}), "outcome_unknown"},
		{fmt.Errorf("x: %w", fmt.Errorf("y: %w", domain.ErrSoldOut)), "sold_out"},
		{errors.New("plain"), "internal"},
	}
	for _, tc := range cases {
		if pk := classify(tc.err); pk.code != tc.code || pk.typ != typeBase+tc.code {
			t.Errorf("classify(%v) = %s, want %s", tc.err, pk.code, tc.code)
		}
	}
}
