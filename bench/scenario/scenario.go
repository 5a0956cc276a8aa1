// Package scenario holds the workloads of allot's load generator: seckill
// (a flash sale of vouchers), hospital (a week of appointment slots, one
// booking per patient a day), hotel (room types with per-night stock) and
// campaign (vouchers sharing one coupon quota), alone or mixed, and two that
// isolate one path each: soldout (every reserve refused) and accept (every
// reserve a committed reservation). A workload is a
// stream of user flows (reserve, then confirm, cancel, check in, complete or
// let the hold expire) played by loadgen workers, and it records what the
// server acknowledged so that package verify can check the final state.
package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"allot/bench/loadgen"
	"allot/bench/verify"
)

// Operations, as indexed by loadgen.Call.Op.
const (
	OpReserve = iota
	OpConfirm
	OpCancel
	OpCheckIn
	OpComplete
	opCount
)

// OpNames returns the names of the operations, indexed by Op*.
func OpNames() []string {
	return []string{OpReserve: "reserve", OpConfirm: "confirm", OpCancel: "cancel", OpCheckIn: "check_in", OpComplete: "complete"}
}

// Names lists the scenarios New accepts.
func Names() []string {
	return []string{"seckill", "hospital", "hotel", "campaign", "mixed", "soldout", "accept"}
}

// Params sizes the workloads.
type Params struct {
	// Vouchers is the number of seckill vouchers, each with Stock units;
	// Users is how many users race for them, each trying once.
	Vouchers int
	Stock    int64
	Users    int64
	// Doctors each get a week of half-hour slots, 16 a day, SlotCapacity
	// patients each.
	Doctors      int
	SlotCapacity int64
	// RoomTypes each have Rooms rooms a night for 60 nights (fewer in one
	// week of them).
	RoomTypes int
	Rooms     int64
	// CampaignVouchers vouchers of CampaignStock units each share one
	// limit group: one coupon per user, CampaignQuota coupons in all.
	CampaignVouchers int
	CampaignStock    int64
	CampaignQuota    int64
}

// DefaultParams returns the sizes `go run ./bench` uses without flags.
func DefaultParams() Params {
	return Params{
		Vouchers: 10, Stock: 1000, Users: 1_000_000,
		Doctors: 20, SlotCapacity: 3,
		RoomTypes: 20, Rooms: 20,
		CampaignVouchers: 4, CampaignStock: 400, CampaignQuota: 1000,
	}
}

// Validate checks the sizes.
func (p Params) Validate() error {
	switch {
	case p.Vouchers < 1 || p.Stock < 1 || p.Users < 1:
		return errors.New("scenario: vouchers, stock and users must be at least 1")
	case p.Doctors < 1 || p.SlotCapacity < 1:
		return errors.New("scenario: doctors and slot capacity must be at least 1")
	case p.RoomTypes < 1 || p.Rooms < 1:
		return errors.New("scenario: room types and rooms must be at least 1")
	case p.CampaignVouchers < 1 || p.CampaignVouchers > 1000 || p.CampaignStock < 1 || p.CampaignQuota < 1:
		return errors.New("scenario: campaign vouchers (at most 1000), stock and quota must be at least 1")
	}
	return nil
}

// Env is what a workload needs from the run around it.
type Env struct {
	// Prefix makes the run's resource ids and user names unique, so runs
	// against the same cluster do not meet; [A-Za-z0-9-] only.
	Prefix string
	// Mint signs a token for user sub with role "user" or "admin".
	Mint func(sub, role string) (string, error)
	// Seed seeds the workers' random choices.
	Seed uint64
	// Today anchors the calendar of hospital slots and hotel nights.
	Today time.Time
}

// ResourceDef is a resource to create (PUT) before the run.
type ResourceDef struct {
	ID   string
	Body []byte // JSON body of PUT /v1/resources/{id}
	// Plain is Body without its "limits", for a target that has no limit
	// groups; nil when Body names none.
	Plain []byte
}

// LimitDef is a limit group to create (PUT /v1/limits/{id}) before the
// resources that name it.
type LimitDef struct {
	ID   string
	Body []byte
}

// Observed is what the workers saw, as package verify takes it.
type Observed struct {
	Acks               []verify.Ack
	SoldOut            []verify.SoldOut
	Responses          int64
	Unexpected         int64
	UnexpectedExamples []string
	// Unknown counts reservations whose outcome stayed unknown after every
	// retry: they may or may not exist.
	Unknown int64
	// LimitExceeded counts the reserves a limit group refused, by limit.
	LimitExceeded map[string]int64
}

// Scenario is a workload: the resources it needs and the flows it plays.
type Scenario struct {
	name     string
	env      Env
	planners []weighted
	// presale plays before the measured phase (see Presale); units is how
	// many reservations it must get acknowledged.
	presale []weighted
	units   int64

	mu      sync.Mutex
	workers []*worker
}

