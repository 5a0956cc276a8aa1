package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"allot/actors/domain"
	"allot/storage"
)

// EventStream is this node's committed copy of the change stream, what the
// events routes read (storage.EventLog implements it). Every node has one,
// so the routes are served locally and never forwarded.
type EventStream interface {
	// Head is the offset of the newest committed event here.
	Head() uint64
	// Changed returns a channel closed once Head moves past what it was
	// when Changed was called.
	Changed() <-chan struct{}
	// Read calls fn for the events after `after` up to Head, oldest first,
	// until fn returns false; fn must not block, and the record is valid
	// only inside it. It returns the oldest offset kept (Head+1 when none)
	// and a *storage.CompactedError when the events right after `after`
	// were pruned.
	Read(after uint64, fn func(storage.EventRecord) bool) (earliest uint64, err error)
}

const (
	// maxEventsWait bounds ?wait= of GET /v1/events.
	maxEventsWait = 60 * time.Second
	// maxEventsScan bounds how many events one page examines: with filters
	// that skip almost everything, a page ends here with next moved on, so
	// no request holds a read transaction over the whole stream.
	maxEventsScan = 16 * maxPageLimit
	// sseBurst is the most events one burst of a stream reads in one
	// transaction before it writes them out.
	sseBurst = maxPageLimit
	// maxPooledEventBuf is the largest buffer put back into the pool: a
	// page of large events should not pin its memory for ever.
	maxPooledEventBuf = 4 << 20
	// defaultEventKeepAlive is Config.EventKeepAlive's default (API.md: a
	// comment line every 15 s).
	defaultEventKeepAlive = 15 * time.Second
)

// compactedProblem is a 410 offset_compacted with the oldest offset kept,
// which the problem body carries as "earliest" so the client knows where
// it can start again.
type compactedProblem struct{ after, earliest uint64 }

func (e *compactedProblem) Error() string {
	return fmt.Sprintf("events after %d were pruned by retention; the oldest kept is %d (read from after=%d)",
		e.after, e.earliest, e.earliest-1)
}

func (e *compactedProblem) Unwrap() error { return errOffsetCompacted }

// appendProblemMembers adds "earliest" to the problem body.
func (e *compactedProblem) appendProblemMembers(b []byte) []byte {
	b = append(b, `,"earliest":`...)
	return strconv.AppendUint(b, e.earliest, 10)
}

// eventFilter is what a consumer asked for: a set of types (bit t set for
// domain.ChangeType t; all types when zero) and a resource id (any when nil).
type eventFilter struct {
	types    uint64
	resource []byte
}

func (f *eventFilter) match(r storage.EventRecord) bool {
	if f.types != 0 && f.types&(1<<r.Type()) == 0 {
		return false
	}
	return f.resource == nil || bytes.Equal(r.ResourceID(), f.resource)
}

// eventQuery is a parsed events request.
type eventQuery struct {
	after  uint64
	limit  int
	wait   time.Duration
	filter eventFilter
}

// parseEventQuery reads the parameters both routes share: after, type,
// resource and shard; GET /v1/events adds limit and wait itself.
func parseEventQuery(c *gin.Context) (eventQuery, error) {
	var q eventQuery
	var err error
	if q.after, err = parseOffset("after", c.Query("after")); err != nil {
		return q, err
	}
	for _, v := range c.QueryArray("type") {
		if v == "" {
			continue // type= is no filter
		}
		for _, name := range strings.Split(v, ",") {
			bits, err := changeTypeBits(name)
			if err != nil {
				return q, err
			}
			q.filter.types |= bits
		}
	}
	if id := c.Query("resource"); id != "" {
		if !domain.ValidID(id) {
			return q, fmt.Errorf("resource: %q is not a valid resource id: %w", id, domain.ErrInvalidArgument)
		}
		q.filter.resource = []byte(id)
	}
	if sh, ok := c.GetQuery("shard"); ok && sh != "0" {
		return q, fmt.Errorf("shard: %q is no shard of this cluster, which has one: 0: %w", sh, domain.ErrInvalidArgument)
	}
	return q, nil
}

