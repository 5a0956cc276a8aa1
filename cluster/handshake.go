package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/hkdf"
)

// The handshake: what every connection to a Raft port goes through before
// a single Raft byte (or hello) is read or written on it, in both
// directions. Both ends prove they hold the cluster key, derived from the
// shared auth secret, and agree on the cluster id (clusterid.go):
//
//	dialler  -> handshakeMagic, nonce C (32), dialler's cluster id (16)
//	acceptor -> nonce S (32), cluster id I (16), HMAC(key, "acceptor" | C | S | I)
//	dialler  -> HMAC(key, "dialler" | C | S | I)
//
// I is the acceptor's id, or the dialler's when the acceptor knows none
// yet. Each end checks the other's proof in constant time and closes the
// connection on any mismatch. Fresh nonces on both sides make a recorded
// handshake useless for another connection, and the direction labels make
// an end's own proof useless as the other's. A node refuses a hello or an
// answer carrying a nonce it has itself sent in a handshake still open on
// another connection (handshaker.inFlight), so that its own proofs cannot be relayed between
// two of its connections. It authenticates, it does not
// encrypt: mutual TLS (Config.TLSCertFile) does, and the handshake then
// runs inside TLS. It costs one round trip and a half per connection and
// nothing per RPC.
const handshakeMagic = "\xa2allot-auth\x01"

// handshakeInfo is the HKDF label of the cluster key: the auth secret also
// signs JWTs, and the key derived for this purpose is of no use for that.
const handshakeInfo = "allot cluster-plane handshake v1"

const (
	nonceSize = 32
	macSize   = sha256.Size

	labelAcceptor = "allot handshake acceptor proof"
	labelDialler  = "allot handshake dialler proof"
)

// maxHandshakeTimeout bounds a handshake, however long TransportTimeout.
const maxHandshakeTimeout = 5 * time.Second

// maxHelloTimeout bounds the wait for an accepted connection's first bytes
// (its hello, or its TLS ClientHello): a real peer sends them at once, and
// a silent connection must not hold a handshake slot for the whole
// handshake's deadline.
const maxHelloTimeout = time.Second

// handshakeReasons are the values of the failures counter's reason label.
var handshakeReasons = [...]string{"io", "timeout", "not_handshake", "bad_proof", "cluster_id", "tls", "overload", "reflected", "per_ip"}

// handshakeError is a failed handshake and why (one of handshakeReasons).
type handshakeError struct {
	reason string
	err    error
}

func (e *handshakeError) Error() string {
	return "cluster handshake: " + e.reason + ": " + e.err.Error()
}
func (e *handshakeError) Unwrap() error { return e.err }

func failed(reason string, err error) error { return &handshakeError{reason: reason, err: err} }

// ioFailed classifies a read or write error of the handshake.
func ioFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return failed("timeout", err)
	}
	return failed("io", err)
}

// handshaker runs the handshake for one node.
type handshaker struct {
	key      []byte
	ids      *clusterID
	timeout  time.Duration          // of a whole handshake
	hello    time.Duration          // for an accepted connection's first bytes
	failures *prometheus.CounterVec // by reason

	// inFlight holds the nonces this node has sent in handshakes not yet
	// ended: its dial nonces C and its accept nonces S. Without it, the
	// acceptor proves the key for any C before the peer has proven
	// anything, and an attacker holding an address the node dials could
	// relay the node's own hello to the node's Raft port and its answer
	// back, and have the node's dialler and acceptor authenticate each
	// other on its behalf (a reflection). A nonce of ours coming back from
	// the other end is refused, unless it comes back on the very
	// connection it left on: a node dialling its own address (a hello to
	// itself). Each nonce is kept with the dialling end's address of its
	// connection, which both ends of one TCP connection see alike.
	inFlight sync.Map // string(nonce) -> dialling end's address
}

// sent records nonce as in flight on the connection whose dialling end is
// dialler, until the returned func is called.
func (h *handshaker) sent(nonce []byte, dialler net.Addr) func() {
	k := string(nonce)
	h.inFlight.Store(k, dialler.String())
	return func() { h.inFlight.Delete(k) }
}

// reflected reports whether nonce is one this node has in flight on
// another connection than the one whose dialling end is dialler.
func (h *handshaker) reflected(nonce []byte, dialler net.Addr) bool {
	v, ok := h.inFlight.Load(string(nonce))
	return ok && v.(string) != dialler.String()
}

// newHandshaker derives the cluster key from secret.
func newHandshaker(secret []byte, ids *clusterID, timeout time.Duration) (*handshaker, error) {
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, nil, []byte(handshakeInfo)), key); err != nil {
		return nil, err
	}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "allot_cluster_handshake_failures_total",
		Help: "Connections to or from the Raft port closed because the peer failed the handshake or TLS, by reason.",
	}, []string{"reason"})
	for _, r := range handshakeReasons {
		failures.WithLabelValues(r) // every reason is scraped from the start, at 0
	}
	return &handshaker{key: key, ids: ids, timeout: min(timeout, maxHandshakeTimeout), hello: min(timeout, maxHelloTimeout), failures: failures}, nil
}

