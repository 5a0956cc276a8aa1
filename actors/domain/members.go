package domain

import (
	"encoding/binary"
	"sort"
)

// Member is one node of the cluster as the committed state records it: its
// Raft server id and the addresses the other nodes reach it at. Raft's own
// configuration knows only the Raft address; the HTTP address lives here so
// that every node can forward requests to whichever node leads.
type Member struct {
	ID       string // the node's Raft server id
	RaftAddr string // host:port of its Raft transport
	HTTPAddr string // base URL of its HTTP API, e.g. http://10.0.0.2:8080
}

// Limits of a member record.
const (
	MaxMemberIDLen   = 128
	MaxMemberAddrLen = 256
)

// Validate checks the shape of a member record: an id as for resources and
// addresses of printable ASCII. Whether an address is reachable is not the
// rules' business.
func (m *Member) Validate() error {
	switch {
	case !ValidID(m.ID):
		return invalidf("member id %q: want 1-%d of [A-Za-z0-9._:-]", m.ID, MaxMemberIDLen)
	case !printableAddr(m.RaftAddr):
		return invalidf("member %s: raft address %q: want 1-%d printable characters", m.ID, m.RaftAddr, MaxMemberAddrLen)
	case !printableAddr(m.HTTPAddr):
		return invalidf("member %s: http address %q: want 1-%d printable characters", m.ID, m.HTTPAddr, MaxMemberAddrLen)
	}
	return nil
}

func printableAddr(s string) bool {
	if len(s) == 0 || len(s) > MaxMemberAddrLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// applySetMember records (or replaces) a member. Setting the same record
// twice changes nothing, like putting the same resource spec.
func (s *State) applySetMember(ev *Event) error {
	if err := ev.Member.Validate(); err != nil {
		return err
	}
	s.members[ev.Member.ID] = ev.Member
	return nil
}

// applyRemoveMember forgets a member; an unknown one is refused so that a
// leader never proposes a removal that does nothing.
func (s *State) applyRemoveMember(ev *Event) error {
	if !ValidID(ev.Member.ID) {
		return invalidf("member id %q", ev.Member.ID)
	}
	if _, ok := s.members[ev.Member.ID]; !ok {
		return wrapf(ErrNotFound, "member %s", ev.Member.ID)
	}
	delete(s.members, ev.Member.ID)
	return nil
}

// Member returns the record of node id.
func (s *State) Member(id string) (Member, bool) {
	m, ok := s.members[id]
	return m, ok
}

// Members returns every member record, ordered by id.
func (s *State) Members() []Member {
	out := make([]Member, 0, len(s.members))
	_ = s.EachMember(func(m Member) error {
		out = append(out, m)
		return nil
	})
	return out
}

// EachMember calls fn for every member record in id order (snapshots).
func (s *State) EachMember(fn func(Member) error) error {
	ids := make([]string, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := fn(s.members[id]); err != nil {
			return err
		}
	}
	return nil
}

// LoadMember adds a member record while restoring a snapshot.
func (s *State) LoadMember(m Member) { s.members[m.ID] = m }

// AppendMember encodes a member record (snapshot streams); DecodeMember
// reads it back.
func AppendMember(b []byte, m *Member) []byte {
	b = appendString(b, m.ID)
	b = appendString(b, m.RaftAddr)
	return appendString(b, m.HTTPAddr)
}

// DecodeMember decodes a record made by AppendMember.
func DecodeMember(data []byte) (Member, error) {
	return decodeValue(data, (*decoder).member)
}

func (d *decoder) member(m *Member) {
	m.ID = d.string()
	m.RaftAddr = d.string()
	m.HTTPAddr = d.string()
}

// hashMembers adds the member records to a state hash.
func (s *State) hashMembers(buf []byte, write func([]byte)) {
	buf = binary.AppendUvarint(buf[:0], uint64(len(s.members)))
	write(buf)
	_ = s.EachMember(func(m Member) error {
		buf = AppendMember(buf[:0], &m)
		write(buf)
		return nil
	})
}
