package linearize

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/anishathalye/porcupine"
)

// historyFile is the JSON form of a History: what Save writes and Load
// reads, so that a failing run's history can be checked again offline (and
// the checker tuned on it) without running the cluster again.
type historyFile struct {
	Epoch      time.Time    `json:"epoch"`
	Operations []fileOp     `json:"operations"`
	Options    *fileOptions `json:"options,omitempty"`
}

type fileOp struct {
	In  Invocation `json:"in"`
	Out Output     `json:"out"`
}

// fileOptions are the Options a history was checked with (without the
// visualization path).
type fileOptions struct {
	Resources      map[string]Spec `json:"resources"`
	Skew           time.Duration   `json:"skew"`
	Lateness       time.Duration   `json:"lateness"`
	UnknownHorizon time.Duration   `json:"unknown_horizon"`
}

// Save writes h, and the options it is checked with, as JSON.
func Save(w io.Writer, h History, opts Options) error {
	f := historyFile{Epoch: h.Epoch, Operations: make([]fileOp, 0, len(h.Operations)),
		Options: &fileOptions{Resources: opts.Resources, Skew: opts.Skew, Lateness: opts.Lateness, UnknownHorizon: opts.UnknownHorizon}}
	for _, op := range h.Operations {
		in, ok := op.Input.(*Invocation)
		out, ok2 := op.Output.(Output)
		if !ok || !ok2 {
			return fmt.Errorf("%w: operation of types %T, %T", ErrBadHistory, op.Input, op.Output)
		}
		f.Operations = append(f.Operations, fileOp{In: *in, Out: out})
	}
	return json.NewEncoder(w).Encode(&f)
}

// Load reads what Save wrote: the history, and the options to check it with.
func Load(r io.Reader) (History, Options, error) {
	var f historyFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return History{}, Options{}, fmt.Errorf("%w: %w", ErrBadHistory, err)
	}
	h := History{Epoch: f.Epoch, Operations: make([]porcupine.Operation, 0, len(f.Operations))}
	for i := range f.Operations {
		op := &f.Operations[i]
		h.Operations = append(h.Operations, porcupine.Operation{
			ClientId: op.In.Client, Input: &op.In, Call: op.In.Call, Output: op.Out, Return: op.In.Return,
		})
	}
	var opts Options
	if o := f.Options; o != nil {
		opts = Options{Resources: o.Resources, Skew: o.Skew, Lateness: o.Lateness, UnknownHorizon: o.UnknownHorizon}
	}
	return h, opts, nil
}
