// Package faultkit injects the faults that break distributed systems into
// the seams allot leaves for them, so that tests can make them happen on
// purpose:
//
//   - Network wraps each node's Raft stream layer (cluster.Config.WrapStream):
//     symmetric and one-way partitions, latency and message loss between
//     chosen nodes, on real TCP connections.
//   - Clock is a node's wall clock (actors.Config.Clock): skewed from the
//     machine's, or stepped as NTP would.
//   - SlowLogStore wraps the Raft log store (cluster.Config.WrapLogStore):
//     slow fsyncs and failed writes.
//   - UnknownOutcomes wraps the log the engine proposes to
//     (server.Config.WrapLog): entries that commit while the engine is told
//     their outcome is unknown, as after an ApplyTimeout or a lost leader.
//
// Every injector counts what it did, so that a test can check that the fault
// it asked for really happened. All of them are safe for concurrent use.
// Package servertest (cmd/allot/server/servertest) builds an N-node cluster
// of full allot nodes wired with all of them; docs/TESTING.md shows how to
// use both.
package faultkit
