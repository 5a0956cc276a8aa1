package scenario

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"allot/bench/loadgen"
	"allot/bench/verify"
)

// Retry policy for 429, 503, request_in_progress and transport errors:
// the same request with the same Idempotency-Key, up to maxAttempts times,
// after Retry-After (capped) or an exponential backoff with jitter.
const (
	maxAttempts   = 8
	baseBackoff   = 50 * time.Millisecond
	maxBackoff    = time.Second
	maxRetryAfter = 2 * time.Second
	maxExamples   = 5
)

// planner is one workload: it makes the resources and starts user flows.
// Its methods run on worker goroutines concurrently; state they share must
// be safe for that.
type planner interface {
	// limits are the limit groups the resources name (created first).
	limits() []LimitDef
	resources() []ResourceDef
	// start returns a new flow for a fresh user, or nil when the workload
	// has no users left.
	start(w *worker) *flow
	// retarget points f at another choice after a sold_out answer; false
	// means the user gives up.
	retarget(w *worker, f *flow) bool
	// elsewhere points f at another choice for a step that books again
	// (step.elsewhere): another doctor the same day, another voucher.
	elsewhere(w *worker, f *flow)
}

type weighted struct {
	p      planner
	weight int
}

// weightedPlan is a plan and how often users follow it.
type weightedPlan struct {
	plan   []step
	weight int
}

func pickPlan(rng *rand.Rand, plans []weightedPlan) []step {
	total := 0
	for _, p := range plans {
		total += p.weight
	}
	n := rng.IntN(total)
	for _, p := range plans {
		if n < p.weight {
			return p.plan
		}
		n -= p.weight
	}
	return plans[len(plans)-1].plan
}

func reservePath(id string) string { return "/v1/resources/" + id + "/reservations" }

// step is one request of a flow, sent a random think time in [0, think)
// after the previous answer.
type step struct {
	op    int
	think time.Duration
	key   string // Idempotency-Key (scoped by user)
	// elsewhere: a reserve aimed at another choice than the flow's last
	// one (planner.elsewhere), as a second booking or a rebooking.
	elsewhere bool
}

// target is what a reserve asks for.
type target struct {
	resource string
	path     string // POST path
	body     []byte // shared, never modified
	checkIn  string // rooms
	checkOut string
	qty      int64
}

// flow is one user's way through a plan.
type flow struct {
	p       planner
	user    string
	auth    string // "Bearer ..." of the user
	tgt     target
	choice  int    // the planner's index of tgt
	stay    int    // hotel: the index of the stay
	plan    []step // shared, never modified
	pos     int
	tries   int // reserve choices tried (sold_out moves on)
	attempt int // sends of the current step
	key     string
	ack     *verify.Ack // the latest reservation this flow got
	due     time.Time
	// perUserOnly: the limit groups of the flow's choices bound users only
	// (no capacity) and the user has no other flow, so a limit group
	// refusing the booking after this flow's own acknowledged cancel is
	// wrong: a correct server gave the share back when it said so.
	perUserOnly bool
}

// ledger is what one worker saw.
type ledger struct {
	acks          []*verify.Ack
	soldOut       map[verify.SoldOut]struct{}
	limitExceeded map[string]int64 // by limit group
	responses     int64
	unexpected    int64
	unknown       int64
	examples      []string
}

// worker plays flows for one loadgen worker: due follow-ups first, then
// new users. Only its goroutine touches it until the run ends.
type worker struct {
	s        *Scenario
	rng      *rand.Rand
	admin    string // "Bearer ..." of this worker's admin identity
	planners []weighted
	pending  flowHeap
	cur      *flow
	ledger   ledger
	answer   struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		ExpiresAt string `json:"expires_at"`
	}
}

func newWorker(s *Scenario, id int, planners []weighted) *worker {
	w := &worker{
		s:        s,
		rng:      rand.New(rand.NewPCG(s.env.Seed, uint64(id))),
		planners: append([]weighted(nil), planners...),
		ledger:   ledger{soldOut: make(map[verify.SoldOut]struct{}), limitExceeded: make(map[string]int64)},
	}
	tok, err := s.env.Mint(fmt.Sprintf("%s-admin-%d", s.env.Prefix, id), "admin")
	if err != nil {
		w.unexpected("minting an admin token: %v", err)
		w.planners = nil // nothing can be done without one
		return w
	}
	w.admin = "Bearer " + tok
	return w
}

// mintUser returns the Authorization header of a fresh user, minted once
// and reused for all that user's requests. A failure is counted; the
// user's requests then go without a token and are refused.
func (w *worker) mintUser(sub string) string {
	tok, err := w.s.env.Mint(sub, "user")
	if err != nil {
		w.unexpected("minting a token for %s: %v", sub, err)
		return ""
	}
	return "Bearer " + tok
}

