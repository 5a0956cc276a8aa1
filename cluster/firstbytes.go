package cluster

import (
	"net"
	"time"
)

// firstBytesConn gives an accepted connection a short deadline for its
// first bytes (a TLS ClientHello) and, once they arrive, the whole
// handshake's deadline: the TLS handshake is read in one call, so its own
// deadline cannot tell a silent peer from a slow one.
type firstBytesConn struct {
	net.Conn
	rest time.Time // the deadline once the first bytes are in
	seen bool
}

func (c *firstBytesConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.seen {
		c.seen = true
		c.Conn.SetDeadline(c.rest)
	}
	return n, err
}
