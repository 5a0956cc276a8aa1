package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"allot/actors/domain"
	"allot/httpapi/jsonview"
	"allot/storage"
)

// eventsEnv is a testEnv whose server reads a real event log, fed by the
// test as the FSM would feed it.
type eventsEnv struct {
	*testEnv
	log      *storage.EventLog
	consumer string // token of a consumer
	mu       sync.Mutex
	head     uint64
	at       func(off uint64) int64 // leader time of each offset
}

func newEventsEnv(t testing.TB, modify func(*Config)) *eventsEnv {
	t.Helper()
	l, err := storage.OpenEventLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := &eventsEnv{log: l, at: func(off uint64) int64 { return testNow().UnixNano() + int64(off)*int64(time.Second) }}
	e.testEnv = newEnv(t, func(c *Config) {
		c.Events = l
		if modify != nil {
			modify(c)
		}
	})
	e.consumer = e.token("downstream", RoleConsumer)
	return e
}

// evSpec describes one change to commit: its type and resource.
type evSpec struct {
	typ      domain.ChangeType
	resource string
}

// commit appends changes in one batch, as one FSM apply does, and
// returns the offset of the last.
func (e *eventsEnv) commit(specs ...evSpec) uint64 {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	var b storage.EventBatch
	for _, sp := range specs {
		e.head++
		ch := domain.Change{Offset: e.head, Type: sp.typ, At: e.at(e.head), ResourceID: sp.resource, Kind: domain.KindVoucher}
		switch sp.typ {
		case domain.ChangeResourceCreated, domain.ChangeResourceUpdated:
			ch.Resource = &domain.Resource{ID: sp.resource, Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 5}, CreatedAt: ch.At, UpdatedAt: ch.At}
		case domain.ChangeResourceDeleted, domain.ChangeLimitUpdated, domain.ChangeLimitDeleted:
		default:
			ch.Reservation = domain.Reservation{ID: fmt.Sprintf("r%d", e.head), ResourceID: sp.resource, Kind: domain.KindVoucher,
				User: "alice", Quantity: 1, Status: domain.StatusHeld + domain.Status(sp.typ-domain.ChangeReservationHeld), CreatedAt: ch.At, UpdatedAt: ch.At}
		}
		b.End(jsonview.AppendChange(b.Add(&ch), &ch))
	}
	if err := e.log.Append(&b); err != nil {
		e.t.Fatal(err)
	}
	return e.head
}

// held commits n reservation.held changes of resource id.
func (e *eventsEnv) held(n int, id string) uint64 {
	specs := make([]evSpec, n)
	for i := range specs {
		specs[i] = evSpec{domain.ChangeReservationHeld, id}
	}
	return e.commit(specs...)
}

type eventJSON struct {
	Offset     uint64          `json:"offset"`
	Shard      int             `json:"shard"`
	Type       string          `json:"type"`
	At         string          `json:"at"`
	ResourceID string          `json:"resource_id"`
	Kind       string          `json:"kind"`
	From       *string         `json:"from"`
	Res        json.RawMessage `json:"reservation"`
	Resource   json.RawMessage `json:"resource"`
}

type eventsPage struct {
	Events   []eventJSON `json:"events"`
	Next     uint64      `json:"next"`
	Earliest uint64      `json:"earliest"`
	Head     uint64      `json:"head"`
}

func (e *eventsEnv) page(query string) eventsPage {
	e.t.Helper()
	var p eventsPage
	e.do("GET", "/v1/events"+query, e.consumer, "").want(e.t, http.StatusOK, &p)
	return p
}

func offsets(evs []eventJSON) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, ev.Offset)
	}
	return b.String()
}

