// Package cluster runs allot's Raft node: it opens storage, starts
// hashicorp/raft with the FSM that holds the committed state, bootstraps a new
// cluster, tracks leadership (running a barrier before a new leader serves),
// and offers the replicated log (Propose), reads at each consistency level,
// readiness and status to the layers above.
package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"allot/actors/domain"
)

// Config configures a Node. Start with DefaultConfig and set the identity
// fields; the tuning knobs have defaults fit for a LAN.
type Config struct {
	// NodeID is this node's Raft server id: unique in the cluster and the
	// same across restarts (it is stored in the log's configuration).
	NodeID string
	// RaftAddr is the TCP address Raft listens on and advertises to the
	// other nodes: host:port with a concrete IP (not 0.0.0.0). Port 0
	// picks a free port; Node.RaftAddr tells which.
	RaftAddr string
	// RaftAdvertise, when set, is the host:port the other nodes reach this
	// node's Raft port at, the host a DNS name or an IP: it goes into the
	// Raft configuration instead of RaftAddr, which may then bind all
	// interfaces (0.0.0.0:7000). A name survives a change of the node's IP
	// (a rescheduled pod), which an IP in the configuration does not.
	RaftAdvertise string
	// HTTPAddr is the base URL of this node's HTTP API (http://host:port).
	// The node records it in committed state when it leads, so that the
	// other nodes can forward requests to it; empty records nothing.
	HTTPAddr string
	// DataDir holds the Raft log, stable store and snapshots (see package
	// storage for the layout).
	DataDir string
	// EventRetention is how long the change stream keeps a record, by
	// leader time; 0 keeps every record.
	EventRetention time.Duration
	// Bootstrap makes a node without any Raft state start a new cluster with
	// itself as the only voter. It is ignored when the data dir already has
	// state, so it is safe to leave set on restarts.
	Bootstrap bool
	// BootstrapGrace is how long a node about to bootstrap first listens for
	// Raft RPCs arriving at its address: if one comes, a running cluster
	// lists the address (its data dir was wiped) and the node does not
	// found a new cluster (see bootstrap.go). Start waits this long. Zero
	// means three times the longer of HeartbeatTimeout and ElectionTimeout.
	BootstrapGrace time.Duration

	// Secret is the shared auth secret (the one that signs JWTs). The key
	// every connection between nodes must prove it holds is derived from
	// it (handshake.go); it must be the same on every node. Required.
	Secret []byte
	// TLSCertFile, TLSKeyFile and TLSCAFile, all three or none, are PEM
	// files for mutual TLS between nodes: this node's certificate and key,
	// and the CA that signs every node's (tls.go). The handshake then runs
	// inside TLS. None: the handshake runs over plain TCP.
	TLSCertFile, TLSKeyFile, TLSCAFile string

	// Logger receives the node's logs and Raft's (at RaftLogLevel and above).
	// Nil means slog.Default().
	Logger *slog.Logger
	// RaftLogLevel is the lowest level of hashicorp/raft's own messages that
	// is logged; Raft is chatty below warn.
	RaftLogLevel slog.Level
	// OnLeadership is called with true once this node leads and its barrier
	// has passed (every committed entry is applied, writes may be served),
	// and with false as soon as it stops leading. Calls come from one
	// goroutine, in order, alternating, and a true is always followed by a
	// false before Shutdown returns. It must not block for long: the next
	// change waits for it. Nil means no callback.
	OnLeadership func(leader bool)

	// HeartbeatTimeout is how long a follower goes without contact from a
	// leader before it starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before it
	// starts another election.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// contact with a quorum before it steps down. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long the leader goes without appending before it
	// sends a heartbeat so that followers learn the commit index.
	CommitTimeout time.Duration
	// MaxAppendEntries is how many entries are written to disk and sent to
	// a follower at once (each entry is one batch of events).
	MaxAppendEntries int

	// SnapshotInterval is how often Raft checks whether to take a snapshot.
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many entries since the last snapshot make
	// Raft take a new one (checked every SnapshotInterval).
	SnapshotThreshold uint64
	// TrailingLogs is how many entries are kept in the log after a
	// snapshot, so that a briefly lagging follower catches up from the log
	// instead of a full snapshot.
	TrailingLogs uint64

	// TransportTimeout bounds each network operation of the Raft transport.
	TransportTimeout time.Duration
	// TransportMaxPool is how many connections to each peer are kept.
	TransportMaxPool int

	// BarrierTimeout bounds each attempt of a new leader's barrier.
	BarrierTimeout time.Duration
	// BarrierRetries is how many barrier attempts fail before the leader
	// tries to hand leadership to another node (it keeps retrying if it
	// cannot).
	BarrierRetries int
	// ApplyTimeout bounds how long a proposed batch is waited for; after it
	// the batch's outcome is reported unknown.
	ApplyTimeout time.Duration
	// ReadTimeout bounds leader checks and read-index waits when the
	// caller's context has no earlier deadline.
	ReadTimeout time.Duration
	// ShutdownTimeout bounds each step of Shutdown: the leadership transfer
	// and Raft's shutdown.
	ShutdownTimeout time.Duration

	// LeaseDuration is the leader lease (see Node.LeaseValid): how long after
	// a quorum last acknowledged it, measured on the monotonic clock from
	// the moment the acknowledged request was handed to Raft, the ready
	// leader gives definite answers (rejections, not-found, leader reads)
	// without asking a quorum again. No other node can be elected sooner
	// than HeartbeatTimeout after a quorum last heard from this leader, so
	// the lease must be shorter: at most 9/10 of HeartbeatTimeout, which
	// leaves room for the other nodes' clocks to run up to 10% fast. Zero
	// means 4/5 of HeartbeatTimeout. A restarted node also waits this long
	// before it starts Raft (see Start).
	LeaseDuration time.Duration

	// AuditInterval is how many log entries apart the audit points are:
	// the FSM records its digest of the log at the first entry it applies
	// at or past each multiple of AuditInterval, and the nodes compare
	// their digests at those points (audit.go). Smaller finds a divergence
	// sooner after it happened; a node keeps the last 64 points, so the
	// auditor must compare at least once per 64 intervals of entries. Keep
	// it the same on every node: nodes with different intervals share
	// fewer points (never a false alarm: the digest at an index does not
	// depend on it).
	AuditInterval uint64
	// AuditPeriod is how often the auditor asks every other server of the
	// configuration for its audit points and compares them with this
	// node's, jittered by up to a quarter either way (auditor.go). Each
	// question is bounded by the shorter of TransportTimeout and 2s.
	AuditPeriod time.Duration

	// Metrics, when set, is where the node registers its Prometheus
	// collectors, hashicorp/raft's own metrics included (see metrics.go and
	// raftmetrics.go). nil registers nothing.
	Metrics prometheus.Registerer

	// WrapStream, when set, wraps the TCP stream layer the Raft transport
	// dials and accepts on: the seam where the test kit partitions, delays
	// and drops Raft traffic. Nil uses plain TCP.
	WrapStream func(raft.StreamLayer) raft.StreamLayer
	// WrapLogStore, when set, wraps the Raft log store: the seam where the
	// test kit slows or fails log writes. Nil uses the store as it is.
	WrapLogStore func(raft.LogStore) raft.LogStore

	// tlsConfigs, when set, replaces the TLS files: tests build
	// certificates in memory.
	tlsConfigs func() (server, client *tls.Config)
	// beforeBarrier, when set, runs before each attempt of a new leader's
	// barrier: tests hold a leader there to watch it refuse service.
	beforeBarrier func()
	// maxLogFormat, when set, is the newest batch version this node
	// understands instead of domain.BatchVersion: tests play an older
	// binary with it.
	maxLogFormat byte
	// logFormatRetry, when set, replaces defaultLogFormatRetry.
	logFormatRetry time.Duration
	// duringTransfer, when set, runs once a leader gave its lease up for a
	// leadership transfer, before the transfer starts.
	duringTransfer func()
	// alterEntry, when set, replaces command entries as this node's FSM
	// applies them (nil keeps an entry): tests make one node apply an
	// entry the others do not.
	alterEntry func(*raft.Log) *raft.Log
	// beforeApply, when set, runs in Propose after the ready check and
	// before the entry goes to Raft: tests hold a proposal in that window,
	// where hashicorp/raft #695 can still strike (raft695_test.go).
	beforeApply func()
	// keepNonVoters, while set and true, stops this node promoting
	// caught-up non-voters: tests keep a non-voter in the configuration,
	// as one that never catches up stays.
	keepNonVoters *atomic.Bool
}

