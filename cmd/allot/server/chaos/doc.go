// Package chaos runs a crowd of recorded clients against an allot cluster
// while faults are injected, then checks the history: porcupine
// linearizability per resource (package bench/linearize), no acknowledged
// reservation lost, nothing oversold, one Idempotency-Key never booking
// twice, and every node ending with the same state.
//
// The workload (Workload) talks HTTP to any set of node URLs, so the same
// crowd runs against the in-process test kit (cmd/allot/server/servertest,
// faults: partitions, one-way partitions, crashes, clock steps, unknown
// outcomes, wipes, membership changes, snapshot installs) and against real
// processes (cmd/allot's e2e suite: SIGKILL and SIGSTOP). The seeded
// schedules of in-process faults live in this package's tests, behind the
// build tag chaos:
//
//	go test -tags chaos -run TestChaos -count=1 ./cmd/allot/server/chaos/
//	go test -tags chaos -run 'TestChaos/partition' -seed=7 ./cmd/allot/server/chaos/
//	go test -tags chaos -run TestChaos -timeout 90m ./cmd/allot/server/chaos/ -runs=12 -duration=20s
//
// Every failure names its seed; -seed replays it.
package chaos
