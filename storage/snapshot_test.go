package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"

	"allot/actors/domain"
	"allot/actors/domain/domaintest"
)

// history drives a fresh State through n generated events (accepted ones
// only) and returns it with the generator, to continue the same history.
func history(t *testing.T, seed uint64, n int) (*domain.State, *domaintest.Gen) {
	t.Helper()
	st := domain.NewState()
	g := domaintest.NewSeeded(seed)
	for applied := 0; applied < n; {
		ev, err := g.Next(st)
		if err != nil {
			continue
		}
		if err := st.Apply(&ev); err != nil {
			t.Fatalf("event %d: generator accepted what Apply refuses: %v", applied, err)
		}
		applied++
	}
	return st, g
}

func encode(t *testing.T, st *domain.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, st); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events int
	}{{"empty", 0}, {"small", 50}, {"large", 2000}} {
		t.Run(tc.name, func(t *testing.T) {
			st, g := history(t, 7, tc.events)
			got, err := ReadSnapshot(bytes.NewReader(encode(t, st)))
			if err != nil {
				t.Fatalf("ReadSnapshot: %v", err)
			}
			if got.Hash() != st.Hash() {
				t.Fatal("restored state hashes differently")
			}
			if err := got.CheckInvariants(); err != nil {
				t.Fatalf("restored state: %v", err)
			}
			a, b, c, d := st.Counts()
			w, x, y, z := got.Counts()
			if [4]int{a, b, c, d} != [4]int{w, x, y, z} {
				t.Fatalf("counts %v, want %v", [4]int{w, x, y, z}, [4]int{a, b, c, d})
			}
			// The restored state must go on exactly like the original,
			// idempotency pruning included (records keep their order).
			for i := 0; i < 500; i++ {
				ev, derr := g.Next(st)
				if derr != nil {
					continue
				}
				e1, e2 := st.Apply(&ev), got.Apply(&ev)
				if (e1 == nil) != (e2 == nil) {
					t.Fatalf("event %d: original says %v, restored says %v", i, e1, e2)
				}
			}
			if got.Hash() != st.Hash() {
				t.Fatal("restored state diverged after more events")
			}
		})
	}
}

// maxWriteWriter records the largest single Write.
type maxWriteWriter struct {
	n, max int
}

func (w *maxWriteWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.max = max(w.max, len(p))
	return len(p), nil
}

// TestSnapshotLarge checks, on a snapshot several buffers long, that writing
// streams, that reads across every buffer boundary work, and that write
// errors surface.
func TestSnapshotLarge(t *testing.T) {
	st, _ := history(t, 11, 6000)
	data := encode(t, st)
	if len(data) <= bufferSize {
		t.Fatalf("snapshot of %d bytes is too small for this test; grow the history", len(data))
	}
	t.Run("streams", func(t *testing.T) {
		var w maxWriteWriter
		if err := WriteSnapshot(&w, st); err != nil {
			t.Fatal(err)
		}
		if w.max > bufferSize {
			t.Fatalf("a single write of %d bytes: the snapshot was built in memory", w.max)
		}
	})
	t.Run("one byte reads", func(t *testing.T) {
		got, err := ReadSnapshot(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash() != st.Hash() {
			t.Fatal("restored state hashes differently")
		}
	})
	t.Run("write errors", func(t *testing.T) {
		for _, limit := range []int{0, bufferSize / 2, bufferSize + 1, len(data) - 1} {
			if err := WriteSnapshot(&failingWriter{limit: limit}, st); err == nil {
				t.Fatalf("limit %d of %d: no error", limit, len(data))
			}
		}
	})
}

func wantCorrupt(t *testing.T, data []byte, what string) {
	t.Helper()
	st, err := ReadSnapshot(bytes.NewReader(data))
	if !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("%s: got state %v, error %v; want ErrCorrupt", what, st != nil, err)
	}
	if st != nil {
		t.Fatalf("%s: a state came back with the error", what)
	}
}

