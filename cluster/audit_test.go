package cluster

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"

	"allot/actors/domain"
	"allot/storage"
)

// auditFSM is an FSM with audit points every `every` entries.
func auditFSM(every uint64) *FSM {
	f := NewFSM(quietLogger())
	f.audit.every = every
	return f
}

// snapshotOf persists f's snapshot into memory.
func snapshotOf(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// restoreAt restores data into f as a snapshot of the given index, the way
// a node's snapshot store hands it over.
func restoreAt(t *testing.T, f *FSM, data []byte, index uint64) {
	t.Helper()
	if err := f.Restore(&snapshotReader{ReadCloser: io.NopCloser(bytes.NewReader(data)), index: index}); err != nil {
		t.Fatal(err)
	}
}

func wantSameAudit(t *testing.T, what string, a, b *FSM) {
	t.Helper()
	if a.LogDigest() != b.LogDigest() {
		t.Fatalf("%s: digests %+v and %+v", what, a.LogDigest(), b.LogDigest())
	}
	ba, pa := a.AuditPoints()
	bb, pb := b.AuditPoints()
	if ba != bb || len(pa) == 0 {
		t.Fatalf("%s: bases %d and %d, %d points", what, ba, bb, len(pa))
	}
	// The points both still hold are equal.
	at := map[uint64]AuditPoint{}
	for _, p := range pa {
		at[p.Index] = p
	}
	shared := 0
	for _, p := range pb {
		if q, ok := at[p.Index]; ok {
			shared++
			if q != p {
				t.Fatalf("%s: points %+v and %+v", what, q, p)
			}
		}
	}
	if shared == 0 {
		t.Fatalf("%s: no audit point in common", what)
	}
}

// TestAuditDigestEqualEntries: FSMs that apply the same entries, however
// Raft groups them, have the same digest and the same audit points, each at
// the first entry at or past a multiple of the interval; the digest is not
// part of the state hash.
func TestAuditDigestEqualEntries(t *testing.T) {
	s := genStream(t, 51, 3000, 1) // about 170 entries
	const every = 2
	a, b := auditFSM(every), auditFSM(every)
	s.feed(t, a, rand.New(rand.NewPCG(1, 1)), 0, len(s.entries))
	s.feed(t, b, rand.New(rand.NewPCG(2, 2)), 0, len(s.entries))
	wantSameAudit(t, "two runs", a, b)
	last := s.entries[len(s.entries)-1].Index
	if d := a.LogDigest(); d.Index != last || d.Base != 0 || d.Sum == 0 {
		t.Fatalf("digest %+v after entry %d", d, last)
	}
	if hashOf(a) != s.final {
		t.Fatal("the state hash depends on the digest")
	}
	_, points := a.AuditPoints()
	if len(points) != auditRingSize {
		t.Fatalf("%d points held, want a full ring of %d", len(points), auditRingSize)
	}
	for i, p := range points {
		// Entries are consecutive, so each point is at a multiple.
		if p.Index%every != 0 || p.Term != 1 || (i > 0 && p.Index != points[i-1].Index+every) {
			t.Fatalf("point %d: %+v", i, p)
		}
	}
	if p, ok := a.audit.last(); !ok || p != points[len(points)-1] {
		t.Fatalf("last point %+v", p)
	}
	// An interval that skips indexes (entries Raft does not show the FSM)
	// puts the point at the first entry past the multiple.
	f := auditFSM(10)
	f.Apply(command(9, 1, &domain.Batch{Events: []domain.Event{putVoucher("v1", 5)}}))
	f.Apply(command(13, 1, &domain.Batch{Events: []domain.Event{putVoucher("v2", 5)}}))
	f.Apply(command(14, 1, &domain.Batch{Events: []domain.Event{putVoucher("v3", 5)}}))
	if _, ps := f.AuditPoints(); len(ps) != 1 || ps[0].Index != 13 {
		t.Fatalf("points %+v, want one at 13", ps)
	}
}

// TestAuditDigestDiffers: an entry whose bytes or term differ at one index
// makes the digests differ from that index on, and not before.
func TestAuditDigestDiffers(t *testing.T) {
	s := genStream(t, 52, 1500, 1)
	mid := len(s.entries) / 2
	for _, tc := range []struct {
		name  string
		alter func(l *raft.Log) *raft.Log
	}{
		{"data", func(l *raft.Log) *raft.Log {
			b, err := domain.DecodeBatch(l.Data)
			if err != nil {
				t.Fatal(err)
			}
			b.Events = b.Events[:len(b.Events)-1] // one event less: still decodable
			return &raft.Log{Index: l.Index, Term: l.Term, Type: l.Type, Data: domain.EncodeBatch(nil, &b)}
		}},
		{"term", func(l *raft.Log) *raft.Log {
			return &raft.Log{Index: l.Index, Term: l.Term + 1, Type: l.Type, Data: l.Data}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := mid
			for s.entries[i].Type != raft.LogCommand {
				i++
			}
			odd := s.entries[i]
			a, b := auditFSM(8), auditFSM(8)
			for _, l := range s.entries[:i] {
				a.Apply(l)
				b.Apply(l)
			}
			if a.LogDigest() != b.LogDigest() {
				t.Fatal("digests differ before the odd entry")
			}
			a.Apply(odd)
			b.Apply(tc.alter(odd))
			if a.LogDigest() == b.LogDigest() {
				t.Fatal("digests equal after different entries")
			}
			for _, l := range s.entries[i+1:] {
				a.Apply(l)
				b.Apply(l)
			}
			_, pa := a.AuditPoints()
			_, pb := b.AuditPoints()
			if len(pa) != len(pb) {
				t.Fatalf("%d and %d points", len(pa), len(pb))
			}
			for k := range pa {
				if pa[k].Index < odd.Index {
					continue
				}
				if pa[k].Index != pb[k].Index || pa[k].Digest == pb[k].Digest {
					t.Fatalf("points %+v and %+v after the odd entry %d", pa[k], pb[k], odd.Index)
				}
			}
		})
	}
}

// TestAuditDigestFoldsRefusals: the same entries applied to states that
// differ (what a non-deterministic apply would leave) give different
// digests as soon as a decision differs, not only when the bytes do.
func TestAuditDigestFoldsRefusals(t *testing.T) {
	same := domain.LogDigest{Index: 4, Sum: 0x1234}
	fsmWith := func(capacity int64) *FSM {
		src := auditFSM(8)
		src.Apply(command(1, 1, &domain.Batch{Events: []domain.Event{putVoucher("v1", capacity)}}))
		src.mu.Lock()
		src.st.SetLogDigest(same)
		src.mu.Unlock()
		f := auditFSM(8)
		restoreAt(t, f, snapshotOf(t, src), 4)
		return f
	}
	a, b := fsmWith(1), fsmWith(2)
	if a.LogDigest() != b.LogDigest() || a.LogDigest() != same {
		t.Fatalf("restored digests %+v and %+v", a.LogDigest(), b.LogDigest())
	}
	l := command(5, 1, &domain.Batch{Events: []domain.Event{reserve("v1", "r1", "alice"), reserve("v1", "r2", "bob")}})
	a.Apply(l)
	b.Apply(l)
	if a.Violations() != 1 || b.Violations() != 0 {
		t.Fatalf("violations %d and %d", a.Violations(), b.Violations())
	}
	if a.LogDigest() == b.LogDigest() {
		t.Fatal("the same entry refused on one node and applied on the other leaves equal digests")
	}
}

// TestAuditDigestContinuesAcrossSnapshots: a node that restores a snapshot
// (its own after a restart whose log was truncated, or one a leader sent)
// continues the chain of a node that applied every entry: same digest,
// same audit points after the snapshot.
func TestAuditDigestContinuesAcrossSnapshots(t *testing.T) {
	s := genStream(t, 53, 4000, 1)
	rnd := rand.New(rand.NewPCG(3, 3))
	whole := auditFSM(16)
	s.feed(t, whole, rnd, 0, len(s.entries))

	cut := len(s.entries) / 3
	src := auditFSM(16)
	s.feed(t, src, rnd, 0, cut)
	data := snapshotOf(t, src)
	// Raft labels a snapshot with its last applied index, which can be past
	// the last entry the FSM saw (no-ops and barriers follow it).
	snapIndex := s.entries[cut-1].Index + 2
	restored := auditFSM(16)
	other := genStream(t, 54, 300, 1)
	other.feed(t, restored, rnd, 0, len(other.entries)) // a history the snapshot replaces
	restoreAt(t, restored, data, snapIndex)
	if restored.LogDigest() != src.LogDigest() {
		t.Fatalf("restored digest %+v, want the snapshot's %+v", restored.LogDigest(), src.LogDigest())
	}
	if _, ps := restored.AuditPoints(); len(ps) != 0 {
		t.Fatalf("points of the replaced history survive the restore: %+v", ps)
	}
	// Next to the snapshot's index, entries go on there: shift them.
	for _, l := range s.entries[cut:] {
		shifted := *l
		shifted.Index += 2
		restored.Apply(&shifted)
	}
	shiftedWhole := auditFSM(16)
	for i, l := range s.entries {
		shifted := *l
		if i >= cut {
			shifted.Index += 2
		}
		shiftedWhole.Apply(&shifted)
	}
	wantSameAudit(t, "restored vs every entry", restored, shiftedWhole)

	// A second generation: a snapshot of the restored FSM, restored again.
	again := auditFSM(16)
	restoreAt(t, again, snapshotOf(t, restored), restored.LogDigest().Index)
	if again.LogDigest() != shiftedWhole.LogDigest() {
		t.Fatal("a snapshot of a restored FSM lost the chain")
	}
	if hashOf(whole) != s.final {
		t.Fatal("state hash")
	}
}

// TestAuditDigestOldSnapshot: a snapshot without a digest (written before
// digests existed) starts a new chain at its index, which nodes on the
// chain from the first entry do not compare with; one restored without
// knowing its index cannot be compared at all.
func TestAuditDigestOldSnapshot(t *testing.T) {
	src := auditFSM(4)
	for i := uint64(1); i <= 10; i++ {
		src.Apply(command(i, 1, &domain.Batch{Events: []domain.Event{putVoucher("v"+string(rune('a'+i)), 5)}}))
	}
	var old bytes.Buffer
	src.View(func(st *domain.State) {
		c := st.Clone()
		c.SetLogDigest(domain.LogDigest{})
		if err := storage.WriteSnapshot(&old, c); err != nil {
			t.Fatal(err)
		}
	})
	f := auditFSM(4)
	restoreAt(t, f, old.Bytes(), 12)
	if d := f.LogDigest(); d != (domain.LogDigest{Base: 12, Index: 12}) {
		t.Fatalf("digest after an old snapshot %+v", d)
	}
	for i := uint64(13); i <= 20; i++ {
		f.Apply(command(i, 1, &domain.Batch{Events: []domain.Event{putVoucher("w", int64(i))}}))
	}
	if base, ps := f.AuditPoints(); base != 12 || len(ps) != 2 || ps[0].Index != 16 {
		t.Fatalf("base %d, points %+v", base, ps)
	}
	if d := snapshotDigest(t, f); d.Base != 12 {
		t.Fatalf("the next snapshot carries %+v: the chain's base is lost", d)
	}

	blind := auditFSM(4)
	if err := blind.Restore(io.NopCloser(bytes.NewReader(old.Bytes()))); err != nil {
		t.Fatal(err)
	}
	blind.Apply(command(40, 1, &domain.Batch{Events: []domain.Event{putVoucher("w", 1)}}))
	if base, ps := blind.AuditPoints(); base != noChain || ps != nil {
		t.Fatalf("a chain of unknown start reports base %d, points %+v", base, ps)
	}
}

func snapshotDigest(t *testing.T, f *FSM) domain.LogDigest {
	t.Helper()
	st, err := storage.ReadSnapshot(bytes.NewReader(snapshotOf(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	return st.LogDigest()
}

// TestAuditWire: a report survives the wire, and malformed replies are
// refused as corrupt.
func TestAuditWire(t *testing.T) {
	r := auditReport{Node: "n2", Base: 7, Applied: 1 << 33, Points: []AuditPoint{{1024, 3, 0xdeadbeefcafef00d}, {2048, 4, 1}}}
	reply := encodeAuditReply(&r)
	head := len(auditMagic) + 1
	if !bytes.HasPrefix(reply, []byte(auditMagic)) || reply[head-1] != auditWireVersion {
		t.Fatalf("reply starts %q", reply[:head])
	}
	body := reply[head+1:] // a body this short has a one-byte length
	if int(reply[head]) != len(body) {
		t.Fatalf("length %d, body %d bytes", reply[head], len(body))
	}
	got, err := decodeAuditReport(body)
	if err != nil || got.Node != r.Node || got.Base != r.Base || got.Applied != r.Applied || len(got.Points) != 2 || got.Points[0] != r.Points[0] || got.Points[1] != r.Points[1] {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": body[:len(body)-1],
		"trailing":  append(bytes.Clone(body), 0),
		"no id":     append([]byte{0}, body[3:]...),
	} {
		if _, err := decodeAuditReport(bad); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(auditMagic) != len(helloMagic) || auditMagic[0] != helloMagic[0] || auditMagic == helloMagic {
		t.Fatal("an audit hello must look like a hello to helloConn and not be the log-format one")
	}
}

// TestAuditConfig: the audit knobs are validated.
func TestAuditConfig(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no audit interval": func(c *Config) { c.AuditInterval = 0 },
		"no audit period":   func(c *Config) { c.AuditPeriod = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