func TestEventsPaging(t *testing.T) {
	e := newEventsEnv(t, nil)
	if p := e.page(""); len(p.Events) != 0 || p.Next != 0 || p.Head != 0 || p.Earliest != 1 {
		t.Fatalf("empty stream: %+v", p)
	}
	e.held(150, "v1")
	p := e.page("")
	if len(p.Events) != 100 || p.Events[0].Offset != 1 || p.Next != 100 || p.Head != 150 || p.Earliest != 1 {
		t.Fatalf("default page: %d events, next %d head %d earliest %d", len(p.Events), p.Next, p.Head, p.Earliest)
	}
	ev := p.Events[0]
	if ev.Type != "reservation.held" || ev.Shard != 0 || ev.ResourceID != "v1" || ev.Kind != "voucher" || ev.From == nil || *ev.From != "" || len(ev.Res) == 0 {
		t.Fatalf("event as served: %+v", ev)
	}
	p = e.page("?after=100&limit=10")
	if offsets(p.Events) != "101 102 103 104 105 106 107 108 109 110" || p.Next != 110 {
		t.Fatalf("after=100&limit=10: %s next %d", offsets(p.Events), p.Next)
	}
	p = e.page("?after=145&limit=1000")
	if offsets(p.Events) != "146 147 148 149 150" || p.Next != 150 {
		t.Fatalf("the tail: %s next %d", offsets(p.Events), p.Next)
	}
	p = e.page("?after=150")
	if len(p.Events) != 0 || p.Next != 150 || p.Head != 150 {
		t.Fatalf("at head: %+v", p)
	}
	// A cursor ahead of this node (a follower a moment behind) is no
	// error: nothing yet, next stays.
	if p = e.page("?after=400"); len(p.Events) != 0 || p.Next != 400 || p.Head != 150 {
		t.Fatalf("ahead of head: %+v", p)
	}
	e.held(1000, "v1")
	if p = e.page("?after=0&limit=1000"); len(p.Events) != 1000 || p.Next != 1000 {
		t.Fatalf("limit=1000: %d events next %d", len(p.Events), p.Next)
	}
	// The events are the stored bytes: valid JSON, each as the log holds it.
	r := e.do("GET", "/v1/events?after=1&limit=1", e.admin, "")
	var raw struct{ Events []json.RawMessage }
	r.want(t, http.StatusOK, &raw)
	var want []byte
	e.log.Read(1, func(rec storage.EventRecord) bool { want = append(want, rec.JSON()...); return false })
	if string(raw.Events[0]) != string(want) {
		t.Fatalf("served %s, stored %s", raw.Events[0], want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestEventsFilters(t *testing.T) {
	e := newEventsEnv(t, nil)
	e.commit(
		evSpec{domain.ChangeResourceCreated, "a"},      // 1
		evSpec{domain.ChangeResourceCreated, "b"},      // 2
		evSpec{domain.ChangeReservationHeld, "a"},      // 3
		evSpec{domain.ChangeReservationHeld, "b"},      // 4
		evSpec{domain.ChangeReservationExpired, "a"},   // 5
		evSpec{domain.ChangeResourceUpdated, "b"},      // 6
		evSpec{domain.ChangeReservationConfirmed, "b"}, // 7
		evSpec{domain.ChangeResourceDeleted, "a"},      // 8
		evSpec{domain.ChangeReservationHeld, "a"},      // 9
	)
	for _, tc := range []struct {
		query, offs string
		next        uint64
	}{
		{"?type=reservation.*", "3 4 5 7 9", 9},
		{"?type=resource.created,reservation.held", "1 2 3 4 9", 9},
		{"?type=resource.created&type=reservation.expired", "1 2 5", 9},
		{"?type=resource.*&resource=b", "2 6", 9},
		{"?resource=a", "1 3 5 8 9", 9},
		{"?resource=a&limit=2", "1 3", 3},
		{"?resource=a&after=3&limit=2", "5 8", 8},
		{"?type=reservation.confirmed&after=7", "", 9}, // next moves past what the filter skipped
		{"?type=limit.*", "", 9},
		{"?resource=nobody", "", 9},
		{"?type=&resource=", "1 2 3 4 5 6 7 8 9", 9}, // empty filters are no filters
		{"?shard=0&type=reservation.held", "3 4 9", 9},
	} {
		p := e.page(tc.query)
		if offsets(p.Events) != tc.offs || p.Next != tc.next || p.Head != 9 {
			t.Errorf("%s: %q next %d head %d, want %q next %d", tc.query, offsets(p.Events), p.Next, p.Head, tc.offs, tc.next)
		}
		for _, ev := range p.Events {
			if strings.Contains(tc.query, "resource=a") && ev.ResourceID != "a" {
				t.Errorf("%s: %+v", tc.query, ev)
			}
		}
	}
}

func TestEventsBadInput(t *testing.T) {
	e := newEventsEnv(t, nil)
	e.held(3, "v")
	for _, tc := range []struct{ query, mention string }{
		{"?after=-1", "after"},
		{"?after=x", "after"},
		{"?after=1.5", "after"},
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?limit=ten", "limit"},
		{"?wait=61s", "wait"},
		{"?wait=-1s", "wait"},
		{"?wait=soon", "wait"},
		{"?wait=3600", "wait"},
		{"?type=reservation.nope", "type"},
		{"?type=nope.*", "type"},
		{"?type=reservation.held,,resource.created", "type"},
		{"?type=*", "type"},
		{"?resource=bad%20id", "resource"},
		{"?shard=1", "shard"},
		{"?shard=x", "shard"},
	} {
		for _, path := range []string{"/v1/events", "/v1/events/stream"} {
			if path == "/v1/events/stream" && (strings.Contains(tc.query, "limit") || strings.Contains(tc.query, "wait")) {
				continue // the stream has no limit or wait
			}
			p := e.do("GET", path+tc.query, e.consumer, "").wantProblem(t, http.StatusBadRequest, "invalid_argument")
			if !strings.HasPrefix(p.Detail, tc.mention+":") && !strings.HasPrefix(p.Detail, tc.mention+" ") {
				t.Errorf("%s%s: detail %q does not start with %q", path, tc.query, p.Detail, tc.mention)
			}
		}
	}
	p := e.do("GET", "/v1/events/stream", e.consumer, "", "Last-Event-ID", "nope").wantProblem(t, http.StatusBadRequest, "invalid_argument")
	if !strings.Contains(p.Detail, "Last-Event-ID") {
		t.Errorf("detail %q", p.Detail)
	}
	// The good forms of wait.
	for _, w := range []string{"0", "0s", "1ms", "60s", "1m"} {
		e.do("GET", "/v1/events?wait="+w, e.consumer, "").want(t, http.StatusOK, nil)
	}
}

func TestEventsRolesAndMethods(t *testing.T) {
	e := newEventsEnv(t, nil)
	e.held(1, "v")
	user := e.token("carol", RoleUser) // the role named, not defaulted
	for _, path := range []string{"/v1/events", "/v1/events/stream"} {
		e.do("GET", path, "", "").wantProblem(t, http.StatusUnauthorized, "unauthenticated")
		e.do("GET", path, e.alice, "").wantProblem(t, http.StatusForbidden, "permission_denied")
		e.do("GET", path, user, "").wantProblem(t, http.StatusForbidden, "permission_denied")
		e.do("POST", path, e.admin, "{}").wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
		e.do("POST", path, e.consumer, "{}").wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
		// HEAD answers at once, without a body, for both.
		start := time.Now()
		r := e.do("HEAD", path+"?wait=30s", e.consumer, "")
		if r.status != http.StatusOK || len(r.body) != 0 || time.Since(start) > 5*time.Second {
			t.Fatalf("HEAD %s: %d %q after %s", path, r.status, r.body, time.Since(start))
		}
	}
	e.do("GET", "/v1/events", e.admin, "").want(t, http.StatusOK, nil)
	e.do("GET", "/v1/events", e.consumer, "").want(t, http.StatusOK, nil)
	if ct := e.do("HEAD", "/v1/events/stream", e.admin, "").header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("HEAD stream Content-Type %q", ct)
	}
	for _, tok := range []string{e.admin, e.consumer} { // both read the stream itself
		s := openStreamAt(t, e.url, tok, "", nil)
		s.wantEvents(t, 5*time.Second, 1)
		s.close()
	}

	// A server without a stream answers 503.
	bare := newEnv(t, nil)
	cons := bare.token("downstream", RoleConsumer)
	for _, path := range []string{"/v1/events", "/v1/events/stream"} {
		bare.do("GET", path, cons, "").wantProblem(t, http.StatusServiceUnavailable, "unavailable")
	}
}

// longPoll sends GET /v1/events with a query in the background and returns
// the answer and when it came.
func (e *eventsEnv) longPoll(query string) <-chan polled {
	out := make(chan polled, 1)
	go func() {
		req, _ := http.NewRequest("GET", e.url+"/v1/events"+query, nil)
		req.Header.Set("Authorization", "Bearer "+e.consumer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- polled{err: err}
			return
		}
		defer resp.Body.Close()
		var p eventsPage
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if err == nil {
			err = openAPICheck(req, resp.StatusCode, resp.Header, b)
		}
		if err == nil {
			err = json.Unmarshal(b, &p)
		}
		out <- polled{page: p, at: time.Now(), err: err}
	}()
	return out
}

type polled struct {
	page eventsPage
	at   time.Time
	err  error
}

// waitPolled returns the long-poll's answer, failing after d.
func waitPolled(t *testing.T, ch <-chan polled, d time.Duration) polled {
	t.Helper()
	select {
	case p := <-ch:
		if p.err != nil {
			t.Fatal(p.err)
		}
		return p
	case <-time.After(d):
		t.Fatalf("no answer within %s", d)
	}
	return polled{}
}

// TestEventsLongPollWakes measures from the commit to the answer: a
// waiting long-poll answers within 100 ms of a commit that passes its
// filters, and keeps waiting through commits that do not.
func TestEventsLongPollWakes(t *testing.T) {
	e := newEventsEnv(t, nil)
	e.held(2, "v")
	for i := range 3 {
		ch := e.longPoll(fmt.Sprintf("?after=%d&wait=20s", e.head))
		time.Sleep(150 * time.Millisecond) // let it reach its wait
		select {
		case p := <-ch:
			t.Fatalf("answered before any commit: %+v", p)
		default:
		}
		committed := time.Now()
		off := e.held(1, "v")
		p := waitPolled(t, ch, 5*time.Second)
		if d := p.at.Sub(committed); d > 100*time.Millisecond {
			t.Errorf("round %d: answered %s after the commit", i, d)
		}
		if offsets(p.page.Events) != fmt.Sprint(off) || p.page.Next != off || p.page.Head != off {
			t.Fatalf("round %d: %+v", i, p.page)
		}
	}

	// With a filter, commits it skips do not answer it; one it passes does,
	// and next has moved past the skipped ones.
	after := e.head
	ch := e.longPoll(fmt.Sprintf("?after=%d&wait=20s&type=resource.created", after))
	time.Sleep(100 * time.Millisecond)
	e.held(3, "v")
	time.Sleep(150 * time.Millisecond)
	select {
	case p := <-ch:
		t.Fatalf("answered with events the filter skips: %+v", p)
	default:
	}
	committed := time.Now()
	off := e.commit(evSpec{domain.ChangeReservationHeld, "v"}, evSpec{domain.ChangeResourceCreated, "w"})
	p := waitPolled(t, ch, 5*time.Second)
	if d := p.at.Sub(committed); d > 100*time.Millisecond {
		t.Errorf("filtered long-poll answered %s after the commit", d)
	}
	if offsets(p.page.Events) != fmt.Sprint(off) || p.page.Next != off {
		t.Fatalf("filtered long-poll: %+v", p.page)
	}
}

func TestEventsWaitExpires(t *testing.T) {
	e := newEventsEnv(t, nil)
	head := e.held(4, "v")
	start := time.Now()
	p := waitPolled(t, e.longPoll(fmt.Sprintf("?after=%d&wait=300ms", head)), 10*time.Second)
	if d := p.at.Sub(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered after %s, wait was 300ms", d)
	}
	if len(p.page.Events) != 0 || p.page.Next != head || p.page.Head != head || p.page.Earliest != 1 {
		t.Fatalf("expired wait: %+v", p.page)
	}
	// Only skipped events arrive: the wait runs out and next has moved past them.
	ch := e.longPoll(fmt.Sprintf("?after=%d&wait=400ms&resource=other", head))
	time.Sleep(100 * time.Millisecond)
	last := e.held(2, "v")
	p = waitPolled(t, ch, 10*time.Second)
	if len(p.page.Events) != 0 || p.page.Next != last || p.page.Head != last {
		t.Fatalf("wait with only skipped events: %+v", p.page)
	}
}

type compactedJSON struct {
	Status   int    `json:"status"`
	Code     string `json:"code"`
	Detail   string `json:"detail"`
	Earliest uint64 `json:"earliest"`
}

// TestEventsCompacted checks 410 offset_compacted with "earliest", for a
// page and for a stream, and that a stream which falls behind retention
// ends (and its reconnect is told).
func TestEventsCompacted(t *testing.T) {
	e := newEventsEnv(t, func(c *Config) { c.EventKeepAlive = 100 * time.Millisecond })
	e.log.SetRetention(10 * time.Second) // e.at spaces offsets by a second
	e.held(30, "v")                      // newest at 30s: 1..19 pruned
	earliest := e.log.Earliest()
	if earliest != 20 {
		t.Fatalf("earliest %d after pruning", earliest)
	}
	for _, path := range []string{"/v1/events?after=0", "/v1/events?after=18", "/v1/events/stream?after=5"} {
		r := e.do("GET", path, e.consumer, "")
		r.wantProblem410(t, earliest)
	}
	r := e.do("GET", "/v1/events/stream", e.consumer, "", "Last-Event-ID", "3")
	r.wantProblem410(t, earliest)
	// after = earliest-1 is fine.
	if p := e.page("?after=19&limit=1"); offsets(p.Events) != "20" || p.Earliest != 20 {
		t.Fatalf("after=earliest-1: %+v", p)
	}

	// A stream parked at 30 falls behind when a burst is pruned past it.
	s := e.openStream(t, "?after=30", nil)
	s.wantComment(t, 2*time.Second) // the opening flush
	e.mu.Lock()
	old := e.at
	e.at = func(off uint64) int64 {
		if off <= 33 {
			return old(off)
		}
		return old(off) + int64(time.Hour)
	}
	e.mu.Unlock()
	e.held(5, "v") // 31..35, the last two an hour later: everything before 34 goes
	s.wantEnd(t, 5*time.Second, false)
	e.do("GET", "/v1/events/stream", e.consumer, "", "Last-Event-ID", "30").wantProblem410(t, e.log.Earliest())
}

func (r response) wantProblem410(t *testing.T, earliest uint64) {
	t.Helper()
	var p compactedJSON
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != http.StatusGone || p.Status != 410 ||
		p.Code != "offset_compacted" || p.Earliest != earliest || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want 410 offset_compacted earliest %d; got %d %s (%v)", earliest, r.status, r.body, err)
	}
}

// sseFrame is one frame of an event stream: an event (id, event, data),
// an id-only frame, or a comment.
type sseFrame struct {
	id, event, data, comment string
}

type sseStream struct {
	resp   *http.Response
	frames chan sseFrame
	done   chan error
	cancel context.CancelFunc
}

// openStream opens GET /v1/events/stream with a query and header pairs on
// the env's server and reads its frames in the background.
func (e *eventsEnv) openStream(t *testing.T, query string, hdr []string) *sseStream {
	t.Helper()
	return openStreamAt(t, e.url, e.consumer, query, hdr)
}

func openStreamAt(t testing.TB, base, token, query string, hdr []string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	checkOpenAPIHeaders(t, req, resp.StatusCode, resp.Header)
	s := &sseStream{resp: resp, frames: make(chan sseFrame, 4096), done: make(chan error, 1), cancel: cancel}
	t.Cleanup(s.close)
	go s.readFrames()
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

func (s *sseStream) readFrames() {
	br := bufio.NewReader(s.resp.Body)
	var f sseFrame
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.done <- err
			close(s.frames)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			s.frames <- f
			f = sseFrame{}
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		default:
			f.comment = "unexpected line " + line
		}
	}
}

