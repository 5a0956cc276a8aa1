package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"allot/cmd/allot/server/servertest"
	"allot/storage"
)

type streamedEvent struct {
	Offset      uint64 `json:"offset"`
	Type        string `json:"type"`
	From        string `json:"from"`
	Reservation struct {
		ID   string `json:"id"`
		User string `json:"user"`
	} `json:"reservation"`
	IdempotencyKey string `json:"idempotency_key"`
}

// streamOf reads node nd's whole change stream: raw records and decoded.
func streamOf(t *testing.T, nd *servertest.Node) ([]string, []streamedEvent) {
	t.Helper()
	var raw []string
	var evs []streamedEvent
	_, err := nd.Server().Node().FSM().EventLog().Read(0, func(r storage.EventRecord) bool {
		raw = append(raw, string(r.JSON()))
		var ev streamedEvent
		if err := json.Unmarshal(r.JSON(), &ev); err != nil {
			t.Fatalf("%s offset %d: %v", nd.ID(), r.Offset, err)
		}
		evs = append(evs, ev)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, evs
}

// A crowd over all three nodes with the leader killed in the middle: every
// node ends with the same stream, numbered 1..n without gaps; every
// reservation a client was told 201 about appears exactly once as
// reservation.held, and every confirm and cancel that was acknowledged
// follows it.
func TestStreamGapFreeAndEqualAfterLeaderKill(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{Seed: 7})
	admin := c.Client(0)
	admin.Must("PUT", "/v1/resources/crowd", map[string]any{"kind": "voucher", "capacity": 120, "hold_seconds": 300}, http.StatusCreated)

	type acked struct{ id, user, then string }
	var mu sync.Mutex
	var acks []acked
	const users = 240
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			user := fmt.Sprintf("u%03d", u)
			key := "k-" + user
			if u == users/3 {
				once.Do(func() {
					c.Stop(c.Leader().Index())
					close(killed)
				})
			}
			rnd := rand.New(rand.NewPCG(uint64(u), 1))
			var r *servertest.Response
			var err error
			// Retry an unknown outcome with the same key until it is
			// known, as API.md asks; spread over the running nodes.
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				nodes := c.Running()
				cl := c.Client(nodes[rnd.IntN(len(nodes))].Index()).As(user, "user")
				r, err = cl.Do("POST", "/v1/resources/crowd/reservations", map[string]int{"quantity": 1}, "Idempotency-Key", key)
				if err == nil && r.Status != http.StatusServiceUnavailable {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil || r.Status != http.StatusCreated {
				if err == nil && r.Status == http.StatusConflict {
					return // sold out
				}
				t.Errorf("%s: %v %v", user, err, r)
				return
			}
			var res struct{ ID string }
			if err := r.Decode(&res); err != nil {
				t.Error(err)
				return
			}
			then := ""
			if u%3 == 0 {
				then = "confirm"
			} else if u%5 == 0 {
				then = "cancel"
			}
			if then != "" {
				for time.Now().Before(deadline) {
					nodes := c.Running()
					cl := c.Client(nodes[rnd.IntN(len(nodes))].Index()).As(user, "user")
					r, err = cl.Do("POST", "/v1/reservations/"+res.ID+"/"+then, nil)
					if err == nil && r.Status != http.StatusServiceUnavailable {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil || r.Status != http.StatusOK {
					t.Errorf("%s %s: %v %v", user, then, err, r)
					return
				}
			}
			mu.Lock()
			acks = append(acks, acked{res.ID, user, then})
			mu.Unlock()
		})
	}
	wg.Wait()
	<-killed
	if t.Failed() {
		t.FailNow()
	}
	for i, nd := range c.Nodes() {
		if !nd.Running() {
			c.Restart(i)
		}
	}
	c.WaitConverged()
	kept := 0
	for _, a := range acks {
		if a.then != "cancel" {
			kept++
		}
	}
	if kept > 120 || len(acks) < 120 {
		t.Fatalf("%d reservations acknowledged, %d of them kept, capacity 120", len(acks), kept)
	}

	var want []string
	for _, nd := range c.Nodes() {
		raw, _ := streamOf(t, nd)
		if want == nil {
			want = raw
			continue
		}
		if len(raw) != len(want) {
			t.Fatalf("%s has %d events, %s has %d", nd.ID(), len(raw), c.Node(0).ID(), len(want))
		}
		for i := range raw {
			if raw[i] != want[i] {
				t.Fatalf("offset %d differs on %s:\n%s\n%s", i+1, nd.ID(), raw[i], want[i])
			}
		}
	}
	_, evs := streamOf(t, c.Node(0))
	created := map[string]int{}
	next := map[string]string{} // the type each reservation's next event must have
	for i, ev := range evs {
		if ev.Offset != uint64(i+1) {
			t.Fatalf("event %d has offset %d", i+1, ev.Offset)
		}
		switch ev.Type {
		case "reservation.held":
			created[ev.Reservation.ID]++
			if ev.From != "" || ev.IdempotencyKey != "k-"+ev.Reservation.User {
				t.Fatalf("offset %d: a new hold from %q with key %q", ev.Offset, ev.From, ev.IdempotencyKey)
			}
		case "reservation.confirmed", "reservation.cancelled":
			if ev.From != "held" || next[ev.Reservation.ID] != ev.Type {
				t.Fatalf("offset %d: %s from %s, expected %q", ev.Offset, ev.Type, ev.From, next[ev.Reservation.ID])
			}
			delete(next, ev.Reservation.ID)
		}
		if ev.Type == "reservation.held" {
			for _, a := range acks {
				if a.id == ev.Reservation.ID && a.then != "" {
					next[a.id] = "reservation." + map[string]string{"confirm": "confirmed", "cancel": "cancelled"}[a.then]
				}
			}
		}
	}
	for _, a := range acks {
		if created[a.id] != 1 {
			t.Fatalf("acknowledged reservation %s appears %d times as reservation.held", a.id, created[a.id])
		}
	}
	if len(next) != 0 {
		t.Fatalf("acknowledged transitions missing from the stream: %v", next)
	}
	if len(created) != len(acks) {
		t.Fatalf("%d reservations in the stream, %d acknowledged", len(created), len(acks))
	}
}

// A follower that was cut off while the leader compacted its log installs
// the leader's snapshot, and a node restarted from its own snapshot and log
// tail comes back: both end with the leader's stream, byte for byte.
func TestStreamSurvivesSnapshotInstallAndRestart(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{Seed: 8})
	l := c.Leader()
	admin := c.Client(l.Index())
	admin.Must("PUT", "/v1/resources/v", map[string]any{"kind": "voucher", "capacity": 1000, "hold_seconds": 300}, http.StatusCreated)
	reserve := func(from, to int) {
		for i := from; i < to; i++ {
			c.Client(l.Index()).As(fmt.Sprintf("s%03d", i), "user").Must("POST", "/v1/resources/v/reservations", map[string]int{"quantity": 1}, http.StatusCreated)
		}
	}
	reserve(0, 20)
	f := c.Followers()[0]
	c.Net().Isolate(f.ID())
	reserve(20, 40) // only the others have these; the snapshot carries them to f
	c.InstallSnapshot(f.Index())
	reserve(40, 50)
	c.WaitConverged()

	other := c.Followers()[0]
	if other == f {
		other = c.Followers()[1]
	}
	c.ForceSnapshot(other.Index())
	c.Stop(other.Index())
	reserve(50, 60)
	c.Restart(other.Index())
	c.WaitConverged()

	want, evs := streamOf(t, l)
	if len(evs) != 61 || evs[0].Type != "resource.created" { // the resource and 60 holds
		t.Fatalf("the leader's stream has %d events, first %+v", len(evs), evs[0])
	}
	for _, nd := range []*servertest.Node{f, other} {
		got, _ := streamOf(t, nd)
		if len(got) != len(want) {
			t.Fatalf("%s has %d events, the leader %d", nd.ID(), len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s offset %d:\n%s\n%s", nd.ID(), i+1, got[i], want[i])
			}
		}
		if h := nd.Server().Node().FSM().EventLog().Head(); h != 61 {
			t.Fatalf("%s head %d", nd.ID(), h)
		}
	}
}

