package domain

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestProblemCodesRoundTrip checks that every code of the table comes back
// from its own sentinel, wrapped or not: code -> error -> code.
func TestProblemCodesRoundTrip(t *testing.T) {
	seen := map[Code]bool{}
	for _, p := range Problems() {
		if seen[p.Code] {
			t.Errorf("code %s has two rows", p.Code)
		}
		seen[p.Code] = true
		err := ErrorOfCode(string(p.Code))
		if err == nil || err != p.Err {
			t.Errorf("ErrorOfCode(%s) = %v, want %v", p.Code, err, p.Err)
			continue
		}
		if got := ErrorCode(err); got != string(p.Code) {
			t.Errorf("ErrorCode(ErrorOfCode(%s)) = %s", p.Code, got)
		}
		if got := ErrorCode(fmt.Errorf("some detail: %w", err)); got != string(p.Code) {
			t.Errorf("ErrorCode of a wrapped %s = %s", p.Code, got)
		}
		if p.Title == "" || p.Status < 400 || p.Status > 599 {
			t.Errorf("%s: title %q, status %d", p.Code, p.Title, p.Status)
		}
		for _, e := range p.also {
			if got := ErrorCode(e); got != string(p.Code) {
				t.Errorf("ErrorCode(%v) = %s, want %s", e, got, p.Code)
			}
		}
	}
	if ErrorOfCode("no_such_code") != nil {
		t.Error("ErrorOfCode of an unknown code is not nil")
	}
	if got := ErrorCode(errors.New("none of ours")); got != string(CodeInternal) {
		t.Errorf("ErrorCode of a foreign error = %s", got)
	}
	if got := ProblemOf("no_such_code"); got.Code != CodeInternal {
		t.Errorf("ProblemOf an unknown code = %+v", got)
	}
}

