package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// loadMutualTLS builds the two sides of mutual TLS between nodes from a
// PEM certificate and key and the PEM CA that signs every node's
// certificate. Each side requires the other's certificate and verifies it
// against that CA only (not the system roots), for any name: peers are
// addressed by the IPs in the Raft configuration, and holding a
// certificate of the cluster's CA is what makes a member. The CA should
// therefore be dedicated to the cluster.
func loadMutualTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("raft tls: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("raft tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("raft tls: %s holds no PEM certificate", caFile)
	}
	server, client = mutualTLS(cert, pool)
	return server, client, nil
}

// mutualTLS is loadMutualTLS on loaded material.
func mutualTLS(cert tls.Certificate, pool *x509.CertPool) (server, client *tls.Config) {
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The chain is verified by VerifyConnection below, against the
		// cluster's CA and for any name (see loadMutualTLS).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, pool, x509.ExtKeyUsageServerAuth)
		},
	}
	return server, client
}

// verifyPeer checks the peer's certificate chain against pool.
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raft tls: the peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage},
	})
	return err
}