func (w *worker) unexpected(format string, args ...any) {
	w.ledger.unexpected++
	if len(w.ledger.examples) < maxExamples {
		w.ledger.examples = append(w.ledger.examples, fmt.Sprintf(format, args...))
	}
}

// Next implements loadgen.WorkerSource.
func (w *worker) Next(now time.Time, c *loadgen.Call) time.Duration {
	if len(w.pending) > 0 && !w.pending[0].due.After(now) {
		w.cur = heap.Pop(&w.pending).(*flow)
		w.fill(c)
		return 0
	}
	if f := w.startFlow(); f != nil {
		w.cur = f
		w.fill(c)
		return 0
	}
	if len(w.pending) > 0 {
		return max(w.pending[0].due.Sub(now), time.Millisecond)
	}
	return loadgen.Exhausted
}

// startFlow picks a workload by weight and starts a user on it, dropping
// workloads that have no users left.
func (w *worker) startFlow() *flow {
	for len(w.planners) > 0 {
		total := 0
		for _, p := range w.planners {
			total += p.weight
		}
		n := w.rng.IntN(total)
		i := 0
		for ; n >= w.planners[i].weight; i++ {
			n -= w.planners[i].weight
		}
		if f := w.planners[i].p.start(w); f != nil {
			f.p = w.planners[i].p
			f.key = f.plan[0].key
			return f
		}
		w.planners = append(w.planners[:i], w.planners[i+1:]...)
	}
	return nil
}

// fill turns the current step of w.cur into a call.
func (w *worker) fill(c *loadgen.Call) {
	f := w.cur
	st := f.plan[f.pos]
	*c = loadgen.Call{Op: st.op, Method: http.MethodPost, Auth: f.auth, IdemKey: f.key}
	switch st.op {
	case OpReserve:
		c.Path, c.Body = f.tgt.path, f.tgt.body
	case OpConfirm:
		c.Path = "/v1/reservations/" + f.ack.ID + "/confirm"
	case OpCancel:
		c.Path = "/v1/reservations/" + f.ack.ID + "/cancel"
	case OpCheckIn:
		c.Path, c.Auth = "/v1/reservations/"+f.ack.ID+"/check-in", w.admin
	case OpComplete:
		c.Path, c.Auth = "/v1/reservations/"+f.ack.ID+"/complete", w.admin
	}
}

// Done implements loadgen.WorkerSource.
func (w *worker) Done(c *loadgen.Call, r *loadgen.Response, now time.Time) {
	f := w.cur
	w.cur = nil
	w.ledger.responses++
	if retryable(r) {
		if c.Op != OpReserve {
			// It may have happened, and the run may end before a retry
			// tells: from now on the target status is plausible.
			maybe(f.ack, targetStatus(c.Op))
		}
		f.attempt++
		if f.attempt < maxAttempts {
			w.schedule(f, now.Add(w.backoff(f.attempt, r.RetryAfter)))
			return
		}
		if c.Op == OpReserve {
			w.ledger.unknown++
		}
		return // give up on this user
	}
	f.attempt = 0
	var next bool
	if c.Op == OpReserve {
		next = w.reserved(f, r)
	} else {
		next = w.transitioned(f, c, r)
	}
	if next {
		w.advance(f, now)
	}
}

// reserved handles the final answer to a reserve and says whether the
// flow goes on.
func (w *worker) reserved(f *flow, r *loadgen.Response) bool {
	switch {
	case r.Status == http.StatusCreated:
		if err := w.decode(r); err != nil {
			w.unexpected("reserve %s: 201 with %v", f.tgt.resource, err)
			return false
		}
		f.ack = &verify.Ack{ID: w.answer.ID, ResourceID: f.tgt.resource, User: f.user, Key: f.key,
			Quantity: f.tgt.qty, Status: w.answer.Status}
		if w.answer.ExpiresAt != "" {
			f.ack.ExpiresAt, _ = time.Parse(time.RFC3339Nano, w.answer.ExpiresAt) // unparsable: not checked
		}
		w.ledger.acks = append(w.ledger.acks, f.ack)
		return true
	case r.Status == http.StatusConflict && r.Code == "sold_out":
		w.ledger.soldOut[verify.SoldOut{ResourceID: f.tgt.resource, CheckIn: f.tgt.checkIn, CheckOut: f.tgt.checkOut, Quantity: f.tgt.qty}] = struct{}{}
		if f.p.retarget(w, f) {
			f.tries++
			f.key = f.plan[f.pos].key + strconv.Itoa(f.tries)
			w.schedule(f, time.Time{})
			return false
		}
		return holds(f.ack) // a second try of a user who already holds one goes on
	case r.Status == http.StatusConflict && r.Code == "limit_exceeded":
		if r.Limit != "" {
			w.ledger.limitExceeded[r.Limit]++
			if f.perUserOnly && f.ack != nil && f.ack.Status == verify.StatusCancelled && len(f.ack.Maybe) == 0 {
				w.unexpected("reserve %s: %s refused %s although the user's only booking, %s, was cancelled", f.tgt.resource, r.Limit, f.user, f.ack.ID)
				return false
			}
		}
		// A user who still holds the earlier booking goes on with it; one
		// whose earlier booking is gone (a quota refusing a rebooking) stops.
		return holds(f.ack)
	}
	w.unexpected("reserve %s: %s", f.tgt.resource, describe(r))
	return false
}

