//go:build !linux

package tensor

import "testing"

// cpuLoop runs a single-threaded benchmark body b.N times; only Linux
// builds also report thread CPU time (see cputime_linux_test.go).
func cpuLoop(b *testing.B, bytes int64, f func()) {
	b.SetBytes(bytes)
	for b.Loop() {
		f()
	}
}

// parallelLoop runs a multi-threaded benchmark body b.N times; only Linux
// builds also report CPU-time figures, so it returns 0.
func parallelLoop(b *testing.B, bytes int64, threads int, f func()) float64 {
	b.SetBytes(bytes)
	for b.Loop() {
		f()
	}
	return 0
}

// cpuOpsLoop runs a single-threaded benchmark body b.N times and reports
// ops (in billions) per second of wall time, the unit named "wall-"+unit.
func cpuOpsLoop(b *testing.B, ops float64, unit string, f func()) {
	for b.Loop() {
		f()
	}
	b.ReportMetric(ops*float64(b.N)/b.Elapsed().Seconds()/1e9, "wall-"+unit)
}