// next returns the next frame that is not a comment.
func (s *sseStream) next(t testing.TB, d time.Duration) sseFrame {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.done)
			}
			if f.comment == "" {
				return f
			}
			if strings.HasPrefix(f.comment, "unexpected") {
				t.Fatal(f.comment)
			}
		case <-timeout:
			t.Fatalf("no frame within %s", d)
		}
	}
}

// wantEvents reads frames until it has the events with these offsets, in
// order, and fails on any other event.
func (s *sseStream) wantEvents(t testing.TB, d time.Duration, offs ...uint64) {
	t.Helper()
	for _, off := range offs {
		f := s.next(t, d)
		for f.data == "" { // id-only frames move the cursor and carry no event
			f = s.next(t, d)
		}
		var ev eventJSON
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("frame %+v: %v", f, err)
		}
		if f.id != fmt.Sprint(off) || ev.Offset != off || f.event != ev.Type {
			t.Fatalf("frame %+v, want offset %d", f, off)
		}
	}
}

// wantComment waits for a comment frame (the keepalive, or the empty
// opening flush, which sends nothing: then it waits for a keepalive).
func (s *sseStream) wantComment(t testing.TB, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.done)
			}
			if f.comment == "keepalive" {
				return
			}
		case <-timeout:
			t.Fatalf("no keepalive within %s", d)
		}
	}
}

