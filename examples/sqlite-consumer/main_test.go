package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

func TestNoToken(t *testing.T) {
	t.Setenv("ALLOT_TOKEN", "")
	if code := run([]string{"--db", filepath.Join(t.TempDir(), "o.db")}); code != 2 {
		t.Fatalf("exit %d without a token, want 2", code)
	}
}

// A consumer whose events are gone stops loudly, with its own status.
func TestExitsOnCompacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusGone)
		w.Write([]byte(`{"status":410,"code":"offset_compacted","earliest":50}`))
	}))
	defer srv.Close()
	t.Setenv("ALLOT_TOKEN", "tok")
	if code := run([]string{"--url", srv.URL, "--db", filepath.Join(t.TempDir(), "o.db")}); code != 3 {
		t.Fatalf("exit %d on offset_compacted, want 3", code)
	}
}
