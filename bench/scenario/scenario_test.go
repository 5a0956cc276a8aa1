package scenario

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"allot/bench/baseline"
	"allot/bench/loadgen"
	"allot/bench/verify"
)

// seen is one request the fake server got.
type seen struct {
	method, path, auth, key string
}

// fakeServer answers like baseline, except where override writes an
// answer itself, and records every request.
type fakeServer struct {
	mu       sync.Mutex
	reqs     []seen
	override func(w http.ResponseWriter, r *http.Request, prior int) bool // prior: earlier requests with the same user and key
	counts   map[string]int
	base     http.Handler // baseline.Handler(), made once
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key")}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	k := s.auth + "|" + s.key + "|" + s.path
	prior := f.counts[k]
	f.counts[k]++
	f.mu.Unlock()
	if f.override != nil && f.override(w, r, prior) {
		return
	}
	f.base.ServeHTTP(w, r)
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func testEnv() Env {
	return Env{
		Prefix: "t1",
		Mint:   func(sub, role string) (string, error) { return role + ":" + sub, nil },
		Seed:   7,
		Today:  time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
	}
}

func smallParams() Params {
	p := DefaultParams()
	p.Users, p.Doctors, p.RoomTypes = 200, 2, 3
	return p
}

func run(t *testing.T, s loadgen.Source, h http.Handler, d time.Duration) *loadgen.Result {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Targets: []string{srv.URL}, Concurrency: 4, Duration: d, Ops: OpNames(),
		Client: loadgen.NewClient(4, 5*time.Second),
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write([]byte(`{"status":` + strconv.Itoa(status) + `,"code":"` + code + `"}`))
}

// TestScenariosPlayTheirFlows runs each scenario against the baseline
// server and checks that its flows take the steps they should, each with the
// right caller, and that everything the server acknowledged is recorded.
func TestScenariosPlayTheirFlows(t *testing.T) {
	want := map[string][]int{
		"seckill":  {OpReserve, OpConfirm},
		"hospital": {OpReserve, OpConfirm, OpCancel},
		"hotel":    {OpReserve, OpConfirm, OpCancel, OpCheckIn, OpComplete},
		"campaign": {OpReserve, OpConfirm, OpCancel},
		"mixed":    {OpReserve, OpConfirm, OpCancel, OpCheckIn, OpComplete},
		"soldout":  {OpReserve},
		"accept":   {OpReserve},
	}
	if len(want) != len(Names()) {
		t.Fatalf("scenarios %v, want flows for %d", Names(), len(want))
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s, err := New(name, smallParams(), testEnv())
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}}
			res := run(t, s, f, 800*time.Millisecond)
			ops := map[string]bool{}
			for _, op := range res.Ops {
				ops[op.Name] = true
			}
			for _, op := range want[name] {
				if !ops[OpNames()[op]] {
					t.Errorf("no %s was sent (ops %v)", OpNames()[op], ops)
				}
			}
			for _, r := range f.requests() {
				admin := strings.HasPrefix(r.auth, "Bearer admin:")
				switch {
				case strings.HasSuffix(r.path, "/check-in") || strings.HasSuffix(r.path, "/complete"):
					if !admin {
						t.Fatalf("%s sent as %q, want an admin", r.path, r.auth)
					}
				case admin || !strings.HasPrefix(r.auth, "Bearer user:t1-"):
					t.Fatalf("%s sent as %q, want the user", r.path, r.auth)
				}
				if r.key == "" {
					t.Fatalf("%s sent without an Idempotency-Key", r.path)
				}
			}
			o := s.Observed()
			if o.Unexpected != 0 || len(o.Acks) == 0 || o.Responses != res.Requests {
				t.Fatalf("observed %d acks, %d responses (ran %d), %d unexpected: %v",
					len(o.Acks), o.Responses, res.Requests, o.Unexpected, o.UnexpectedExamples)
			}
			moved := 0
			for _, a := range o.Acks {
				if a.ID == "" || a.User == "" || a.Quantity < 1 || !strings.HasPrefix(a.ResourceID, "t1-") {
					t.Fatalf("bad ack %+v", a)
				}
				if a.Status != verify.StatusHeld {
					moved++
				}
			}
			if moved == 0 && len(want[name]) > 1 {
				t.Error("no acknowledged reservation moved past held")
			}
		})
	}
}