// leaseDuration is LeaseDuration with its default applied.
func (c *Config) leaseDuration() time.Duration {
	if c.LeaseDuration == 0 {
		return c.HeartbeatTimeout * 4 / 5
	}
	return c.LeaseDuration
}

// DefaultConfig returns the defaults of API.md's `allot serve` with Raft
// tuned for a LAN.
func DefaultConfig() Config {
	return Config{
		NodeID:       "n1",
		RaftAddr:     "127.0.0.1:7000",
		HTTPAddr:     "127.0.0.1:8080",
		DataDir:      "allot-data",
		RaftLogLevel: slog.LevelWarn,

		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   64,

		SnapshotInterval:  30 * time.Second,
		SnapshotThreshold: 8192,
		TrailingLogs:      10240,

		TransportTimeout: 10 * time.Second,
		TransportMaxPool: 3,

		BarrierTimeout:  5 * time.Second,
		BarrierRetries:  3,
		ApplyTimeout:    10 * time.Second,
		ReadTimeout:     5 * time.Second,
		ShutdownTimeout: 5 * time.Second,

		AuditInterval: defaultAuditInterval,
		AuditPeriod:   10 * time.Second,
	}
}

// bootstrapGrace is BootstrapGrace with its default applied: enough for
// a leader's heartbeats (backed off to at most half a heartbeat timeout)
// or a candidate's vote requests to arrive.
func (c *Config) bootstrapGrace() time.Duration {
	if c.BootstrapGrace > 0 {
		return c.BootstrapGrace
	}
	return 3 * max(c.HeartbeatTimeout, c.ElectionTimeout)
}

