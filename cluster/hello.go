package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// The hello: how a leader learns which log formats another server's binary
// understands before it lets the cluster use a new one (logformat.go). It
// travels on the Raft port, which every server of the configuration listens
// on and which the leader can already reach, on a connection of its own:
//
//	request  helloMagic, the asker's newest log format (1 byte)
//	reply    helloMagic, the answerer's newest log format (1 byte)
//
// then the answerer closes the connection. The audit's exchange of digests
// (auditwire.go) is a second kind of hello on the same path: a request of
// the same size that starts with auditMagic. helloMagic starts with a byte
// that is no hashicorp/raft RPC type, so that a binary without the hello
// refuses the connection (Raft logs an unknown RPC type and closes it) and
// the asker learns nothing: a server that does not answer is taken not to
// understand the format.
const helloMagic = "\xa1allot-hello\x01"

// helloSize is the length of a request and of a reply.
const helloSize = len(helloMagic) + 1

// helloConn is an accepted Raft connection that answers a hello instead of
// handing it to Raft. Raft reads each connection from one goroutine, so
// checked needs no lock.
type helloConn struct {
	net.Conn
	maxFormat byte
	timeout   time.Duration
	audit     func() []byte // the reply to an audit hello; nil answers none
	checked   bool          // the first bytes were seen: Raft's traffic or not
}

// Read passes Raft's traffic through untouched. On a connection whose first
// byte is the hello's, it answers the hello and reports the end of the
// stream, which Raft takes as a peer that hung up.
func (c *helloConn) Read(p []byte) (int, error) {
	if c.checked || len(p) == 0 {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.checked = true
	if p[0] != helloMagic[0] {
		return n, err
	}
	if err := c.answer(p[:n]); err != nil {
		return 0, fmt.Errorf("log-format hello from %s: %w", c.RemoteAddr(), err)
	}
	return 0, io.EOF
}

// answer reads the rest of a hello whose first bytes are got and replies.
func (c *helloConn) answer(got []byte) error {
	if len(got) > helloSize {
		return errors.New("too long")
	}
	req := make([]byte, helloSize)
	copy(req, got)
	c.Conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.ReadFull(c.Conn, req[len(got):]); err != nil {
		return err
	}
	var reply []byte
	switch {
	case bytes.HasPrefix(req, []byte(helloMagic)):
		reply = append([]byte(helloMagic), c.maxFormat)
	case bytes.HasPrefix(req, []byte(auditMagic)) && c.audit != nil:
		reply = c.audit()
	default:
		return errors.New("not a hello")
	}
	_, err := c.Conn.Write(reply)
	return err
}

// askLogFormat asks the server at addr, through stream, for the newest log
// format its binary understands.
func askLogFormat(stream raft.StreamLayer, addr raft.ServerAddress, mine byte, timeout time.Duration) (byte, error) {
	conn, err := stream.Dial(addr, timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(append([]byte(helloMagic), mine)); err != nil {
		return 0, err
	}
	reply := make([]byte, helloSize)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return 0, fmt.Errorf("no answer (a binary without the hello?): %w", err)
	}
	if !bytes.HasPrefix(reply, []byte(helloMagic)) {
		return 0, errors.New("the answer is not a hello")
	}
	return reply[helloSize-1], nil
}
