//go:build !unix

package kv

// cpuTime is unavailable here; the benchmark's cpu-ms/tok then reads 0.
func cpuTime() int64 { return 0 }
