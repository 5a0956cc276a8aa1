// Package server wires one allot node together: storage and Raft (cluster),
// the leader's actors, the HTTP API and the metrics registry. cmd/allot, the
// bench and the end-to-end tests start nodes through it.
package server

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"allot/actors"
	"allot/actors/domain"
	"allot/cluster"
	"allot/httpapi"
)

// Config is everything a node needs; cmd/allot fills it from flags and env.
type Config struct {
	// NodeID names this node in the cluster; stable across restarts.
	NodeID string
	// DataDir holds the Raft log, snapshots and (by default) the auth secret.
	DataDir string
	// HTTPAddr is where the API listens; port 0 picks a free port.
	HTTPAddr string
	// RaftAddr is where Raft listens; port 0 picks a free port.
	RaftAddr string
	// AdvertiseHost, when set, is the host name (or IP) the other nodes
	// reach this one at: the node advertises it with the ports of HTTPAddr
	// and RaftAddr, which may then bind every interface (0.0.0.0). A DNS
	// name keeps a node's addresses when its IP changes (a rescheduled
	// container). Empty advertises the bound addresses.
	AdvertiseHost string
	// Bootstrap makes a node without state found a new one-node cluster.
	Bootstrap bool
	// BootstrapExpect, when positive, is the number of nodes a node
	// without state founds a cluster with (AwaitFounding); Bootstrap must
	// then be false.
	BootstrapExpect int
	// JoinTimeout bounds Join: how long a new node keeps asking the running
	// ones to add it.
	JoinTimeout time.Duration
	// AuthSecret signs and checks JWTs (at least 32 bytes).
	AuthSecret []byte
	// TLSCertFile and TLSKeyFile, both or neither, are the PEM certificate
	// and key the API is served with over HTTPS; the node's advertised
	// address is then https://. Requests to the other nodes (forwarding,
	// join, clock probes) check their certificates against
	// Cluster.TLSCAFile when set, else the system roots.
	TLSCertFile, TLSKeyFile string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Engine tunes the actors and the proposer.
	Engine actors.Config
	// HTTP tunes the API; its Engine, Reader, Cluster, NodeID, AuthSecret,
	// Logger, Registry and Clock (Engine.Clock) are filled in by Start.
	HTTP httpapi.Config
	// Cluster tunes Raft; identity, addresses and callbacks are filled in
	// by Start.
	Cluster cluster.Config
	// WrapLog, when set, wraps the Raft node as the engine sees it (the log
	// it proposes to and reads committed state from): the seam where the
	// test kit turns commits into unknown outcomes. Nil hands the engine the
	// node itself.
	WrapLog func(actors.Log) actors.Log
	// ClockProbe tunes the measurement of the other nodes' clock offsets.
	ClockProbe ClockProbeConfig
	// Retention is how long a finished reservation (cancelled, expired,
	// completed) stays in the state after it finished (--retention); 0
	// keeps them forever. It overrides Engine.Retention. Its events stay
	// until EventRetention.
	Retention time.Duration
	// EventRetention is how long events are kept.
	EventRetention time.Duration
}

// DefaultConfig is a lone node on loopback in ./allot-data.
func DefaultConfig() Config {
	return Config{
		NodeID:      "n1",
		DataDir:     "./allot-data",
		HTTPAddr:    "127.0.0.1:8080",
		RaftAddr:    "127.0.0.1:7000",
		Bootstrap:   true,
		JoinTimeout: 2 * time.Minute,
		Engine:      actors.DefaultConfig(),
		HTTP:        httpapi.DefaultConfig(),
		Cluster:     cluster.DefaultConfig(),
		ClockProbe:  DefaultClockProbeConfig(),

		Retention:      actors.DefaultRetention,
		EventRetention: 168 * time.Hour,
	}
}

