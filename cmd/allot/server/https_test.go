package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"allot/cluster/testpki"
)

// TestHTTPSClusterForwardsAndJoins: two nodes serving the API over HTTPS
// and Raft over mutual TLS: the second joins over HTTPS, advertises an
// https address, and a write sent to the follower is forwarded to the
// leader over HTTPS, checked against the cluster's CA.
func TestHTTPSClusterForwardsAndJoins(t *testing.T) {
	pki := testpki.NewCA(t)
	pool := pki.Pool
	ca, cert, key := pki.WriteFiles(t, t.TempDir(), "node")
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
