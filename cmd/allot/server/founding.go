package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"allot/cluster"
	"allot/httpapi"
)

// helloTimeout bounds one GET /v1/cluster/hello to a peer.
const helloTimeout = 2 * time.Second

// Hello is GET /v1/cluster/hello's view of the node.
func (v clusterView) Hello() httpapi.NodeHello {
	h := v.node.Hello()
	return httpapi.NodeHello{ID: h.ID, RaftAddr: h.RaftAddr, HTTPAddr: h.HTTPAddr, ClusterID: h.ClusterID,
		HasState: h.HasState, LastIndex: h.LastIndex, Founding: h.Founding}
}

// AwaitFounding founds a cluster of Config.BootstrapExpect nodes with the
// nodes at urls (HTTP base URLs; this node's own may be among them), as
// cluster.Node.AwaitFounding describes, and returns once a cluster exists:
// Join then records this node in it (or adds it, if the cluster was there
// before). A node with Raft state returns at once. It waits until ctx ends
// for the other nodes to start.
func (s *Server) AwaitFounding(ctx context.Context, urls []string) error {
	if s.node.HadState() {
		return nil
	}
	tok, err := s.nodeToken(24 * time.Hour)
	if err != nil {
		return fmt.Errorf("founding: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: s.peerTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: helloTimeout}
	ask := func(ctx context.Context) []cluster.Hello {
		var mu sync.Mutex
		var wg sync.WaitGroup
		hellos := make([]cluster.Hello, 0, len(urls))
		for _, u := range urls {
			wg.Go(func() {
				h, err := askHello(ctx, client, u, tok)
				if err != nil {
					s.log.Debug("hello unanswered", "peer", u, "error", err)
					return
				}
				mu.Lock()
				hellos = append(hellos, h)
				mu.Unlock()
			})
		}
		wg.Wait()
		return hellos
	}
	return s.node.AwaitFounding(ctx, s.cfg.BootstrapExpect, ask)
}

// nodeToken is the admin token this node signs with the shared secret to
// ask its peers: the secret is what admits a node.
func (s *Server) nodeToken(ttl time.Duration) (string, error) {
	return httpapi.MintToken(s.cfg.AuthSecret, "node:"+s.cfg.NodeID, httpapi.RoleAdmin, ttl)
}

// askHello sends one GET /v1/cluster/hello.
func askHello(ctx context.Context, client *http.Client, base, tok string) (cluster.Hello, error) {
	var h cluster.Hello
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/cluster/hello", nil)
	if err != nil {
		return h, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return h, err
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("%s: %.200s", resp.Status, body)
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, err
	}
	if h.ID == "" || h.RaftAddr == "" {
		return h, fmt.Errorf("hello without id or raft address: %.200s", body)
	}
	return h, nil
}
