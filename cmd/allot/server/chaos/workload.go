package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"allot/bench/linearize"
)

// Resource is one bookable thing of the workload: its id, the body that
// creates it and the spec the checker models it with.
type Resource struct {
	ID   string
	Body map[string]any
	Spec linearize.Spec
	// Nights a room reservation may span (YYYY-MM-DD, in order); empty for
	// vouchers and slots.
	Nights []string
}

// DefaultResources are a scarce voucher, a slot and a small room type, all
// with short holds so that expiries happen during a run.
func DefaultResources() []Resource {
	day := func(i int) string { return time.Date(2027, 3, 1+i, 0, 0, 0, 0, time.UTC).Format("2006-01-02") }
	return []Resource{
		{ID: "voucher", Body: map[string]any{"kind": "voucher", "capacity": 12, "per_user_limit": 1, "hold_seconds": 2},
			Spec: linearize.Spec{Kind: "voucher", Capacity: 12, PerUserLimit: 1, Hold: 2 * time.Second}},
		{ID: "slot", Body: map[string]any{"kind": "slot", "capacity": 6, "per_user_limit": 1, "hold_seconds": 3},
			Spec: linearize.Spec{Kind: "slot", Capacity: 6, PerUserLimit: 1, Hold: 3 * time.Second}},
		{ID: "room", Body: map[string]any{"kind": "room", "hold_seconds": 2,
			"inventory": []map[string]any{{"from": day(0), "to": day(3), "rooms": 3}}},
			Spec:   linearize.Spec{Kind: "room", Inventory: map[string]int64{day(0): 3, day(1): 3, day(2): 3}, Hold: 2 * time.Second},
			Nights: []string{day(0), day(1), day(2), day(3)}},
	}
}

// Workload is a crowd of clients, each a goroutine doing one request at a
// time: reserving (with an Idempotency-Key, retried with the same key while
// the outcome is unknown), confirming and cancelling its own reservations,
// and reading resources at leader and linearizable consistency. Every
// request is recorded.
type Workload struct {
	// Nodes returns the base URLs clients may send to now (any node;
	// followers forward to the leader).
	Nodes func() []string
	// Token returns a bearer token for user (admin: with the admin role).
	Token     func(user string, admin bool) string
	Resources []Resource
	Clients   int // concurrent clients
	Users     int // distinct users the clients book for
	Seed      uint64
	// Timeout bounds one request; past it the outcome is unknown.
	Timeout time.Duration
	// Think is the most a client waits between two requests (uniformly
	// from 0); 0 means 10 ms, negative none. A crowd at full speed makes
	// histories of hundreds of thousands of operations, which the checker's
	// search (its memory grows with history length) cannot afford.
	Think time.Duration
	// PatientTimeout, when set, is the timeout of every other client
	// instead: patient clients stay with a request stuck at a paused node
	// and see how it is answered when the node wakes up, while the others
	// give up and go on through the rest of the cluster.
	PatientTimeout time.Duration

	rec     *linearize.Recorder
	hc      *http.Client
	patient *http.Client
	tokens  sync.Map // user → token
	stats   Stats
}

// Stats count what the crowd did.
type Stats struct {
	Requests, Created, Unknown, Transport atomic.Int64
}

func (w *Workload) init() {
	if w.Clients == 0 {
		w.Clients = 16
	}
	if w.Users == 0 {
		w.Users = 40
	}
	if w.Timeout == 0 {
		w.Timeout = 3 * time.Second
	}
	if w.Think == 0 {
		w.Think = 10 * time.Millisecond
	}
	if w.rec == nil {
		w.rec = linearize.NewRecorder()
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		w.hc = &http.Client{Timeout: w.Timeout, Transport: tr}
		w.patient = w.hc
		if w.PatientTimeout > 0 {
			w.patient = &http.Client{Timeout: w.PatientTimeout, Transport: tr}
		}
	}
}

// Recorder is where the workload records; History() of it goes to Check.
func (w *Workload) Recorder() *linearize.Recorder { w.init(); return w.rec }

// Stats reports the counts so far.
func (w *Workload) Stats() *Stats { return &w.stats }

// Specs are the resources' specs for linearize.Options.
func (w *Workload) Specs() map[string]linearize.Spec {
	m := make(map[string]linearize.Spec, len(w.Resources))
	for _, r := range w.Resources {
		m[r.ID] = r.Spec
	}
	return m
}