// TestSeckillRetriesWithSameKey: every user's first reserve gets 503; the
// retry carries the same Idempotency-Key, and every user tries once.
func TestSeckillRetriesWithSameKey(t *testing.T) {
	p := smallParams()
	p.Users = 40
	s, err := New("seckill", p, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, prior int) bool {
		if strings.HasSuffix(r.URL.Path, "/reservations") && prior == 0 {
			problem(w, http.StatusServiceUnavailable, "outcome_unknown")
			return true
		}
		return false
	}}
	run(t, s, f, 10*time.Second) // ends when the 40 users are done
	firsts := map[string]string{}
	tries := map[string]int{}
	for _, r := range f.requests() {
		if !strings.HasSuffix(r.path, "/reservations") || r.key != "a" {
			continue
		}
		tries[r.auth]++
		if prev, ok := firsts[r.auth]; ok && prev != r.path {
			t.Fatalf("%s retried on %s after %s", r.auth, r.path, prev)
		}
		firsts[r.auth] = r.path
	}
	if len(tries) != 40 {
		t.Fatalf("%d users tried, want 40", len(tries))
	}
	for u, n := range tries {
		if n != 2 {
			t.Errorf("%s sent its first reserve %d times, want 2 (503, then the retry)", u, n)
		}
	}
	if o := s.Observed(); o.Unknown != 0 || o.Unexpected != 0 {
		t.Errorf("unknown %d unexpected %d: %v", o.Unknown, o.Unexpected, o.UnexpectedExamples)
	}
}

// TestHospitalMovesOnWhenSoldOut: a full slot sends the patient to other
// slots of the same doctor and day, each with a new key, then it gives up.
func TestHospitalMovesOnWhenSoldOut(t *testing.T) {
	s, err := New("hospital", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, _ int) bool {
		problem(w, http.StatusConflict, "sold_out")
		return true
	}}
	run(t, s, f, 300*time.Millisecond)
	byUser := map[string][]seen{}
	for _, r := range f.requests() {
		byUser[r.auth] = append(byUser[r.auth], r)
	}
	complete := 0
	for u, rs := range byUser {
		if len(rs) > slotTries {
			t.Fatalf("%s tried %d slots, want at most %d", u, len(rs), slotTries)
		}
		keys := map[string]bool{}
		for _, r := range rs {
			if keys[r.key] {
				t.Fatalf("%s reused key %s on another slot", u, r.key)
			}
			keys[r.key] = true
			// Paths end in .../t1-hos-dNNN-YYYYMMDD-HHMM/reservations.
			day := func(p string) string { return p[:strings.LastIndex(p, "-")] }
			if day(r.path) != day(rs[0].path) {
				t.Fatalf("%s moved from %s to %s, want the same doctor and day", u, rs[0].path, r.path)
			}
		}
		if len(rs) == slotTries {
			complete++
		}
	}
	if complete == 0 {
		t.Fatal("no patient tried all its slots")
	}
	o := s.Observed()
	if len(o.Acks) != 0 || len(o.SoldOut) == 0 || o.Unexpected != 0 {
		t.Fatalf("acks %d sold_out %d unexpected %d", len(o.Acks), len(o.SoldOut), o.Unexpected)
	}
}

// TestGivingUpRecordsUnknown: a transition that never gets an answer ends
// the flow with its target among the statuses the reservation may be in.
func TestGivingUpRecordsUnknown(t *testing.T) {
	p := smallParams()
	p.Users = 4
	s, err := New("seckill", p, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if strings.HasSuffix(r.URL.Path, "/confirm") {
			w.Header().Set("Retry-After", "0")
			problem(w, http.StatusServiceUnavailable, "unavailable")
			return true
		}
		return false
	}}
	run(t, s, f, 20*time.Second) // each confirm retries maxAttempts times with backoff
	o := s.Observed()
	gaveUp := 0
	for _, a := range o.Acks {
		if a.Status != verify.StatusHeld {
			t.Errorf("ack %s is %s without a confirm answered", a.ID, a.Status)
		}
		if len(a.Maybe) == 1 && a.Maybe[0] == verify.StatusConfirmed {
			gaveUp++
		}
	}
	if gaveUp == 0 || o.Unexpected != 0 {
		t.Errorf("%d of %d acks record a confirm of unknown outcome, %d unexpected", gaveUp, len(o.Acks), o.Unexpected)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New("nope", DefaultParams(), testEnv()); err == nil {
		t.Error("unknown scenario accepted")
	}
	p := DefaultParams()
	p.Stock = 0
	if _, err := New("seckill", p, testEnv()); err == nil {
		t.Error("zero stock accepted")
	}
	if _, err := New("seckill", DefaultParams(), Env{}); err == nil {
		t.Error("empty env accepted")
	}
}

