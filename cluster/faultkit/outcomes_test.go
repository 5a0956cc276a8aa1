package faultkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"allot/actors"
	"allot/actors/domain"
)

// heldLog is an actors.Log whose proposals commit when the test says so.
type heldLog struct {
	mu       sync.Mutex
	proposed []*domain.Batch
	dones    []func([]error, error)
}

func (l *heldLog) Propose(b *domain.Batch, done func([]error, error)) {
	l.mu.Lock()
	l.proposed = append(l.proposed, b)
	l.dones = append(l.dones, done)
	l.mu.Unlock()
}

// commit applies proposal i: every event succeeds.
func (l *heldLog) commit(i int) {
	l.mu.Lock()
	b, done := l.proposed[i], l.dones[i]
	l.mu.Unlock()
	go done(make([]error, len(b.Events)), nil)
}

func (l *heldLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.proposed)
}

func (*heldLog) View(func(*domain.State))           {}
func (*heldLog) Barrier(context.Context) error      { return nil }
func (*heldLog) LeaseValid() bool                   { return true }
func (*heldLog) VerifyLeader(context.Context) error { return nil }

var _ actors.Log = (*heldLog)(nil)

type outcome struct {
	results []error
	err     error
	at      time.Time
}

func propose(u *UnknownOutcomes) <-chan outcome {
	ch := make(chan outcome, 1)
	u.Propose(&domain.Batch{Events: []domain.Event{{Type: domain.EvSetMember}}}, func(r []error, err error) {
		ch <- outcome{r, err, time.Now()}
	})
	return ch
}

func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome")
	}
	return outcome{}
}

func TestUnknownOutcomesHidesTheNextCommits(t *testing.T) {
	inner := &heldLog{}
	u := NewUnknownOutcomes(inner, 1)
	u.FailNext(1)
	first, second := propose(u), propose(u)
	if inner.count() != 2 {
		t.Fatalf("%d batches reached the log, want both", inner.count())
	}
	inner.commit(0)
	inner.commit(1)
	if o := await(t, first); !errors.Is(o.err, domain.ErrOutcomeUnknown) || o.results != nil {
		t.Fatalf("first: %+v, want outcome unknown", o)
	}
	if o := await(t, second); o.err != nil || len(o.results) != 1 {
		t.Fatalf("second: %+v, want its real outcome", o)
	}
	if st := u.Stats(); st.Proposals != 2 || st.Unknown != 1 || st.Committed != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnknownOutcomesAtOnceAnswersBeforeTheCommit(t *testing.T) {
	inner := &heldLog{}
	u := NewUnknownOutcomes(inner, 1)
	u.SetTiming(AtOnce)
	u.FailNext(1)
	ch := propose(u)
	if o := await(t, ch); !errors.Is(o.err, domain.ErrOutcomeUnknown) {
		t.Fatalf("%+v, want outcome unknown while the entry is uncommitted", o)
	}
	if st := u.Stats(); st.Committed != 0 {
		t.Fatalf("stats %+v before the commit", st)
	}
	inner.commit(0)
	waitUntil(t, func() bool { return u.Stats().Committed == 1 })
	select {
	case o := <-ch:
		t.Fatalf("done called twice: %+v", o)
	default:
	}
}

func TestUnknownOutcomesDelaysTheAnswer(t *testing.T) {
	inner := &heldLog{}
	u := NewUnknownOutcomes(inner, 1)
	const d = 150 * time.Millisecond
	u.SetDelay(d)
	u.FailNext(1)
	ch := propose(u)
	committed := time.Now()
	inner.commit(0)
	o := await(t, ch)
	if !errors.Is(o.err, domain.ErrOutcomeUnknown) || o.at.Sub(committed) < d {
		t.Fatalf("%+v %v after the commit; want unknown after at least %v", o.err, o.at.Sub(committed), d)
	}
}

func TestUnknownOutcomesRateIsSeeded(t *testing.T) {
	pattern := func(seed uint64) []bool {
		inner := &heldLog{}
		u := NewUnknownOutcomes(inner, seed)
		u.SetRate(0.3)
		var out []bool
		for i := range 300 {
			ch := propose(u)
			inner.commit(i)
			out = append(out, errors.Is(await(t, ch).err, domain.ErrOutcomeUnknown))
		}
		if st := u.Stats(); st.Unknown < 50 || st.Unknown > 130 {
			t.Fatalf("%d of 300 hidden at p=0.3", st.Unknown)
		}
		return out
	}
	a, b := pattern(7), pattern(7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 hid proposal %d once and not the other time", i)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
