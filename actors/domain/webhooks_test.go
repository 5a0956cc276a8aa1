package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"allot/actors/domain"
)

const hookSecret = "0123456789abcdef0123456789abcdef"

func hookSpec(id string) domain.Webhook {
	return domain.Webhook{ID: id, URL: "https://orders.example/hook", Secret: hookSecret, Types: []string{"reservation.*"}}
}

func putHook(w domain.Webhook, at int64) domain.Event {
	return domain.Event{Type: domain.EvPutWebhook, At: at, Hook: &domain.WebhookOp{Webhook: w}}
}

func hookEv(t domain.EventType, id string, at int64, op domain.WebhookOp) domain.Event {
	op.Webhook.ID = id
	return domain.Event{Type: t, At: at, Hook: &op}
}

// streamingState is a state whose log format numbers changes and whose
// event head is n: n resources put.
func streamingState(t *testing.T, n int) *domain.State {
	t.Helper()
	st := domain.NewState()
	st.RaiseLogFormat(domain.BatchV4)
	var ch domain.Change
	for i := range n {
		ev := domain.Event{Type: domain.EvPutResource, At: at(0), ResourceID: "r" + string(rune('a'+i)),
			Spec: domain.Spec{Kind: domain.KindVoucher, Capacity: 1}}
		if _, err := st.ApplyChange(&ev, &ch); err != nil {
			t.Fatal(err)
		}
	}
	if st.EventHead() != uint64(n) {
		t.Fatalf("event head %d, want %d", st.EventHead(), n)
	}
	return st
}

