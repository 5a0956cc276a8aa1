package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
)

// AuditInfo is the body of GET /v1/cluster/audit: the answering node's side
// of the audit of log digests across nodes (docs/DESIGN.md, "Fail-stop").
// Operators compare it across nodes to find the one whose digest differs.
type AuditInfo struct {
	// ID is the node that answered.
	ID string `json:"id"`
	// Interval is how many log entries apart the audit points are.
	Interval uint64 `json:"interval"`
	// ChainBase is the index the node's digest chain starts after: 0 for
	// the first entry of the log. Only nodes with equal bases compare.
	ChainBase    uint64 `json:"chain_base"`
	AppliedIndex uint64 `json:"applied_index"`
	// Halted is why the node's FSM halted ("diverged" when the audit
	// halted it), "" while it applies entries.
	Halted string `json:"halted,omitempty"`
	// Points are the node's recent audit points, oldest first.
	Points []AuditPointInfo `json:"points"`
	// LastRound is when the node last compared with the others (RFC 3339),
	// "" before its first round.
	LastRound    string `json:"last_round,omitempty"`
	PeersChecked int    `json:"peers_checked"`
	// Peers are the other servers as the last round found them.
	Peers []AuditPeerInfo `json:"peers"`
}

// AuditPointInfo is a node's digest of the log at one audit point.
type AuditPointInfo struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Digest is 16 hex digits: equal on nodes that applied the same log.
	Digest string `json:"digest"`
}

// AuditPeerInfo is what the answering node's audit knows of another server.
type AuditPeerInfo struct {
	ID    string `json:"id"`
	Voter bool   `json:"voter"`
	// Error is why it could not be asked in the last round.
	Error        string `json:"error,omitempty"`
	ChainBase    uint64 `json:"chain_base"`
	AppliedIndex uint64 `json:"applied_index"`
	// ComparedIndex is the newest audit point both have, 0 for none.
	ComparedIndex uint64 `json:"compared_index"`
	// DiffersIndex is the newest audit point where its digest differs
	// from the answering node's, 0 for none.
	DiffersIndex uint64 `json:"differs_index"`
	// Mismatches counts the audit points where the digests differed.
	Mismatches uint64 `json:"mismatches"`
}

// clusterAudit is GET /v1/cluster/audit (admin): answered by the node asked.
func (s *Server) clusterAudit(c *gin.Context, _ domain.Principal) error {
	info := s.cfg.Cluster.Audit()
	info.ID = s.cfg.NodeID
	if info.Points == nil {
		info.Points = []AuditPointInfo{}
	}
	if info.Peers == nil {
		info.Peers = []AuditPeerInfo{}
	}
	return s.writeJSON(c, http.StatusOK, info)
}
