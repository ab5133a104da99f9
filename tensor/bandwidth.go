package tensor

import (
	"slices"
	"sync"
	"time"
)

// ReadBandwidth is a measurement of the machine's memory read bandwidth.
type ReadBandwidth struct {
	// BytesPerSec is the median over the timed passes of bytes read per
	// second. Medians resist the odd pass slowed by other programs.
	BytesPerSec float64
	// Best is the fastest pass, the closest to what the hardware can do.
	Best float64
	// Threads is the number of goroutines that read in parallel.
	Threads int
	// BufferBytes is the size of the buffer read in each pass.
	BufferBytes int
	// Passes is the number of timed passes.
	Passes int
}

// DefaultBandwidthBuffer is the buffer MeasureReadBandwidth reads when
// given no size: far larger than any CPU cache, so the passes measure DRAM.
const DefaultBandwidthBuffer = 256 << 20

// MeasureReadBandwidth measures how fast threads goroutines (threads < 1
// means Threads()) can stream through memory, STREAM-style: each pass reads
// a buffer of bufferBytes bytes (< 1 means DefaultBandwidthBuffer), split
// into one contiguous share per goroutine, with the widest loads the
// machine's kernels use (AVX2 on amd64) and nothing else, the way a
// matrix-vector product streams its weights. It runs one untimed warm-up
// pass and then timed passes until minTime has elapsed (at least three).
//
// Decoding a token reads every weight once, so BytesPerSec divided by the
// model's weight bytes bounds tokens per second; tamp bench reports the
// share of this bound that decoding reaches. Measure in the same run and
// with the same thread count as the benchmark it is compared with: on a
// shared machine the figure moves with the load from other programs.
//
// The buffer is allocated (and written once, so that every page is
// backed by memory) for the measurement and dropped afterwards.
func MeasureReadBandwidth(threads, bufferBytes int, minTime time.Duration) ReadBandwidth {
	if threads < 1 {
		threads = Threads()
	}
	if bufferBytes < 1 {
		bufferBytes = DefaultBandwidthBuffer
	}
	// Each share a multiple of 4 KiB (so of the probe's 128-byte step).
	share := max(bufferBytes/threads&^4095, 4096)
	buf := make([]byte, share*threads)
	for i := 0; i < len(buf); i += 64 {
		buf[i] = byte(i >> 6) // touch every cache line: no shared zero pages
	}
	pass := func() time.Duration {
		start := time.Now()
		bandwidthSink ^= readPass(buf, threads)
		return time.Since(start)
	}
	pass() // warm-up: page tables, frequency ramp
	var rates []float64
	begin := time.Now()
	for len(rates) < 3 || time.Since(begin) < minTime {
		d := pass()
		rates = append(rates, float64(len(buf))/d.Seconds())
	}
	slices.Sort(rates)
	return ReadBandwidth{
		BytesPerSec: rates[len(rates)/2],
		Best:        rates[len(rates)-1],
		Threads:     threads,
		BufferBytes: len(buf),
		Passes:      len(rates),
	}
}

// bandwidthSink keeps the probe's checksums observable.
var bandwidthSink uint64

// readPass reads buf once, split into threads equal contiguous shares (each
// a multiple of 128 bytes), one goroutine per share, and returns the XOR
// of their checksums.
func readPass(buf []byte, threads int) uint64 {
	share := len(buf) / threads
	sums := make([]uint64, threads)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Go(func() { sums[t] = readBytes(buf[t*share : (t+1)*share]) })
	}
	wg.Wait()
	var s uint64
	for _, v := range sums {
		s ^= v
	}
	return s
}
