package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// peerProbeTimeout bounds how long GET /v1/cluster waits for the other
// nodes to say what state they are in.
const peerProbeTimeout = time.Second

// nodeBody is the body of POST /v1/cluster/nodes.
type nodeBody struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// NormalizeBaseURL turns an HTTP address as operators write it ("host:port",
// "http://host:port/") into the base URL nodes record and dial
// ("http://host:port"). Only http and https with a host and no path are
// accepted.
func NormalizeBaseURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an HTTP address like http://host:port: %w", addr, domain.ErrInvalidArgument)
	}
	return u.Scheme + "://" + u.Host, nil
}

// memberFromBody checks a node to add.
func memberFromBody(b nodeBody) (domain.Member, error) {
	m := domain.Member{ID: b.ID, RaftAddr: b.RaftAddr}
	if !validPathID(b.ID) {
		return m, fmt.Errorf("id %q: want 1-%d of [A-Za-z0-9._:-], not only dots: %w", b.ID, domain.MaxMemberIDLen, domain.ErrInvalidArgument)
	}
	host, port, err := net.SplitHostPort(b.RaftAddr)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return m, fmt.Errorf("raft_addr %q: want host:port: %w", b.RaftAddr, domain.ErrInvalidArgument)
	}
	if m.HTTPAddr, err = NormalizeBaseURL(b.HTTPAddr); err != nil {
		return m, fmt.Errorf("http_addr: %w", err)
	}
	return m, m.Validate()
}

// addNode is POST /v1/cluster/nodes, run on the leader: it answers with the
// leader's view of the cluster, the new node included.
func (s *Server) addNode(c *gin.Context, _ domain.Principal) error {
	buf, err := s.readBody(c)
	if err != nil {
		return err
	}
	var body nodeBody
	err = decodeJSON(buf.Bytes(), &body)
	s.putBuf(buf)
	if err != nil {
		return err
	}
	m, err := memberFromBody(body)
	if err != nil {
		return err
	}
	ctx := s.callContext()
	if err := s.cfg.Cluster.AddVoter(ctx, m); err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, s.localInfo(false))
}

// removeNode is DELETE /v1/cluster/nodes/{id}, run on the leader.
func (s *Server) removeNode(c *gin.Context, _ domain.Principal) error {
	id := c.Param("id")
	if !validPathID(id) {
		return fmt.Errorf("node id %q: want 1-%d of [A-Za-z0-9._:-], not only dots: %w", id, domain.MaxMemberIDLen, domain.ErrInvalidArgument)
	}
	ctx := s.callContext()
	if err := s.cfg.Cluster.RemoveServer(ctx, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// clusterInfo is GET /v1/cluster: this node's view, with the state of every
// other reachable node as that node reports it. A request another node sent
// (X-Allot-Forwarded) is answered from the local view alone, so that
// probing never fans out further. Raft addresses are shown to admins only,
// not to consumers
// (they are where the cluster plane listens), and only admins may ask for
// ?hash=true (it costs the node a pass over its whole state).
func (s *Server) clusterInfo(c *gin.Context, p domain.Principal) error {
	if _, err := domain.ParseConsistency(c.Query("consistency")); err != nil {
		return err
	}
	withHash := false
	if v, ok := c.GetQuery("hash"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("hash must be true or false: %w", domain.ErrInvalidArgument)
		}
		withHash = b
	}
	operator := p.Admin && !p.ReadOnly
	if withHash && !operator {
		return fmt.Errorf("hash=true needs the admin role: %w", domain.ErrPermissionDenied)
	}
	info := s.localInfo(withHash)
	if c.Request.Header.Get(headerForwarded) == "" {
		s.probePeers(c, info.Nodes)
	}
	if !operator {
		for i := range info.Nodes {
			info.Nodes[i].RaftAddr = ""
		}
	}
	return s.writeJSON(c, http.StatusOK, info)
}

func (s *Server) localInfo(withHash bool) ClusterInfo {
	info := s.cfg.Cluster.Info()
	info.ID = s.cfg.NodeID
	if info.Nodes == nil {
		info.Nodes = []NodeInfo{}
	}
	if withHash {
		info.StateHash = s.cfg.Cluster.StateHash()
	}
	return info
}

// probePeers asks every node whose state this node does not know for its
// own view (with the caller's credentials) and fills in the state it
// reports. A node that does not answer in time stays "unknown".
func (s *Server) probePeers(c *gin.Context, nodes []NodeInfo) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), peerProbeTimeout)
	defer cancel()
	client := &http.Client{Transport: s.fwd.transport}
	auth, reqID := c.Request.Header.Get("Authorization"), c.Writer.Header().Get(headerRequestID)
	var wg sync.WaitGroup
	for i := range nodes {
		n := &nodes[i]
		if n.ID == s.cfg.NodeID || n.State != "unknown" || n.HTTPAddr == "" {
			continue
		}
		wg.Go(func() {
			if st, ok := s.probe(ctx, client, n, auth, reqID); ok {
				n.State = st
			}
		})
	}
	wg.Wait()
}

func (s *Server) probe(ctx context.Context, client *http.Client, n *NodeInfo, auth, reqID string) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPAddr+"/v1/cluster", nil)
	if err != nil {
		return "", false
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set(headerForwarded, s.mark.mine)
	req.Header.Set(headerRequestID, reqID)
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var peer ClusterInfo
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&peer) != nil {
		return "", false
	}
	for _, pn := range peer.Nodes {
		if pn.ID == n.ID && pn.State != "" {
			return pn.State, true
		}
	}
	return "", false
}
