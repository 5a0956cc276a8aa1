package scale

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Goals of the scale issue, per node.
const (
	goalRSS      = 4_000_000_000 // bytes: 4 GB
	goalPause    = 50 * time.Millisecond
	goalRestart  = 10 * time.Second
	goalInstall  = 60 * time.Second
	sharedNotice = "the node and the loader run in one process: RSS is the process's; after the load it is read with the loader's goroutines gone, again after a forced GC that returns free pages to the kernel, and once more after the snapshots (quiet)"
)

// Report is what a scale run measured. A figure the run did not reach
// (it failed before) stays zero, and its goal is absent.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Command   string    `json:"command"`
	CPUs      int       `json:"cpus"`
	Note      string    `json:"note"`

	RequestedResources    int64 `json:"requested_resources"`
	RequestedReservations int64 `json:"requested_reservations"`
	Concurrency           int   `json:"concurrency"`

	LoadResources    Phase `json:"load_resources"`
	LoadReservations Phase `json:"load_reservations"`
	// The state's counts once the load was over (probe reservations not
	// yet made).
	Resources    int `json:"resources"`
	Reservations int `json:"reservations"`

	Memory   MemReport      `json:"memory"`
	Snapshot SnapshotReport `json:"snapshot"`
	Restart  RestartReport  `json:"restart"`
	Install  InstallReport  `json:"install"`

	Goals []Goal `json:"goals"`
	// Checks are the correctness checks along the way (the restarted node
	// and the new follower hold the loaded state); a failed one fails the
	// run.
	Checks []Check `json:"checks"`
	Error  string  `json:"error,omitempty"`
	TotalS float64 `json:"total_s"`
}

// MemReport holds the memory readings (bytes; -1: unknown here).
type MemReport struct {
	// BeforeLoad: the node started, nothing loaded.
	BeforeLoad MemJSON `json:"before_load"`
	// AfterLoad: the loader's goroutines gone, no forced GC.
	AfterLoad MemJSON `json:"after_load"`
	// Settled: after a forced GC that returned free pages to the kernel.
	// An automatic snapshot may still hold its copy of the state then.
	Settled MemJSON `json:"settled"`
	// Quiet: settled again after the snapshot step, when no snapshot
	// holds a copy (Raft takes one at a time, and the user snapshot came
	// after any automatic one): the state and the node alone.
	Quiet MemJSON `json:"quiet"`
	// PeakSingleNode is VmHWM read before a second node started: the
	// peak of the one node with its loader, snapshots included.
	PeakSingleNode int64 `json:"peak_single_node_bytes"`
	// Per reservation: the growth of RSS and of the live heap from
	// BeforeLoad to Quiet (Settled if the run did not get that far), over
	// the reservations loaded (the resources' share included).
	RSSPerReservation  float64 `json:"rss_bytes_per_reservation"`
	AnonPerReservation float64 `json:"rss_anon_bytes_per_reservation"`
	HeapPerReservation float64 `json:"heap_live_bytes_per_reservation"`
	// TwoNodes: after the follower installed the snapshot, both nodes in
	// the process.
	TwoNodes MemJSON `json:"two_nodes"`
}

// MemJSON is Mem with units in its keys.
type MemJSON struct {
	RSS         int64 `json:"rss_bytes"`
	RSSAnon     int64 `json:"rss_anon_bytes"`
	RSSFile     int64 `json:"rss_file_bytes"`
	HWM         int64 `json:"hwm_bytes"`
	HeapLive    int64 `json:"heap_live_bytes"`
	HeapObjects int64 `json:"heap_objects_bytes"`
	GoTotal     int64 `json:"go_total_bytes"`
	Goroutines  int   `json:"goroutines"`
}

func memJSON(m Mem) MemJSON { return MemJSON(m) }

// SnapshotReport is the pause a snapshot causes.
type SnapshotReport struct {
	// ProbeBefore: the probe's commits before the snapshot; ProbeDuring:
	// those in flight while Raft's user snapshot ran.
	ProbeBefore ProbeStats `json:"probe_before"`
	ProbeDuring ProbeStats `json:"probe_during"`
	// RaftSnapshotS is Raft's Snapshot() from the call to its future's
	// answer: the FSM's copy, persisting it, compacting the log.
	RaftSnapshotS float64 `json:"raft_snapshot_s"`
	// FSMSnapshotMs is FSM.Snapshot() timed directly: the part during
	// which Apply waits. PersistS and Bytes: that snapshot streamed to a
	// sink that discards it.
	FSMSnapshotMs float64 `json:"fsm_snapshot_ms"`
	PersistS      float64 `json:"persist_s"`
	Bytes         int64   `json:"bytes"`
	// ProbeDuringFSM: the probe's commits in flight during that call.
	ProbeDuringFSM ProbeStats `json:"probe_during_fsm_snapshot"`
}

// RestartReport is a clean stop and a start on the same data dir.
type RestartReport struct {
	ShutdownS float64 `json:"shutdown_s"`
	// ReadyS runs from the start call until the node is ready (/readyz)
	// and a read answers the loaded counts; StartS until the start call
	// returned.
	StartS float64 `json:"start_s"`
	ReadyS float64 `json:"ready_s"`
}

