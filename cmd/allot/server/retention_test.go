package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that loggers on several goroutines share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEventRetentionZeroWarns: a node that keeps every event says once, at
// start, that its snapshots carry the whole stream; one with a retention
// says nothing of it.
func TestEventRetentionZeroWarns(t *testing.T) {
	for _, retention := range []time.Duration{0, time.Hour} {
		var logs lockedBuffer
		cfg := DefaultConfig()
		cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
		cfg.AuthSecret = testSecret
		cfg.EventRetention = retention
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		s, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := 0
		if retention == 0 {
			want = 1
		}
		if n := strings.Count(logs.String(), "event retention is 0"); n != want {
			t.Fatalf("retention %v: %d warnings, want %d; log:\n%s", retention, n, want, logs.String())
		}
	}
}
