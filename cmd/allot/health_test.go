package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"allot/cmd/allot/server"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		https, ready bool
		want         string
	}{
		{"0.0.0.0:8080", false, false, "http://127.0.0.1:8080/healthz"},
		{":8080", false, true, "http://127.0.0.1:8080/readyz"},
		{"[::]:8443", true, false, "https://127.0.0.1:8443/healthz"},
		{"10.1.2.3:8080", false, false, "http://10.1.2.3:8080/healthz"},
	} {
		got, err := healthURL(tc.addr, tc.https, tc.ready)
		if err != nil || got != tc.want {
			t.Errorf("healthURL(%q): %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	if _, err := healthURL("nope", false, false); err == nil {
		t.Error("an address without a port was accepted")
	}
}

// TestHealthCommand: `allot health` succeeds against a live node (and with
// --ready once it is ready), reading the address from ALLOT_HTTP_ADDR as
// a container's environment gives it, and fails when nothing answers.
func TestHealthCommand(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = []byte(strings.Repeat("h", 32))
	srv, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	t.Setenv("ALLOT_HTTP_ADDR", srv.HTTPAddr())
	var out strings.Builder
	if err := run([]string{"health"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), `"ok"`) {
		t.Fatalf("health: %q, %v", out.String(), err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for run([]string{"health", "--ready"}, io.Discard, io.Discard) != nil {
		if time.Now().After(deadline) {
			t.Fatal("health --ready never succeeded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := run([]string{"health", "--http-addr", freeAddr(t), "--timeout", "1s"}, io.Discard, io.Discard); err == nil {
		t.Fatal("health succeeded with no node")
	}
}