func TestResourceBodies(t *testing.T) {
	s, err := New("mixed", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	defs := s.Resources()
	// 10 vouchers, 2 doctors x 7 days x 16 slots, 3 room types, 4 campaign vouchers.
	if want := 10 + 2*hospitalDays*slotsPerDay + 3 + 4; len(defs) != want {
		t.Fatalf("%d resources, want %d", len(defs), want)
	}
	ids := map[string]bool{}
	for _, d := range defs {
		if ids[d.ID] || len(d.ID) > 128 || strings.ContainsAny(d.ID, "/ ?#") {
			t.Fatalf("bad or duplicate id %q", d.ID)
		}
		ids[d.ID] = true
	}
	for _, want := range []string{
		`{"kind":"voucher","capacity":1000,"per_user_limit":1,"hold_seconds":900,"attributes":{"sale":"flash"}}`,
		`{"kind":"room","inventory":[{"from":"2026-12-21","to":"2027-02-19","rooms":20},{"from":"2027-01-04","to":"2027-01-11","rooms":8}],"per_user_limit":0,"hold_seconds":8}`,
		`{"kind":"slot","capacity":3,"per_user_limit":1,"hold_seconds":5,"attributes":{"doctor":"Dr. 001","starts_at":"2026-11-24T15:30:00Z"},"limits":["t1-hos-day-20261124"]}`,
		`{"kind":"voucher","capacity":400,"per_user_limit":1,"hold_seconds":10,"attributes":{"campaign":"bench"},"limits":["t1-cmp-quota"]}`,
	} {
		found := false
		for _, d := range defs {
			found = found || string(d.Body) == want
		}
		if !found {
			t.Errorf("no resource with body %s", want)
		}
	}
}

// TestLimitGroups: one limit per hospital day, created before the slots,
// each slot naming its own day's; one campaign limit with a quota below
// the vouchers' summed stock; and bodies without limits for a target that
// has none.
func TestLimitGroups(t *testing.T) {
	s, err := New("mixed", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]string{}
	for _, l := range s.Limits() {
		limits[l.ID] = string(l.Body)
	}
	if len(limits) != hospitalDays+1 {
		t.Fatalf("limits %v, want one per hospital day and the campaign's", limits)
	}
	if got := limits["t1-hos-day-20261122"]; got != `{"per_user":1,"capacity":0,"attributes":{"date":"2026-11-22","hospital":"bench"}}` {
		t.Errorf("first day limit %s", got)
	}
	if got := limits["t1-cmp-quota"]; got != `{"per_user":1,"capacity":1000,"attributes":{"campaign":"bench"}}` {
		t.Errorf("campaign limit %s", got)
	}
	p := smallParams()
	if p.CampaignQuota >= int64(p.CampaignVouchers)*p.CampaignStock {
		t.Errorf("the campaign's quota %d is not what sells out (%d vouchers of %d)", p.CampaignQuota, p.CampaignVouchers, p.CampaignStock)
	}
	named := 0
	for _, d := range s.Resources() {
		var spec resourceSpec
		if err := json.Unmarshal(d.Body, &spec); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(d.ID, "t1-hos-"):
			// t1-hos-dNNN-YYYYMMDD-HHMM names t1-hos-day-YYYYMMDD.
			day := strings.Split(d.ID, "-")[3]
			if len(spec.Limits) != 1 || spec.Limits[0] != "t1-hos-day-"+day {
				t.Fatalf("%s names %v", d.ID, spec.Limits)
			}
		case strings.HasPrefix(d.ID, "t1-cmp-"):
			if len(spec.Limits) != 1 || spec.Limits[0] != "t1-cmp-quota" {
				t.Fatalf("%s names %v", d.ID, spec.Limits)
			}
		default:
			if spec.Limits != nil || d.Plain != nil {
				t.Fatalf("%s names limits %v", d.ID, spec.Limits)
			}
			continue
		}
		named++
		for _, l := range spec.Limits {
			if _, ok := limits[l]; !ok {
				t.Fatalf("%s names %s, which is not created", d.ID, l)
			}
		}
		if d.Plain == nil || strings.Contains(string(d.Plain), "limits") {
			t.Fatalf("%s: plain body %s", d.ID, d.Plain)
		}
	}
	if named != 2*hospitalDays*slotsPerDay+4 {
		t.Errorf("%d resources name a limit", named)
	}
}

