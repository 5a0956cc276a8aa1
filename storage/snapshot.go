package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"allot/actors/domain"
)

// The snapshot stream format, version 5:
//
//	header   "ALLOTSNP" (8 bytes), format version (1 byte)
//	records  type (1 byte), payload length (uvarint), payload
//	         type 1: a resource     (domain.AppendResource)
//	         type 2: a reservation  (domain.AppendReservation)
//	         type 3: an idem record (domain.AppendIdem), in apply order
//	         type 4: a member       (domain.AppendMember)
//	         type 5: leader time    (varint: State.LastTime), at most once, not counted
//	         type 6: log digest     (State.LogDigest: uvarint base, uvarint index,
//	                                 sum as 8 bytes little endian), at most once, not
//	                                 counted; absent when no entry was folded in
//	         type 7: log format     (1 byte: State.LogFormat), at most once, not
//	                                 counted; absent for a log that never raised it
//	         type 8: retired units  (domain.AppendRetired) of one resource, after
//	                                 the resources, not counted
//	         type 9: event head     (uvarint: State.EventHead), at most once, not
//	                                 counted, before any type 10; absent before the
//	                                 stream's first change
//	         type 10: event         (uvarint offset, then the EventLog record), in
//	                                 offset order without gaps, ending at the event
//	                                 head; not counted
//	         type 11: webhook       (domain.AppendWebhook: spec, secret and committed
//	                                 cursor), in id order, each id once; not counted
//	         type 12: limit group   (domain.AppendLimit: spec and times), before every
//	                                 resource record, each id once; not counted (its
//	                                 counts and members are rebuilt from the resources
//	                                 and reservations that follow)
//	end      type 0xFF, resource, reservation, idem record and member
//	         counts (uvarints), CRC-32C (Castagnoli, 4 bytes little endian)
//	         of every byte before it, then nothing
//
// The end record counts the record types 1 to 4 only; types 5 and up came
// later and are not counted (the CRC covers them), so the end record has
// the same shape in every version from 2 on. A record type that a version
// does not have is corruption in a stream of that version.
//
// Version 4 is version 5 without event and webhook records; WriteSnapshot
// writes it for a state without a change stream and without webhooks, for
// the same reason as version 3 (webhooks, like the stream, come only from
// entries of log format 4, which the log carries only once every node reads
// version 5).
// Version 3 is version 4 without retired-units records; WriteSnapshot
// still writes it for a state without them, so that a node of an older
// binary can install the snapshot during a rolling upgrade (retired units
// come only from prune entries, which the log carries only once every node
// runs a binary that reads version 4). Version 2 is version 3 without the leader-time, log-digest and log-format
// records;
// version 1 is version 2 without member records and without the member
// count. Both are still read, so that a node upgraded in place restores the
// snapshots it already has (a state read from them has no log digest, and
// the FSM starts a new digest chain at such a snapshot).
//
// Records are streamed through a buffer one at a time: neither side ever
// holds the encoded snapshot in memory. A reader that meets a version it
// does not know refuses the stream rather than guessing.

// SnapshotVersion is the newest format version, which WriteSnapshot writes
// for a state with retired units (else snapshotVersionNoRetired).
const SnapshotVersion = 5

// snapshotVersionNoEvents is the version before event records.
const snapshotVersionNoEvents = 4

// snapshotVersionNoRetired is the version before retired-units records.
const snapshotVersionNoRetired = 3

// snapshotVersionNoMembers is the oldest format ReadSnapshot reads.
const snapshotVersionNoMembers = 1

const (
	snapshotMagic = "ALLOTSNP"

	recResource    = 1
	recReservation = 2
	recIdem        = 3
	recMember      = 4
	recLastTime    = 5
	recLogDigest   = 6
	recLogFormat   = 7
	recRetired     = 8
	recEventHead   = 9
	recEvent       = 10
	recWebhook     = 11
	recLimit       = 12
	recEnd         = 0xFF

	// maxRecordSize bounds one record. A resource carries its per-user
	// counts, so a voucher sold to millions of users is a large record.
	maxRecordSize = 1 << 30
	// readChunk is how much of a record is allocated before its bytes
	// arrive: a corrupt length cannot make the reader allocate more than
	// the input holds plus one chunk.
	readChunk = 1 << 20

	bufferSize = 64 << 10
)

