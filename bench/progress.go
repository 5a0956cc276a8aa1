package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"allot/bench/loadgen"
)

// progressLine reports a run once a second: requests so far, the rate
// over the last second, answers by class (errors are the "failed" ones:
// neither an answer of the API's nor throttling) and the p99 so far. On a
// terminal it redraws one line of the report's output; off one (CI, a
// pipe, a file) it writes a plain line per second to the log, so that the
// report stays clean and a long run still shows it is alive.
type progressLine struct {
	w     io.Writer
	tty   bool
	last  loadgen.Progress
	drawn bool
}

// newProgressLine draws on out when it is a terminal, else writes to log.
func newProgressLine(out, log io.Writer) *progressLine {
	if isTerminal(out) {
		return &progressLine{w: out, tty: true}
	}
	return &progressLine{w: log}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update is loadgen's Progress callback (one goroutine, once a second).
func (l *progressLine) update(p loadgen.Progress) {
	rate := float64(p.Requests-l.last.Requests) / max((p.Elapsed-l.last.Elapsed).Seconds(), 1e-9)
	l.last = p
	p99 := "-"
	if p.P99 > 0 {
		p99 = fmt.Sprintf("%.2fms", float64(p.P99)/float64(time.Millisecond))
	}
	line := fmt.Sprintf("%5.0fs %10d req %9.0f req/s  errors %d  p99 %s  (2xx %d, 409/422 %d, 429/503 %d)",
		p.Elapsed.Seconds(), p.Requests, rate, p.Failed, p99, p.OK, p.Rejected, p.Throttled)
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K"+line)
		l.drawn = true
		return
	}
	fmt.Fprintln(l.w, "bench: progress "+line)
}

// done ends the line; loadgen.Run has returned, so update no longer runs.
func (l *progressLine) done() {
	if l.drawn {
		fmt.Fprintln(l.w)
	}
	l.last, l.drawn = loadgen.Progress{}, false
}