func TestSnapshotTruncated(t *testing.T) {
	st, _ := history(t, 3, 300)
	data := encode(t, st)
	for n := 0; n < len(data); n++ {
		// Every prefix near the ends, a sample in between.
		if n > 64 && n < len(data)-64 && n%37 != 0 {
			continue
		}
		wantCorrupt(t, data[:n], "truncated")
	}
}

func TestSnapshotBitFlips(t *testing.T) {
	st, _ := history(t, 5, 300)
	data := encode(t, st)
	for i := 0; i < len(data); i++ {
		if i > 64 && i < len(data)-64 && i%29 != 0 {
			continue
		}
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= bit
			wantCorrupt(t, bad, "bit flip")
		}
	}
}

func TestSnapshotRejects(t *testing.T) {
	st, _ := history(t, 9, 100)
	data := encode(t, st)

	future := bytes.Clone(data)
	future[len(snapshotMagic)] = SnapshotVersion + 1
	wantCorrupt(t, future, "unknown version")

	wantCorrupt(t, append(bytes.Clone(data), 0), "trailing byte")
	wantCorrupt(t, []byte("PK\x03\x04 not a snapshot at all"), "wrong magic")

	hugeLength := append([]byte(snapshotMagic), SnapshotVersion, recResource,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	wantCorrupt(t, hugeLength, "huge record length")
	overflow := append([]byte(snapshotMagic), SnapshotVersion, recResource,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	wantCorrupt(t, overflow, "uvarint overflow")
	wantCorrupt(t, append([]byte(snapshotMagic), SnapshotVersion, 42, 0), "unknown record type")
}

func TestSnapshotReadError(t *testing.T) {
	st, _ := history(t, 9, 100)
	data := encode(t, st)
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
	_, err := ReadSnapshot(r)
	if !errors.Is(err, boom) || errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("got %v, want the reader's error and not ErrCorrupt", err)
	}
}

// failingWriter fails once more than limit bytes were written.
type failingWriter struct{ limit int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		return 0, errors.New("no space left")
	}
	w.limit -= len(p)
	return len(p), nil
}

// FuzzReadSnapshot: no input makes the reader panic, and whatever it
// accepts writes back to a stream it accepts as the same state.
func FuzzReadSnapshot(f *testing.F) {
	for _, n := range []int{0, 5, 60} {
		st := domain.NewState()
		g := domaintest.NewSeeded(uint64(n))
		for i := 0; i < n; i++ {
			if ev, err := g.Next(st); err == nil {
				_ = st.Apply(&ev)
			}
		}
		st.SetLogDigest(domain.LogDigest{Index: uint64(n) + 1, Sum: uint64(n) * 0x9e3779b97f4a7c15})
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, st); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt from an in-memory reader: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, st); err != nil {
			t.Fatal(err)
		}
		again, err := ReadSnapshot(&buf)
		if err != nil || again.Hash() != st.Hash() || again.LogDigest() != st.LogDigest() {
			t.Fatalf("re-encoded snapshot: %v", err)
		}
	})
}