// WriteSnapshot streams st to w in the snapshot format, without event
// records. st must not change while it is written (the FSM hands it a
// frozen copy).
func WriteSnapshot(w io.Writer, st *domain.State) error { return WriteSnapshotWith(w, st, nil) }

// EachEvent calls fn with the change stream's records of a snapshot, in
// offset order, up to the state's event head (EventLog.EachUpTo).
type EachEvent func(fn func(off uint64, raw []byte) error) error

// WriteSnapshotWith is WriteSnapshot that also writes the state's change
// stream as events gives it (nil: none).
func WriteSnapshotWith(w io.Writer, st *domain.State, events EachEvent) error {
	sw := &snapshotWriter{w: bufio.NewWriterSize(w, bufferSize), table: crc32.MakeTable(crc32.Castagnoli)}
	sw.write([]byte(snapshotMagic))
	version := byte(SnapshotVersion)
	switch {
	case st.WebhookCount() > 0 || st.LimitCount() > 0:
	case st.EventHead() == 0 && st.RetiredResources() == 0:
		version = snapshotVersionNoRetired
	case st.EventHead() == 0:
		version = snapshotVersionNoEvents
	}
	sw.write([]byte{version})
	var nRes, nResv, nIdem, nMember uint64
	err := st.EachLimit(func(l *domain.Limit) error {
		sw.buf = domain.AppendLimit(sw.buf[:0], l)
		return sw.record(recLimit)
	})
	if err != nil {
		return err
	}
	err = st.EachResource(func(r *domain.Resource) error {
		nRes++
		sw.buf = domain.AppendResource(sw.buf[:0], r)
		return sw.record(recResource)
	})
	if err == nil {
		err = st.EachReservation(func(res domain.Reservation) error {
			nResv++
			sw.buf = domain.AppendReservation(sw.buf[:0], &res)
			return sw.record(recReservation)
		})
	}
	if err == nil {
		err = st.EachIdem(func(rec domain.IdemRecord) error {
			nIdem++
			sw.buf = domain.AppendIdem(sw.buf[:0], &rec)
			return sw.record(recIdem)
		})
	}
	if err == nil {
		err = st.EachMember(func(m domain.Member) error {
			nMember++
			sw.buf = domain.AppendMember(sw.buf[:0], &m)
			return sw.record(recMember)
		})
	}
	if err == nil {
		err = st.EachRetired(func(rt *domain.Retired) error {
			sw.buf = domain.AppendRetired(sw.buf[:0], rt)
			return sw.record(recRetired)
		})
	}
	if err == nil {
		err = st.EachWebhook(func(wh domain.Webhook) error {
			sw.buf = domain.AppendWebhook(sw.buf[:0], &wh)
			return sw.record(recWebhook)
		})
	}
	if err == nil && st.LastTime() != 0 {
		sw.buf = binary.AppendVarint(sw.buf[:0], st.LastTime())
		err = sw.record(recLastTime)
	}
	if d := st.LogDigest(); err == nil && d.Index != 0 {
		sw.buf = appendLogDigest(sw.buf[:0], d)
		err = sw.record(recLogDigest)
	}
	if f := st.LogFormat(); err == nil && f != 0 {
		sw.buf = append(sw.buf[:0], f)
		err = sw.record(recLogFormat)
	}
	if h := st.EventHead(); err == nil && h != 0 {
		sw.buf = binary.AppendUvarint(sw.buf[:0], h)
		if err = sw.record(recEventHead); err == nil && events != nil {
			err = events(func(off uint64, raw []byte) error {
				sw.buf = append(binary.AppendUvarint(sw.buf[:0], off), raw...)
				return sw.record(recEvent)
			})
		}
	}
	if err != nil {
		return err
	}
	end := []byte{recEnd}
	end = binary.AppendUvarint(end, nRes)
	end = binary.AppendUvarint(end, nResv)
	end = binary.AppendUvarint(end, nIdem)
	end = binary.AppendUvarint(end, nMember)
	sw.write(end)
	sw.err = writeAll(sw.w, binary.LittleEndian.AppendUint32(nil, sw.crc), sw.err)
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	if sw.err != nil {
		return fmt.Errorf("write snapshot: %w", sw.err)
	}
	return nil
}

