package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/httpapi"
)

// TestHelloAskerShortTokenAndWarns: every round of hellos carries an admin
// token of its own that is valid for helloTokenTTL, not a long-lived one
// (the hellos go to every --join address, every half second, possibly over
// plain http); a peer that does not answer is logged at Warn with the
// reason, once while the reason stays the same, and once more when it
// answers again.
func TestHelloAskerShortTokenAndWarns(t *testing.T) {
	var mu sync.Mutex
	var tokens []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		mu.Unlock()
		json.NewEncoder(w).Encode(httpapi.NodeHello{ID: "n2", RaftAddr: "n2:7000"})
	}))
	defer up.Close()
	var failing atomic.Bool
	failing.Store(true)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "wrong secret", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(httpapi.NodeHello{ID: "n3", RaftAddr: "n3:7000"})
	}))
	defer flaky.Close()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := &Server{cfg: Config{AuthSecret: bytes.Repeat([]byte("k"), httpapi.MinSecretLen)}, log: log}
	s.cfg.NodeID = "n1"
	ask := s.helloAsker(up.Client(), []string{up.URL, flaky.URL}, newHelloLog(log, time.Hour))
	for range 3 {
		if got := ask(context.Background()); len(got) != 1 || got[0].ID != "n2" {
			t.Fatalf("hellos %+v, want n2's alone", got)
		}
	}
	failing.Store(false)
	if got := ask(context.Background()); len(got) != 2 {
		t.Fatalf("hellos %+v, want n2's and n3's", got)
	}

	for _, tok := range tokens {
		var cl struct{ Iat, Exp int64 }
		parts := strings.Split(tok, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil || json.Unmarshal(raw, &cl) != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		if ttl := time.Duration(cl.Exp-cl.Iat) * time.Second; ttl != helloTokenTTL {
			t.Fatalf("hello token valid for %v, want %v", ttl, helloTokenTTL)
		}
	}
	out := logs.String()
	if n := strings.Count(out, `level=WARN msg="founding: hello unanswered"`); n != 1 {
		t.Fatalf("%d warnings for one peer failing three times for one reason, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "wrong secret") || !strings.Contains(out, flaky.URL) {
		t.Fatalf("the warning names neither peer nor reason:\n%s", out)
	}
	if !strings.Contains(out, `msg="founding: hello answered again"`) {
		t.Fatalf("no log of the peer answering again:\n%s", out)
	}
}