// TestHospitalDayLimit: a patient's second booking of the day, at another
// doctor, goes to the same day; refused by the day limit, it is counted as
// limit_exceeded of that limit and is no error.
func TestHospitalDayLimit(t *testing.T) {
	s, err := New("hospital", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cancelled := map[string]bool{} // users who cancelled: their rebooking is let through
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, _ int) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/cancel") {
			cancelled[r.Header.Get("Authorization")] = true
		}
		if r.Header.Get("Idempotency-Key") != "b" || cancelled[r.Header.Get("Authorization")] {
			return false
		}
		// .../t1-hos-dNNN-YYYYMMDD-HHMM/reservations
		day := strings.Split(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/resources/"), "/reservations"), "-")[3]
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"status":409,"code":"limit_exceeded","limit":"t1-hos-day-` + day + `","rule":"per_user"}`))
		return true
	}}
	res := run(t, s, f, 1500*time.Millisecond)
	o := s.Observed()
	if o.Unexpected != 0 {
		t.Fatalf("unexpected answers: %v", o.UnexpectedExamples)
	}
	var refused int64
	for id, n := range o.LimitExceeded {
		if !strings.HasPrefix(id, "t1-hos-day-") {
			t.Errorf("refusal counted for %s", id)
		}
		refused += n
	}
	if refused == 0 || refused != res.Codes[loadgen.CodeKey{Status: http.StatusConflict, Code: "limit_exceeded", Group: true, Rule: "per_user"}] {
		t.Errorf("%d refusals observed, codes %v", refused, res.Codes)
	}
	byUser := map[string][]seen{}
	for _, r := range f.requests() {
		if strings.HasSuffix(r.path, "/reservations") {
			byUser[r.auth] = append(byUser[r.auth], r)
		}
	}
	again := 0
	for u, rs := range byUser {
		for _, r := range rs[1:] {
			if r.key != "b" {
				continue
			}
			again++
			first, second := strings.Split(rs[0].path, "-"), strings.Split(r.path, "-")
			if first[3] != second[3] || first[2] == second[2] {
				t.Fatalf("%s booked %s, then %s: want another doctor the same day", u, rs[0].path, r.path)
			}
		}
	}
	if again == 0 {
		t.Fatal("no patient tried a second booking")
	}
}

// TestHospitalRebookRefusedIsUnexpected: the day limit has no capacity, so
// refusing a patient's rebooking after its acknowledged cancel is an
// answer a correct server never gives.
func TestHospitalRebookRefusedIsUnexpected(t *testing.T) {
	s, err := New("hospital", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.Header.Get("Idempotency-Key") != "b" {
			return false
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"status":409,"code":"limit_exceeded","limit":"t1-hos-day-x"}`))
		return true
	}}
	run(t, s, f, 1500*time.Millisecond)
	o := s.Observed()
	if o.Unexpected == 0 || !strings.Contains(o.UnexpectedExamples[0], "was cancelled") {
		t.Fatalf("%d unexpected: %v, want the refused rebookings", o.Unexpected, o.UnexpectedExamples)
	}
}