// snapshotWriter writes through a buffer while summing a CRC. The first
// error sticks.
type snapshotWriter struct {
	w     *bufio.Writer
	table *crc32.Table
	crc   uint32
	buf   []byte // the record payload being written
	hdr   [1 + binary.MaxVarintLen64]byte
	err   error
}

func (sw *snapshotWriter) write(p []byte) {
	if sw.err == nil {
		sw.crc = crc32.Update(sw.crc, sw.table, p)
		sw.err = writeAll(sw.w, p, nil)
	}
}

// record writes sw.buf as a record of type typ.
func (sw *snapshotWriter) record(typ byte) error {
	if len(sw.buf) > maxRecordSize {
		return fmt.Errorf("write snapshot: record of %d bytes exceeds %d", len(sw.buf), maxRecordSize)
	}
	sw.hdr[0] = typ
	n := 1 + binary.PutUvarint(sw.hdr[1:], uint64(len(sw.buf)))
	sw.write(sw.hdr[:n])
	sw.write(sw.buf)
	if sw.err != nil {
		return fmt.Errorf("write snapshot: %w", sw.err)
	}
	return nil
}

func writeAll(w io.Writer, p []byte, prev error) error {
	if prev != nil {
		return prev
	}
	_, err := w.Write(p)
	return err
}

// ReadSnapshot reads a stream written by WriteSnapshot into a new State. It
// returns an error wrapping domain.ErrCorrupt for a stream that is truncated,
// fails its checksum, does not decode or has a version it does not know, and
// other read errors as they are. Event records are checked and skipped.
func ReadSnapshot(r io.Reader) (*domain.State, error) { return ReadSnapshotWith(r, nil) }

// EventSink takes a snapshot's event records; the FSM's is an EventRestore.
type EventSink interface {
	Add(off uint64, raw []byte) error
}

