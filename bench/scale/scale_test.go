package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tiny is a scale run small enough for CI: every phase runs for real.
func tiny(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Resources, cfg.Reservations, cfg.Concurrency = 200, 2000, 256
	cfg.Timeout, cfg.Progress, cfg.ProbeWindow = 3*time.Minute, time.Second, 500*time.Millisecond
	cfg.Dir = t.TempDir()
	return cfg
}

func TestScaleTiny(t *testing.T) {
	cfg := tiny(t)
	var log bytes.Buffer
	cfg.Log = &log
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if !rep.Pass() {
		t.Errorf("checks failed: %+v", rep.Checks)
	}
	if rep.Resources != 200 || rep.Reservations != 2000 || rep.LoadReservations.Done != 2000 || rep.LoadResources.Done != 200 {
		t.Errorf("loaded %d resources, %d reservations (%+v, %+v)", rep.Resources, rep.Reservations, rep.LoadResources, rep.LoadReservations)
	}
	m := rep.Memory
	if runtime.GOOS == "linux" {
		if m.AfterLoad.RSS <= 0 || m.Settled.RSS <= 0 || m.Quiet.RSS <= 0 || m.PeakSingleNode < m.Settled.RSS || m.TwoNodes.RSS <= 0 {
			t.Errorf("memory: %+v", m)
		}
	}
	if m.Settled.HeapLive <= m.BeforeLoad.HeapLive/2 || m.HeapPerReservation <= 0 {
		t.Errorf("heap: before %d, settled %d, per reservation %.0f", m.BeforeLoad.HeapLive, m.Settled.HeapLive, m.HeapPerReservation)
	}
	s := rep.Snapshot
	if s.ProbeBefore.Commits == 0 || s.ProbeDuring.Commits == 0 || s.RaftSnapshotS <= 0 || s.FSMSnapshotMs <= 0 || s.Bytes <= 0 {
		t.Errorf("snapshot: %+v", s)
	}
	if rep.Restart.ReadyS <= 0 || rep.Restart.ReadyS < rep.Restart.StartS {
		t.Errorf("restart: %+v", rep.Restart)
	}
	in := rep.Install
	if in.Restores < 1 || in.InstallS <= 0 || in.FirstIndex <= 1 || in.LeaderIndex < in.FirstIndex {
		t.Errorf("install: %+v", in)
	}
	checks := map[string]bool{}
	for _, c := range rep.Checks {
		checks[c.Name] = c.Pass
	}
	for _, name := range []string{"load_counts", "restart_state", "follower_state"} {
		if !checks[name] {
			t.Errorf("check %s: missing or failed (%+v)", name, rep.Checks)
		}
	}
	if len(rep.Goals) != 6 {
		t.Errorf("goals: %+v", rep.Goals)
	}

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"goal snapshot_install", "check follower_state", "one process"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	path := filepath.Join(t.TempDir(), "scale.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Goals []Goal `json:"goals"`
		Mem   struct {
			Settled struct {
				RSS int64 `json:"rss_bytes"`
			} `json:"settled"`
		} `json:"memory"`
	}
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Goals) != 6 || back.Mem.Settled.RSS != m.Settled.RSS {
		t.Errorf("json: %v, %+v", err, back)
	}
}

// A run that outlasts its bound fails and says which bound.
func TestScaleTimeout(t *testing.T) {
	cfg := tiny(t)
	cfg.Reservations, cfg.Timeout = 1_000_000, 3*time.Second
	rep, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "exceeded --scale-timeout 3s") {
		t.Fatalf("err %v, want the timeout named", err)
	}
	if rep.Error == "" || rep.LoadReservations.Done >= cfg.Reservations || len(rep.Goals) != 0 {
		t.Errorf("report: error %q, loaded %d, goals %+v (none reached)", rep.Error, rep.LoadReservations.Done, rep.Goals)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tune := range []func(*Config){
		func(c *Config) { c.Resources = 0 },
		func(c *Config) { c.Reservations = -1 },
		func(c *Config) { c.Concurrency = 0 },
		func(c *Config) { c.Timeout = 0 },
	} {
		c := DefaultConfig()
		tune(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
