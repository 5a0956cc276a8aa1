package servertest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"allot/cmd/allot/server"
	"allot/cmd/allot/server/servertest"
	"allot/httpapi"
)

// streamEvent is one event frame of GET /v1/events/stream.
type streamEvent struct {
	id, event string
	offset    uint64
	typ       string
}

// sseReader reads the event frames of a stream, skipping comments and
// id-only frames.
type sseReader struct {
	br *bufio.Reader
}

func (r *sseReader) next() (streamEvent, error) {
	var ev streamEvent
	var data string
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data == "" {
				continue // a comment or an id-only frame
			}
			var body struct {
				Offset uint64 `json:"offset"`
				Type   string `json:"type"`
			}
			if err := json.Unmarshal([]byte(data), &body); err != nil {
				return ev, fmt.Errorf("data %q: %w", data, err)
			}
			ev.offset, ev.typ = body.Offset, body.Type
			return ev, nil
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

// openStream opens a stream on node url with token (and header name,
// value pairs) and returns it once the answer's headers are in.
func openStream(ctx context.Context, hc *http.Client, url, token, query string, header ...string) (*http.Response, *sseReader, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/events/stream"+query, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, nil, fmt.Errorf("stream: %d %s", resp.StatusCode, b)
	}
	return resp, &sseReader{br: bufio.NewReader(resp.Body)}, nil
}

type eventsPage struct {
	Events []json.RawMessage `json:"events"`
	Next   uint64            `json:"next"`
	Head   uint64            `json:"head"`
}

// TestEventsServedByEveryNode checks that a follower serves the stream
// from its own committed state (the answer names it, nothing is
// forwarded), that every node serves the same bytes for the same offsets,
// and that a long-poll on the leader wakes within 100 ms of a commit.
func TestEventsServedByEveryNode(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{})
	l := c.Leader()
	f := c.Followers()[0]
	admin := c.Client(l.Index())
	token := c.Token("downstream", httpapi.RoleConsumer)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, sse, err := openStream(ctx, http.DefaultClient, f.URL(), token, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("X-Allot-Node"); got != f.ID() {
		t.Fatalf("the stream on %s was answered by %q", f.ID(), got)
	}

	users := 0
	reserve := func() { // one reservation, of a new user (the limit is one each)
		users++
		c.Client(l.Index()).As(fmt.Sprintf("u%d", users), httpapi.RoleUser).Must("POST", "/v1/resources/flash/reservations", nil, http.StatusCreated)
	}
	admin.Must("PUT", "/v1/resources/flash", voucher(10), http.StatusCreated)
	for range 3 {
		reserve()
	}
	want := []string{"resource.created", "reservation.held", "reservation.held", "reservation.held"}
	for i, typ := range want {
		ev, err := sse.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.offset != uint64(i+1) || ev.id != fmt.Sprint(i+1) || ev.typ != typ || ev.event != typ {
			t.Fatalf("event %d on the follower: %+v, want %s", i+1, ev, typ)
		}
	}

	// Every node serves the same stream.
	c.WaitConverged()
	var first string
	for _, nd := range c.Nodes() {
		r := c.Client(nd.Index()).As("downstream", httpapi.RoleConsumer).Must("GET", "/v1/events", nil, http.StatusOK)
		var p eventsPage
		if err := r.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != 4 || p.Next != 4 || p.Head != 4 || r.Header.Get("X-Allot-Node") != nd.ID() {
			t.Fatalf("%s: %s", nd.ID(), r.Body)
		}
		if s := fmt.Sprintf("%s", p.Events); first == "" {
			first = s
		} else if s != first {
			t.Fatalf("%s serves other bytes:\n%s\nthan\n%s", nd.ID(), s, first)
		}
	}

	// A long-poll wakes at the commit, on the leader and on a follower.
	for _, nd := range []*servertest.Node{l, f} {
		cons := c.Client(nd.Index()).As("downstream", httpapi.RoleConsumer)
		head := uint64(4)
		if nd != l {
			head = 5
		}
		answered := make(chan time.Time, 1)
		var page eventsPage
		go func() {
			r, err := cons.Do("GET", fmt.Sprintf("/v1/events?after=%d&wait=10s", head), nil)
			if err == nil {
				err = r.Decode(&page)
			}
			if err != nil {
				t.Error(err)
			}
			answered <- time.Now()
		}()
		time.Sleep(200 * time.Millisecond) // let it reach its wait
		reserve()
		committed := time.Now()
		at := <-answered
		limit := 100 * time.Millisecond
		if nd != l {
			limit = time.Second // a follower learns of the commit a heartbeat later
		}
		t.Logf("%s: the long-poll answered %s after the commit was acknowledged", nd.ID(), at.Sub(committed))
		if d := at.Sub(committed); d > limit {
			t.Errorf("%s: the long-poll answered %s after the commit was acknowledged", nd.ID(), d)
		}
		if len(page.Events) != 1 || page.Next != head+1 {
			t.Fatalf("%s: long-poll %+v", nd.ID(), page)
		}
	}

	// Stopping a node ends its streams rather than waiting for them.
	start := time.Now()
	c.Stop(f.Index())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping %s with a stream open took %s", f.ID(), d)
	}
	last := uint64(len(want)) // what the stream on the follower delivered
	for {
		ev, err := sse.next()
		if err != nil {
			break
		}
		if ev.offset != last+1 {
			t.Fatalf("after %d the stream sent %+v", last, ev)
		}
		last = ev.offset
	}

	// The consumer resumes on another node from the last id it saw and
	// gets exactly the rest: no gap, no duplicate.
	reserve()
	resp2, sse2, err := openStream(ctx, http.DefaultClient, l.URL(), token, "", "Last-Event-ID", fmt.Sprint(last))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	for off := last + 1; off <= 7; off++ {
		ev, err := sse2.next()
		if err != nil || ev.offset != off {
			t.Fatalf("resumed on %s after %d: %+v (%v), want %d", l.ID(), last, ev, err, off)
		}
	}
}