// ReadSnapshotWith is ReadSnapshot that hands the event records to the sink
// that events returns for the snapshot's event head (nil: skip them). The
// records reach the sink before the checksum is checked: the caller keeps
// them only when ReadSnapshotWith succeeds.
func ReadSnapshotWith(r io.Reader, events func(head uint64) EventSink) (*domain.State, error) {
	sr := &snapshotReader{r: bufio.NewReaderSize(r, bufferSize), table: crc32.MakeTable(crc32.Castagnoli)}
	var head [len(snapshotMagic) + 1]byte
	if err := sr.full(head[:]); err != nil {
		return nil, sr.wrap("header", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("read snapshot: not an allot snapshot: %w", domain.ErrCorrupt)
	}
	version := head[len(snapshotMagic)]
	if version < snapshotVersionNoMembers || version > SnapshotVersion {
		return nil, fmt.Errorf("read snapshot: unknown format version %d (this build reads %d to %d): %w",
			version, snapshotVersionNoMembers, SnapshotVersion, domain.ErrCorrupt)
	}
	st := domain.NewState()
	var counts [4]uint64 // resources, reservations, idem records, members
	nCounts := len(counts)
	sawLastTime, sawDigest, sawFormat := false, false, false
	var sink EventSink
	var nextEvent uint64 // 0 before the event-head record
	// The reservations of a run of reservation records are loaded
	// together (State.LoadReservations), before the next record of
	// another type, so that any order of records loads as before; so are
	// the idempotency records of a run (State.LoadIdems). A run's records
	// are held decoded until then: about 100 bytes a reservation.
	var pending *domain.Slab[domain.Reservation]
	var pendingIdem *domain.Slab[domain.IdemRecord]
	if version == snapshotVersionNoMembers {
		nCounts = 3
	}
	for rec := 0; ; rec++ {
		typ, err := sr.ReadByte()
		if err != nil {
			return nil, sr.wrap(fmt.Sprintf("record %d", rec), err)
		}
		if typ != recReservation && pending != nil {
			st.LoadReservations(pending)
			pending = nil
		}
		if typ != recIdem && pendingIdem != nil {
			st.LoadIdems(pendingIdem)
			pendingIdem = nil
		}
		if typ == recEnd {
			if err := sr.end(st, counts, nCounts); err != nil {
				return nil, err
			}
			return st, nil
		}
		payload, err := sr.payload()
		if err != nil {
			return nil, sr.wrap(fmt.Sprintf("record %d", rec), err)
		}
		switch typ {
		case recResource:
			var res *domain.Resource
			if res, err = domain.DecodeResource(payload); err == nil {
				st.LoadResource(res)
			}
		case recReservation:
			if pending == nil {
				pending = new(domain.Slab[domain.Reservation])
			}
			err = domain.DecodeReservationInto(pending.Add(), payload)
		case recIdem:
			if pendingIdem == nil {
				pendingIdem = new(domain.Slab[domain.IdemRecord])
			}
			err = domain.DecodeIdemInto(pendingIdem.Add(), payload)
		case recMember:
			var m domain.Member
			if version == snapshotVersionNoMembers {
				err = fmt.Errorf("member record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else if m, err = domain.DecodeMember(payload); err == nil {
				st.LoadMember(m)
			}
		case recLastTime:
			if version < 3 || sawLastTime {
				err = fmt.Errorf("unexpected leader-time record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else if at, n := binary.Varint(payload); n != len(payload) || n <= 0 {
				err = fmt.Errorf("leader-time record: bad varint: %w", domain.ErrCorrupt)
			} else {
				st.LoadLastTime(at)
				sawLastTime = true
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recLogDigest:
			var d domain.LogDigest
			if version < 3 || sawDigest {
				err = fmt.Errorf("unexpected log-digest record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else if d, err = decodeLogDigest(payload); err == nil {
				st.SetLogDigest(d)
				sawDigest = true
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recLogFormat:
			if version < 3 || sawFormat || len(payload) != 1 {
				err = fmt.Errorf("unexpected log-format record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else {
				st.RaiseLogFormat(payload[0])
				sawFormat = true
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recRetired:
			var rt *domain.Retired
			if version <= snapshotVersionNoRetired {
				err = fmt.Errorf("unexpected retired-units record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else if rt, err = domain.DecodeRetired(payload); err == nil {
				st.LoadRetired(rt)
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recLimit:
			var l *domain.Limit
			switch {
			case version <= snapshotVersionNoEvents || counts[0] > 0:
				err = fmt.Errorf("unexpected limit record in a version %d snapshot (or after a resource): %w", version, domain.ErrCorrupt)
			default:
				if l, err = domain.DecodeLimit(payload); err == nil && !st.LoadLimit(l) {
					err = fmt.Errorf("limit %s twice: %w", l.ID, domain.ErrCorrupt)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recWebhook:
			var wh domain.Webhook
			if version <= snapshotVersionNoEvents {
				err = fmt.Errorf("unexpected webhook record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else if wh, err = domain.DecodeWebhook(payload); err == nil && !st.LoadWebhook(wh) {
				err = fmt.Errorf("webhook %s twice: %w", wh.ID, domain.ErrCorrupt)
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recEventHead:
			h, n := binary.Uvarint(payload)
			if version <= snapshotVersionNoEvents || nextEvent != 0 || n != len(payload) || n <= 0 || h == 0 {
				err = fmt.Errorf("unexpected event-head record in a version %d snapshot: %w", version, domain.ErrCorrupt)
			} else {
				st.LoadEventHead(h)
				nextEvent = 1
				if events != nil {
					sink = events(h)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			continue
		case recEvent:
			off, n := binary.Uvarint(payload)
			switch {
			case nextEvent == 0 || n <= 0 || off == 0 || off > st.EventHead() || (nextEvent > 1 && off != nextEvent):
				err = fmt.Errorf("event record %d out of place: %w", off, domain.ErrCorrupt)
			case sink != nil:
				err = sink.Add(off, payload[n:])
			}
			if err != nil {
				return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
			}
			nextEvent = off + 1
			continue
		default:
			err = fmt.Errorf("unknown record type %d: %w", typ, domain.ErrCorrupt)
		}
		if err != nil {
			return nil, fmt.Errorf("read snapshot: record %d: %w", rec, err)
		}
		counts[typ-recResource]++
	}
}

// appendLogDigest appends the payload of a log-digest record.
func appendLogDigest(dst []byte, d domain.LogDigest) []byte {
	dst = binary.AppendUvarint(dst, d.Base)
	dst = binary.AppendUvarint(dst, d.Index)
	return binary.LittleEndian.AppendUint64(dst, d.Sum)
}

// decodeLogDigest decodes a log-digest record's payload.
func decodeLogDigest(p []byte) (domain.LogDigest, error) {
	var d domain.LogDigest
	base, n := binary.Uvarint(p)
	if n > 0 {
		p = p[n:]
		var m int
		d.Index, m = binary.Uvarint(p)
		n = m
	}
	if n <= 0 || len(p) != n+8 || d.Index == 0 {
		return domain.LogDigest{}, fmt.Errorf("log-digest record: bad payload: %w", domain.ErrCorrupt)
	}
	d.Base, d.Sum = base, binary.LittleEndian.Uint64(p[n:])
	return d, nil
}

// snapshotReader reads through a buffer while summing the CRC of every byte
// it hands out.
type snapshotReader struct {
	r     *bufio.Reader
	table *crc32.Table
	crc   uint32
	buf   []byte // the current record's payload, reused
	one   [1]byte
	ioErr error // the last error of the underlying reader
}

// ReadByte makes the reader an io.ByteReader for binary.ReadUvarint.
func (sr *snapshotReader) ReadByte() (byte, error) {
	c, err := sr.r.ReadByte()
	if err != nil {
		sr.ioErr = err
		return 0, err
	}
	sr.one[0] = c
	sr.crc = crc32.Update(sr.crc, sr.table, sr.one[:])
	return c, nil
}

// uvarint reads a uvarint; one longer than 64 bits is corruption.
func (sr *snapshotReader) uvarint() (uint64, error) {
	sr.ioErr = nil
	v, err := binary.ReadUvarint(sr)
	if err != nil && sr.ioErr == nil {
		err = fmt.Errorf("bad uvarint: %w", domain.ErrCorrupt)
	}
	return v, err
}

func (sr *snapshotReader) full(p []byte) error {
	if _, err := io.ReadFull(sr.r, p); err != nil {
		return err
	}
	sr.crc = crc32.Update(sr.crc, sr.table, p)
	return nil
}

// payload reads a length-prefixed record payload into sr.buf, growing it
// only as bytes arrive.
func (sr *snapshotReader) payload() ([]byte, error) {
	n, err := sr.uvarint()
	if err != nil {
		return nil, err
	}
	if n > maxRecordSize {
		return nil, fmt.Errorf("record length %d exceeds %d: %w", n, maxRecordSize, domain.ErrCorrupt)
	}
	sr.buf = sr.buf[:0]
	for uint64(len(sr.buf)) < n {
		chunk := int(min(n-uint64(len(sr.buf)), readChunk))
		start := len(sr.buf)
		if cap(sr.buf)-start < chunk {
			grown := make([]byte, start, max(2*cap(sr.buf), start+chunk))
			copy(grown, sr.buf)
			sr.buf = grown
		}
		sr.buf = sr.buf[:start+chunk]
		if err := sr.full(sr.buf[start:]); err != nil {
			return nil, err
		}
	}
	return sr.buf, nil
}

// end checks the end record: counts (the first n of them are in the
// stream, the rest must be 0), checksum, and that nothing follows.
func (sr *snapshotReader) end(st *domain.State, counts [4]uint64, n int) error {
	var want [4]uint64
	for i := range want[:n] {
		v, err := sr.uvarint()
		if err != nil {
			return sr.wrap("end record", err)
		}
		want[i] = v
	}
	sum := sr.crc
	var crc [4]byte
	if _, err := io.ReadFull(sr.r, crc[:]); err != nil {
		return sr.wrap("checksum", err)
	}
	if got := binary.LittleEndian.Uint32(crc[:]); got != sum {
		return fmt.Errorf("read snapshot: checksum %08x, computed %08x: %w", got, sum, domain.ErrCorrupt)
	}
	if counts != want {
		return fmt.Errorf("read snapshot: %v records, end record says %v: %w", counts, want, domain.ErrCorrupt)
	}
	res, resv, idem, _ := st.Counts()
	if [4]uint64{uint64(res), uint64(resv), uint64(idem), uint64(len(st.Members()))} != want {
		return fmt.Errorf("read snapshot: duplicate records: %w", domain.ErrCorrupt)
	}
	if _, err := sr.r.ReadByte(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("read snapshot: after end record: %w", err)
		}
		return fmt.Errorf("read snapshot: data after end record: %w", domain.ErrCorrupt)
	}
	return nil
}

// wrap marks a premature end of input as corruption (a truncated snapshot)
// and passes other read errors through.
func (sr *snapshotReader) wrap(where string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read snapshot: %s: truncated: %w", where, domain.ErrCorrupt)
	}
	return fmt.Errorf("read snapshot: %s: %w", where, err)
}
