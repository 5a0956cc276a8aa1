package server

import (
	"allot/cluster"
	"allot/httpapi"
)

// addHealth explains the node in its /v1/cluster answer. The Raft indexes
// are taken from h as well, so that apply_lag matches the indexes shown.
func addHealth(info *httpapi.ClusterInfo, h cluster.Health) {
	info.State, info.Ready = h.State, h.NotReady == nil
	if h.NotReady != nil {
		info.Reason = h.NotReady.Error()
	}
	info.Term, info.LastLogIndex, info.CommitIndex, info.AppliedIndex = h.Term, h.LastLogIndex, h.CommitIndex, h.AppliedIndex
	if h.CommitIndex > h.AppliedIndex {
		info.ApplyLag = h.CommitIndex - h.AppliedIndex
	}
	if h.LastContact >= 0 {
		s := h.LastContact.Seconds()
		info.LastContactSeconds = &s
	}
	info.InvariantViolations = h.Violations
}
