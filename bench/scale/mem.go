package scale

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
)

// Mem is one reading of the process's memory. The kernel's figures come
// from /proc/self/status and are -1 where it has none (not Linux); the Go
// figures from runtime/metrics.
type Mem struct {
	// RSS is VmRSS: resident memory now, RSSAnon the anonymous part (the
	// Go heap and stacks), RSSFile the file-backed part (bbolt's mmapped
	// files whose pages are in memory, the binary).
	RSS, RSSAnon, RSSFile int64
	// HWM is VmHWM: the peak of RSS since the process started.
	HWM int64
	// HeapLive is the heap marked live by the last GC; HeapObjects the heap
	// in objects now, garbage included; GoTotal all memory the Go runtime
	// mapped (heap, stacks, metadata), released pages excluded.
	HeapLive, HeapObjects, GoTotal int64
	// Goroutines running at the reading.
	Goroutines int
}

// readMem reads the figures now, without a GC.
func readMem() Mem {
	m := Mem{RSS: -1, RSSAnon: -1, RSSFile: -1, HWM: -1, Goroutines: runtime.NumGoroutine()}
	if raw, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			key, val, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			var dst *int64
			switch key {
			case "VmRSS":
				dst = &m.RSS
			case "RssAnon":
				dst = &m.RSSAnon
			case "RssFile":
				dst = &m.RSSFile
			case "VmHWM":
				dst = &m.HWM
			default:
				continue
			}
			// "  123456 kB"
			f := strings.Fields(val)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					*dst = kb << 10
				}
			}
		}
	}
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(samples)
	val := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return -1
		}
		return int64(samples[i].Value.Uint64())
	}
	m.HeapLive, m.HeapObjects = val(0), val(1)
	if total, released := val(2), val(3); total >= 0 && released >= 0 {
		m.GoTotal = total - released
	}
	return m
}

// settledMem forces a GC and returns freed pages to the kernel before it
// reads: what the process holds on to, without the garbage that a GOGC=100
// heap lets grow to about its live size again.
func settledMem() Mem {
	debug.FreeOSMemory()
	return readMem()
}

// writeHeapProfile writes the heap profile as of the last GC to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
}
