package actors

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"allot/actors/domain"
)

// ctlLog is a Log whose every fault the test controls: while hold is set,
// proposals wait until the test resolves them one by one (applied or not,
// outcome reported or not, in any order); the lease and the leadership
// check answer what the test says; the barrier can be blocked.
type ctlLog struct {
	mu      sync.Mutex
	st      *domain.State
	waiting []*ctlProposal
	arrived chan struct{} // a token per held proposal

	hold         atomic.Bool
	lease        atomic.Bool
	verifyErr    atomic.Value // error wrapper
	verifies     atomic.Int64
	barrierGate  chan struct{} // closed: barriers pass
	barrierMu    sync.Mutex
	barriers     atomic.Int64 // barriers started (each has taken the gate it waits on)
	barrierErr   atomic.Value // errBox: barriers fail at once with this error when set
	refusedRules atomic.Int64
}

type ctlProposal struct {
	data []byte
	done func([]error, error)
	once sync.Once
}

type errBox struct{ err error }

func newCtlLog() *ctlLog {
	l := &ctlLog{st: domain.NewState(), arrived: make(chan struct{}, 1024), barrierGate: make(chan struct{})}
	close(l.barrierGate)
	l.lease.Store(true)
	l.verifyErr.Store(errBox{})
	l.barrierErr.Store(errBox{})
	return l
}

func newCtlEngine(t *testing.T, cfg Config) (*Engine, *ctlLog) {
	t.Helper()
	log := newCtlLog()
	e := New(log, cfg, Hooks{})
	e.SetLeader(true)
	t.Cleanup(e.Close)
	return e, log
}

func (l *ctlLog) Propose(b *domain.Batch, done func([]error, error)) {
	p := &ctlProposal{data: domain.EncodeBatch(nil, &domain.Batch{Term: 1, Events: b.Events}), done: done} // stamped, as a ready leader's are
	if !l.hold.Load() {
		go func() { p.finish(l.apply(p), nil) }()
		return
	}
	l.mu.Lock()
	l.waiting = append(l.waiting, p)
	l.mu.Unlock()
	l.arrived <- struct{}{}
}

func (p *ctlProposal) finish(results []error, err error) {
	p.once.Do(func() { p.done(results, err) })
}

// apply applies a proposal to the committed state.
func (l *ctlLog) apply(p *ctlProposal) []error {
	b, err := domain.DecodeBatch(p.data)
	if err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res := make([]error, len(b.Events))
	for i := range b.Events {
		res[i] = l.st.Apply(&b.Events[i])
		if res[i] != nil && !errors.Is(res[i], domain.ErrDuplicateKey) {
			l.refusedRules.Add(1)
		}
	}
	return res
}

// next waits for the next held proposal.
func (l *ctlLog) next(t *testing.T) *ctlProposal {
	t.Helper()
	select {
	case <-l.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no proposal arrived")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.waiting[0]
	l.waiting = l.waiting[1:]
	return p
}

// commit applies p and reports it applied.
func (l *ctlLog) commit(p *ctlProposal) { p.finish(l.apply(p), nil) }

// commitUnseen applies p but reports the outcome unknown (an entry that
// outlived the wait for it, then committed).
func (l *ctlLog) commitUnseen(p *ctlProposal) {
	l.apply(p)
	p.finish(nil, domain.ErrOutcomeUnknown)
}

// lose reports p unknown and never applies it (an entry lost with its leader).
func (l *ctlLog) lose(p *ctlProposal) { p.finish(nil, domain.ErrOutcomeUnknown) }

func (l *ctlLog) View(fn func(*domain.State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.st)
}

// blockBarriers makes barriers wait until the returned func is called.
func (l *ctlLog) blockBarriers() (release func()) {
	gate := make(chan struct{})
	l.barrierMu.Lock()
	l.barrierGate = gate
	l.barrierMu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func (l *ctlLog) Barrier(ctx context.Context) error {
	l.barrierMu.Lock()
	gate := l.barrierGate
	l.barrierMu.Unlock()
	l.barriers.Add(1)
	if err := l.barrierErr.Load().(errBox).err; err != nil {
		return err
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *ctlLog) LeaseValid() bool { return l.lease.Load() }

func (l *ctlLog) VerifyLeader(ctx context.Context) error {
	l.verifies.Add(1)
	return l.verifyErr.Load().(errBox).err
}

func (l *ctlLog) status(rid string) domain.Status {
	var s domain.Status
	l.View(func(st *domain.State) { r, _ := st.Reservation(rid); s = r.Status })
	return s
}

// async runs fn on its own goroutine and hands back its answer.
func async[T any](fn func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() { v, err := fn(); ch <- result[T]{v, err} }()
	return ch
}

type result[T any] struct {
	v   T
	err error
}

// await returns the answer or fails after d.
func await[T any](t *testing.T, ch <-chan result[T], d time.Duration) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatal("no answer")
		panic("unreachable")
	}
}

// silent fails if ch answers within d: the answer must still be held back.
func silent[T any](t *testing.T, ch <-chan result[T], d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered too early: %+v %v", r.v, r.err)
	case <-time.After(d):
	}
}