// TestWebhookRules: what each webhook event does to committed state, and
// what Apply refuses (leaving the state as it was).
func TestWebhookRules(t *testing.T) {
	long := strings.Repeat("x", domain.MaxWebhookURLLen)
	for _, c := range []struct {
		name   string
		events []domain.Event
		want   error // of the last event
		check  func(*testing.T, *domain.State)
	}{
		{name: "create at a cursor", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Delivered = 3; return w }(), at(1))},
			check: func(t *testing.T, st *domain.State) {
				w, ok := st.Webhook("h")
				if !ok || w.Delivered != 3 || w.Paused || w.CreatedAt != at(1) || w.UpdatedAt != at(1) || w.URL != "https://orders.example/hook" {
					t.Fatalf("%+v %v", w, ok)
				}
			}},
		{name: "update keeps the cursor and creation time", events: []domain.Event{
			putHook(func() domain.Webhook { w := hookSpec("h"); w.Delivered = 2; return w }(), at(1)),
			putHook(func() domain.Webhook { w := hookSpec("h"); w.URL = "http://other:8080/x"; w.Delivered = 0; return w }(), at(2)),
		}, check: func(t *testing.T, st *domain.State) {
			w, _ := st.Webhook("h")
			if w.Delivered != 2 || w.URL != "http://other:8080/x" || w.CreatedAt != at(1) || w.UpdatedAt != at(2) {
				t.Fatalf("%+v", w)
			}
		}},
		{name: "start past the head", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Delivered = 6; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "short secret", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Secret = "short"; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "ftp url", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.URL = "ftp://x/y"; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "url without host", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.URL = "https:///x"; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "url too long", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.URL = "https://h/" + long; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "unknown type", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Types = []string{"order.*"}; return w }(), at(1))},
			want: domain.ErrInvalidArgument},
		{name: "bad id", events: []domain.Event{putHook(hookSpec("a/b"), at(1))}, want: domain.ErrInvalidArgument},
		{name: "advance", events: []domain.Event{putHook(hookSpec("h"), at(1)),
			hookEv(domain.EvAdvanceWebhook, "h", at(2), domain.WebhookOp{From: 0, To: 4})},
			check: func(t *testing.T, st *domain.State) {
				if w, _ := st.Webhook("h"); w.Delivered != 4 || w.UpdatedAt != at(1) {
					t.Fatalf("%+v", w)
				}
			}},
		{name: "stale advance changes nothing", events: []domain.Event{putHook(hookSpec("h"), at(1)),
			hookEv(domain.EvReplayWebhook, "h", at(2), domain.WebhookOp{To: 1}),
			hookEv(domain.EvAdvanceWebhook, "h", at(3), domain.WebhookOp{From: 0, To: 4})},
			check: func(t *testing.T, st *domain.State) {
				if w, _ := st.Webhook("h"); w.Delivered != 1 {
					t.Fatalf("%+v", w)
				}
			}},
		{name: "advance of a deleted webhook changes nothing", events: []domain.Event{
			hookEv(domain.EvAdvanceWebhook, "gone", at(3), domain.WebhookOp{From: 0, To: 4})},
			check: func(t *testing.T, st *domain.State) {
				if st.WebhookCount() != 0 {
					t.Fatal("a webhook appeared")
				}
			}},
		{name: "advance past the head", events: []domain.Event{putHook(hookSpec("h"), at(1)),
			hookEv(domain.EvAdvanceWebhook, "h", at(2), domain.WebhookOp{From: 0, To: 6})}, want: domain.ErrInvalidArgument},
		{name: "advance backwards", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Delivered = 3; return w }(), at(1)),
			hookEv(domain.EvAdvanceWebhook, "h", at(2), domain.WebhookOp{From: 3, To: 2})}, want: domain.ErrInvalidArgument},
		{name: "replay backwards", events: []domain.Event{putHook(func() domain.Webhook { w := hookSpec("h"); w.Delivered = 5; return w }(), at(1)),
			hookEv(domain.EvReplayWebhook, "h", at(2), domain.WebhookOp{To: 0})},
			check: func(t *testing.T, st *domain.State) {
				if w, _ := st.Webhook("h"); w.Delivered != 0 || w.UpdatedAt != at(2) {
					t.Fatalf("%+v", w)
				}
			}},
		{name: "replay past the head", events: []domain.Event{putHook(hookSpec("h"), at(1)),
			hookEv(domain.EvReplayWebhook, "h", at(2), domain.WebhookOp{To: 9})}, want: domain.ErrInvalidArgument},
		{name: "replay of an unknown webhook", events: []domain.Event{hookEv(domain.EvReplayWebhook, "h", at(2), domain.WebhookOp{To: 1})},
			want: domain.ErrNotFound},
		{name: "pause and resume", events: []domain.Event{putHook(hookSpec("h"), at(1)),
			hookEv(domain.EvPauseWebhook, "h", at(2), domain.WebhookOp{Paused: true})},
			check: func(t *testing.T, st *domain.State) {
				if w, _ := st.Webhook("h"); !w.Paused {
					t.Fatalf("%+v", w)
				}
				ev := hookEv(domain.EvPauseWebhook, "h", at(3), domain.WebhookOp{Paused: false})
				if err := st.Apply(&ev); err != nil {
					t.Fatal(err)
				}
				if w, _ := st.Webhook("h"); w.Paused {
					t.Fatalf("%+v", w)
				}
			}},
		{name: "pause of an unknown webhook", events: []domain.Event{hookEv(domain.EvPauseWebhook, "h", at(2), domain.WebhookOp{Paused: true})},
			want: domain.ErrNotFound},
		{name: "delete", events: []domain.Event{putHook(hookSpec("h"), at(1)), hookEv(domain.EvDeleteWebhook, "h", at(2), domain.WebhookOp{})},
			check: func(t *testing.T, st *domain.State) {
				if _, ok := st.Webhook("h"); ok {
					t.Fatal("still there")
				}
			}},
		{name: "delete of an unknown webhook", events: []domain.Event{hookEv(domain.EvDeleteWebhook, "h", at(2), domain.WebhookOp{})},
			want: domain.ErrNotFound},
		{name: "no payload", events: []domain.Event{{Type: domain.EvPauseWebhook, At: at(1)}}, want: domain.ErrInvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := streamingState(t, 5)
			for i, ev := range c.events {
				before := st.Hash()
				err := st.Apply(&ev)
				if i < len(c.events)-1 || c.want == nil {
					if err != nil {
						t.Fatalf("event %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if st.Hash() != before {
					t.Fatal("refused but the state changed")
				}
			}
			if c.check != nil {
				c.check(t, st)
			}
			if st.EventHead() != 5 {
				t.Fatalf("webhook events moved the event head to %d", st.EventHead())
			}
		})
	}
}

