package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
)

// upgradedIDLabel is the HMAC label of the id a cluster upgraded in place
// takes.
const upgradedIDLabel = "allot cluster id of a cluster upgraded in place"

// upgradedID is the cluster id a cluster founded before cluster ids
// existed takes. It is derived from the cluster key rather than drawn:
// nodes learn it through their handshakes, one by one, and a leader that
// has not learnt it yet when it takes over must come to the same id, or
// the cluster would split in two that refuse each other. So two such
// clusters that share a secret share this id too, which keeps them no more
// apart than before; a cluster founded since draws an id of its own.
func (h *handshaker) upgradedID() [clusterIDSize]byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(upgradedIDLabel))
	var id [clusterIDSize]byte
	copy(id[:], m.Sum(nil))
	return id
}

// upgradeClusterID runs when this node becomes the ready leader in term:
// if it knows no cluster id, its cluster was founded by a binary without
// them (only a founder draws one, at bootstrap), and it takes the
// upgraded id and persists it. It then opens a connection to every other
// server, whose handshake hands them the id (the acceptor takes a proven
// id when it knows none: clusterid.go); they would otherwise learn it only
// when Raft next opens a connection.
func (n *Node) upgradeClusterID(term uint64) {
	defer n.wg.Done()
	if n.clusterID.get() != ([clusterIDSize]byte{}) || !n.readyIn(term) {
		return
	}
	if err := n.clusterID.adopt(n.handshake.upgradedID(), false); err != nil {
		n.logger.Warn("cluster id of the upgraded cluster", "error", err)
		return
	}
	n.logger.Info("this cluster had no id: it takes the one of a cluster upgraded in place", "cluster_id", n.clusterID.String(), "term", term)
	servers, err := n.servers()
	if err != nil {
		return
	}
	for _, s := range servers {
		if string(s.ID) != n.cfg.NodeID && n.readyIn(term) {
			askLogFormat(n.stream, s.Address, n.fsm.maxFormat, n.cfg.TransportTimeout)
		}
	}
}
