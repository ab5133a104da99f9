package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The benchmarks report bytes of weights per second (the MB/s column), the
// figure that bounds decoding speed; the single-threaded ones also report
// cpu-GB/s, the same per second of the thread's own CPU time, which a
// machine busy with other work does not distort. "ref" runs the plain-Go kernels, "simd"
// the machine's (the same as ref where there are none).
//
//	go test ./tensor -run '^$' -bench 'Dot|MatVec|MatMul|ReadBandwidth'

// withSIMD runs f with MatMul's SIMD kernels on or off.
func withSIMD(on bool, f func()) {
	old := useSIMD
	useSIMD = on
	defer func() { useSIMD = old }()
	f()
}

func kernelModes() []struct {
	name string
	on   bool
} {
	return []struct {
		name string
		on   bool
	}{{"ref", false}, {"simd", true}}
}

// BenchmarkDot times one row of 4096 elements of every type against
// activations already converted, reference kernel against SIMD kernel.
func BenchmarkDot(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 3))
	for _, typ := range supportedTypes() {
		ti, _ := typ.Info()
		row := randomBlocks(r, typ, n/ti.BlockSize)
		xq := ConvertActivation(typ, randomVector(r, n), nil)
		for _, m := range kernelModes() {
			b.Run(typ.String()+"/"+m.name, func(b *testing.B) {
				var dot func(int, []byte, []byte) float32
				withSIMD(m.on, func() { dot = kernelFor(typ, kernels[typ]).dot })
				cpuLoop(b, int64(len(row)), func() { dot(n, row, xq) })
			})
		}
	}
}

// matVecTypes are the weight types of the benchmark models.
var matVecTypes = []Type{F16, Q8_0, Q4_0, Q4_K, Q6_K}

// BenchmarkMatVec times decoding-sized products on TinyLlama-1.1B's FFN
// matrices (2048 → 5632 and 5632 → 2048), with 1 and 2 threads. The weights
// (6-23 MB) are far larger than the caches, so each iteration streams them
// from memory as decoding does.
func BenchmarkMatVec(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, shape := range [][2]int{{2048, 5632}, {5632, 2048}} {
		cols, rows := shape[0], shape[1]
		for _, typ := range matVecTypes {
			w := randomTensor(r, typ, cols, rows)
			x := randomVector(r, cols)
			out := make([]float32, rows)
			for _, m := range kernelModes() {
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("%dx%d/%s/%s/t%d", cols, rows, typ, m.name, threads)
					b.Run(name, func(b *testing.B) {
						defer SetThreads(Threads())
						SetThreads(threads)
						withSIMD(m.on, func() {
							parallelLoop(b, int64(len(w.Data)), threads, func() {
								if err := MatVec(w, x, out); err != nil {
									b.Fatal(err)
								}
							})
						})
					})
				}
			}
		}
	}
}

// BenchmarkMatMul times a prompt-processing product: 64 activation rows
// through TinyLlama's 2048 → 5632 matrix on Threads() threads. rows/s is
// activation rows per second for this one matrix; the cpu- figures are the
// same per second of process CPU time divided by the threads (see
// parallelLoop).
func BenchmarkMatMul(b *testing.B) {
	const cols, rows, n = 2048, 5632, 64
	r := rand.New(rand.NewPCG(4, 5))
	x := randomVector(r, n*cols)
	out := make([]float32, n*rows)
	for _, typ := range matVecTypes {
		w := randomTensor(r, typ, cols, rows)
		for _, m := range kernelModes() {
			b.Run(typ.String()+"/"+m.name, func(b *testing.B) {
				withSIMD(m.on, func() {
					perOp := parallelLoop(b, int64(len(w.Data)), Threads(), func() {
						if err := MatMul(w, x, n, out); err != nil {
							b.Fatal(err)
						}
					})
					flop := 2 * float64(cols*rows*n)
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
					b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if perOp > 0 {
						b.ReportMetric(n/perOp, "cpu-rows/s")
						b.ReportMetric(flop/perOp/1e9, "cpu-GFLOP/s")
					}
				})
			})
		}
	}
}

// BenchmarkReadBandwidth times passes of MeasureReadBandwidth's probe over
// a DefaultBandwidthBuffer-sized buffer with 1 and 2 threads; its MB/s
// column is the memory read bandwidth the MatVec figures compare with.
func BenchmarkReadBandwidth(b *testing.B) {
	buf := make([]byte, DefaultBandwidthBuffer)
	for i := 0; i < len(buf); i += 64 {
		buf[i] = byte(i >> 6)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			parallelLoop(b, int64(len(buf)), threads, func() { bandwidthSink ^= readPass(buf, threads) })
		})
	}
}

func TestMeasureReadBandwidth(t *testing.T) {
	bw := MeasureReadBandwidth(2, 8<<20, time.Millisecond)
	if bw.Threads != 2 || bw.BufferBytes != 8<<20 || bw.Passes < 3 {
		t.Errorf("got %+v", bw)
	}
	if !(bw.BytesPerSec > 0 && bw.Best >= bw.BytesPerSec) {
		t.Errorf("rates: median %g, best %g", bw.BytesPerSec, bw.Best)
	}
	// Odd sizes round down to whole 4 KiB shares per thread.
	if bw := MeasureReadBandwidth(3, 1<<20+5, 0); bw.BufferBytes != 3*(((1<<20+5)/3)&^4095) {
		t.Errorf("buffer %d bytes", bw.BufferBytes)
	}
}

// TestReadBytes: the probe must read every byte (a checksum over the
// buffer), so that no load can be skipped, and agree with the portable one.
func TestReadBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	want := readBytesGo(b)
	if got := readBytes(b); got != want {
		t.Fatalf("readBytes = %#x, portable %#x", got, want)
	}
	for _, i := range []int{0, 100, 4095} {
		b[i] ^= 1
		if readBytes(b) == want {
			t.Errorf("flipping byte %d did not change the checksum", i)
		}
		b[i] ^= 1
	}
}
