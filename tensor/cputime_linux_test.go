package tensor

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling OS thread has used, in seconds.
func threadCPU() (float64, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0, false
	}
	return float64(ts.Nano()) / 1e9, true
}

// cpuLoop runs a single-threaded benchmark body b.N times on one OS thread
// and reports, besides the wall-clock figures, "cpu-GB/s": bytes per second
// of that thread's CPU time. On a machine shared with other work the
// wall-clock figures include the time the thread waited for a core; the CPU
// figure does not, and so measures the kernel itself.
func cpuLoop(b *testing.B, bytes int64, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.SetBytes(bytes)
	t0, ok := threadCPU()
	for b.Loop() {
		f()
	}
	if t1, ok1 := threadCPU(); ok && ok1 && t1 > t0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/(t1-t0)/1e9, "cpu-GB/s")
	}
}

// processCPU is the CPU time the whole process has used, in seconds.
func processCPU() (float64, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts) != nil {
		return 0, false
	}
	return float64(ts.Nano()) / 1e9, true
}

// parallelLoop runs a benchmark body that uses threads threads, with
// bytes per call for the MB/s column, and reports "cpu-GB/s": bytes per
// second of process CPU time divided by threads. When the threads get whole
// cores that equals the wall-clock rate; on a machine busy with other work
// it estimates what the product would reach with the cores to itself.
// Spinning workers count as CPU time (conservative); other programs' memory
// traffic is not charged to it (optimistic for memory-bound loops). It
// returns that estimate of seconds per call, or 0 where it cannot tell.
func parallelLoop(b *testing.B, bytes int64, threads int, f func()) float64 {
	b.SetBytes(bytes)
	t0, ok := processCPU()
	for b.Loop() {
		f()
	}
	t1, ok1 := processCPU()
	if !ok || !ok1 || t1 <= t0 {
		return 0
	}
	perOp := (t1 - t0) / float64(threads) / float64(b.N)
	if bytes > 0 {
		b.ReportMetric(float64(bytes)/perOp/1e9, "cpu-GB/s")
	}
	return perOp
}

// cpuOpsLoop is cpuLoop for a body that does ops operations of some unit
// (multiply-adds, say): it reports "cpu-"+unit, in billions per second of
// the thread's CPU time.
func cpuOpsLoop(b *testing.B, ops float64, unit string, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := threadCPU()
	for b.Loop() {
		f()
	}
	if t1, ok1 := threadCPU(); ok && ok1 && t1 > t0 {
		b.ReportMetric(ops*float64(b.N)/(t1-t0)/1e9, "cpu-"+unit)
	}
}