// Validate checks the fields a Node needs; hashicorp/raft checks its own
// limits again at Start.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" {
		bad("node id is empty")
	}
	if host, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		bad("raft addr %q: %v", c.RaftAddr, err)
	} else if ip := net.ParseIP(host); ip == nil || (ip.IsUnspecified() && c.RaftAdvertise == "") {
		bad("raft addr %q: need a concrete IP address the other nodes can reach (or a raft advertise address)", c.RaftAddr)
	}
	if c.RaftAdvertise != "" {
		host, port, err := net.SplitHostPort(c.RaftAdvertise)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			bad("raft advertise address %q: want host:port with a port other than 0", c.RaftAdvertise)
		}
	}
	if c.DataDir == "" {
		bad("data dir is empty")
	}
	if len(c.Secret) == 0 {
		bad("secret is empty: the cluster handshake is keyed from it")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") || (c.TLSCertFile == "") != (c.TLSCAFile == "") {
		bad("raft tls: give the certificate, the key and the CA, or none of them")
	}
	if c.HTTPAddr != "" {
		m := domain.Member{ID: c.NodeID, RaftAddr: c.RaftAddr, HTTPAddr: c.HTTPAddr}
		if c.RaftAdvertise != "" {
			m.RaftAddr = c.RaftAdvertise
		}
		if err := m.Validate(); err != nil {
			bad("%v", err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat timeout", c.HeartbeatTimeout}, {"election timeout", c.ElectionTimeout},
		{"leader lease timeout", c.LeaderLeaseTimeout}, {"commit timeout", c.CommitTimeout},
		{"snapshot interval", c.SnapshotInterval}, {"transport timeout", c.TransportTimeout},
		{"barrier timeout", c.BarrierTimeout}, {"apply timeout", c.ApplyTimeout},
		{"read timeout", c.ReadTimeout}, {"shutdown timeout", c.ShutdownTimeout},
		{"audit period", c.AuditPeriod},
	} {
		if d.v <= 0 {
			bad("%s must be positive", d.name)
		}
	}
	if c.BootstrapGrace < 0 {
		bad("bootstrap grace must not be negative")
	}
	switch {
	case c.LeaseDuration < 0:
		bad("lease duration must not be negative")
	case c.LeaseDuration*10 > c.HeartbeatTimeout*9:
		bad("lease duration %v exceeds 9/10 of the heartbeat timeout %v: another node could be elected before it runs out",
			c.LeaseDuration, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout %v exceeds heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		bad("max append entries must be between 1 and 1024")
	}
	if c.SnapshotThreshold == 0 {
		bad("snapshot threshold must be positive")
	}
	if c.TransportMaxPool < 1 {
		bad("transport max pool must be positive")
	}
	if c.BarrierRetries < 1 {
		bad("barrier retries must be at least 1")
	}
	if c.AuditInterval < 1 {
		bad("audit interval must be at least 1")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster config: %w: %w", domain.ErrInvalidArgument, err)
	}
	return nil
}