// TestWebhookEventsMakeNoChange: applied through ApplyChange, webhook
// events are no entry of the change stream.
func TestWebhookEventsMakeNoChange(t *testing.T) {
	st := streamingState(t, 2)
	var ch domain.Change
	for _, ev := range []domain.Event{putHook(hookSpec("h"), at(1)),
		hookEv(domain.EvAdvanceWebhook, "h", at(2), domain.WebhookOp{From: 0, To: 2}),
		hookEv(domain.EvPauseWebhook, "h", at(3), domain.WebhookOp{Paused: true}),
		hookEv(domain.EvReplayWebhook, "h", at(4), domain.WebhookOp{To: 1}),
		hookEv(domain.EvDeleteWebhook, "h", at(5), domain.WebhookOp{}),
	} {
		changed, err := st.ApplyChange(&ev, &ch)
		if err != nil || changed {
			t.Fatalf("%v: changed=%v err=%v", ev.Type, changed, err)
		}
	}
	if st.EventHead() != 2 {
		t.Fatalf("event head %d", st.EventHead())
	}
}

// TestMaxWebhooks: the count of webhooks is bounded (their ids label
// metrics).
func TestMaxWebhooks(t *testing.T) {
	st := streamingState(t, 0)
	for i := range domain.MaxWebhooks {
		ev := putHook(hookSpec("h"+strings.Repeat("x", i%3)+string(rune('A'+i%26))+string(rune('a'+i/26))), at(1))
		if err := st.Apply(&ev); err != nil {
			t.Fatal(i, err)
		}
	}
	ev := putHook(hookSpec("one-more"), at(1))
	if err := st.Apply(&ev); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("webhook %d: %v", domain.MaxWebhooks+1, err)
	}
	ev = putHook(hookSpec("hAa"), at(2)) // an update still works
	if err := st.Apply(&ev); err != nil {
		t.Fatal(err)
	}
}

func TestTypePatterns(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		in, out  []domain.ChangeType
		err      bool
	}{
		{patterns: nil, in: domain.ChangeTypes()},
		{patterns: []string{"*"}, in: domain.ChangeTypes()},
		{patterns: []string{"reservation.*"}, in: []domain.ChangeType{domain.ChangeReservationHeld, domain.ChangeReservationCompleted},
			out: []domain.ChangeType{domain.ChangeResourceCreated, domain.ChangeLimitUpdated}},
		{patterns: []string{"resource.created", "limit.*"}, in: []domain.ChangeType{domain.ChangeResourceCreated, domain.ChangeLimitDeleted},
			out: []domain.ChangeType{domain.ChangeResourceUpdated, domain.ChangeReservationHeld}},
		{patterns: []string{"reservation"}, err: true},
		{patterns: []string{".*"}, err: true},
		{patterns: []string{"reserv.*"}, err: true},
		{patterns: []string{"reservation.held", ""}, err: true},
	} {
		set, err := domain.ParseTypePatterns(c.patterns)
		if (err != nil) != c.err {
			t.Fatalf("%q: %v", c.patterns, err)
		}
		for _, ty := range c.in {
			if !set.Has(ty) {
				t.Errorf("%q leaves out %s", c.patterns, ty)
			}
		}
		for _, ty := range c.out {
			if set.Has(ty) {
				t.Errorf("%q takes %s", c.patterns, ty)
			}
		}
	}
}

