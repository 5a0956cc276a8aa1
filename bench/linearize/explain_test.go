package linearize

import (
	"strings"
	"testing"
	"time"
)

// An Illegal result names the resource, the end of the longest order found
// and the operation no order could place.
func TestExplainNamesWhereTheSearchStuck(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10.1)).
		op(1, 0.2, 0.3, reserve("b", ""), created("r2", "b", 10.3)).
		op(2, 0.4, 0.5, reserve("c", ""), created("r3", "c", 10.5))
	r := check(t, h, opts(voucher(2, 0, 10*time.Second)))
	for _, want := range []string{
		res + ": 2 of 3 operations linearized",
		"[200.0, 300.0] ms client 1: reserve b",
		"not placed next (earliest return first):\n    [400.0, 500.0] ms client 2: reserve c",
		"states then:",
	} {
		if !strings.Contains(r.Explanation, want) {
			t.Errorf("explanation lacks %q:%s", want, r.Explanation)
		}
	}
	if !strings.HasSuffix(r.String(), r.Explanation) {
		t.Errorf("String does not end with the explanation: %s", r)
	}
}

// A linearizable history explains nothing.
func TestExplainSaysNothingWhenOk(t *testing.T) {
	h := new(hist).
		op(0, 0, 0.1, reserve("a", ""), created("r1", "a", 10.1))
	if r := check(t, h, opts(voucher(2, 0, 10*time.Second))); r.Explanation != "" {
		t.Fatalf("explanation for a linearizable history: %s", r.Explanation)
	}
}