func TestSnapshotMembers(t *testing.T) {
	st, _ := history(t, 4, 200)
	for _, m := range []domain.Member{
		{ID: "n2", RaftAddr: "127.0.0.1:7002", HTTPAddr: "http://127.0.0.1:8082"},
		{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPAddr: "http://127.0.0.1:8081"},
	} {
		ev := domain.Event{Type: domain.EvSetMember, At: 1, Member: m}
		if err := st.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	data := encode(t, st)
	got, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != st.Hash() || len(got.Members()) != 2 {
		t.Fatalf("restored members %+v", got.Members())
	}
	// A member record written twice is caught by the end record's count.
	m := domain.Member{ID: "n1", RaftAddr: "a:1", HTTPAddr: "http://a:2"}
	payload := domain.AppendMember(nil, &m)
	dup := append([]byte(snapshotMagic), SnapshotVersion)
	for range 2 {
		dup = append(dup, recMember, byte(len(payload)))
		dup = append(dup, payload...)
	}
	wantCorrupt(t, withEnd(dup, 0, 0, 0, 2), "duplicate member")
}

// TestSnapshotVersion1 reads a stream of the format before member records.
func TestSnapshotVersion1(t *testing.T) {
	st, _ := history(t, 6, 300)
	v3 := encode(t, st)
	// Version 1 had no leader-time record: cut it (the last record).
	payload := binary.AppendVarint(nil, st.LastTime())
	rec := append([]byte{recLastTime, byte(len(payload))}, payload...)
	at := bytes.LastIndex(v3, rec)
	if at < 0 || st.LastTime() == 0 {
		t.Fatal("no leader-time record in the stream")
	}
	v2 := append(bytes.Clone(v3[:at]), v3[at+len(rec):]...)
	// Without members, version 2 ends with a 0 member count and the CRC.
	body := bytes.Clone(v2[:len(v2)-5])
	body[len(snapshotMagic)] = snapshotVersionNoMembers
	v1 := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	got, err := ReadSnapshot(bytes.NewReader(v1))
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	got.LoadLastTime(st.LastTime()) // not in version 1
	if got.Hash() != st.Hash() {
		t.Fatal("version 1 stream restores another state")
	}
	// Member records did not exist in version 1.
	m := domain.Member{ID: "n1", RaftAddr: "a:1", HTTPAddr: "http://a:2"}
	member := domain.AppendMember(nil, &m)
	bad := append([]byte(snapshotMagic), snapshotVersionNoMembers, recMember, byte(len(member)))
	bad = append(bad, member...)
	bad = append(bad, recEnd, 0, 0, 0)
	wantCorrupt(t, binary.LittleEndian.AppendUint32(bad, crc32.Checksum(bad, crc32.MakeTable(crc32.Castagnoli))), "member in version 1")
}

// withEnd appends an end record with the given counts and the checksum.
func withEnd(b []byte, counts ...uint64) []byte {
	b = append(b, recEnd)
	for _, c := range counts {
		b = binary.AppendUvarint(b, c)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// TestSnapshotLogDigest: the FSM's log digest travels with the state, at
// most once, only in version 3, and a state without one writes none.
func TestSnapshotLogDigest(t *testing.T) {
	st, _ := history(t, 5, 100)
	got, err := ReadSnapshot(bytes.NewReader(encode(t, st)))
	if err != nil || got.LogDigest() != (domain.LogDigest{}) {
		t.Fatalf("a state without a digest restores %+v, %v", got.LogDigest(), err)
	}
	want := domain.LogDigest{Base: 7, Index: 1 << 40, Sum: 0xfedcba9876543210}
	st.SetLogDigest(want)
	data := encode(t, st)
	got, err = ReadSnapshot(bytes.NewReader(data))
	if err != nil || got.LogDigest() != want {
		t.Fatalf("restored digest %+v, %v; want %+v", got.LogDigest(), err, want)
	}
	if got.Hash() != st.Hash() {
		t.Fatal("restored state hashes differently")
	}
	if plain, _ := history(t, 5, 100); plain.Hash() != st.Hash() {
		t.Fatal("the log digest is part of the state hash")
	}

	payload := appendLogDigest(nil, want)
	rec := append([]byte{recLogDigest, byte(len(payload))}, payload...)
	if !bytes.Contains(data, rec) {
		t.Fatal("no log-digest record in the stream")
	}
	head := append([]byte(snapshotMagic), SnapshotVersion)
	twice := append(append(bytes.Clone(head), rec...), rec...)
	wantCorrupt(t, withEnd(twice, 0, 0, 0, 0), "two log-digest records")
	v2 := append([]byte(snapshotMagic), 2)
	wantCorrupt(t, withEnd(append(v2, rec...), 0, 0, 0, 0), "log digest in version 2")
	for name, p := range map[string][]byte{
		"short":         payload[:len(payload)-1],
		"long":          append(bytes.Clone(payload), 0),
		"index 0":       appendLogDigest(nil, domain.LogDigest{Sum: 1}),
		"empty payload": nil,
	} {
		bad := append(append(bytes.Clone(head), recLogDigest, byte(len(p))), p...)
		wantCorrupt(t, withEnd(bad, 0, 0, 0, 0), name)
	}
	only := append(bytes.Clone(head), rec...)
	if got, err := ReadSnapshot(bytes.NewReader(withEnd(only, 0, 0, 0, 0))); err != nil || got.LogDigest() != want {
		t.Fatalf("a stream of only the digest: %+v, %v", got.LogDigest(), err)
	}
}

// The committed log format travels in the snapshot: a node restored from it
// keeps writing the format the cluster moved to.
func TestSnapshotCarriesLogFormat(t *testing.T) {
	st, _ := history(t, 9, 50)
	st.RaiseLogFormat(domain.BatchV2)
	got, err := ReadSnapshot(bytes.NewReader(encode(t, st)))
	if err != nil {
		t.Fatal(err)
	}
	if got.LogFormat() != domain.BatchV2 || got.Hash() != st.Hash() {
		t.Fatalf("restored log format %d (hash equal: %v), want %d", got.LogFormat(), got.Hash() == st.Hash(), domain.BatchV2)
	}
	// Twice in one stream is corruption.
	body := encode(t, st)
	rec := []byte{recLogFormat, 1, domain.BatchV2}
	at := bytes.LastIndex(body, rec)
	if at < 0 {
		t.Fatal("no log-format record in the stream")
	}
	dup := append(append(bytes.Clone(body[:at]), rec...), body[at:len(body)-4]...)
	dup = binary.LittleEndian.AppendUint32(dup, crc32.Checksum(dup, crc32.MakeTable(crc32.Castagnoli)))
	wantCorrupt(t, dup, "log format twice")
}

// TestSnapshotAfterPrune: a snapshot of a state that pruned finished
// reservations restores to the same state, with the finished index rebuilt
// from the reservation records (no record of its own) and the retired units
// of pruned completed reservations carried in their own records: the
// restored state prunes what is left exactly as the original does.
func TestSnapshotAfterPrune(t *testing.T) {
	st, _ := history(t, 5, 2000)
	finishedBefore := st.Finished()
	oldest, ok := st.OldestFinished()
	if !ok {
		t.Fatal("the history left nothing finished")
	}
	now := st.LastTime()
	mid := oldest + (now-oldest)/2
	if err := st.Apply(&domain.Event{Type: domain.EvPrune, At: now, PruneBefore: mid, PruneMax: domain.MaxPrunePerEvent}); err != nil {
		t.Fatal(err)
	}
	if st.Finished() == finishedBefore || st.RetiredResources() == 0 {
		t.Fatalf("the prune removed nothing, or no completed reservation (%d retired)", st.RetiredResources())
	}
	data := encode(t, st)
	if data[len(snapshotMagic)] != snapshotVersionNoEvents {
		t.Fatalf("a state with retired units written as version %d", data[len(snapshotMagic)])
	}
	if plain := encode(t, domain.NewState()); plain[len(snapshotMagic)] != snapshotVersionNoRetired {
		t.Fatalf("a state without retired units written as version %d, not the older %d", plain[len(snapshotMagic)], snapshotVersionNoRetired)
	}
	got, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadSnapshot: %v", err)
	}
	if got.Hash() != st.Hash() || got.Finished() != st.Finished() {
		t.Fatalf("restored: equal hash %v, %d finished, want %d", got.Hash() == st.Hash(), got.Finished(), st.Finished())
	}
	if err := got.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	all := domain.Event{Type: domain.EvPrune, At: now + 1, PruneBefore: now + 1, PruneMax: domain.MaxPrunePerEvent}
	for _, s := range []*domain.State{st, got} {
		if err := s.Apply(&all); err != nil {
			t.Fatal(err)
		}
	}
	if got.Hash() != st.Hash() || got.Finished() != 0 {
		t.Fatalf("after pruning the rest: equal hash %v, %d finished", got.Hash() == st.Hash(), got.Finished())
	}
}
