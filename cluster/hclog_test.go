package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestSlogHCLog(t *testing.T) {
	var buf bytes.Buffer
	l := newSlogHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft", slog.LevelWarn)
	l.Info("chatty")
	l.Named("transport").With("peer", "n2").Warn("slow", "rtt", "2s")
	l.StandardWriter(nil).Write([]byte("[ERROR] snapshot: failed to reap: boom\n[INFO]  snapshot: reaping\n"))

	out := buf.String()
	for _, want := range []string{
		`level=WARN msg=slow component=raft.transport peer=n2 rtt=2s`,
		`level=ERROR msg="snapshot: failed to reap: boom" component=raft`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chatty") || strings.Contains(out, "reaping") {
		t.Errorf("messages below warn were logged:\n%s", out)
	}
	if !l.IsWarn() || l.IsInfo() || l.GetLevel() != hclog.Warn {
		t.Errorf("level checks wrong for warn")
	}
}