// wantNothing fails if an event frame arrives within d.
func (s *sseStream) wantNothing(t testing.TB, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f.data != "" {
				t.Fatalf("unexpected event %+v", f)
			}
		case <-timeout:
			return
		}
	}
}

// wantEnd waits for the server to end the stream; with events false, an
// event before the end fails the test.
func (s *sseStream) wantEnd(t testing.TB, d time.Duration, events bool) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f.data != "" && !events {
				t.Fatalf("event %+v from a stream that should end", f)
			}
		case <-timeout:
			t.Fatalf("the stream did not end within %s", d)
		}
	}
}

func TestEventsStream(t *testing.T) {
	e := newEventsEnv(t, func(c *Config) { c.EventKeepAlive = 100 * time.Millisecond })
	e.held(3, "v")
	s := e.openStream(t, "", nil)
	s.wantEvents(t, 2*time.Second, 1, 2, 3)
	e.held(2, "v")
	s.wantEvents(t, 2*time.Second, 4, 5)
	s.wantComment(t, 2*time.Second) // idle: keepalives at the short interval
	s.close()

	// Resuming: Last-Event-ID wins over ?after= (an EventSource reconnects
	// to the URL it opened, with the header), and gives exactly the rest.
	r := e.openStream(t, "?after=1", []string{"Last-Event-ID", "3"})
	r.wantEvents(t, 2*time.Second, 4, 5)
	r.wantNothing(t, 200*time.Millisecond)
	e.held(1, "v")
	r.wantEvents(t, 2*time.Second, 6)
	r.wantNothing(t, 200*time.Millisecond)

	// Filters: skipped events move the cursor with an id-only frame, so a
	// reconnect from the last id does not examine them again.
	f := e.openStream(t, "?after=6&type=resource.created", nil)
	e.held(2, "v") // 7, 8: skipped
	fr := f.next(t, 2*time.Second)
	if fr.id != "8" || fr.data != "" || fr.event != "" {
		t.Fatalf("want an id-only frame for 8, got %+v", fr)
	}
	e.commit(evSpec{domain.ChangeResourceCreated, "w"}, evSpec{domain.ChangeReservationHeld, "w"}) // 9 passes, 10 skipped
	f.wantEvents(t, 2*time.Second, 9)
	if fr = f.next(t, 2*time.Second); fr.id != "10" || fr.data != "" {
		t.Fatalf("want an id-only frame for 10, got %+v", fr)
	}

	// A large backlog arrives in bursts, in order, complete.
	e.held(2500, "v")
	b := e.openStream(t, "?after=10", nil)
	for off := uint64(11); off <= 2510; off++ {
		b.wantEvents(t, 5*time.Second, off)
	}

	// EndStreams (server shutdown) ends the streams.
	e.srv.EndStreams()
	r.wantEnd(t, 2*time.Second, true)
	b.wantEnd(t, 2*time.Second, true)
}