// Holds that expire appear once each as reservation.expired, from held, on
// every node.
func TestStreamCarriesExpiries(t *testing.T) {
	c := servertest.MakeCluster(t, 3, servertest.Options{Seed: 9})
	l := c.Leader()
	c.Client(l.Index()).Must("PUT", "/v1/resources/short", map[string]any{"kind": "voucher", "capacity": 10, "hold_seconds": 1}, http.StatusCreated)
	ids := map[string]bool{}
	for i := range 3 {
		r := c.Client(l.Index()).As(fmt.Sprintf("e%d", i), "user").Must("POST", "/v1/resources/short/reservations", map[string]int{"quantity": 1}, http.StatusCreated)
		var res struct{ ID string }
		if err := r.Decode(&res); err != nil {
			t.Fatal(err)
		}
		ids[res.ID] = true
	}
	c.WaitFor("three expiries on every node", func() error {
		for _, nd := range c.Nodes() {
			_, evs := streamOf(t, nd)
			expired := map[string]int{}
			for _, ev := range evs {
				if ev.Type == "reservation.expired" {
					if ev.From != "held" || !ids[ev.Reservation.ID] {
						t.Fatalf("%s offset %d: expired %s from %q", nd.ID(), ev.Offset, ev.Reservation.ID, ev.From)
					}
					expired[ev.Reservation.ID]++
				}
			}
			if len(expired) != 3 {
				return fmt.Errorf("%s streamed %d expiries", nd.ID(), len(expired))
			}
			for id, n := range expired {
				if n != 1 {
					t.Fatalf("%s: %s expired %d times", nd.ID(), id, n)
				}
			}
		}
		return nil
	})
}
