package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"allot/bench/admin"
	"allot/bench/report"
	"allot/bench/verify"
)

// runChecks are the checks that compare the state with what a run of the
// bench saw (its 201s, keys, sold_out answers and unexpected answers):
// --verify-only has no run, so they are reported as skipped.
var runChecks = map[string]bool{
	"acknowledged_reservations_present": true,
	"idempotency":                       true,
	"no_false_sold_out":                 true,
	"no_unexpected_responses":           true,
	"limit_acknowledged_per_user":       true,
	"stream_acks_created_once":          true,
	"stream_acknowledged_transitions":   true,
}

// verifyOnly is --verify-only: no load, only the verifier, against the
// whole current state of the cluster at --target (after a load test made
// with any other tool). It reads every resource with its reservations,
// every limit group and the change stream, and runs the checks that need
// no record of a run: no oversell, counts that add up, per-user limits,
// limit groups, expiry on time, and the stream's own consistency and its
// agreement with the state.
func (b *bench) verifyOnly(ctx context.Context) error {
	if err := b.loadSecret(); err != nil {
		return err
	}
	b.rep.VerifyOnly = strings.Join(b.opts.targets, ",")
	client, err := b.adminClient(ctx, "verify", b.opts.targets)
	if err != nil {
		return err
	}
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	start := time.Now()
	ids, err := client.ResourceIDs(vctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	lids, err := client.LimitIDs(vctx)
	if errors.Is(err, admin.ErrNoLimits) {
		b.noLimits = err.Error()
	} else if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	b.rep.Resources, b.rep.Limits = len(ids), len(lids)
	b.say("reading back %d resources and %d limit groups", len(ids), len(lids))
	var (
		reader    *admin.Reader
		resources []verify.Resource
		limits    []verify.Limit
	)
	if len(ids) > 0 {
		if reader, err = client.NewReader(vctx, ids[0]); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		var before []verify.Limit
		if len(lids) > 0 {
			if before, err = reader.ReadLimits(vctx, lids, setupParallel); err != nil {
				return fmt.Errorf("verify: %w", err)
			}
		}
		if resources, err = reader.ReadAll(vctx, ids, setupParallel); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if limits, err = b.settleLimits(vctx, reader, lids, before, resources); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	b.say("reading the change stream")
	var skipped *verify.StreamSummary
	stream, err := client.ReadStream(vctx)
	switch {
	case errors.Is(err, admin.ErrNoStream):
		skipped = &verify.StreamSummary{Skipped: err.Error()}
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	case stream.After > 0:
		// The reservations made before the oldest kept event have no
		// creating event left: the stream cannot be checked against them.
		skipped = &verify.StreamSummary{Skipped: fmt.Sprintf(
			"the stream starts after offset %d (older events were pruned by --event-retention), so it cannot account for the whole state", stream.After)}
	}
	in := verify.Input{Resources: resources, Limits: limits, ExpiryGrace: expiryGrace, LimitsSkipped: b.noLimits}
	if skipped == nil {
		in.Stream = &stream
	} else {
		b.say("stream checks skipped: %s", skipped.Skipped)
	}
	result := verify.Verify(in)
	if skipped != nil {
		result.Stream = skipped
	}
	for i := range result.Checks {
		if c := &result.Checks[i]; runChecks[c.Name] && c.Failures == 0 {
			c.Skipped = "--verify-only: there are no answers of a run to compare with"
		}
	}
	reservations := 0
	for _, r := range resources {
		reservations += len(r.Reservations)
	}
	b.rep.Verify = &report.Verification{
		Pass: result.Pass, LinearizableReads: reader == nil || reader.Linearizable(), Resources: len(resources),
		Reservations: reservations, DurationS: time.Since(start).Seconds(), Checks: result.Checks, Stream: result.Stream,
	}
	return nil
}