// TestEventsOutliveServerTimeouts serves the routes with read and write
// timeouts far below how long a long-poll waits and a stream lives: both
// must extend their deadlines, or the server cuts them (a passing read
// deadline cancels the request's context; a passing write deadline fails
// the next write).
func TestEventsOutliveServerTimeouts(t *testing.T) {
	e := newEventsEnv(t, func(c *Config) {
		c.EventKeepAlive = 100 * time.Millisecond
		c.RequestTimeout = 100 * time.Millisecond
		c.Timeouts = Timeouts{ReadHeader: 200 * time.Millisecond, Read: 200 * time.Millisecond, Write: 300 * time.Millisecond}
	})
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = NewHTTPServerTimeouts("", e.srv.Handler(), e.srv.cfg.Timeouts)
	ts.Start()
	t.Cleanup(ts.Close)
	e.url = ts.URL

	head := e.held(1, "v")
	start := time.Now()
	ch := e.longPoll(fmt.Sprintf("?after=%d&wait=1500ms", head))
	time.Sleep(time.Second)
	off := e.held(1, "v")
	p := waitPolled(t, ch, 5*time.Second)
	if offsets(p.page.Events) != fmt.Sprint(off) {
		t.Fatalf("long-poll past the timeouts: %+v after %s", p.page, time.Since(start))
	}
	p = waitPolled(t, e.longPoll(fmt.Sprintf("?after=%d&wait=1s", off)), 5*time.Second)
	if d := p.at.Sub(start); len(p.page.Events) != 0 || d < 2*time.Second {
		t.Fatalf("expired long-poll: %+v after %s", p.page, d)
	}

	s := e.openStream(t, fmt.Sprintf("?after=%d", off), nil)
	time.Sleep(1200 * time.Millisecond)
	off = e.held(1, "v")
	s.wantEvents(t, 2*time.Second, off)
}