// parseOffset parses an offset ("" is 0).
func parseOffset(field, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an event offset (an integer from 0): %w", field, s, domain.ErrInvalidArgument)
	}
	return n, nil
}

// changeTypeBits is the type set of one name of ?type=: an exact type
// ("reservation.held") or a family ("reservation.*").
func changeTypeBits(name string) (uint64, error) {
	var bits uint64
	prefix, family := strings.CutSuffix(name, ".*")
	for _, t := range domain.ChangeTypes() {
		s := t.String()
		if s == name || family && strings.HasPrefix(s, prefix+".") {
			bits |= 1 << t
		}
	}
	if bits == 0 {
		return 0, fmt.Errorf("type: %q is no event type; the types are %s, or a family such as reservation.*: %w",
			name, changeTypeList(), domain.ErrInvalidArgument)
	}
	return bits, nil
}

func changeTypeList() string {
	names := make([]string, 0, 16)
	for _, t := range domain.ChangeTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// parseWait parses ?wait=: a Go duration ("30s", "500ms") or whole
// seconds ("30"), from 0 to maxEventsWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if n, nerr := strconv.ParseUint(s, 10, 32); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
	}
	if err != nil || d < 0 || d > maxEventsWait {
		return 0, fmt.Errorf("wait: %q must be a duration from 0 to %s, such as 30s or 500ms: %w", s, maxEventsWait, domain.ErrInvalidArgument)
	}
	return d, nil
}

// EndStreams ends every event stream and long-poll that is waiting, now
// and from now on (long-polls answer what they have): register it with
// http.Server.RegisterOnShutdown, since Shutdown waits for requests in
// flight and a stream never finishes by itself.
func (s *Server) EndStreams() { s.events.endOnce.Do(func() { close(s.events.done) }) }

// eventServing is the events routes' share of the Server.
type eventServing struct {
	done    chan struct{} // closed by EndStreams
	endOnce sync.Once
	bufs    sync.Pool // *[]byte that answers are built in
}

func (ev *eventServing) init() {
	ev.done = make(chan struct{})
	ev.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
}

func (ev *eventServing) getBuf() *[]byte { return ev.bufs.Get().(*[]byte) }

// putBuf returns b to the pool unless it grew too large to keep.
func (ev *eventServing) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledEventBuf {
		*b = (*b)[:0]
		ev.bufs.Put(b)
	}
}

// keepAliveFrame is the comment a stream sends when idle.
var keepAliveFrame = []byte(": keepalive\n\n")

// eventPage is one read of the stream into a buffer.
type eventPage struct {
	filter *eventFilter
	limit  int    // events to append at most
	scan   int    // events to examine at most
	next   uint64 // the last offset examined
	last   uint64 // the offset of the last event appended
	n      int    // events appended
	seen   int    // events examined
	buf    []byte
	sse    bool // append as SSE frames rather than JSON array items
	fn     func(storage.EventRecord) bool
}

func newEventPage(f *eventFilter, limit, scan int, sse bool) *eventPage {
	p := &eventPage{filter: f, limit: limit, scan: scan, sse: sse}
	p.fn = p.add // bound once: Read takes it without allocating per call
	return p
}

// add is the Read callback: it copies a matching record's JSON into buf.
func (p *eventPage) add(r storage.EventRecord) bool {
	p.next = r.Offset
	p.seen++
	if p.filter.match(r) {
		if p.sse {
			p.buf = append(p.buf, "id: "...)
			p.buf = strconv.AppendUint(p.buf, r.Offset, 10)
			p.buf = append(p.buf, "\nevent: "...)
			p.buf = append(p.buf, r.Type().String()...)
			p.buf = append(p.buf, "\ndata: "...)
			p.buf = append(p.buf, r.JSON()...)
			p.buf = append(p.buf, "\n\n"...)
		} else {
			if p.n > 0 {
				p.buf = append(p.buf, ',')
			}
			p.buf = append(p.buf, r.JSON()...)
		}
		p.n++
		p.last = r.Offset
	}
	return p.n < p.limit && p.seen < p.scan
}