// TestThousandStreams opens 1,000 streams on one node, commits one
// change, and checks that every stream receives it, and that the
// goroutines the streams took are gone once they are closed.
func TestThousandStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 streams")
	}
	const n = 1000
	c := servertest.MakeCluster(t, 1, servertest.Options{})
	nd := c.Leader()
	admin := c.Client(nd.Index())
	admin.Must("PUT", "/v1/resources/flash", voucher(10), http.StatusCreated)
	token := c.Token("downstream", httpapi.RoleConsumer)
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	hc := &http.Client{Transport: tr}
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	var opened, got sync.WaitGroup
	errs := make(chan error, n)
	opened.Add(n)
	got.Add(n)
	start := time.Now()
	for range n {
		go func() {
			defer got.Done()
			resp, sse, err := openStream(ctx, hc, nd.URL(), token, "?after=1")
			opened.Done()
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			ev, err := sse.next()
			if err == nil && (ev.offset != 2 || ev.typ != "reservation.held") {
				err = fmt.Errorf("got %+v", ev)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	opened.Wait()
	t.Logf("%d streams open after %s; %d goroutines (%d before)", n, time.Since(start), runtime.NumGoroutine(), base)
	committed := time.Now()
	admin.Must("POST", "/v1/resources/flash/reservations", nil, http.StatusCreated)
	done := make(chan struct{})
	go func() { got.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("not every stream received the event within 15s")
	}
	t.Logf("all %d streams had the event %s after the commit", n, time.Since(committed))
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cancel()
	tr.CloseIdleConnections()

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+10 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the streams:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEventsRetentionOverHTTP runs event retention by leader time on a
// real cluster: once the leader's clock is past the retention, the next
// commit prunes the older events on every node alike, and a reader from
// before them is told 410 offset_compacted with the oldest offset kept,
// by a page and by a stream.
func TestEventsRetentionOverHTTP(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{Tune: func(_ int, cfg *server.Config) {
		cfg.EventRetention = time.Hour
	}})
	l := c.Leader()
	admin := c.Client(l.Index())
	admin.Must("PUT", "/v1/resources/a", voucher(10), http.StatusCreated)
	admin.Must("PUT", "/v1/resources/b", voucher(10), http.StatusCreated)
	// Leader time follows the wall clock only at the start of a term (a
	// step within one is ignored): every clock jumps (so that no node looks
	// skewed), then a new term begins.
	for i := range c.Nodes() {
		c.Clock(i).Step(2 * time.Hour)
	}
	nl := c.TransferLeadership()
	c.Client(nl.Index()).Must("PUT", "/v1/resources/c", voucher(10), http.StatusCreated) // event 3, two hours later
	c.WaitConverged()
	token := c.Token("downstream", httpapi.RoleConsumer)
	for _, nd := range c.Nodes() {
		cons := c.Client(nd.Index()).As("downstream", httpapi.RoleConsumer)
		r := cons.Must("GET", "/v1/events?after=0", nil, http.StatusGone)
		var p struct {
			Code     string `json:"code"`
			Earliest uint64 `json:"earliest"`
		}
		if err := r.Decode(&p); err != nil || p.Code != "offset_compacted" || p.Earliest != 3 {
			t.Fatalf("%s: %s (%v)", nd.ID(), r.Body, err)
		}
		r = cons.Must("GET", "/v1/events?after=2", nil, http.StatusOK)
		var page eventsPage
		if err := r.Decode(&page); err != nil || len(page.Events) != 1 || page.Next != 3 {
			t.Fatalf("%s after=2: %s (%v)", nd.ID(), r.Body, err)
		}
		req, _ := http.NewRequest("GET", nd.URL()+"/v1/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Last-Event-ID", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone {
			t.Fatalf("%s: stream from 1: %d", nd.ID(), resp.StatusCode)
		}
	}
}
