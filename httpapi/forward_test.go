package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"allot/actors/domain"
)

// leaderAndFollower returns two servers on fakes: the follower knows the
// leader's URL and forwards to it.
func leaderAndFollower(t *testing.T) (leader, follower *testEnv) {
	leader = newEnv(t, nil)
	follower = newEnv(t, func(c *Config) { c.NodeID = "n2" })
	follower.cl.setLeader(leader.url)
	return leader, follower
}

func TestForwardWrites(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	r := follower.do("PUT", "/v1/resources/v1", follower.admin, `{"kind":"voucher","capacity":5,"per_user_limit":5,"hold_seconds":0}`)
	r.want(t, http.StatusCreated, nil)
	if got := r.header.Get(headerNode); got != "n1" {
		t.Fatalf("X-Allot-Node %q, want the leader n1", got)
	}

	// Authorization, Idempotency-Key, X-Request-ID and the body reach the
	// leader; the client sees one X-Request-ID and one X-Allot-Node.
	body := `{"quantity":2}`
	r = follower.do("POST", "/v1/resources/v1/reservations", follower.alice, body,
		"Idempotency-Key", "order-1", headerRequestID, "req-42")
	var res reservationJSON
	r.want(t, http.StatusCreated, &res)
	if res.User != "alice" || res.Quantity != 2 {
		t.Fatalf("reservation %+v", res)
	}
	if ids := r.header.Values(headerRequestID); len(ids) != 1 || ids[0] != "req-42" {
		t.Fatalf("X-Request-ID %q", ids)
	}
	if nodes := r.header.Values(headerNode); len(nodes) != 1 || nodes[0] != "n1" {
		t.Fatalf("X-Allot-Node %q", nodes)
	}
	cmd := leader.eng.lastReserve()
	if cmd.Caller.User != "alice" || cmd.Idem == nil || cmd.Idem.Key != "order-1" || cmd.Request.Quantity != 2 {
		t.Fatalf("the leader got %+v", cmd)
	}
	// The retry, through the follower again, is a replay on the leader.
	again := follower.do("POST", "/v1/resources/v1/reservations", follower.alice, body, "Idempotency-Key", "order-1")
	again.want(t, http.StatusCreated, nil)
	if again.header.Get(headerReplayed) != "true" || string(again.body) != string(r.body) {
		t.Fatalf("replay %s %s", again.header, again.body)
	}
	// Transitions are forwarded too; the follower's engine saw nothing.
	follower.do("POST", "/v1/reservations/"+res.ID+"/confirm", follower.alice, "").want(t, http.StatusOK, nil)
	if got := follower.eng.lastReserve(); got.Caller.User != "" {
		t.Fatalf("the follower's engine was called: %+v", got)
	}
	// Rejections come back as the leader's problem.
	follower.do("POST", "/v1/resources/nope/reservations", follower.bob, "").wantProblem(t, 404, "not_found")
}