// read reads the next part of the stream after p.next.
func (p *eventPage) read(ev EventStream) (earliest uint64, err error) {
	p.seen = 0
	earliest, err = ev.Read(p.next, p.fn)
	if ce, ok := errors.AsType[*storage.CompactedError](err); ok {
		return earliest, &compactedProblem{after: ce.After, earliest: ce.Earliest}
	}
	if err != nil {
		return earliest, fmt.Errorf("reading events after %d: %w", p.next, err)
	}
	return earliest, nil
}

// full reports whether the last read stopped before Head because of a
// bound, not because it caught up.
func (p *eventPage) full() bool { return p.n >= p.limit || p.seen >= p.scan }

// eventsReady checks what both routes need before they read: a stream, a
// caller allowed to read it (admins and consumers), and a node that may
// answer stale reads. Until a node has caught up with its log since it
// started, its event log stops at its snapshot's head (0 without one), so
// it would answer a head and an earliest it had moved past before it
// stopped; it answers 503 instead, as stale reads there are answered.
func (s *Server) eventsReady(c *gin.Context, p domain.Principal) error {
	switch {
	case !p.Admin:
		return fmt.Errorf("%s %s needs the admin or consumer role: %w", c.Request.Method, c.FullPath(), domain.ErrPermissionDenied)
	case s.cfg.Events == nil:
		return fmt.Errorf("this node serves no change stream: %w", domain.ErrUnavailable)
	}
	if err := s.cfg.Reader.Read(c.Request.Context(), domain.ReadStale, func(*domain.State) error { return nil }); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// extendDeadlines moves the connection's read and write deadlines to d
// from now: the server's timeouts are made for short requests, and a
// long-poll or stream that outlives them would be cut (the read deadline
// passing even cancels the request's context). Writers that cannot (a test
// recorder) are left alone.
func extendDeadlines(rc *http.ResponseController, d time.Duration) {
	t := time.Now().Add(d)
	_ = rc.SetWriteDeadline(t)
	_ = rc.SetReadDeadline(t)
}

// listEvents serves GET /v1/events: a page of events after ?after=, and
// with ?wait= a long-poll that answers as soon as an event that passes the
// filters is committed here, or when wait is over with what it examined.
func (s *Server) listEvents(c *gin.Context, p domain.Principal) error {
	if err := s.eventsReady(c, p); err != nil {
		return err
	}
	q, err := parseEventQuery(c)
	if err == nil {
		q.limit, err = pageLimit(c)
	}
	if err == nil {
		q.wait, err = parseWait(c.Query("wait"))
	}
	if err != nil {
		return err
	}
	if c.Request.Method == http.MethodHead {
		q.wait = 0 // nothing would be sent after the wait
	}
	ev := s.cfg.Events
	bp := s.events.getBuf()
	defer s.events.putBuf(bp)
	page := newEventPage(&q.filter, q.limit, maxEventsScan, false)
	page.next = q.after
	page.buf = append((*bp)[:0], `{"events":[`...)

	var ctx context.Context = c.Request.Context()
	if q.wait > 0 {
		extendDeadlines(http.NewResponseController(c.Writer), q.wait+s.cfg.Timeouts.write())
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.wait)
		defer cancel()
	}
	var earliest uint64
	for {
		changed := ev.Changed() // before reading, so no commit after the read is missed
		earliest, err = page.read(ev)
		if err != nil {
			*bp = page.buf
			return err
		}
		if page.n > 0 || page.full() || q.wait == 0 {
			break
		}
		select {
		case <-changed:
			continue
		case <-ctx.Done():
		case <-s.events.done:
		}
		break
	}
	b := append(page.buf, `],"next":`...)
	b = strconv.AppendUint(b, page.next, 10)
	b = append(b, `,"earliest":`...)
	b = strconv.AppendUint(b, earliest, 10)
	b = append(b, `,"head":`...)
	b = strconv.AppendUint(b, ev.Head(), 10)
	b = append(b, '}')
	*bp = b
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json", b)
	return nil
}

