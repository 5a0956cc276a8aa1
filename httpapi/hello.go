package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// NodeHello is the body of GET /v1/cluster/hello (admin): who this node is
// and whether it belongs to a cluster, what nodes started with
// --bootstrap-expect tell each other before they found one.
type NodeHello struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// ClusterID is the id of the node's cluster, "" when it has none yet.
	ClusterID string `json:"cluster_id,omitempty"`
	// HasState is whether the node holds Raft state.
	HasState  bool   `json:"has_state"`
	LastIndex uint64 `json:"last_index"`
	// Founding is the sorted ids of the nodes this one committed to found a
	// cluster with; absent until it has.
	Founding []string `json:"founding,omitempty"`
}

// clusterHello is GET /v1/cluster/hello: answered by the node asked, with
// or without a cluster.
func (s *Server) clusterHello(c *gin.Context, _ domain.Principal) error {
	return s.writeJSON(c, http.StatusOK, s.cfg.Cluster.Hello())
}