// TestSoldOutSellsInPresale: the presale sells every unit, one buyer each,
// evenly over the vouchers, and pays for it; the measured phase then sends
// only reserves, each from a user never seen before, and records the
// sold_out answers for verification.
func TestSoldOutSellsInPresale(t *testing.T) {
	p := smallParams()
	p.Vouchers, p.Stock = 3, 5
	s, err := New("soldout", p, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if sk, _ := New("seckill", p, testEnv()); sk != nil {
		if pre, units := sk.Presale(); pre != nil || units != 0 {
			t.Fatalf("seckill has a presale of %d units", units)
		}
	}
	pre, units := s.Presale()
	if pre == nil || units != 15 {
		t.Fatalf("presale %v of %d units, want 15", pre, units)
	}
	sales := &fakeServer{base: baseline.Handler(), counts: map[string]int{}}
	res := run(t, pre, sales, 10*time.Second) // ends when every unit is sold
	if res.Elapsed > 5*time.Second {
		t.Errorf("the presale ran %v: it should end once every unit is sold", res.Elapsed)
	}
	o := s.Observed()
	if len(o.Acks) != 15 || o.Unexpected != 0 {
		t.Fatalf("presale: %d acks, %d unexpected %v", len(o.Acks), o.Unexpected, o.UnexpectedExamples)
	}
	perVoucher, buyers := map[string]int{}, map[string]bool{}
	for _, a := range o.Acks {
		if a.Status != verify.StatusConfirmed || buyers[a.User] {
			t.Fatalf("presale ack %+v: want one confirmed unit per buyer", a)
		}
		buyers[a.User] = true
		perVoucher[a.ResourceID]++
	}
	for _, id := range s.ResourceIDs() {
		if perVoucher[id] != 5 {
			t.Errorf("%s sold %d of 5 units in the presale", id, perVoucher[id])
		}
	}

	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}, override: func(w http.ResponseWriter, r *http.Request, _ int) bool {
		problem(w, http.StatusConflict, "sold_out")
		return true
	}}
	res = run(t, s, f, 300*time.Millisecond)
	users := map[string]bool{}
	for _, r := range f.requests() {
		if !strings.HasSuffix(r.path, "/reservations") || users[r.auth] || strings.Contains(r.auth, "-so-s") {
			t.Fatalf("measured request %+v: want a reserve by a fresh user", r)
		}
		users[r.auth] = true
	}
	if int64(len(users)) != res.Requests || res.Codes[loadgen.CodeKey{Status: http.StatusConflict, Code: "sold_out"}] != res.Requests {
		t.Fatalf("%d users, %d requests, codes %v", len(users), res.Requests, res.Codes)
	}
	o = s.Observed()
	if len(o.Acks) != 15 || len(o.SoldOut) != 3 || o.Unexpected != 0 {
		t.Fatalf("after the load: %d acks, %d sold out, %d unexpected %v", len(o.Acks), len(o.SoldOut), o.Unexpected, o.UnexpectedExamples)
	}
}

// TestAcceptReservesOncePerUser: every request is a reserve by a user of
// its own, on vouchers that cannot sell out and have no holds.
func TestAcceptReservesOncePerUser(t *testing.T) {
	s, err := New("accept", smallParams(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if pre, units := s.Presale(); pre != nil || units != 0 {
		t.Fatalf("accept has a presale of %d units", units)
	}
	defs := s.Resources()
	if len(defs) != 10 || string(defs[0].Body) != `{"kind":"voucher","capacity":1099511627776,"per_user_limit":1,"hold_seconds":0,"attributes":{"sale":"open"}}` {
		t.Fatalf("%d resources, first %s", len(defs), defs[0].Body)
	}
	f := &fakeServer{base: baseline.Handler(), counts: map[string]int{}}
	res := run(t, s, f, 300*time.Millisecond)
	users := map[string]bool{}
	for _, r := range f.requests() {
		if !strings.HasSuffix(r.path, "/reservations") || users[r.auth] {
			t.Fatalf("request %+v: want one reserve per user", r)
		}
		users[r.auth] = true
	}
	o := s.Observed()
	if res.Requests == 0 || int64(len(o.Acks)) != res.Requests || int64(len(users)) != res.Requests || o.Unexpected != 0 {
		t.Fatalf("%d requests, %d acks, %d users, %d unexpected", res.Requests, len(o.Acks), len(users), o.Unexpected)
	}
}