// streamEvents serves GET /v1/events/stream: the events after the cursor
// as Server-Sent Events, then each one as it is committed here, until the
// client goes, the server shuts down or the stream falls behind retention.
// The cursor is Last-Event-ID when sent (what an EventSource sends when it
// reconnects, to the URL it first opened) and ?after= otherwise.
func (s *Server) streamEvents(c *gin.Context, p domain.Principal) error {
	if err := s.eventsReady(c, p); err != nil {
		return err
	}
	q, err := parseEventQuery(c)
	if err == nil {
		if id := c.GetHeader("Last-Event-ID"); id != "" {
			q.after, err = parseOffset("Last-Event-ID", id)
		}
	}
	if err != nil {
		return err
	}
	ev := s.cfg.Events
	page := newEventPage(&q.filter, sseBurst, maxEventsScan, true)
	page.next = q.after
	bp := s.events.getBuf()
	page.buf = (*bp)[:0]
	changed := ev.Changed()
	if _, err := page.read(ev); err != nil {
		s.events.putBuf(bp)
		return err
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer would hold events back
	if c.Request.Method == http.MethodHead {
		s.events.putBuf(bp)
		c.Status(http.StatusOK)
		return nil
	}
	rc := http.NewResponseController(c.Writer)
	keepAlive := s.cfg.EventKeepAlive
	if keepAlive <= 0 {
		keepAlive = defaultEventKeepAlive
	}
	// Each write may take up to the write timeout; between writes the
	// connection idles for at most keepAlive.
	lease := keepAlive + s.cfg.Timeouts.write()
	c.Status(http.StatusOK)
	sent := q.after // the offset of the last id: line written
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	ctx := c.Request.Context()
	for first := true; ; first = false {
		// Write what the last read found. A burst that skipped events at
		// its end adds an id-only frame, which moves an EventSource's last
		// event id without dispatching anything, so that a reconnect does
		// not examine them again.
		if page.n > 0 {
			sent = page.last
		}
		if page.next > sent {
			page.buf = append(page.buf, "id: "...)
			page.buf = strconv.AppendUint(page.buf, page.next, 10)
			page.buf = append(page.buf, "\n\n"...)
			sent = page.next
		}
		if len(page.buf) > 0 || first {
			if !s.writeBurst(rc, c.Writer, lease, page.buf) {
				*bp = page.buf
				s.events.putBuf(bp)
				return nil
			}
			tick.Reset(keepAlive)
		}
		*bp = page.buf
		s.events.putBuf(bp)
		for wait := !page.full(); wait; {
			select {
			case <-changed:
				wait = false
			case <-tick.C:
				if !s.writeBurst(rc, c.Writer, lease, keepAliveFrame) {
					return nil
				}
			case <-ctx.Done():
				return nil
			case <-s.events.done:
				return nil
			}
		}
		changed = ev.Changed()
		bp = s.events.getBuf()
		page.buf, page.n = (*bp)[:0], 0
		if _, err := page.read(ev); err != nil {
			// Fallen behind retention (or the store failed): end the
			// stream; the client reconnects from its last id and is told.
			s.events.putBuf(bp)
			if !errors.Is(err, errOffsetCompacted) {
				s.log.Warn("event stream ended", "request_id", c.Writer.Header().Get(headerRequestID), "error", err.Error())
			}
			return nil
		}
	}
}

// writeBurst writes b and flushes it, within a fresh write deadline;
// false when the client is gone.
func (s *Server) writeBurst(rc *http.ResponseController, w http.ResponseWriter, lease time.Duration, b []byte) bool {
	extendDeadlines(rc, lease)
	if len(b) > 0 {
		if _, err := w.Write(b); err != nil {
			return false
		}
	}
	return rc.Flush() == nil
}
