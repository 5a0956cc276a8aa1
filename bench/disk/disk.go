// Package disk measures how long the machine's disk takes to make a small
// write durable. Every acknowledged allot write waits for one: the Raft log
// is a bbolt file, and a bbolt commit calls fdatasync twice (the data
// pages, then the meta page). So a closed loop of C clients that each wait
// for their own commit gets at most about C / (2 × fdatasync) answers per
// second, whatever the CPU does; the bench reports that bound beside the
// accept path's figures, so they can be read against the disk they ran on.
package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Probe is what Measure found.
type Probe struct {
	Samples   int     `json:"samples"`
	SyncP50MS float64 `json:"fdatasync_p50_ms"`
	SyncP99MS float64 `json:"fdatasync_p99_ms"`
}

// syncsPerCommit is how many fdatasyncs a bbolt commit makes.
const syncsPerCommit = 2

// pageSize is the write made durable each time: one page, as bbolt's meta.
const pageSize = 4096

// Measure writes a page and syncs it n times in a file in dir, removed
// afterwards, cycling over 16 page offsets of a file made up front (so the
// file's size, metadata that fdatasync would also have to write, does not
// change).
func Measure(dir string, n int) (Probe, error) {
	if n <= 0 {
		return Probe{}, fmt.Errorf("disk: %d samples", n)
	}
	f, err := os.CreateTemp(dir, "allot-disk-probe-")
	if err != nil {
		return Probe{}, fmt.Errorf("disk: %w", err)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	page := make([]byte, pageSize)
	const pages = 16
	for i := range pages {
		if _, err := f.WriteAt(page, int64(i)*pageSize); err != nil {
			return Probe{}, fmt.Errorf("disk: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return Probe{}, fmt.Errorf("disk: %w", err)
	}
	took := make([]time.Duration, n)
	for i := range took {
		page[0] = byte(i)
		start := time.Now()
		if _, err := f.WriteAt(page, int64(i%pages)*pageSize); err != nil {
			return Probe{}, fmt.Errorf("disk: %w", err)
		}
		if err := datasync(f); err != nil {
			return Probe{}, fmt.Errorf("disk: %w", err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return Probe{
		Samples:   n,
		SyncP50MS: ms(took[n/2]),
		SyncP99MS: ms(took[min(n-1, n*99/100)]),
	}, nil
}

// BoundRPS is the most answers per second a closed loop of clients, each
// waiting for its own durable commit, can get from one node on this disk:
// every client's request at best joins the next group commit, and a group
// commit takes syncsPerCommit fdatasyncs at the median.
func (p Probe) BoundRPS(clients int) float64 {
	if p.SyncP50MS <= 0 {
		return 0
	}
	return float64(clients) / (syncsPerCommit * p.SyncP50MS / 1000)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
