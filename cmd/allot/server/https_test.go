package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPKI makes, in dir, a CA and one certificate of it for
// 127.0.0.1 good for both ends of a connection; it returns the CA pool and
// the paths of the CA, the certificate and its key.
func writeTestPKI(t *testing.T, dir string) (pool *x509.CertPool, ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, write("ca.pem", "CERTIFICATE", caDER), write("node.pem", "CERTIFICATE", leafDER), write("node.key", "EC PRIVATE KEY", keyDER)
}

// TestHTTPSClusterForwardsAndJoins: two nodes serving the API over HTTPS
// and Raft over mutual TLS: the second joins over HTTPS, advertises an
// https address, and a write sent to the follower is forwarded to the
// leader over HTTPS, checked against the cluster's CA.
func TestHTTPSClusterForwardsAndJoins(t *testing.T) {
	pool, ca, cert, key := writeTestPKI(t, t.TempDir())
	tc := &testCluster{t: t, log: &testLog{w: t.Output()}, tune: func(c *Config) {
		c.TLSCertFile, c.TLSKeyFile = cert, key
		c.Cluster.TLSCertFile, c.Cluster.TLSKeyFile, c.Cluster.TLSCAFile = cert, key, ca
	}}
	t.Cleanup(tc.log.close)
	var srvs []*Server
	for i, id := range []string{"n1", "n2"} {
		nd := &testNode{id: id, dir: t.TempDir(), httpAddr: "127.0.0.1:0", raftAddr: "127.0.0.1:0"}
		s, err := Start(tc.config(nd, i == 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		srvs = append(srvs, s)
		if i == 0 {
			waitFor(t, 10*time.Second, func() bool { return s.Node().IsLeader() })
			continue
		}
		if err := s.Join(context.Background(), []string{"https://" + srvs[0].HTTPAddr()}); err != nil {
			t.Fatalf("join over https: %v", err)
		}
	}
	if a := srvs[1].Node().HTTPAddr(); !strings.HasPrefix(a, "https://") {
		t.Fatalf("advertised address %q", a)
	}
	waitFor(t, 10*time.Second, func() bool { return srvs[1].Node().Ready() == nil })
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	follower := &client{t: t, base: "https://" + srvs[1].HTTPAddr(), hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, toks: map[string]string{}}
	follower.mustJSON("PUT", "/v1/resources/v1", "admin", map[string]any{"kind": "voucher", "capacity": 10}, http.StatusCreated, nil)
	follower.mustJSON("GET", "/v1/resources/v1", "admin", nil, http.StatusOK, nil)

	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + srvs[1].HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the API answered plain HTTP")
		}
	}
}
