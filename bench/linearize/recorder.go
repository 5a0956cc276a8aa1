package linearize

import (
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder records the operations of many concurrent clients. Timestamps
// come from the monotonic clock, as offsets from the recorder's start; wall
// times the server shows (expires_at) are placed on the same axis through
// the wall reading taken at the start. All methods are safe for concurrent
// use.
type Recorder struct {
	epoch time.Time    // wall (and monotonic) time at offset 0
	clock func() int64 // nanoseconds since epoch
	mu    sync.Mutex   // guards ops
	ops   []*Pending   // in call order
}

// Pending is an operation that was called and has not been recorded as
// returned yet.
type Pending struct {
	r      *Recorder
	in     Input
	call   int64
	ret    int64
	out    Output
	closed bool
}

// Invocation is the Input of a porcupine.Operation in a History: what the
// client asked, with the times the model needs (porcupine does not hand
// them to the model).
type Invocation struct {
	Input
	Call, Return int64 // nanoseconds since History.Epoch; Return of an unknown outcome: end of history
	// GaveUp is when the client stopped waiting for an unknown outcome
	// (Options.UnknownHorizon counts from it); the Return otherwise.
	GaveUp int64
}

// History is what a Recorder saw, ready for Check.
type History struct {
	// Epoch is the wall time at offset 0: expires_at times in outputs are
	// placed on the axis of Call and Return by subtracting it.
	Epoch time.Time
	// Operations have Input *Invocation and Output Output.
	Operations []porcupine.Operation
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder {
	epoch := time.Now()
	return newRecorder(epoch, func() int64 { return int64(time.Since(epoch)) })
}

// newRecorder lets tests drive the clock.
func newRecorder(epoch time.Time, clock func() int64) *Recorder {
	return &Recorder{epoch: epoch, clock: clock}
}

// Call records that in is being sent now. Finish it with Return or Unknown.
func (r *Recorder) Call(in Input) *Pending {
	p := &Pending{r: r, in: in}
	r.mu.Lock()
	defer r.mu.Unlock()
	p.call = r.clock()
	r.ops = append(r.ops, p)
	return p
}

// Return records the answer the client got. An answer that IsUnknown (no
// status, 503 outcome_unknown, another 5xx) counts as an unknown outcome.
// Only the first Return or Unknown of a Pending counts.
func (p *Pending) Return(out Output) {
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	if p.closed {
		return
	}
	p.ret = p.r.clock()
	p.out = out
	p.closed = true
}

// Unknown records that the client does not know the outcome (a timeout, a
// transport error): the operation may or may not have happened.
func (p *Pending) Unknown() { p.Return(Output{Unknown: true}) }

// History returns the operations recorded so far. Operations still pending
// count as unknown outcomes. An unknown outcome returns after every other
// operation (the end of the history), so the checker may place its effect
// anywhere after its call, or nowhere.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.clock()
	for _, p := range r.ops {
		end = max(end, p.ret)
	}
	end++
	h := History{Epoch: r.epoch, Operations: make([]porcupine.Operation, 0, len(r.ops))}
	for _, p := range r.ops {
		out, ret := p.out, p.ret
		if !p.closed {
			out, ret = Output{Unknown: true}, end
		}
		gaveUp := ret
		if out.IsUnknown() {
			ret = end
		}
		h.Operations = append(h.Operations, porcupine.Operation{
			ClientId: p.in.Client,
			Input:    &Invocation{Input: p.in, Call: p.call, Return: ret, GaveUp: gaveUp},
			Call:     p.call,
			Output:   out,
			Return:   ret,
		})
	}
	return h
}