// New returns the named scenario (see Names).
func New(name string, p Params, env Env) (*Scenario, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if env.Mint == nil || env.Prefix == "" {
		return nil, errors.New("scenario: env needs a prefix and a token minter")
	}
	s := &Scenario{name: name, env: env}
	switch name {
	case "seckill":
		s.planners = []weighted{{newSeckill(p, env), 1}}
	case "hospital":
		s.planners = []weighted{{newHospital(p, env), 1}}
	case "hotel":
		s.planners = []weighted{{newHotel(p, env), 1}}
	case "campaign":
		s.planners = []weighted{{newCampaign(p, env), 1}}
	case "mixed":
		s.planners = []weighted{{newSeckill(p, env), 4}, {newHospital(p, env), 3}, {newHotel(p, env), 3}, {newCampaign(p, env), 2}}
	case "soldout":
		so := newSoldOut(p, env)
		s.planners, s.presale, s.units = []weighted{{so, 1}}, []weighted{{so.sellers, 1}}, so.sellers.units
	case "accept":
		s.planners = []weighted{{newAccept(p, env), 1}}
	default:
		return nil, fmt.Errorf("scenario: unknown scenario %q (want one of %v)", name, Names())
	}
	return s, nil
}

// Name is the scenario's name.
func (s *Scenario) Name() string { return s.name }

// Limits lists the limit groups to create before the resources, in a
// stable order.
func (s *Scenario) Limits() []LimitDef {
	var out []LimitDef
	for _, p := range s.planners {
		out = append(out, p.p.limits()...)
	}
	return out
}

// LimitIDs lists the ids of Limits.
func (s *Scenario) LimitIDs() []string {
	defs := s.Limits()
	ids := make([]string, len(defs))
	for i, d := range defs {
		ids[i] = d.ID
	}
	return ids
}

// Resources lists what to create before the run, in a stable order.
func (s *Scenario) Resources() []ResourceDef {
	var out []ResourceDef
	for _, p := range s.planners {
		out = append(out, p.p.resources()...)
	}
	return out
}

// ResourceIDs lists the ids of Resources.
func (s *Scenario) ResourceIDs() []string {
	defs := s.Resources()
	ids := make([]string, len(defs))
	for i, d := range defs {
		ids[i] = d.ID
	}
	return ids
}

// Worker implements loadgen.Source.
func (s *Scenario) Worker(id int) loadgen.WorkerSource { return s.addWorker(id, s.planners) }

func (s *Scenario) addWorker(id int, planners []weighted) *worker {
	w := newWorker(s, id, planners)
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	return w
}

// Presale returns the load that brings the resources to the state the
// measured phase starts from, to be run to its end after they are created
// and before the measured load, and how many reservations it must get
// acknowledged (so the caller can tell a setup that fell short); nil and 0
// when the scenario has none. What it sees is recorded with the rest, so
// that verification covers it.
func (s *Scenario) Presale() (loadgen.Source, int64) {
	if len(s.presale) == 0 {
		return nil, 0
	}
	return presaleSource{s}, s.units
}

// presaleSource plays a scenario's presale planners.
type presaleSource struct{ s *Scenario }

func (p presaleSource) Worker(id int) loadgen.WorkerSource { return p.s.addWorker(id, p.s.presale) }

// Observed merges what the workers saw. Call it after the run has ended.
func (s *Scenario) Observed() Observed {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := Observed{LimitExceeded: make(map[string]int64)}
	seen := make(map[verify.SoldOut]bool)
	for _, w := range s.workers {
		l := &w.ledger
		for _, a := range l.acks {
			o.Acks = append(o.Acks, *a)
		}
		for so := range l.soldOut {
			if !seen[so] {
				seen[so] = true
				o.SoldOut = append(o.SoldOut, so)
			}
		}
		o.Responses += l.responses
		o.Unexpected += l.unexpected
		o.Unknown += l.unknown
		for id, n := range l.limitExceeded {
			o.LimitExceeded[id] += n
		}
		for _, e := range l.examples {
			if len(o.UnexpectedExamples) < maxExamples {
				o.UnexpectedExamples = append(o.UnexpectedExamples, e)
			}
		}
	}
	return o
}

// resourceSpec is the body of PUT /v1/resources/{id}.
type resourceSpec struct {
	Kind         string            `json:"kind"`
	Capacity     int64             `json:"capacity,omitempty"`
	Inventory    []inventoryRow    `json:"inventory,omitempty"`
	PerUserLimit int64             `json:"per_user_limit"`
	HoldSeconds  int64             `json:"hold_seconds"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Limits       []string          `json:"limits,omitempty"`
}

// limitSpec is the body of PUT /v1/limits/{id}.
type limitSpec struct {
	PerUser    int64             `json:"per_user"`
	Capacity   int64             `json:"capacity"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// resourceDef encodes spec, and, when it names limits, also without them.
func resourceDef(id string, spec resourceSpec) ResourceDef {
	d := ResourceDef{ID: id, Body: mustJSON(spec)}
	if len(spec.Limits) > 0 {
		spec.Limits = nil
		d.Plain = mustJSON(spec)
	}
	return d
}

type inventoryRow struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Rooms int64  `json:"rooms"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("scenario: encoding a fixed body: %v", err)) // the types above always encode
	}
	return b
}
