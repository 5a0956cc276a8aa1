package localhttp

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestServeAndShutdown checks that a started server answers at its URL and
// stops answering after Shutdown.
func TestServeAndShutdown(t *testing.T) {
	s, err := Start(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q, want ok", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if resp, err := http.Get(s.URL() + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("the server still answers after Shutdown")
	}
}
