package httpapi

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// forwardMark proves that a request carrying X-Allot-Forwarded came from a
// node of the cluster: the header is "<node id>.<mac>", the mac an
// HMAC-SHA256 of the node id under a key derived from the shared secret.
// Only a proven mark lets a request skip the per-address limit (a follower
// forwards every client's request from its one address); anybody may send
// the header, and without the secret it is worth nothing. The mark is the
// same for every request of a node: whoever can read node-to-node HTTP can
// replay it, as they could the bearer tokens it travels with (use --tls-cert
// and a network the clients cannot sniff).
type forwardMark struct {
	key  []byte
	mine string // this node's header value
}

const forwardMarkInfo = "allot forwarded-request mark v1"

func newForwardMark(secret []byte, nodeID string) (forwardMark, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, forwardMarkInfo, 32)
	if err != nil {
		return forwardMark{}, err
	}
	m := forwardMark{key: key}
	m.mine = nodeID + "." + m.mac(nodeID)
	return m, nil
}

func (m forwardMark) mac(nodeID string) string {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(nodeID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// valid reports whether header is a mark some node of the cluster made.
func (m forwardMark) valid(header string) bool {
	i := strings.LastIndexByte(header, '.')
	if i <= 0 {
		return false
	}
	return hmac.Equal([]byte(header[i+1:]), []byte(m.mac(header[:i])))
}