// Server is a running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	listener net.Listener
	peerTLS  *tls.Config // for requests to the other nodes; nil: system roots
	http     *http.Server
	node     *cluster.Node
	engine   *actors.Engine
	api      *httpapi.Server
	registry *prometheus.Registry // what /metrics serves
	probe    *clockProber
	served   chan error

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens storage, starts Raft and the engine, and serves HTTP. It
// returns once the node listens; it may not lead or be ready yet.
func Start(cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bootstrap && cfg.BootstrapExpect > 0 {
		return nil, errors.New("server: Bootstrap and BootstrapExpect exclude each other")
	}
	s := &Server{cfg: cfg, log: logger, registry: newRegistry(), served: make(chan error, 1)}
	peerTLS, serverTLS, err := httpsConfigs(cfg)
	if err != nil {
		return nil, err
	}
	s.peerTLS = peerTLS
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s.listener = ln
	scheme := "http://"
	if serverTLS != nil {
		ln, scheme = tls.NewListener(ln, serverTLS), "https://"
	}

	// Raft may win an election before the engine exists: leadership news
	// waits for it, in order, on the cluster's notification goroutine.
	engineReady := make(chan struct{})
	cc := cfg.Cluster
	cc.NodeID, cc.DataDir, cc.RaftAddr = cfg.NodeID, cfg.DataDir, cfg.RaftAddr
	cc.EventRetention = cfg.EventRetention
	advertised := ln.Addr().String()
	if cfg.AdvertiseHost != "" {
		_, httpPort, _ := net.SplitHostPort(advertised)
		_, raftPort, err := net.SplitHostPort(cfg.RaftAddr)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft addr %q: %w", cfg.RaftAddr, err)
		}
		advertised = net.JoinHostPort(cfg.AdvertiseHost, httpPort)
		cc.RaftAdvertise = net.JoinHostPort(cfg.AdvertiseHost, raftPort)
	}
	cc.HTTPAddr = scheme + advertised
	cc.Bootstrap = cfg.Bootstrap
	cc.Secret = cfg.AuthSecret
	cc.Logger = logger.With("component", "cluster")
	cc.Metrics = s.registry
	cc.OnLeadership = func(leader bool) {
		<-engineReady
		s.engine.SetLeader(leader)
	}
	node, err := cluster.Start(cc)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.node = node
	if cfg.EventRetention <= 0 && node.FSM().EventLog() != nil {
		logger.Warn("event retention is 0: the node keeps every event for ever, and every snapshot carries the whole change stream, so snapshots and catching up a new node grow with it",
			"node", cfg.NodeID)
	}

	ec := cfg.Engine
	ec.Logger = logger.With("component", "actors")
	ec.Retention = cfg.Retention
	if events := node.FSM().EventLog(); events != nil {
		ec.Events = eventSource{events}
	}
	var log actors.Log = node
	if cfg.WrapLog != nil {
		log = cfg.WrapLog(log)
	}
	s.engine = actors.New(log, ec, newEngineMetrics(s.registry).hooks())
	close(engineReady)
	s.registry.MustRegister(engineCollector{s.engine}, newStateCollector(node.View), streamCollector{node.FSM().EventLog()}, webhookCollector{s.engine})

	hc := cfg.HTTP
	hc.Engine, hc.Reader, hc.Cluster, hc.Webhooks = s.engine, node, clusterView{node}, s.engine
	hc.Events = node.FSM().EventLog()
	hc.NodeID, hc.AuthSecret, hc.Registry = cfg.NodeID, cfg.AuthSecret, s.registry
	hc.PeerTLS = peerTLS
	hc.Logger = logger.With("component", "http")
	hc.Clock = cfg.Engine.Clock // /healthz reports the clock leader time is read from
	api, err := httpapi.New(hc)
	if err != nil {
		s.stopCore()
		ln.Close()
		return nil, err
	}
	s.api = api
	probe := cfg.ClockProbe
	probe.TLS = peerTLS
	s.probe = newClockProber(probe, cfg.Engine.Clock, clusterPeers(node), logger.With("component", "clock"))
	s.registry.MustRegister(s.probe)
	s.http = httpapi.NewHTTPServerTimeouts(ln.Addr().String(), api.Handler(), hc.Timeouts)
	s.http.RegisterOnShutdown(api.EndStreams) // streams never finish by themselves
	go func() { s.served <- s.http.Serve(ln) }()
	s.probe.start()
	logger.Info("allot node started", "node", cfg.NodeID, "http", ln.Addr().String(), "raft", node.Status().RaftAddr, "data_dir", cfg.DataDir)
	return s, nil
}

// HTTPAddr is the address the API listens on, e.g. "127.0.0.1:43121".
func (s *Server) HTTPAddr() string { return s.listener.Addr().String() }

// Node exposes the Raft node (tests, bench verification).
func (s *Server) Node() *cluster.Node { return s.node }

// Engine exposes the write path the HTTP layer calls, so that the bench's
// scale mode can load millions of reservations without HTTP's cost.
func (s *Server) Engine() *actors.Engine { return s.engine }

// Shutdown stops the node from the outside in: the clock probe of the other
// nodes stops, HTTP stops taking requests and finishes (or times out) the
// ones in flight, the actors stop, Raft hands leadership over if it can and
// shuts down, storage closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.probe.close()
		err := s.http.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.Join(err, s.http.Close())
		}
		s.api.Close()
		s.shutdownErr = errors.Join(err, s.stopCore())
		if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
			s.shutdownErr = errors.Join(s.shutdownErr, serveErr)
		}
		s.log.Info("allot node stopped", "node", s.cfg.NodeID, "err", s.shutdownErr)
	})
	return s.shutdownErr
}

func (s *Server) stopCore() error {
	s.engine.Close()
	return s.node.Shutdown()
}

// clusterView adapts cluster.Node to the httpapi.Cluster interface.
type clusterView struct{ node *cluster.Node }

func (v clusterView) Ready() error { return v.node.Ready() }

func (v clusterView) LeaderHTTPAddr() (string, bool) { return v.node.LeaderHTTPAddr() }

func (v clusterView) StateHash() string {
	h := v.node.StateHash()
	return hex.EncodeToString(h[:])
}

func (v clusterView) AddVoter(ctx context.Context, m domain.Member) error {
	return v.node.AddVoter(ctx, m)
}

func (v clusterView) RemoveServer(ctx context.Context, id string) error {
	return v.node.RemoveServer(ctx, id)
}

func (v clusterView) Info() httpapi.ClusterInfo {
	st := v.node.Status()
	info := httpapi.ClusterInfo{Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Nodes: make([]httpapi.NodeInfo, 0, len(st.Nodes))}
	if st.LeaderID != "" {
		info.Leader = &httpapi.LeaderInfo{ID: st.LeaderID, HTTPAddr: st.LeaderHTTPAddr}
	}
	addHealth(&info, v.node.Health())
	for _, n := range st.Nodes {
		info.Nodes = append(info.Nodes, httpapi.NodeInfo{ID: n.ID, RaftAddr: n.RaftAddr, HTTPAddr: n.HTTPAddr, Voter: n.Voter, State: n.State})
	}
	return info
}
