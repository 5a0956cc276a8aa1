package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
)

// How nodes exchange audit points: a hello (hello.go) on the Raft port, on
// a connection of its own:
//
//	request  auditMagic, auditWireVersion (1 byte)
//	reply    auditMagic, auditWireVersion, body length (uvarint), body
//	body     node id (uvarint length, bytes), chain base, applied index,
//	         point count (uvarints), then per point index and term
//	         (uvarints) and digest (8 bytes little endian), oldest first
//
// The Raft port rather than the HTTP API: every server of the configuration
// listens on it and the auditor finds every address in the configuration,
// it needs no credentials (the digests tell nothing about the data, and
// whoever reaches the Raft port can already do far worse), and the test
// kit's network faults cut it exactly as they cut Raft. A binary without
// the audit drops the connection (auditMagic is not a log-format hello),
// and the asker counts that peer as not checked.
const auditMagic = "\xa1allot-audit\x01"

// auditWireVersion is the version of the request and of the reply body.
const auditWireVersion = 1

const (
	// maxAuditReply bounds a reply's body: auditRingSize points take
	// about 2 KiB.
	maxAuditReply = 64 << 10
	// maxAuditPoints bounds the points of a reply, for a peer with a
	// larger ring than this binary's.
	maxAuditPoints = 1024
	// maxAuditAskTimeout bounds one question to a peer, below
	// Config.TransportTimeout when that is longer: an answer is a few
	// kilobytes, and a peer that is paused must not hold a round up.
	maxAuditAskTimeout = 2 * time.Second
)

// auditReport is what a node answers an audit hello with.
type auditReport struct {
	Node    string
	Base    uint64 // the base of its digest chain (domain.LogDigest)
	Applied uint64 // its applied index, for the record
	Points  []AuditPoint
}

// auditReport returns f's points as node id reports them.
func (f *FSM) auditReport(id string) auditReport {
	base, points := f.audit.report()
	return auditReport{Node: id, Base: base, Applied: f.AppliedIndex(), Points: points}
}

// auditReplier makes the reply to an audit hello for node id from f.
func auditReplier(id string, f *FSM) func() []byte {
	return func() []byte {
		r := f.auditReport(id)
		return encodeAuditReply(&r)
	}
}

func encodeAuditReply(r *auditReport) []byte {
	body := make([]byte, 0, 32+len(r.Node)+len(r.Points)*(2*binary.MaxVarintLen64+8))
	body = binary.AppendUvarint(body, uint64(len(r.Node)))
	body = append(body, r.Node...)
	body = binary.AppendUvarint(body, r.Base)
	body = binary.AppendUvarint(body, r.Applied)
	body = binary.AppendUvarint(body, uint64(len(r.Points)))
	for _, p := range r.Points {
		body = binary.AppendUvarint(body, p.Index)
		body = binary.AppendUvarint(body, p.Term)
		body = binary.LittleEndian.AppendUint64(body, p.Digest)
	}
	out := make([]byte, 0, len(auditMagic)+1+binary.MaxVarintLen64+len(body))
	out = append(out, auditMagic...)
	out = append(out, auditWireVersion)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

func decodeAuditReport(body []byte) (auditReport, error) {
	var r auditReport
	bad := func(what string) (auditReport, error) {
		return auditReport{}, fmt.Errorf("audit reply: %s: %w", what, domain.ErrCorrupt)
	}
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			return 0, false
		}
		body = body[n:]
		return v, true
	}
	idLen, ok := uv()
	if !ok || idLen == 0 || idLen > uint64(len(body)) || idLen > domain.MaxMemberIDLen {
		return bad("node id")
	}
	r.Node, body = string(body[:idLen]), body[idLen:]
	var count uint64
	if r.Base, ok = uv(); !ok {
		return bad("base")
	}
	if r.Applied, ok = uv(); !ok {
		return bad("applied index")
	}
	if count, ok = uv(); !ok || count > maxAuditPoints {
		return bad("point count")
	}
	r.Points = make([]AuditPoint, count)
	for i := range r.Points {
		p := &r.Points[i]
		if p.Index, ok = uv(); !ok {
			return bad("point index")
		}
		if p.Term, ok = uv(); !ok || len(body) < 8 {
			return bad("point term")
		}
		p.Digest, body = binary.LittleEndian.Uint64(body), body[8:]
	}
	if len(body) != 0 {
		return bad("trailing bytes")
	}
	return r, nil
}

// askAudit asks the server at addr, through stream, for its audit points.
func askAudit(stream raft.StreamLayer, addr raft.ServerAddress, timeout time.Duration) (auditReport, error) {
	conn, err := stream.Dial(addr, timeout)
	if err != nil {
		return auditReport{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(append([]byte(auditMagic), auditWireVersion)); err != nil {
		return auditReport{}, err
	}
	rd := bufio.NewReader(io.LimitReader(conn, int64(helloSize+binary.MaxVarintLen64+maxAuditReply)))
	head := make([]byte, helloSize)
	if _, err := io.ReadFull(rd, head); err != nil {
		return auditReport{}, fmt.Errorf("no answer (a binary without the audit?): %w", err)
	}
	if !bytes.HasPrefix(head, []byte(auditMagic)) || head[helloSize-1] != auditWireVersion {
		return auditReport{}, errors.New("the answer is not an audit reply of this version")
	}
	n, err := binary.ReadUvarint(rd)
	if err != nil || n > maxAuditReply {
		return auditReport{}, fmt.Errorf("audit reply: bad length %d: %v: %w", n, err, domain.ErrCorrupt)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rd, body); err != nil {
		return auditReport{}, fmt.Errorf("audit reply: %w", err)
	}
	return decodeAuditReport(body)
}
