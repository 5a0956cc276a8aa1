package domain

// Log formats and the gate that switches them on.
//
// The log format is the batch version (BatchV1, BatchV2, ...) a leader
// writes. A binary decodes every version up to its BatchVersion, but an
// older binary does not decode a newer one, and a node that meets an entry
// it cannot decode stops (fail-stop) rather than skip it. So a leader writes
// a new format only after the cluster committed an EvLogFormat event naming
// it, and the cluster's leader proposes that event only once every server
// of the Raft configuration has said it understands the format (cluster
// asks each one over the Raft port). From that entry on every leader may
// write the format; a node that applies the event but does not know the
// format stops at the event itself, before any entry it cannot decode.
//
// Format 2 stamps every batch with its proposer's term; format 3 adds the
// EvPrune event (retention.go), which the leader's engine proposes only
// once the committed format is at least 3, in batches written as version 3;
// from format 4 on the FSM numbers the change stream (change.go), and
// webhook events are proposed only then.
//
// The committed format is part of State (State.LogFormat): it is in the
// state hash and travels in snapshots (record type 7), so a node restored
// from a snapshot writes the format the cluster moved to.

// LogFormatKnown reports whether this binary decodes entries of format v.
func LogFormatKnown(v uint8) bool { return v >= BatchV1 && v <= BatchVersion }
