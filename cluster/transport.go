package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is the Raft stream layer over plain TCP: hashicorp/raft's own
// TCPStreamLayer has no exported constructor, and owning it lets the
// handshake (authstream.go) and Config.WrapStream's fault injectors sit
// between Raft and the network.
type tcpStream struct {
	net.Listener
	advertise net.Addr
}

// helloStream answers the log-format and audit hellos (hello.go) on the
// connections it accepts and hands Raft the rest. It sits outside
// Config.WrapStream, so that a wrapper's own framing (the test kit's
// preamble) is already gone when it looks at a connection's first bytes.
type helloStream struct {
	raft.StreamLayer
	maxFormat byte          // the newest log format this binary understands
	timeout   time.Duration // bounds answering a hello
	audit     func() []byte // answers an audit hello (auditwire.go)
}

// Accept returns the next connection, which answers a hello by itself.
func (s *helloStream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return &helloConn{Conn: c, maxFormat: s.maxFormat, timeout: s.timeout, audit: s.audit}, nil
}

// listenTCP binds addr. The advertised address is advertise when set (a
// name the other nodes resolve, Config.RaftAdvertise), else the bound
// one, so that a port of 0 is reported as the port actually taken.
func listenTCP(addr, advertise string) (*tcpStream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if advertise != "" {
		return &tcpStream{Listener: ln, advertise: namedAddr(advertise)}, nil
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft addr %s: need a concrete IP address to advertise", addr)
	}
	return &tcpStream{Listener: ln, advertise: tcp}, nil
}

// namedAddr is an advertised address given as host:port, the host a DNS
// name or an IP: Raft stores it as it is and every dial resolves it again,
// so a node whose IP changes (a rescheduled pod) keeps its address.
type namedAddr string

func (namedAddr) Network() string  { return "tcp" }
func (a namedAddr) String() string { return string(a) }

// Addr is the address advertised to the other nodes.
func (s *tcpStream) Addr() net.Addr { return s.advertise }

// Dial opens a connection to another node's Raft port.
func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// newTransport builds the Raft transport on cfg.RaftAddr, behind the
// handshake h runs (over mutual TLS when cfg names certificates) and
// through cfg.WrapStream when set, and returns the stream layer it uses (on
// which the node also dials its hellos). maxFormat is the newest log format
// this binary understands; audit makes the reply to an audit hello.
func newTransport(cfg *Config, logger *slogHCLog, h *handshaker, maxFormat byte, audit func() []byte) (*raft.NetworkTransport, raft.StreamLayer, error) {
	var serverTLS, clientTLS *tls.Config
	if cfg.TLSCertFile != "" {
		var err error
		if serverTLS, clientTLS, err = loadMutualTLS(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile); err != nil {
			return nil, nil, err
		}
	}
	if cfg.tlsConfigs != nil {
		serverTLS, clientTLS = cfg.tlsConfigs()
	}
	tcp, err := listenTCP(cfg.RaftAddr, cfg.RaftAdvertise)
	if err != nil {
		return nil, nil, err
	}
	var stream raft.StreamLayer = newAuthStream(tcp, h, serverTLS, clientTLS)
	if cfg.WrapStream != nil {
		stream = cfg.WrapStream(stream)
	}
	stream = &helloStream{StreamLayer: stream, maxFormat: maxFormat, timeout: cfg.TransportTimeout, audit: audit}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: cfg.TransportMaxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  logger.Named("transport"),
	}), stream, nil
}