func TestEventsConfig(t *testing.T) {
	e := newEventsEnv(t, nil)
	c := e.srv.cfg
	c.EventKeepAlive = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "EventKeepAlive") {
		t.Fatalf("a negative EventKeepAlive: %v", err)
	}
	if d := DefaultConfig().EventKeepAlive; d != 15*time.Second {
		t.Fatalf("default keepalive %s", d)
	}
}

// TestEventsWaitForCatchUp: a node that has not caught up with its log
// since it started (its event log may still be at the snapshot's head, or
// at 0) answers the events routes 503 with Retry-After, as a stale read
// there is answered, instead of a head and earliest it will not keep.
func TestEventsWaitForCatchUp(t *testing.T) {
	e := newEventsEnv(t, nil)
	e.held(3, "v")
	e.eng.setReadErr(fmt.Errorf("node n1 has not caught up with the log since it started: %w", domain.ErrUnavailable))
	for _, path := range []string{"/v1/events", "/v1/events?wait=5s", "/v1/events/stream"} {
		r := e.do("GET", path, e.consumer, "")
		r.wantProblem(t, http.StatusServiceUnavailable, "unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", path)
		}
	}
	if e.eng.lastRead != domain.ReadStale {
		t.Fatalf("the events routes asked for consistency %v, not a stale read", e.eng.lastRead)
	}
	e.eng.setReadErr(nil)
	if p := e.page(""); p.Head != 3 {
		t.Fatalf("after catching up: head %d", p.Head)
	}
}