func (w *Workload) token(user string, admin bool) string {
	k := user
	if admin {
		k = "admin:" + user
	}
	if v, ok := w.tokens.Load(k); ok {
		return v.(string)
	}
	t := w.Token(user, admin)
	w.tokens.Store(k, t)
	return t
}

// Setup creates the resources (admin PUTs, retried until they answer 2xx or
// ctx ends).
func (w *Workload) Setup(ctx context.Context) error {
	w.init()
	for _, r := range w.Resources {
		for {
			resp, err := w.do(ctx, w.pick(nil), "PUT", "/v1/resources/"+r.ID, r.Body, w.token("admin", true), "")
			if err == nil && resp.status/100 == 2 {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create %s: %v (last answer %v)", r.ID, ctx.Err(), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// Run drives the crowd until ctx ends.
func (w *Workload) Run(ctx context.Context) {
	w.init()
	var wg sync.WaitGroup
	for i := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{w: w, id: i, rng: rand.New(rand.NewPCG(w.Seed, uint64(i)+1)), hc: w.hc}
			if i%2 == 1 {
				c.hc = w.patient
			}
			c.run(ctx)
		}()
	}
	wg.Wait()
}

// client is one goroutine of the crowd.
type client struct {
	w    *Workload
	hc   *http.Client
	id   int
	rng  *rand.Rand
	n    int
	mine []owned // reservations this client was told about
}

type owned struct {
	resource, id, user string
}

func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		if c.w.Think > 0 {
			time.Sleep(time.Duration(c.rng.Int64N(int64(c.w.Think))))
		}
		r := &c.w.Resources[c.rng.IntN(len(c.w.Resources))]
		switch p := c.rng.IntN(100); {
		case p < 45:
			c.reserve(ctx, r)
		case p < 60 && len(c.mine) > 0:
			c.transition(ctx, linearize.OpConfirm)
		case p < 70 && len(c.mine) > 0:
			c.transition(ctx, linearize.OpCancel)
		case p < 80 && len(c.mine) > 0:
			c.readReservation(ctx)
		default:
			c.readResource(ctx, r)
		}
	}
}

// reserve books once for a random user, retrying with the same key while
// the answer is unknown or the key is still in progress, as a careful client
// does.
func (c *client) reserve(ctx context.Context, r *Resource) {
	user := fmt.Sprintf("u%d", c.rng.IntN(c.w.Users))
	c.n++
	key := fmt.Sprintf("c%d-%d", c.id, c.n)
	in := linearize.Input{Op: linearize.OpReserve, Client: c.id, Resource: r.ID, User: user, Key: key, Quantity: 1}
	body := map[string]any{"quantity": 1}
	if len(r.Nights) > 1 {
		a := c.rng.IntN(len(r.Nights) - 1)
		b := a + 1 + c.rng.IntN(len(r.Nights)-1-a)
		in.CheckIn, in.CheckOut = r.Nights[a], r.Nights[b]
		body["check_in"], body["check_out"] = in.CheckIn, in.CheckOut
	}
	for attempt := 0; attempt < 4 && ctx.Err() == nil; attempt++ {
		out := c.call(ctx, in, "POST", "/v1/resources/"+r.ID+"/reservations", body, user, false, key)
		if out.Status == http.StatusCreated && out.Reservation != nil {
			c.mine = append(c.mine, owned{resource: r.ID, id: out.Reservation.ID, user: user})
			return
		}
		if !out.IsUnknown() && out.Code != "request_in_progress" && out.Code != "unavailable" {
			return
		}
		time.Sleep(time.Duration(20+c.rng.IntN(80)) * time.Millisecond)
	}
}

func (c *client) transition(ctx context.Context, op linearize.Op) {
	o := c.mine[c.rng.IntN(len(c.mine))]
	verb := map[linearize.Op]string{linearize.OpConfirm: "confirm", linearize.OpCancel: "cancel"}[op]
	in := linearize.Input{Op: op, Client: c.id, Resource: o.resource, User: o.user, ID: o.id}
	c.call(ctx, in, "POST", "/v1/reservations/"+o.id+"/"+verb, nil, o.user, false, "")
}

func (c *client) readReservation(ctx context.Context) {
	o := c.mine[c.rng.IntN(len(c.mine))]
	in := linearize.Input{Op: linearize.OpReadReservation, Client: c.id, Resource: o.resource, User: o.user, ID: o.id}
	c.call(ctx, in, "GET", "/v1/reservations/"+o.id+c.consistency(), nil, o.user, false, "")
}

