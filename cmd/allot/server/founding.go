package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
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

// helloTokenTTL is how long the admin token of one round of hellos is
// valid. A round is sent every half second, to every --join address, and
// over plain http where the addresses say so: a token that leaks is worth a
// minute, not a day.
const helloTokenTTL = time.Minute

// AwaitFounding founds a cluster of Config.BootstrapExpect nodes with the
// nodes at urls (HTTP base URLs; this node's own may be among them), as
// cluster.Node.AwaitFounding describes, and returns once a cluster exists:
// Join then records this node in it (or adds it, if the cluster was there
// before). A node with Raft state returns at once. It waits until ctx ends
// for the other nodes to start. More distinct urls than BootstrapExpect are
// refused: two disjoint sets of them could each found a cluster.
func (s *Server) AwaitFounding(ctx context.Context, urls []string) error {
	if s.node.HadState() {
		return nil
	}
	urls = slices.Compact(slices.Sorted(slices.Values(urls)))
	if len(urls) > s.cfg.BootstrapExpect {
		return fmt.Errorf("founding: %d addresses to found a cluster of %d with: list only the founding nodes", len(urls), s.cfg.BootstrapExpect)
	}
	tr := &http.Transport{TLSClientConfig: s.peerTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: helloTimeout}
	ask := s.helloAsker(client, urls, newHelloLog(s.log, helloLogEvery))
	return s.node.AwaitFounding(ctx, s.cfg.BootstrapExpect, ask)
}

// helloAsker is the ask of cluster.Node.AwaitFounding: one round of
// hellos to every url, in parallel, under a token minted for the round,
// with the answers that came back; unanswered ones go to unanswered.
func (s *Server) helloAsker(client *http.Client, urls []string, unanswered *helloLog) func(context.Context) []cluster.Hello {
	return func(ctx context.Context) []cluster.Hello {
		tok, err := s.nodeToken(helloTokenTTL) // one per round: see helloTokenTTL
		if err != nil {
			unanswered.failed("", fmt.Errorf("mint the hello token: %w", err))
			return nil
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		hellos := make([]cluster.Hello, 0, len(urls))
		for _, u := range urls {
			wg.Go(func() {
				h, err := askHello(ctx, client, u, tok)
				if err != nil {
					if ctx.Err() == nil {
						unanswered.failed(u, err)
					}
					return
				}
				unanswered.answered(u)
				mu.Lock()
				hellos = append(hellos, h)
				mu.Unlock()
			})
		}
		wg.Wait()
		return hellos
	}
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
