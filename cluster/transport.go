package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is the Raft stream layer over plain TCP: hashicorp/raft's own
// TCPStreamLayer has no exported constructor, and owning it lets
// Config.WrapStream put fault injectors (and, later, authentication) between
// Raft and the network.
type tcpStream struct {
	net.Listener
	advertise net.Addr
}

// listenTCP binds addr; the advertised address is the bound one, so that a
// port of 0 is reported as the port actually taken.
func listenTCP(addr string) (*tcpStream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft addr %s: need a concrete IP address to advertise", addr)
	}
	return &tcpStream{Listener: ln, advertise: tcp}, nil
}

// Addr is the address advertised to the other nodes.
func (s *tcpStream) Addr() net.Addr { return s.advertise }

// Dial opens a connection to another node's Raft port.
func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// newTransport builds the Raft transport on cfg.RaftAddr, through
// cfg.WrapStream when set.
func newTransport(cfg *Config, logger *slogHCLog) (*raft.NetworkTransport, error) {
	tcp, err := listenTCP(cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	var stream raft.StreamLayer = tcp
	if cfg.WrapStream != nil {
		stream = cfg.WrapStream(stream)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: cfg.TransportMaxPool,
		Timeout: cfg.TransportTimeout,
		Logger:  logger.Named("transport"),
	}), nil
}