func TestWebhookFilter(t *testing.T) {
	w := hookSpec("h")
	w.Types, w.ResourcePrefix = []string{"reservation.held", "resource.*"}, "flash-"
	f := w.Filter()
	for _, c := range []struct {
		t    domain.ChangeType
		rid  string
		want bool
	}{
		{domain.ChangeReservationHeld, "flash-1", true},
		{domain.ChangeResourceDeleted, "flash-", true},
		{domain.ChangeReservationConfirmed, "flash-1", false},
		{domain.ChangeReservationHeld, "room-1", false},
		{domain.ChangeReservationHeld, "flash", false},
	} {
		if got := f.Match(c.t, []byte(c.rid)); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.t, c.rid, got, c.want)
		}
	}
}

// TestWebhookCodec: every webhook event round-trips; a stamped batch with
// one is version 4 and a batch of an older version with one does not
// decode.
func TestWebhookCodec(t *testing.T) {
	w := hookSpec("h")
	w.Types, w.ResourcePrefix, w.Delivered = []string{"a", "b.*"}, "p", 1<<40
	events := []domain.Event{
		putHook(w, at(1)),
		hookEv(domain.EvDeleteWebhook, "h", at(2), domain.WebhookOp{}),
		hookEv(domain.EvAdvanceWebhook, "h", at(3), domain.WebhookOp{From: 7, To: 1 << 50}),
		hookEv(domain.EvPauseWebhook, "h", at(4), domain.WebhookOp{Paused: true}),
		hookEv(domain.EvPauseWebhook, "h", at(5), domain.WebhookOp{}),
		hookEv(domain.EvReplayWebhook, "h", at(6), domain.WebhookOp{To: 3}),
		{Type: domain.EvPrune, At: at(7), PruneBefore: 1, PruneMax: 1},
	}
	data := domain.EncodeBatch(nil, &domain.Batch{Term: 3, Events: events})
	if data[0] != domain.BatchV4 {
		t.Fatalf("version %d, want %d", data[0], domain.BatchV4)
	}
	b, err := domain.DecodeBatch(data)
	if err != nil || b.Term != 3 || !reflect.DeepEqual(b.Events, events) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, b.Events, events)
	}
	data[0] = domain.BatchV3
	if _, err := domain.DecodeBatch(data); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("webhook events in a version 3 batch: %v", err)
	}
	rec := domain.AppendWebhook(nil, &w)
	if got, err := domain.DecodeWebhook(rec); err != nil || !reflect.DeepEqual(got, w) {
		t.Fatalf("record: %+v %v", got, err)
	}
	if _, err := domain.DecodeWebhook(rec[:len(rec)-1]); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("short record: %v", err)
	}
}

// TestWebhooksInHashAndClone: a state without webhooks hashes as before
// (nothing is written for them), one with them differs, and a clone is
// independent of its original.
func TestWebhooksInHashAndClone(t *testing.T) {
	st := streamingState(t, 3)
	plain := st.Hash()
	ev := putHook(hookSpec("h"), at(1))
	if err := st.Apply(&ev); err != nil {
		t.Fatal(err)
	}
	with := st.Hash()
	if with == plain {
		t.Fatal("a webhook does not change the hash")
	}
	c := st.Clone()
	if c.Hash() != with {
		t.Fatal("a clone hashes differently")
	}
	adv := hookEv(domain.EvAdvanceWebhook, "h", at(2), domain.WebhookOp{From: 0, To: 2})
	if err := st.Apply(&adv); err != nil {
		t.Fatal(err)
	}
	if w, _ := c.Webhook("h"); w.Delivered != 0 || c.Hash() != with || st.Hash() == with {
		t.Fatalf("the clone changed with its original: %+v", w)
	}
	del := hookEv(domain.EvDeleteWebhook, "h", at(3), domain.WebhookOp{})
	if err := st.Apply(&del); err != nil {
		t.Fatal(err)
	}
	// lastAt moved, so compare with a state that saw the same times
	// without webhooks.
	ref := streamingState(t, 3)
	ref.LoadLastTime(at(3))
	if st.Hash() != ref.Hash() {
		t.Fatal("a state whose webhooks are gone hashes unlike one that never had any")
	}
}
