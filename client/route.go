package client

import (
	"net/url"
	"strings"
	"sync"
	"time"
)

// downFor is how long a node that could not be reached is passed over for
// the leader's traffic, so that writes do not each knock on it first.
const downFor = 2 * time.Second

// router picks the node of each attempt. Writes and leader reads go to the
// leader when the client knows its address: a follower would forward them,
// one hop more. Everything else, and writes while no leader is known, goes
// to the current node of the list, which moves on when a node fails.
//
// The leader is learnt from answers: a forwarded request is answered by
// the leader, whose id is in X-Allot-Node. Its address is learnt from
// answers a node gave for itself (stale reads, events, /v1/cluster) and
// from the member list of GET /v1/cluster, which the client asks when it
// knows the leader's id but not its address.
type router struct {
	nodes  []string
	scheme string // of the first node, for addresses given as host:port

	mu        sync.Mutex
	next      int                  // index into nodes
	leader    string               // node id; "" unknown
	addrs     map[string]string    // node id -> base URL
	downUntil map[string]time.Time // base URL -> when to try it again as the leader
	refresh   bool                 // leader's address unknown: ask /v1/cluster
}

func newRouter(nodes []string) *router {
	r := &router{nodes: nodes, addrs: make(map[string]string), downUntil: make(map[string]time.Time)}
	if u, err := url.Parse(nodes[0]); err == nil {
		r.scheme = u.Scheme
	}
	return r
}

// pick is the base URL of the next attempt. toLeader: a write or a read
// the leader must answer.
func (r *router) pick(toLeader bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if toLeader && r.leader != "" {
		if a := r.addrs[r.leader]; a != "" && time.Now().After(r.downUntil[a]) {
			return a
		}
	}
	return r.nodes[r.next]
}

// leaderURL is the leader's base URL if known.
func (r *router) leaderURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader == "" {
		return ""
	}
	return r.addrs[r.leader]
}

// needRefresh reports (once) that the leader's address should be looked up.
func (r *router) needRefresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.refresh
	r.refresh = false
	return v
}

// answered records an answer from base by node. self: the node answered
// for itself (never forwarded); leads: the answer came from the leader (a
// successful write or leader read).
func (r *router) answered(base, node string, self, leads bool) {
	if node == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if self {
		r.addrs[node] = base
	}
	if leads && node != r.leader {
		r.leader = node
		if r.addrs[node] == "" {
			r.refresh = true
		}
	}
}

// failed records that base could not be reached or could not serve
// (unavailable): the leader is forgotten if it was there, and the list
// moves on if base is its current node.
func (r *router) failed(base string, unreachable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader != "" && r.addrs[r.leader] == base {
		r.leader = ""
	}
	if unreachable {
		r.downUntil[base] = time.Now().Add(downFor)
	}
	if r.nodes[r.next] == base {
		r.next = (r.next + 1) % len(r.nodes)
	}
}

// learn records a /v1/cluster answer: every member's address and the
// leader.
func (r *router) learn(info *ClusterInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range info.Nodes {
		if a := r.baseURL(n.HTTPAddr); a != "" {
			r.addrs[n.ID] = a
		}
	}
	if info.Leader != nil && info.Leader.ID != "" {
		r.leader = info.Leader.ID
		if a := r.baseURL(info.Leader.HTTPAddr); a != "" {
			r.addrs[info.Leader.ID] = a
		}
	}
}

// baseURL turns an advertised http_addr ("http://h:p" or "h:p") into a
// base URL, the configured one when it names the same host and port.
func (r *router) baseURL(addr string) string {
	if addr == "" {
		return ""
	}
	if !strings.Contains(addr, "://") {
		addr = r.scheme + "://" + addr
	}
	u, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || u.Host == "" {
		return ""
	}
	for _, n := range r.nodes {
		if nu, err := url.Parse(n); err == nil && strings.EqualFold(nu.Host, u.Host) {
			return n
		}
	}
	return u.Scheme + "://" + u.Host
}