// InstallReport is a new follower catching up through the leader's
// snapshot.
type InstallReport struct {
	// LeaderIndex is the leader's last log index when the follower
	// started; FirstIndex the first entry its log still held (the
	// follower needs entries from 1, so it must install a snapshot).
	LeaderIndex uint64 `json:"leader_index"`
	FirstIndex  uint64 `json:"leader_first_index"`
	// InstallS runs from the follower's start until it restored a
	// snapshot and applied up to LeaderIndex; JoinS until Join returned
	// (it is a voter); ReadyS until it was ready.
	InstallS float64 `json:"install_s"`
	JoinS    float64 `json:"join_s"`
	ReadyS   float64 `json:"ready_s"`
	Restores uint64  `json:"restores"`
}

// Goal is one figure against the goal for it.
type Goal struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Limit float64 `json:"limit"`
	// Known is false where the figure could not be measured here (RSS
	// off Linux): Pass is then false too.
	Known bool `json:"known"`
	Pass  bool `json:"pass"`
}

// Check is one correctness check of the run.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

func (r *Report) goal(name string, value, limit float64, unit string, known bool) {
	r.Goals = append(r.Goals, Goal{Name: name, Value: value, Unit: unit, Limit: limit, Known: known, Pass: known && value <= limit})
}

func (r *Report) check(name string, pass bool, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
}

// Pass reports whether every check passed (goals are figures, not checks).
func (r *Report) Pass() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return true
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText writes the human-readable report.
func (r *Report) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("scale: %d resources, %d reservations requested, %d loader goroutines, %d CPUs", r.RequestedResources, r.RequestedReservations, r.Concurrency, r.CPUs)
	p("  (%s)", r.Note)
	phase := func(name string, ph Phase) {
		p("  load %-13s %d in %.1f s: %.0f/s (unknown outcome %d, retried %d)", name, ph.Done, ph.DurationS, ph.PerSecond, ph.Unknown, ph.Retries)
	}
	phase("resources", r.LoadResources)
	phase("reservations", r.LoadReservations)
	p("  state after load: %d resources, %d reservations", r.Resources, r.Reservations)
	m := r.Memory
	mem := func(name string, m MemJSON) {
		p("  memory %-12s rss %s (anon %s, file %s), heap live %s, heap objects %s, go total %s, %d goroutines",
			name, human(m.RSS), human(m.RSSAnon), human(m.RSSFile), human(m.HeapLive), human(m.HeapObjects), human(m.GoTotal), m.Goroutines)
	}
	mem("before load", m.BeforeLoad)
	mem("after load", m.AfterLoad)
	mem("settled", m.Settled)
	mem("quiet", m.Quiet)
	p("  memory peak (VmHWM, one node + loader): %s; per reservation: %.0f B of rss (%.0f B anonymous), %.0f B of live heap",
		human(m.PeakSingleNode), m.RSSPerReservation, m.AnonPerReservation, m.HeapPerReservation)
	mem("two nodes", m.TwoNodes)
	s := r.Snapshot
	probe := func(name string, st ProbeStats) {
		p("  probe %-26s %d commits, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d failed, %d refused attempts retried",
			name, st.Commits, st.P50Ms, st.P99Ms, st.MaxMs, st.Errors, st.Retries)
	}
	probe("before the snapshot", s.ProbeBefore)
	probe("during Raft's snapshot", s.ProbeDuring)
	probe("during FSM.Snapshot()", s.ProbeDuringFSM)
	p("  snapshot: raft Snapshot() %.2f s; FSM.Snapshot() %.1f ms; persist %.2f s, %s", s.RaftSnapshotS, s.FSMSnapshotMs, s.PersistS, human(s.Bytes))
	p("  restart: shutdown %.2f s, start %.2f s, ready with the loaded state %.2f s", r.Restart.ShutdownS, r.Restart.StartS, r.Restart.ReadyS)
	in := r.Install
	p("  install: leader at index %d (log from %d); snapshot installed and applied %.2f s, joined %.2f s, ready %.2f s, restores %d",
		in.LeaderIndex, in.FirstIndex, in.InstallS, in.JoinS, in.ReadyS, in.Restores)
	for _, g := range r.Goals {
		verdict := "FAIL"
		switch {
		case !g.Known:
			verdict = "UNKNOWN"
		case g.Pass:
			verdict = "pass"
		}
		val := fmt.Sprintf("%.2f %s", g.Value, g.Unit)
		if !g.Known {
			val = "unknown"
		}
		p("  goal %-28s %-16s (goal <= %.0f %s) %s", g.Name, val, g.Limit, g.Unit, verdict)
	}
	for _, c := range r.Checks {
		verdict := "pass"
		if !c.Pass {
			verdict = "FAIL"
		}
		p("  check %-26s %s  %s", c.Name, verdict, c.Detail)
	}
	p("  total %.1f s", r.TotalS)
	if r.Error != "" {
		p("  error: %s", r.Error)
	}
}
