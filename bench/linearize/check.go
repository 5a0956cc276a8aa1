package linearize

import (
	"errors"
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrBadHistory is returned by Check for a history it cannot check.
var ErrBadHistory = errors.New("history cannot be checked")

// Options configure Check.
type Options struct {
	// Resources are the specs of every resource the history names.
	Resources map[string]Spec
	// Skew bounds the difference between the leader's clock (expires_at,
	// cancel deadlines) and the recorder's, either way.
	Skew time.Duration
	// Lateness bounds how long after expires_at (leader time) a hold may
	// still be held: API.md's "a few seconds late under load".
	Lateness time.Duration
	// UnknownHorizon, when set, assumes that a write whose outcome is
	// unknown took effect within this long after the client gave up, or
	// never. 0 (the default, as etcd's robustness tests do) lets it take
	// effect any time up to the end of the history. Legal histories check
	// fast either way; proving a history illegal searches every placement of
	// every unknown outcome, which a horizon keeps tractable.
	UnknownHorizon time.Duration
	// Timeout bounds the search; 0 = none. Past it the result is
	// porcupine.Unknown.
	Timeout time.Duration
	// VisualizationPath, when set, is where porcupine's HTML visualization
	// is written if the result is not Ok.
	VisualizationPath string
}

// Result is the outcome of Check.
type Result struct {
	// Outcome is porcupine.Ok (linearizable), porcupine.Illegal, or
	// porcupine.Unknown (the search timed out).
	Outcome porcupine.CheckResult
	// Operations checked, and how many of them had unknown outcomes.
	Operations, Unknown int
	// Skipped are operations that cannot constrain the model: answers that
	// wrote nothing for sure (503 unavailable, 429, 400, ...) and reads
	// with no answer.
	Skipped   int
	Resources map[string]ResourceCount
	Elapsed   time.Duration
	// Visualization is the file written, if any.
	Visualization string
	// Explanation says, for an Illegal history, where the search got stuck
	// on each resource that has no linearization (explain.go); String ends
	// with it.
	Explanation string
}

// ResourceCount are the operations checked on one resource.
type ResourceCount struct {
	Operations, Unknown int
}

// Ok reports whether the history is linearizable.
func (r Result) Ok() bool { return r.Outcome == porcupine.Ok }

func (r Result) String() string {
	s := fmt.Sprintf("%s: %d operations (%d unknown outcomes, %d skipped) on %d resources in %s",
		r.Outcome, r.Operations, r.Unknown, r.Skipped, len(r.Resources), r.Elapsed.Round(time.Millisecond))
	if r.Visualization != "" {
		s += "; visualization: " + r.Visualization
	}
	return s + r.Explanation
}

// Check decides whether h is linearizable against the model of each
// resource in opts. It returns an error (ErrBadHistory) for a history it
// cannot check: an operation on a resource without a spec, or one
// Idempotency-Key used on two resources (the model checks each resource on
// its own).
func Check(h History, opts Options) (Result, error) {
	start := time.Now()
	specs := make(map[string]*rspec, len(opts.Resources))
	for id, sp := range opts.Resources {
		r, err := newRSpec(id, sp, h.Epoch)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrBadHistory, err)
		}
		specs[id] = r
	}
	res := Result{Resources: make(map[string]ResourceCount)}
	ops, err := prepare(h, specs, opts.UnknownHorizon, &res)
	if err != nil {
		return res, err
	}
	m := newModel(ops, specs, h.Epoch, opts.Skew, opts.Lateness, opts.UnknownHorizon)
	pm := m.porcupine()
	res.Outcome = porcupine.CheckOperationsTimeout(pm, ops, opts.Timeout)
	if res.Outcome == porcupine.Illegal {
		_, info := porcupine.CheckOperationsVerbose(pm, ops, opts.Timeout)
		res.Explanation = explain(pm, ops, info)
		if opts.VisualizationPath != "" {
			if err := porcupine.VisualizePath(pm, info, opts.VisualizationPath); err != nil {
				return res, fmt.Errorf("visualization: %w", err)
			}
			res.Visualization = opts.VisualizationPath
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// prepare validates h, leaves out the operations that cannot constrain
// anything, counts, applies the horizon, and gives each unknown outcome a
// lane of its own in the visualization (it overlaps its client's later
// operations).
func prepare(h History, specs map[string]*rspec, horizon time.Duration, res *Result) ([]porcupine.Operation, error) {
	keyRes := make(map[string]string)
	lane := 0
	for _, op := range h.Operations {
		lane = max(lane, op.ClientId+1)
	}
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	for i, op := range h.Operations {
		ev, ok1 := op.Input.(*Invocation)
		out, ok2 := op.Output.(Output)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: operation %d is not from a Recorder (%T, %T)", ErrBadHistory, i, op.Input, op.Output)
		}
		if specs[ev.Resource] == nil {
			return nil, fmt.Errorf("%w: operation %d (%s) on resource %q without a spec", ErrBadHistory, i, ev.Input, ev.Resource)
		}
		if ev.Key != "" {
			k := scopedKey(ev.User, ev.Key)
			if r, ok := keyRes[k]; ok && r != ev.Resource {
				return nil, fmt.Errorf("%w: user %s uses Idempotency-Key %q on %s and %s", ErrBadHistory, ev.User, ev.Key, r, ev.Resource)
			}
			keyRes[k] = ev.Resource
		}
		unknown := out.IsUnknown()
		if out.effectless() || (unknown && !ev.Op.write()) {
			res.Skipped++
			continue
		}
		rc := res.Resources[ev.Resource]
		rc.Operations++
		res.Operations++
		if unknown {
			rc.Unknown++
			res.Unknown++
			op.ClientId = lane
			lane++
			if horizon > 0 && ev.GaveUp+int64(horizon) < op.Return {
				c := *ev
				c.Return = ev.GaveUp + int64(horizon)
				op.Input, op.Return = &c, c.Return
			}
		}
		res.Resources[ev.Resource] = rc
		ops = append(ops, op)
	}
	return ops, nil
}
