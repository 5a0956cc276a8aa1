//go:build race

package httpapi

// raceEnabled skips allocation counts, which the race detector changes.
const raceEnabled = true