// holds reports whether a flow's latest booking is one it can go on with
// (held or confirmed), not one it cancelled before booking again.
func holds(a *verify.Ack) bool {
	return a != nil && (a.Status == verify.StatusHeld || a.Status == verify.StatusConfirmed)
}

// transitioned handles the final answer to a transition and says whether
// the flow goes on.
func (w *worker) transitioned(f *flow, c *loadgen.Call, r *loadgen.Response) bool {
	switch {
	case r.Status == http.StatusOK:
		if err := w.decode(r); err != nil || w.answer.Status == "" {
			w.unexpected("%s %s: 200 with %v", OpNames()[c.Op], f.ack.ID, err)
			return false
		}
		f.ack.Status = w.answer.Status
		return true
	case r.Status == http.StatusConflict && (r.Code == "expired" || r.Code == "invalid_state") && f.ack.Status == verify.StatusHeld:
		return false // the hold ran out before the user got round to it
	}
	w.unexpected("%s %s (%s): %s", OpNames()[c.Op], f.ack.ID, f.ack.Status, describe(r))
	return false
}

// advance moves f to its next step, if any, after its think time.
func (w *worker) advance(f *flow, now time.Time) {
	for f.pos++; f.pos < len(f.plan); f.pos++ {
		st := f.plan[f.pos]
		if st.op != OpReserve && f.ack == nil {
			continue // nothing to move on
		}
		f.key = st.key
		if st.elsewhere {
			f.p.elsewhere(w, f)
			f.tries = 0
		}
		if st.op == OpCheckIn || st.op == OpComplete {
			// Sent as the worker's admin: the key must be unique per admin.
			f.key = f.user + "-" + st.key
		}
		due := now
		if st.think > 0 {
			due = now.Add(time.Duration(w.rng.Int64N(int64(st.think))))
		}
		w.schedule(f, due)
		return
	}
}

func (w *worker) schedule(f *flow, due time.Time) {
	f.due = due
	heap.Push(&w.pending, f)
}

// backoff is how long to wait before attempt n (n >= 1).
func (w *worker) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, maxRetryAfter)
	}
	d := min(baseBackoff<<(n-1), maxBackoff)
	return d/2 + time.Duration(w.rng.Int64N(int64(d)))
}

func (w *worker) decode(r *loadgen.Response) error {
	w.answer.ID, w.answer.Status, w.answer.ExpiresAt = "", "", ""
	if err := json.Unmarshal(r.Body, &w.answer); err != nil {
		return err
	}
	if w.answer.ID == "" {
		return fmt.Errorf("no reservation id")
	}
	return nil
}

// retryable reports answers after which the same request may be sent again
// with the same Idempotency-Key: nothing was decided, or the outcome is
// unknown and the retry will tell.
func retryable(r *loadgen.Response) bool {
	switch {
	case r.Status == 0, r.Status == http.StatusTooManyRequests, r.Status == http.StatusServiceUnavailable:
		return true
	case r.Status == http.StatusConflict && r.Code == "request_in_progress":
		return true
	}
	return false
}

// maybe adds status to the ones a's reservation may be in.
func maybe(a *verify.Ack, status string) {
	for _, m := range a.Maybe {
		if m == status {
			return
		}
	}
	a.Maybe = append(a.Maybe, status)
}

func targetStatus(op int) string {
	switch op {
	case OpConfirm:
		return verify.StatusConfirmed
	case OpCancel:
		return verify.StatusCancelled
	case OpCheckIn:
		return verify.StatusCheckedIn
	case OpComplete:
		return verify.StatusCompleted
	}
	return ""
}

func describe(r *loadgen.Response) string {
	if r.Status == 0 {
		return fmt.Sprintf("%s: %v", r.Code, r.Err)
	}
	body := r.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("%d %s %s", r.Status, r.Code, body)
}

// flowHeap orders flows by due time.
type flowHeap []*flow

func (h flowHeap) Len() int           { return len(h) }
func (h flowHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h flowHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *flowHeap) Push(x any)        { *h = append(*h, x.(*flow)) }
func (h *flowHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return f
}
