package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestVerifyOnlyOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--verify-only"},
		{"--verify-only", "--target", "http://h:1", "--sweep", "1,2"},
		{"--verify-only", "--target", "http://h:1", "--baseline"},
		{"--verify-only", "--target", "http://h:1", "--verify=false"},
		{"--verify-only", "--scale"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseOptions([]string{"--verify-only", "--target", "http://h:1,http://h:2"}, io.Discard)
	if err != nil || !o.verifyOnly || len(o.targets) != 2 {
		t.Fatalf("%+v, %v", o, err)
	}
}

// TestVerifyOnlyAfterALoad: a load run against a running node, then
// --verify-only against the state it left, which passes.
func TestVerifyOnlyAfterALoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded node")
	}
	const secret = "verify-only-test-secret-0123456789abcdef"
	urls, stop, err := startCluster(context.Background(), 1, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	t.Setenv("ALLOT_AUTH_SECRET", secret)
	var out, errs bytes.Buffer
	if code := run([]string{"--target", urls[0], "--scenario", "hospital", "--duration", "2s", "--concurrency", "8", "--doctors", "2"}, &out, &errs); code != exitPass {
		t.Fatalf("load: exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	out.Reset()
	errs.Reset()
	if code := run([]string{"--verify-only", "--target", urls[0]}, &out, &errs); code != exitPass {
		t.Fatalf("--verify-only: exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"verify-only: the state of " + urls[0], "verify: PASS", "ok   no_oversell", "ok   limit_", "ok   stream_matches_state",
		"skip acknowledged_reservations_present"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestVerifyOnlyFails: a state whose counts do not add up is FAIL, exit 1.
func TestVerifyOnlyFails(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"ready"}`) })
	mux.HandleFunc("GET /v1/resources", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"items":[{"id":"v1","kind":"voucher","capacity":5}],"next":""}`)
	})
	mux.HandleFunc("GET /v1/resources/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":"v1","kind":"voucher","capacity":5,"per_user_limit":1,"available":5,"held":0,"confirmed":1}`)
	})
	mux.HandleFunc("GET /v1/reservations", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"items":[{"id":"r1","resource_id":"v1","user":"u","quantity":1,"status":"confirmed",
			"created_at":"2026-12-01T08:00:00Z","updated_at":"2026-12-01T08:00:00Z"}],"next":""}`)
	})
	srv := httptest.NewServer(mux) // no /v1/limits, no /v1/events: those checks are skipped
	defer srv.Close()
	t.Setenv("ALLOT_AUTH_SECRET", "verify-only-test-secret-0123456789abcdef")
	var out, errs bytes.Buffer
	if code := run([]string{"--verify-only", "--target", srv.URL}, &out, &errs); code != exitFail {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitFail, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "verify: FAIL") || !strings.Contains(out.String(), "FAIL counts_consistent") {
		t.Errorf("output:\n%s", out.String())
	}
}
