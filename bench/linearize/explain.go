package linearize

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// explainLimits bound what explain prints per resource.
const (
	explainLinearized = 6   // the last operations of the longest partial linearization
	explainUnplaced   = 8   // operations that could not be placed after it
	explainState      = 800 // characters of the model's states after it
)

// explain says, for each resource whose operations have no linearization,
// where the search got stuck: the end of the longest partial linearization
// porcupine found, the states the model could be in after it, and the
// earliest operations it could not place next (the first of them, by
// return, is one no order could fit). A failed run's log then shows what went
// wrong even where the saved history and its visualization are gone, as on a
// CI machine.
func explain(pm porcupine.Model, ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	parts := pm.Partition(ops)
	partials := info.PartialLinearizations()
	var b strings.Builder
	for p, part := range parts {
		if p >= len(partials) || len(part) == 0 {
			continue
		}
		var longest []int
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(part) {
			continue // this resource is linearizable
		}
		fmt.Fprintf(&b, "\n  %s: %d of %d operations linearized; the longest order ends with",
			part[0].Input.(*Invocation).Resource, len(longest), len(part))
		for _, id := range longest[max(0, len(longest)-explainLinearized):] {
			b.WriteString("\n    " + describeOp(pm, part[id]))
		}
		st := pm.Init()
		for _, id := range longest {
			_, st = pm.Step(st, part[id].Input, part[id].Output)
		}
		if d := pm.DescribeState(st); len(d) > explainState {
			fmt.Fprintf(&b, "\n  states then: %s…", d[:explainState])
		} else {
			fmt.Fprintf(&b, "\n  states then: %s", d)
		}
		placed := make([]bool, len(part))
		for _, id := range longest {
			placed[id] = true
		}
		var unplaced []porcupine.Operation
		for id, op := range part {
			if !placed[id] {
				unplaced = append(unplaced, op)
			}
		}
		slices.SortFunc(unplaced, func(a, b porcupine.Operation) int { return int(a.Return - b.Return) })
		b.WriteString("\n  not placed next (earliest return first):")
		for _, op := range unplaced[:min(len(unplaced), explainUnplaced)] {
			b.WriteString("\n    " + describeOp(pm, op))
		}
	}
	return b.String()
}

// describeOp is one operation on one line: its interval in milliseconds
// since the history's epoch, its client lane, what it asked and what it got.
func describeOp(pm porcupine.Model, op porcupine.Operation) string {
	ms := func(ns int64) string { return fmt.Sprintf("%.1f", float64(ns)/float64(time.Millisecond)) }
	return fmt.Sprintf("[%s, %s] ms client %d: %s", ms(op.Call), ms(op.Return), op.ClientId, pm.DescribeOperation(op.Input, op.Output))
}
