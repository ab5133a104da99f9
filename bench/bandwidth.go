package bench

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"tamp/tensor"
)

// Bandwidth is a measured memory read bandwidth.
type Bandwidth struct {
	// GBps is the median over the timed passes in 10⁹ bytes per second;
	// Best is the fastest pass.
	GBps float64 `json:"gbps"`
	Best float64 `json:"best_gbps"`
	// Bytes is the size of the buffer each pass reads, Threads how many
	// goroutines read it (each its own contiguous share), Passes how many
	// timed passes there were.
	Bytes   int64 `json:"bytes"`
	Threads int   `json:"threads"`
	Passes  int   `json:"passes"`
}

// DefaultBandwidthBytes is the buffer MeasureBandwidth reads: four times
// the last-level cache (STREAM's rule, so caches hold a quarter of it at
// most), and at least tensor.DefaultBandwidthBuffer (256 MiB).
func DefaultBandwidthBytes() int64 {
	return max(4*lastLevelCache(), tensor.DefaultBandwidthBuffer)
}

// lastLevelCache is the largest CPU cache's size from Linux's sysfs, or
// 32 MiB where the system does not say.
func lastLevelCache() int64 {
	var best int64
	for i := 0; i < 8; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/sys/devices/system/cpu/cpu0/cache/index%d/size", i))
		if err != nil {
			continue
		}
		if n := parseCacheSize(string(b)); n > best {
			best = n
		}
	}
	if best == 0 {
		return 32 << 20
	}
	return best
}

// parseCacheSize reads sysfs's cache sizes, such as "32768K" or "1M"; 0
// for anything else.
func parseCacheSize(s string) int64 {
	s = strings.TrimSpace(s)
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n * mult
}

// MeasureBandwidth measures how fast threads goroutines read memory with
// tensor.MeasureReadBandwidth (STREAM-style passes over a buffer of size
// bytes, DefaultBandwidthBytes when size ≤ 0, with the loads the kernels
// use, repeated for at least minTime) and hands the buffer back to the
// operating system afterwards, so it does not linger in the process's
// memory.
func MeasureBandwidth(threads int, size int64, minTime time.Duration) Bandwidth {
	if size <= 0 {
		size = DefaultBandwidthBytes()
	}
	rb := tensor.MeasureReadBandwidth(threads, int(size), minTime)
	debug.FreeOSMemory()
	return Bandwidth{GBps: rb.BytesPerSec / 1e9, Best: rb.Best / 1e9, Bytes: int64(rb.BufferBytes), Threads: rb.Threads, Passes: rb.Passes}
}