func TestForwardNoLoop(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	// The "leader" itself believes a third node leads: a forwarded request
	// is answered there, not forwarded again.
	leader.cl.setLeader("http://127.0.0.1:1")
	p := follower.do("POST", "/v1/resources/v1/reservations", follower.alice, "").wantProblem(t, 503, "unavailable")
	if !strings.Contains(p.Detail, "forwarded request reached a node that does not lead") {
		t.Fatalf("detail %q", p.Detail)
	}
	// A client cannot make a follower skip forwarding into a local write
	// either: the marked request is refused.
	r := follower.do("POST", "/v1/resources/v1/reservations", follower.alice, "", headerForwarded, "x")
	r.wantProblem(t, 503, "unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func TestForwardReads(t *testing.T) {
	leader, follower := leaderAndFollower(t)
	leader.putVoucher("v1", 3, "")
	for _, q := range []string{"", "?consistency=leader", "?consistency=linearizable"} {
		r := follower.do("GET", "/v1/resources/v1"+q, follower.bob, "")
		r.want(t, http.StatusOK, nil)
		if r.header.Get(headerNode) != "n1" || leader.eng.lastConsistency() != mustConsistency(t, q) {
			t.Fatalf("%q: served by %s, leader read at %d", q, r.header.Get(headerNode), leader.eng.lastConsistency())
		}
	}
	// A stale read is the follower's own (which has no such resource).
	r := follower.do("GET", "/v1/resources/v1?consistency=stale", follower.bob, "")
	r.wantProblem(t, 404, "not_found")
	if r.header.Get(headerNode) != "n2" {
		t.Fatalf("stale read served by %s", r.header.Get(headerNode))
	}
	// The cluster view is always the node's own.
	var info ClusterInfo
	r = follower.do("GET", "/v1/cluster", follower.bob, "")
	r.want(t, http.StatusOK, &info)
	if info.ID != "n2" || r.header.Get(headerNode) != "n2" {
		t.Fatalf("cluster info from %s: %+v", r.header.Get(headerNode), info)
	}
}

func mustConsistency(t *testing.T, q string) domain.Consistency {
	c, err := domain.ParseConsistency(strings.TrimPrefix(q, "?consistency="))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestForwardFailures(t *testing.T) {
	_, follower := leaderAndFollower(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	// Nothing reached the leader: unavailable.
	follower.cl.setLeader(closed)
	follower.do("POST", "/v1/resources/v1/reservations", follower.alice, "").wantProblem(t, 503, "unavailable")
	follower.do("GET", "/v1/resources/v1", follower.alice, "").wantProblem(t, 503, "unavailable")

	// The leader took the request and the connection broke: for a write,
	// the outcome is unknown; a read is just unavailable.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer broken.Close()
	follower.cl.setLeader(broken.URL)
	r := follower.do("POST", "/v1/resources/v1/reservations", follower.alice, "", headerRequestID, "req-7")
	r.wantProblem(t, 503, "outcome_unknown")
	if r.header.Get(headerRequestID) != "req-7" || r.header.Get(headerNode) != "n2" {
		t.Fatalf("headers %v", r.header)
	}
	follower.do("GET", "/v1/resources/v1", follower.alice, "").wantProblem(t, 503, "unavailable")
}

func TestMembershipRoutes(t *testing.T) {
	e := newEnv(t, nil)
	var info ClusterInfo
	e.do("POST", "/v1/cluster/nodes", e.admin, `{"id":"n2","raft_addr":"127.0.0.1:7002","http_addr":"127.0.0.1:8082"}`).want(t, http.StatusOK, &info)
	e.do("POST", "/v1/cluster/nodes", e.admin, `{"id":"n3","raft_addr":"10.0.0.3:7000","http_addr":"https://db3.example:8443/"}`).want(t, http.StatusOK, nil)
	want := []domain.Member{
		{ID: "n2", RaftAddr: "127.0.0.1:7002", HTTPAddr: "http://127.0.0.1:8082"},
		{ID: "n3", RaftAddr: "10.0.0.3:7000", HTTPAddr: "https://db3.example:8443"},
	}
	if !reflect.DeepEqual(e.cl.added, want) || info.ID != "n1" {
		t.Fatalf("added %+v, answered %+v", e.cl.added, info)
	}
	for _, body := range []string{
		``, `{}`, `{"id":"n 2","raft_addr":"a:1","http_addr":"a:2"}`,
		`{"id":"n2","raft_addr":"a","http_addr":"a:2"}`, `{"id":"n2","raft_addr":"a:0","http_addr":"a:2"}`,
		`{"id":"n2","raft_addr":"a:1","http_addr":"ftp://a:2"}`, `{"id":"n2","raft_addr":"a:1","http_addr":"http://a:2/x"}`,
		`{"id":"n2","raft_addr":"a:1","http_addr":"http://a"}`, `{"id":"n2","raft_addr":"a:1","http_addr":"a:2","x":1}`,
	} {
		e.do("POST", "/v1/cluster/nodes", e.admin, body).wantProblem(t, 400, "invalid_argument")
	}
	e.do("DELETE", "/v1/cluster/nodes/n2", e.admin, "").want(t, http.StatusNoContent, nil)
	if !reflect.DeepEqual(e.cl.removed, []string{"n2"}) {
		t.Fatalf("removed %v", e.cl.removed)
	}
	e.do("DELETE", "/v1/cluster/nodes/n%202", e.admin, "").wantProblem(t, 400, "invalid_argument")
	e.cl.mu.Lock()
	e.cl.memErr = fmt.Errorf("node n9: %w", domain.ErrNotFound)
	e.cl.mu.Unlock()
	e.do("DELETE", "/v1/cluster/nodes/n9", e.admin, "").wantProblem(t, 404, "not_found")
	e.cl.mu.Lock()
	e.cl.memErr = fmt.Errorf("leader lost: %w", domain.ErrOutcomeUnknown)
	e.cl.mu.Unlock()
	e.do("POST", "/v1/cluster/nodes", e.admin, `{"id":"n4","raft_addr":"a:1","http_addr":"a:2"}`).wantProblem(t, 503, "outcome_unknown")

	// On a follower, membership changes go to the leader.
	leader, follower := leaderAndFollower(t)
	follower.do("DELETE", "/v1/cluster/nodes/n3", follower.admin, "").want(t, http.StatusNoContent, nil)
	if len(follower.cl.removed) != 0 || !reflect.DeepEqual(leader.cl.removed, []string{"n3"}) {
		t.Fatalf("removed on the follower %v, on the leader %v", follower.cl.removed, leader.cl.removed)
	}
}

func TestClusterInfoAsksPeers(t *testing.T) {
	peer := newEnv(t, func(c *Config) { c.NodeID = "n2" })
	peer.cl.nodes = []NodeInfo{{ID: "n1", State: "leader"}, {ID: "n2", State: "follower"}}
	e := newEnv(t, nil)
	e.cl.nodes = []NodeInfo{
		{ID: "n1", HTTPAddr: e.url, Voter: true, State: "leader"},
		{ID: "n2", HTTPAddr: peer.url, Voter: true, State: "unknown"},
		{ID: "n3", HTTPAddr: "http://127.0.0.1:1", Voter: true, State: "unknown"},
		{ID: "n4", Voter: true, State: "unknown"},
	}
	var info ClusterInfo
	e.do("GET", "/v1/cluster?hash=true", e.admin, "").want(t, http.StatusOK, &info)
	var states []string
	for _, n := range info.Nodes {
		states = append(states, n.State)
	}
	if !reflect.DeepEqual(states, []string{"leader", "follower", "unknown", "unknown"}) || info.StateHash != "abc123" {
		t.Fatalf("states %v, hash %q", states, info.StateHash)
	}
	var plain ClusterInfo
	e.do("GET", "/v1/cluster", e.admin, "").want(t, http.StatusOK, &plain)
	if plain.StateHash != "" {
		t.Fatal("state hash without ?hash=true")
	}
	e.do("GET", "/v1/cluster?hash=maybe", e.bob, "").wantProblem(t, 400, "invalid_argument")
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080", "http://h:1/": "http://h:1", "https://h:443": "https://h:443",
		"[::1]:80": "http://[::1]:80",
	} {
		if got, err := NormalizeBaseURL(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "h", "http://h", "ftp://h:1", "http://h:1/p", "http://h:1?q", "http://u@h:1"} {
		if _, err := NormalizeBaseURL(in); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%q: %v", in, err)
		}
	}
}
