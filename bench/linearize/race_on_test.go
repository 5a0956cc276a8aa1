//go:build race

package linearize

// raceEnabled: the race detector slows the checker about fivefold, so the
// randomized tests check fewer mutations.
const raceEnabled = true
