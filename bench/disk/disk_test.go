package disk

import (
	"os"
	"testing"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	p, err := Measure(dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	if p.Samples != 20 || p.SyncP50MS <= 0 || p.SyncP99MS < p.SyncP50MS {
		t.Fatalf("probe %+v: want 20 samples, 0 < p50 <= p99", p)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("probe left %d files behind", len(entries))
	}
	if _, err := Measure(dir, 0); err == nil {
		t.Fatal("0 samples: want an error")
	}
	if _, err := Measure(dir+"/missing", 1); err == nil {
		t.Fatal("a missing directory: want an error")
	}
}

func TestBoundRPS(t *testing.T) {
	p := Probe{SyncP50MS: 2}
	// 64 clients, a commit of two 2 ms syncs: 64 answers per 4 ms.
	if got := p.BoundRPS(64); got != 16000 {
		t.Fatalf("bound %v, want 16000", got)
	}
	if got := (Probe{}).BoundRPS(64); got != 0 {
		t.Fatalf("unmeasured bound %v, want 0", got)
	}
}