// TestProblemPrecedence pins the order rows are tried in: an error that
// wraps several sentinels takes the most dangerous meaning.
func TestProblemPrecedence(t *testing.T) {
	cases := []struct {
		err  error
		want Code
	}{
		{fmt.Errorf("%w: %w", ErrInvalidState, ErrOutcomeUnknown), CodeOutcomeUnknown},
		{fmt.Errorf("%w: %w", ErrSoldOut, ErrRequestTimeout), CodeRequestTimeout},
		{fmt.Errorf("%w: %w", ErrNotFound, ErrNotLeader), CodeUnavailable},
		{errors.Join(ErrRateLimited, ErrInvalidArgument), CodeInvalidArgument},
		{fmt.Errorf("%w: %w", ErrAlreadyExists, ErrInternal), CodeInvalidState},
	}
	for _, tc := range cases {
		if got := ErrorCode(tc.err); got != string(tc.want) {
			t.Errorf("ErrorCode(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// notProblems are the package's sentinels that are not problem codes:
// ErrDuplicateKey is State.Apply's signal that an event's key already has
// its answer, which the request then gets instead; ErrCorrupt is a log or
// snapshot that does not decode, a fault of the server ("internal").
var notProblems = []string{"ErrDuplicateKey", "ErrCorrupt"}

// TestEverySentinelInTable finds every package-level Err... variable of
// the package's source and checks that the problem table names it, so a
// new sentinel cannot be answered "internal" by omission.
func TestEverySentinelInTable(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var names []string
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".go") || strings.HasSuffix(ent.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, ent.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d sentinels (%v): the parse missed some", len(names), names)
	}
	inTable := map[error]bool{}
	for _, p := range problems {
		inTable[p.Err] = true
		for _, e := range p.also {
			inTable[e] = true
		}
	}
	sentinels := map[string]error{
		"ErrInvalidArgument": ErrInvalidArgument, "ErrUnauthenticated": ErrUnauthenticated,
		"ErrPermissionDenied": ErrPermissionDenied, "ErrNotFound": ErrNotFound, "ErrSoldOut": ErrSoldOut,
		"ErrLimitExceeded": ErrLimitExceeded, "ErrNotOpen": ErrNotOpen, "ErrClosed": ErrClosed,
		"ErrInvalidState": ErrInvalidState, "ErrExpired": ErrExpired, "ErrAlreadyExists": ErrAlreadyExists,
		"ErrRequestInProgress": ErrRequestInProgress, "ErrIdempotencyKeyReused": ErrIdempotencyKeyReused,
		"ErrRateLimited": ErrRateLimited, "ErrNotLeader": ErrNotLeader, "ErrUnavailable": ErrUnavailable,
		"ErrOutcomeUnknown": ErrOutcomeUnknown, "ErrPayloadTooLarge": ErrPayloadTooLarge,
		"ErrMethodNotAllowed": ErrMethodNotAllowed, "ErrRequestTimeout": ErrRequestTimeout,
		"ErrOffsetCompacted": ErrOffsetCompacted, "ErrInternal": ErrInternal,
	}
	for _, name := range names {
		if slices.Contains(notProblems, name) {
			continue
		}
		e, ok := sentinels[name]
		if !ok {
			t.Errorf("sentinel %s is new: add it to the problem table (and to this test's list)", name)
			continue
		}
		if !inTable[e] {
			t.Errorf("sentinel %s is not in the problem table", name)
		}
	}
}

// contractStatuses is the error table of the API contract, with the codes
// docs/API.md adds (405, 408, 410, 500).
var contractStatuses = map[Code]int{
	CodeInvalidArgument:      400,
	CodeUnauthenticated:      401,
	CodePermissionDenied:     403,
	CodeNotFound:             404,
	CodeSoldOut:              409,
	CodeLimitExceeded:        409,
	CodeNotOpen:              409,
	CodeClosed:               409,
	CodeInvalidState:         409,
	CodeExpired:              409,
	CodeRequestInProgress:    409,
	CodePayloadTooLarge:      413,
	CodeIdempotencyKeyReused: 422,
	CodeRateLimited:          429,
	CodeUnavailable:          503,
	CodeOutcomeUnknown:       503,
	CodeMethodNotAllowed:     405,
	CodeRequestTimeout:       408,
	CodeOffsetCompacted:      410,
	CodeInternal:             500,
}

// TestProblemStatusesMatchContract checks the table against the contract,
// both ways: no code missing, none extra, every status as documented.
func TestProblemStatusesMatchContract(t *testing.T) {
	rows := Problems()
	if len(rows) != len(contractStatuses) {
		t.Errorf("table has %d codes, the contract %d", len(rows), len(contractStatuses))
	}
	for _, p := range rows {
		want, ok := contractStatuses[p.Code]
		if !ok {
			t.Errorf("code %s is not in the contract", p.Code)
		} else if p.Status != want {
			t.Errorf("%s: status %d, contract says %d", p.Code, p.Status, want)
		}
	}
}

// BenchmarkErrorCode is the code of the flash crowd's usual answer, a
// wrapped sold out, which every rejected request is classified by.
func BenchmarkErrorCode(b *testing.B) {
	err := fmt.Errorf("resource v: 0 of 1 left: %w", fmt.Errorf("wrapped: %w", ErrSoldOut))
	b.ReportAllocs()
	for b.Loop() {
		if ErrorCode(err) != string(CodeSoldOut) {
			b.Fatal("wrong code")
		}
	}
}

// referenceCode is ErrorCode by its definition: the first row, in order,
// that errors.Is matches.
func referenceCode(err error) string {
	for _, p := range problems {
		for _, e := range append([]error{p.Err}, p.also...) {
			if errors.Is(err, e) {
				return string(p.Code)
			}
		}
	}
	return string(CodeInternal)
}

// isSoldOut matches ErrSoldOut through an Is method only.
type isSoldOut struct{}

func (isSoldOut) Error() string        { return "sold out, by its Is method" }
func (isSoldOut) Is(target error) bool { return target == ErrSoldOut }

// TestErrorCodeShortcutAgrees checks ErrorCode's one-walk shortcut against
// the definition on plain chains of every sentinel and on the shapes the
// shortcut hands over (several wrapped errors, an Is method).
func TestErrorCodeShortcutAgrees(t *testing.T) {
	var all []error
	for _, p := range problems {
		all = append(all, p.Err)
		all = append(all, p.also...)
	}
	all = append(all, ErrDuplicateKey, ErrCorrupt, errors.New("foreign"), isSoldOut{})
	check := func(err error) {
		t.Helper()
		if got, want := ErrorCode(err), referenceCode(err); got != want {
			t.Errorf("ErrorCode(%v) = %s, want %s", err, got, want)
		}
	}
	for _, a := range all {
		check(a)
		check(fmt.Errorf("x: %w", a))
		check(fmt.Errorf("x: %w", fmt.Errorf("y: %w", a)))
		check(&DuplicateKeyError{})
		for _, b := range all {
			check(fmt.Errorf("%w: %w", a, b))
			check(errors.Join(fmt.Errorf("x: %w", a), b))
		}
	}
	check(nil)
}