// count records a failed handshake.
func (h *handshaker) count(err error) {
	reason := "io"
	var he *handshakeError
	if errors.As(err, &he) {
		reason = he.reason
	}
	h.failures.WithLabelValues(reason).Inc()
}

// proof is one end's HMAC over the handshake.
func (h *handshaker) proof(label string, cn, sn []byte, id [clusterIDSize]byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(label))
	m.Write([]byte(handshakeMagic))
	m.Write(cn)
	m.Write(sn)
	m.Write(id[:])
	return m.Sum(nil)
}

// dial runs the dialler's side on conn, within the handshake deadline.
func (h *handshaker) dial(conn net.Conn) error {
	conn.SetDeadline(time.Now().Add(h.timeout))
	defer conn.SetDeadline(time.Time{})
	mine := h.ids.get()
	hello := make([]byte, 0, len(handshakeMagic)+nonceSize+clusterIDSize)
	hello = append(hello, handshakeMagic...)
	cn := make([]byte, nonceSize)
	rand.Read(cn)
	defer h.sent(cn, conn.LocalAddr())()
	hello = append(append(hello, cn...), mine[:]...)
	if _, err := conn.Write(hello); err != nil {
		return ioFailed(err)
	}
	reply := make([]byte, nonceSize+clusterIDSize+macSize)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return ioFailed(err)
	}
	sn := reply[:nonceSize]
	if h.reflected(sn, conn.LocalAddr()) {
		return failed("reflected", fmt.Errorf("%s answered with a nonce of this node's", conn.RemoteAddr()))
	}
	var id [clusterIDSize]byte
	copy(id[:], reply[nonceSize:])
	if !hmac.Equal(reply[nonceSize+clusterIDSize:], h.proof(labelAcceptor, cn, sn, id)) {
		return failed("bad_proof", fmt.Errorf("%s does not hold the cluster key", conn.RemoteAddr()))
	}
	if err := h.agree(mine, id); err != nil {
		return err
	}
	if _, err := conn.Write(h.proof(labelDialler, cn, sn, id)); err != nil {
		return ioFailed(err)
	}
	return nil
}

// accept runs the acceptor's side on conn, within the handshake deadline.
// The hello must arrive within the shorter hello deadline.
func (h *handshaker) accept(conn net.Conn) error {
	start := time.Now()
	conn.SetDeadline(start.Add(h.hello))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, len(handshakeMagic)+nonceSize+clusterIDSize)
	if _, err := io.ReadFull(conn, hello[:1]); err != nil {
		return ioFailed(err)
	}
	if hello[0] != handshakeMagic[0] {
		return failed("not_handshake", fmt.Errorf("%s sent no handshake (a node without credentials or an older binary?)", conn.RemoteAddr()))
	}
	if _, err := io.ReadFull(conn, hello[1:]); err != nil {
		return ioFailed(err)
	}
	if string(hello[:len(handshakeMagic)]) != handshakeMagic {
		return failed("not_handshake", fmt.Errorf("%s sent no handshake", conn.RemoteAddr()))
	}
	conn.SetDeadline(start.Add(h.timeout))
	cn := hello[len(handshakeMagic) : len(handshakeMagic)+nonceSize]
	if h.reflected(cn, conn.RemoteAddr()) {
		return failed("reflected", fmt.Errorf("%s sent a nonce of this node's own (a relayed handshake)", conn.RemoteAddr()))
	}
	var theirs [clusterIDSize]byte
	copy(theirs[:], hello[len(handshakeMagic)+nonceSize:])
	mine := h.ids.get()
	id := mine
	if id == ([clusterIDSize]byte{}) {
		id = theirs
	}
	sn := make([]byte, nonceSize)
	rand.Read(sn)
	defer h.sent(sn, conn.RemoteAddr())()
	reply := make([]byte, 0, nonceSize+clusterIDSize+macSize)
	reply = append(append(append(reply, sn...), id[:]...), h.proof(labelAcceptor, cn, sn, id)...)
	if _, err := conn.Write(reply); err != nil {
		return ioFailed(err)
	}
	if theirs != ([clusterIDSize]byte{}) && theirs != id {
		// Answered all the same, so that the dialler too learns, from a
		// proven id, why it is refused.
		return failed("cluster_id", fmt.Errorf("%s belongs to another cluster", conn.RemoteAddr()))
	}
	proof := make([]byte, macSize)
	if _, err := io.ReadFull(conn, proof); err != nil {
		return ioFailed(err)
	}
	if !hmac.Equal(proof, h.proof(labelDialler, cn, sn, id)) {
		return failed("bad_proof", fmt.Errorf("%s does not hold the cluster key", conn.RemoteAddr()))
	}
	return h.agree(mine, id)
}

// agree checks the proven id against this node's, and adopts it when this
// node knows none yet.
func (h *handshaker) agree(mine, proven [clusterIDSize]byte) error {
	switch {
	case proven == mine:
		return nil
	case mine != [clusterIDSize]byte{}:
		return failed("cluster_id", errors.New("the peer belongs to another cluster"))
	case proven == [clusterIDSize]byte{}:
		return nil
	}
	if err := h.ids.adopt(proven, false); err != nil {
		return failed("cluster_id", err)
	}
	return nil
}
