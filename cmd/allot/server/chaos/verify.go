package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"allot/bench/linearize"
)

// Report is what Verify found.
type Report struct {
	Check linearize.Result
	// Acknowledged counts the distinct reservations clients were told were
	// created (201); Lost those of them missing from the final state.
	Acknowledged, Lost int
	// Oversold counts resources (room nights) with more units taken than
	// they have.
	Oversold int
	// KeysTwice counts Idempotency-Keys answered with two reservations.
	KeysTwice int
	// Final is the number of reservations in the final state.
	Final    int
	Problems []string
}

// Ok reports whether the history passed every check.
func (r Report) Ok() bool {
	return r.Check.Ok() && r.Lost == 0 && r.Oversold == 0 && r.KeysTwice == 0 && len(r.Problems) == 0
}

func (r Report) String() string {
	s := fmt.Sprintf("%s; %d acknowledged, %d lost, %d oversold, %d keys booking twice, %d reservations in the final state",
		r.Check, r.Acknowledged, r.Lost, r.Oversold, r.KeysTwice, r.Final)
	for _, p := range r.Problems {
		s += "\n  " + p
	}
	return s
}

// Verify reads the final state from node (after the faults have healed and
// the cluster converged), records those reads in the history too, and
// checks everything: the linearizability of the whole history per
// resource, no acknowledged reservation lost, nothing oversold, no key
// booking twice.
func (w *Workload) Verify(ctx context.Context, node string, opts linearize.Options) (Report, error) {
	var rep Report
	final := make(map[string][]apiReservation)
	for _, r := range w.Resources {
		list, err := w.finalList(ctx, node, r.ID)
		if err != nil {
			return rep, err
		}
		final[r.ID] = list
		rep.Final += len(list)
		rep.Oversold += oversold(r, list, &rep.Problems)
		c := &client{w: w, id: w.Clients, hc: w.hc} // a lane of its own
		c.call(ctx, linearize.Input{Op: linearize.OpReadResource, Client: c.id, Resource: r.ID, User: "reader"},
			"GET", "/v1/resources/"+r.ID+"?consistency=linearizable", nil, "reader", false, "")
	}
	h := w.rec.History()
	present := make(map[string]bool)
	for _, list := range final {
		for _, r := range list {
			present[r.ID] = true
		}
	}
	acked := make(map[string]bool)
	keys := make(map[string]string) // user + key → reservation id
	for _, op := range h.Operations {
		in, ok := op.Input.(*linearize.Invocation)
		out, ok2 := op.Output.(linearize.Output)
		if !ok || !ok2 || in.Op != linearize.OpReserve || out.Status != http.StatusCreated || out.Reservation == nil {
			continue
		}
		id := out.Reservation.ID
		if !acked[id] {
			acked[id] = true
			if !present[id] {
				rep.Lost++
				rep.Problems = append(rep.Problems, fmt.Sprintf("acknowledged reservation %s (%s on %s) is not in the final state", id, in.User, in.Resource))
			}
		}
		if in.Key == "" {
			continue
		}
		k := in.User + "\x00" + in.Key
		if prev, ok := keys[k]; ok && prev != id {
			rep.KeysTwice++
			rep.Problems = append(rep.Problems, fmt.Sprintf("key %q of %s answered with %s and %s", in.Key, in.User, prev, id))
		}
		keys[k] = id
	}
	rep.Acknowledged = len(acked)
	// The package's own final-state invariants too: per-user limits, counts,
	// duplicates, holds that outlived their expiry.
	fs := linearize.FinalState{ReadAt: time.Now(), ExpiryGrace: opts.Lateness + opts.Skew}
	for _, r := range w.Resources {
		fr := linearize.FinalResource{ID: r.ID, Spec: r.Spec}
		for _, res := range final[r.ID] {
			fr.Reservations = append(fr.Reservations, *res.model())
		}
		fs.Resources = append(fs.Resources, fr)
	}
	if err := linearize.CheckFinal(fs, linearize.Acks(h)); err != nil {
		rep.Problems = append(rep.Problems, "final state: "+err.Error())
	}
	if opts.Resources == nil {
		opts.Resources = w.Specs()
	}
	res, err := linearize.Check(h, opts)
	rep.Check = res
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if res.Outcome == porcupine.Unknown {
		rep.Problems = append(rep.Problems, "the linearizability check timed out: not proven")
	}
	if !rep.Ok() && opts.VisualizationPath != "" {
		path := strings.TrimSuffix(opts.VisualizationPath, ".html") + ".json"
		if err := saveHistory(path, h, opts); err != nil {
			rep.Problems = append(rep.Problems, "saving the history: "+err.Error())
		} else {
			rep.Problems = append(rep.Problems, "history saved to "+path+" (check it again: go test -tags chaos -run TestRecheck -history="+path+" ./cmd/allot/server/chaos/)")
		}
	}
	return rep, nil
}

// finalList reads every reservation of resource id (admin, linearizable),
// retrying while the node cannot answer yet.
func (w *Workload) finalList(ctx context.Context, node, id string) ([]apiReservation, error) {
	var all []apiReservation
	after := ""
	deadline := time.Now().Add(30 * time.Second)
	for {
		path := "/v1/reservations?resource=" + id + "&limit=1000&consistency=linearizable"
		if after != "" {
			path += "&after=" + after
		}
		resp, err := w.do(ctx, node, "GET", path, nil, w.token("admin", true), "")
		if err != nil || resp.status != http.StatusOK {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, errors.Join(fmt.Errorf("final list of %s: %v", id, resp), err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var page struct {
			Items []apiReservation `json:"items"`
			Next  string           `json:"next"`
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return nil, fmt.Errorf("final list of %s: %w", id, err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// oversold counts the units (room nights) of r taken beyond its stock.
func oversold(r Resource, list []apiReservation, problems *[]string) int {
	taken := func(s string) bool { return s != "cancelled" && s != "expired" }
	if r.Spec.Kind != "room" {
		var n int64
		for _, res := range list {
			if taken(res.Status) {
				n += res.Quantity
			}
		}
		if n > r.Spec.Capacity {
			*problems = append(*problems, fmt.Sprintf("%s: %d units taken of %d", r.ID, n, r.Spec.Capacity))
			return 1
		}
		return 0
	}
	bad := 0
	for i := 0; i+1 < len(r.Nights); i++ {
		night := r.Nights[i]
		var n int64
		for _, res := range list {
			if taken(res.Status) && res.CheckIn <= night && night < res.CheckOut {
				n += res.Quantity
			}
		}
		if n > r.Spec.Inventory[night] {
			*problems = append(*problems, fmt.Sprintf("%s night %s: %d rooms taken of %d", r.ID, night, n, r.Spec.Inventory[night]))
			bad++
		}
	}
	return bad
}

func saveHistory(path string, h linearize.History, opts linearize.Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := linearize.Save(f, h, opts); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