func (c *client) readResource(ctx context.Context, r *Resource) {
	user := fmt.Sprintf("u%d", c.rng.IntN(c.w.Users)) // spread over users: each has its own rate limit
	in := linearize.Input{Op: linearize.OpReadResource, Client: c.id, Resource: r.ID, User: user}
	c.call(ctx, in, "GET", "/v1/resources/"+r.ID+c.consistency(), nil, user, false, "")
}

// consistency picks a read level that promises linearizable reads: the
// default (leader) or read-index. Stale reads promise nothing to check.
func (c *client) consistency() string {
	if c.rng.IntN(2) == 0 {
		return "?consistency=linearizable"
	}
	return ""
}

// call sends one request to a random node and records it.
func (c *client) call(ctx context.Context, in linearize.Input, method, path string, body any, user string, admin bool, key string) linearize.Output {
	w := c.w
	w.stats.Requests.Add(1)
	p := w.rec.Call(in)
	resp, err := w.send(ctx, c.hc, w.pick(c.rng), method, path, body, w.token(user, admin), key)
	if err != nil {
		w.stats.Transport.Add(1)
		w.stats.Unknown.Add(1)
		p.Unknown()
		return linearize.Output{Unknown: true}
	}
	out := resp.output(in.Op)
	if out.IsUnknown() {
		w.stats.Unknown.Add(1)
	}
	if out.Status == http.StatusCreated && !out.Replayed {
		w.stats.Created.Add(1)
	}
	p.Return(out)
	return out
}

func (w *Workload) pick(rng *rand.Rand) string {
	nodes := w.Nodes()
	if len(nodes) == 0 {
		return ""
	}
	if rng == nil {
		return nodes[0]
	}
	return nodes[rng.IntN(len(nodes))]
}

type response struct {
	status   int
	replayed bool
	body     []byte
}

func (w *Workload) do(ctx context.Context, base, method, path string, body any, token, key string) (*response, error) {
	return w.send(ctx, w.hc, base, method, path, body, token, key)
}

func (w *Workload) send(ctx context.Context, hc *http.Client, base, method, path string, body any, token, key string) (*response, error) {
	if base == "" {
		return nil, fmt.Errorf("no node to send to")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true", body: b}, nil
}

// apiReservation is a reservation as the API renders it.
type apiReservation struct {
	ID        string    `json:"id"`
	Resource  string    `json:"resource_id"`
	User      string    `json:"user"`
	Quantity  int64     `json:"quantity"`
	Status    string    `json:"status"`
	CheckIn   string    `json:"check_in"`
	CheckOut  string    `json:"check_out"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (r apiReservation) model() *linearize.Reservation {
	return &linearize.Reservation{ID: r.ID, User: r.User, Quantity: r.Quantity, Status: r.Status,
		ExpiresAt: r.ExpiresAt, CheckIn: r.CheckIn, CheckOut: r.CheckOut}
}

// output turns an answer into what the checker models.
func (r *response) output(op linearize.Op) linearize.Output {
	out := linearize.Output{Status: r.status, Replayed: r.replayed}
	if r.status >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(r.body, &p) != nil || p.Code == "" {
			return linearize.Output{Unknown: true} // not one of ours (a proxy's page): unknown
		}
		out.Code = p.Code
		return out
	}
	switch op {
	case linearize.OpReadResource:
		var res struct {
			Available, Held, Confirmed int64
			Nights                     map[string]struct{ Rooms, Available int64 }
		}
		if err := json.Unmarshal(r.body, &res); err != nil {
			return linearize.Output{Unknown: true}
		}
		out.Counts = &linearize.Counts{Available: res.Available, Held: res.Held, Confirmed: res.Confirmed}
		if res.Nights != nil {
			out.Counts.Nights = make(map[string]linearize.NightCount, len(res.Nights))
			for d, n := range res.Nights {
				out.Counts.Nights[d] = linearize.NightCount{Rooms: n.Rooms, Available: n.Available}
			}
		}
	default:
		var res apiReservation
		if err := json.Unmarshal(r.body, &res); err != nil || res.ID == "" {
			return linearize.Output{Unknown: true}
		}
		out.Reservation = res.model()
	}
	return out
}
