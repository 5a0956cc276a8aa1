package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// httpsConfigs builds, from cfg, the TLS configuration the API is served
// with (nil: plain HTTP) and the one for requests to the other nodes: it
// trusts the cluster's CA (Cluster.TLSCAFile) when there is one, so that
// one CA can sign both the Raft and the HTTPS certificates, else the
// system roots (nil).
func httpsConfigs(cfg Config) (peer, serve *tls.Config, err error) {
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, nil, errors.New("https: give both --tls-cert and --tls-key, or neither")
	}
	if ca := cfg.Cluster.TLSCAFile; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("https: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("https: %s holds no PEM certificate", ca)
		}
		peer = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if cfg.TLSCertFile == "" {
		return peer, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("https: %w", err)
	}
	return peer, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}
