package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func randomTensor(r *rand.Rand, typ Type, cols, rows int) *Tensor {
	ti, _ := typ.Info()
	return &Tensor{Name: "w." + typ.String(), Type: typ, Dims: []int{cols, rows},
		Data: randomBlocks(r, typ, cols/ti.BlockSize*rows)}
}

// TestMatVecMatchesDotRow: MatVec must give, row by row, exactly what its
// kernel gives (SIMD where the machine has it, on one goroutine or several),
// and within the SIMD tolerance of the reference DotRow.
func TestMatVecMatchesDotRow(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, typ := range supportedTypes() {
		// 37 rows stay on one goroutine; 300 rows of 512 cross the
		// parallel threshold.
		for _, rows := range []int{37, 300} {
			w := randomTensor(r, typ, 512, rows)
			x := randomVector(r, 512)
			out := make([]float32, rows)
			if err := MatVec(w, x, out); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			xq := ConvertActivation(typ, x, nil)
			dot := kernelFor(typ, kernels[typ]).dot
			for i := 0; i < rows; i++ {
				if want := dot(512, w.Row(i), xq); math.Float32bits(out[i]) != math.Float32bits(want) {
					t.Fatalf("%s rows=%d: out[%d] = %g, kernel = %g", typ, rows, i, out[i], want)
				}
				ref := DotRow(typ, 512, w.Row(i), xq)
				tol := simdTolerance(typ, 512, dotMagnitude(t, typ, 512, w.Row(i), xq), ref)
				if d := math.Abs(float64(out[i]) - float64(ref)); !(d <= tol) {
					t.Fatalf("%s rows=%d: out[%d] = %g, DotRow = %g (diff %g > %g)", typ, rows, i, out[i], ref, d, tol)
				}
			}
		}
	}
}

func TestMatMulMatchesMatVec(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	for _, typ := range supportedTypes() {
		const cols, rows, n = 256, 45, 3
		w := randomTensor(r, typ, cols, rows)
		x := randomVector(r, n*cols)
		out := make([]float32, n*rows)
		if err := MatMul(w, x, n, out); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		one := make([]float32, rows)
		for v := 0; v < n; v++ {
			if err := MatVec(w, x[v*cols:(v+1)*cols], one); err != nil {
				t.Fatal(err)
			}
			for i := range one {
				if math.Float32bits(out[v*rows+i]) != math.Float32bits(one[i]) {
					t.Fatalf("%s: vector %d row %d: MatMul %g, MatVec %g", typ, v, i, out[v*rows+i], one[i])
				}
			}
		}
	}
}

// TestMatVecF32Exact: with F32 weights, MatVec is an ordinary product summed
// in float64, which small integers make exact.
func TestMatVecF32Exact(t *testing.T) {
	w := &Tensor{Name: "w", Type: F32, Dims: []int{3, 2}}
	for _, v := range []float32{1, 2, 3, -4, 5, -6} {
		w.Data = binary.LittleEndian.AppendUint32(w.Data, math.Float32bits(v))
	}
	out := make([]float32, 2)
	if err := MatVec(w, []float32{1, 10, 100}, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 321 || out[1] != -554 {
		t.Errorf("got %v, want [321 -554]", out)
	}
}

func TestMatVecErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	good := randomTensor(r, Q4_0, 64, 4)
	tests := []struct {
		name string
		w    *Tensor
		x, o int
		n    int
		want string
	}{
		{"short input", good, 63, 4, 1, "input has 63 values"},
		{"short output", good, 64, 3, 1, "output has room for 3"},
		{"matmul input", good, 64, 8, 2, "input has 64 values, want 2 vectors"},
		{"negative n", good, 0, 0, -1, "want -1 vectors"},
		{"truncated data", &Tensor{Name: "t", Type: Q4_0, Dims: []int{64, 4}, Data: good.Data[:100]}, 64, 4, 1, "needs 144 bytes, has 100"},
		{"row not whole blocks", &Tensor{Name: "b", Type: Q4_0, Dims: []int{48, 1}, Data: make([]byte, 27)}, 48, 1, 1, "not a multiple"},
		{"unsupported", &Tensor{Name: "iq", Type: IQ4_NL, Dims: []int{32, 1}, Data: make([]byte, 18)}, 32, 1, 1, "IQ4_NL"},
		{"unknown type", &Tensor{Name: "u", Type: Type(99), Dims: []int{1, 1}, Data: make([]byte, 4)}, 1, 1, 1, "unknown type id 99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := MatMul(tc.w, make([]float32, max(tc.x, 0)), tc.n, make([]float32, tc.o))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
	if err := MatMul(good, nil, 0, nil); err != nil {
		t.Errorf("zero vectors: %v", err)
	}
	// Rows of no elements: every dot product is an empty sum.
	for _, typ := range []Type{F32, Q4_0, Q4_K} {
		empty := &Tensor{Name: "empty", Type: typ, Dims: []int{0, 3}}
		out := make([]float32, 5*3) // five vectors: the four-column kernels too
		for i := range out {
			out[i] = 1
		}
		if err := MatMul(empty, nil, 5, out); err != nil {
			t.Errorf("%s, zero columns: %v", typ, err)
		}
		for i, v := range out {
			if v != 0 {
				t.Errorf("%s, zero columns: out[%d] = %g", typ, i, v)
			}
		}
	}
}

func TestConvertActivation(t *testing.T) {
	x := []float32{1, -2.5, 65504, 1e-8}
	for len(x) < 256 {
		x = append(x, float32(len(x))/7)
	}
	tests := []struct {
		weights Type
		elem    func(b []byte, i int) float32
		want    func(f float32) float32
	}{
		{F32, func(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }, func(f float32) float32 { return f }},
		{F16, func(b []byte, i int) float32 { return h16(b[2*i:]) }, func(f float32) float32 { return F16ToF32(F32ToF16(f)) }},
		{BF16, func(b []byte, i int) float32 { return BF16ToF32(le16(b[2*i:])) }, func(f float32) float32 { return BF16ToF32(F32ToBF16(f)) }},
	}
	for _, tc := range tests {
		b := ConvertActivation(tc.weights, x, nil)
		for i, f := range x {
			if got, want := tc.elem(b, i), tc.want(f); got != want {
				t.Fatalf("%s element %d: %g, want %g", tc.weights, i, got, want)
			}
		}
	}
	// Quantized activation types come from the reference quantizers, and the
	// buffer passed in is reused when big enough.
	for _, c := range []struct {
		weights Type
		q       func([]float32, []byte)
	}{{Q4_0, QuantizeQ8_0}, {Q5_1, QuantizeQ8_1}, {Q6_K, QuantizeQ8_K}} {
		size, _ := RowBytes(VecDotType(c.weights), len(x))
		buf := make([]byte, size+10)
		got := ConvertActivation(c.weights, x, buf)
		if len(got) != size || &got[0] != &buf[0] {
			t.Errorf("%s: result of %d bytes not written into the given buffer", c.weights, len(got))
		}
		want := make([]byte, size)
		c.q(x, want)
		if string(got) != string(want) {
			t.Errorf("%s: conversion differs from the quantizer", c.weights)
		}
	}
	if msg := mustPanic(t, func() { ConvertActivation(Q8_0, x[:30], nil) }); !strings.Contains(msg, "not a multiple") {
		t.Errorf("partial block: panic %q", msg)
	}
}

// TestMatMulBatchInvariant: a batched product, spread over threads and cache
// blocks (and the four-column kernels where a type has them), must give
// every vector exactly what MatVec gives it alone.
func TestMatMulBatchInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 19))
	defer SetThreads(Threads())
	for _, threads := range []int{1, 3} {
		SetThreads(threads)
		for _, typ := range supportedTypes() {
			const cols, rows, n = 512, 130, 11
			w := randomTensor(r, typ, cols, rows)
			x := randomVector(r, n*cols)
			out := make([]float32, n*rows)
			if err := MatMul(w, x, n, out); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			one := make([]float32, rows)
			for v := 0; v < n; v++ {
				if err := MatVec(w, x[v*cols:(v+1)*cols], one); err != nil {
					t.Fatal(err)
				}
				for i := range one {
					if math.Float32bits(out[v*rows+i]) != math.Float32bits(one[i]) {
						t.Fatalf("threads %d %s: vector %d row %d: MatMul %g, MatVec %g", threads, typ, v, i, out[v*rows+i], one[i])
					}
				}
			}
		}
	}
}

// TestMatVecNoAllocs: decoding calls MatVec for every matrix of every
// token, in parallel; in steady state that must not allocate.
func TestMatVecNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	r := rand.New(rand.NewPCG(20, 21))
	defer SetThreads(Threads())
	SetThreads(2)
	for _, typ := range []Type{Q4_0, Q4_K, F16} {
		w := randomTensor(r, typ, 1024, 512) // above the parallel threshold
		x := randomVector(r, 1024)
		out := make([]float32, 512)
		if n := testing.AllocsPerRun(50, func() {
			if err := MatVec(w, x, out); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: MatVec allocates %v times per call", typ, n)
		}
		xs := randomVector(r, 8*1024)
		outs := make([]float32, 8*512)
		if n := testing.AllocsPerRun(20, func() {
			if err := MatMul(w, xs, 8, outs); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: MatMul allocates %v times per call", typ, n)
		}
	}
}

func TestSetThreads(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	if got := Threads(); got != 3 {
		t.Errorf("Threads() = %d after SetThreads(3)", got)
	}
	SetThreads(0)
	if got := Threads(); got != runtime.GOMAXPROCS(0) {
		t.Errorf("Threads() = %d after SetThreads(0), want GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
}

// TestMatMulSet: products sharing an input, computed as one job, must give
// each product's MatMul bits, for mixed types (so mixed activation
// conversions and kernels) and batch sizes on both sides of the eight-row
// tile; a bad product fails the whole set before any output is written.
func TestMatMulSet(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	defer SetThreads(Threads())
	const cols = 512
	// Repeated types share one conversion of the input; 4 rows of Q4_0
	// are too few for the eight-row kernel, so that product converts
	// again for its own kernel.
	types := []Type{Q4_0, Q4_K, Q6_K, F16, Q8_0, Q4_0, F16, Q4_0}
	for _, threads := range []int{1, 2, 3} {
		SetThreads(threads)
		for _, n := range []int{1, 2, 5, 9} {
			x := randomVector(r, n*cols)
			var ps []Product
			var want [][]float32
			for i, typ := range types {
				rows := []int{300, 64, 37, 256, 8, 40, 16, 4}[i]
				w := randomTensor(r, typ, cols, rows)
				one := make([]float32, n*rows)
				if err := MatMul(w, x, n, one); err != nil {
					t.Fatal(err)
				}
				want = append(want, one)
				ps = append(ps, Product{W: w, Out: make([]float32, n*rows)})
			}
			if err := MatMulSet(x, n, ps...); err != nil {
				t.Fatal(err)
			}
			for i, p := range ps {
				for k, v := range p.Out {
					if math.Float32bits(v) != math.Float32bits(want[i][k]) {
						t.Fatalf("threads %d n %d %s: value %d: set %g, MatMul %g", threads, n, p.W.Type, k, v, want[i][k])
					}
				}
			}
		}
	}

	x := randomVector(r, cols)
	good := Product{W: randomTensor(r, Q4_0, cols, 64), Out: make([]float32, 64)}
	bad := Product{W: randomTensor(r, Q8_0, cols, 64), Out: make([]float32, 63)}
	if err := MatMulSet(x, 1, good, bad); err == nil || !strings.Contains(err.Error(), "output has room for 63") {
		t.Fatalf("short output: got %v", err)
	}
	for _, v := range good.Out {
		if v != 0 {
			t.Fatal("MatMulSet wrote an output although another product was invalid")
		}
	}
}

// TestMatMulSetNoAllocs: decoding runs a set per layer and token.
func TestMatMulSetNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	r := rand.New(rand.NewPCG(32, 33))
	defer SetThreads(Threads())
	SetThreads(2)
	x := randomVector(r, 1024)
	ps := []Product{
		{W: randomTensor(r, Q4_0, 1024, 512), Out: make([]float32, 512)},
		{W: randomTensor(r, Q4_K, 1024, 128), Out: make([]float32, 128)},
		{W: randomTensor(r, Q6_K, 1024, 128), Out: make([]float32, 128)},
	}
	if n := testing.AllocsPerRun(50, func() {
		if err := MatMulSet(x, 1, ps...); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("MatMulSet allocates %v times per call", n)
	}
	outB := make([]float32, 512)
	done := func(lo, hi int) {}
	if n := testing.AllocsPerRun(50, func() {
		if err := MatMulPair(ps[0].W, ps[0].W, x, 1, ps[0].Out, outB, done); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("MatMulPair allocates %v times per call", n)
	}
}

// TestMatMulPair: both products are MatMul's to the bit, done sees every
// row exactly once and only after both products wrote it for every
// vector, whatever the types (eight-row, decoding, F16 kernels), batch
// size and threads.
func TestMatMulPair(t *testing.T) {
	r := rand.New(rand.NewPCG(34, 35))
	defer SetThreads(Threads())
	const cols = 512
	pairs := [][2]Type{{Q4_0, Q4_0}, {Q4_K, Q6_K}, {F16, Q8_0}, {Q4_0, F32}}
	for _, threads := range []int{1, 2, 3} {
		SetThreads(threads)
		for _, tp := range pairs {
			for _, rows := range []int{37, 264} {
				for _, n := range []int{1, 3, 4, 9} {
					a, b := randomTensor(r, tp[0], cols, rows), randomTensor(r, tp[1], cols, rows)
					x := randomVector(r, n*cols)
					wantA, wantB := make([]float32, n*rows), make([]float32, n*rows)
					if err := MatMul(a, x, n, wantA); err != nil {
						t.Fatal(err)
					}
					if err := MatMul(b, x, n, wantB); err != nil {
						t.Fatal(err)
					}
					outA, outB := make([]float32, n*rows), make([]float32, n*rows)
					seen := make([]int32, rows)
					var mu sync.Mutex
					done := func(lo, hi int) {
						mu.Lock()
						defer mu.Unlock()
						for r := lo; r < hi; r++ {
							seen[r]++
							for c := range n {
								if math.Float32bits(outA[c*rows+r]) != math.Float32bits(wantA[c*rows+r]) ||
									math.Float32bits(outB[c*rows+r]) != math.Float32bits(wantB[c*rows+r]) {
									t.Errorf("%v threads %d n %d: row %d vector %d not final when done ran", tp, threads, n, r, c)
								}
							}
						}
					}
					if err := MatMulPair(a, b, x, n, outA, outB, done); err != nil {
						t.Fatal(err)
					}
					for r, k := range seen {
						if k != 1 {
							t.Fatalf("%v threads %d n %d: done saw row %d %d times", tp, threads, n, r, k)
						}
					}
				}
			}
		}
	}
	a, b := randomTensor(r, Q4_0, cols, 64), randomTensor(r, Q4_0, cols, 32)
	if err := MatMulPair(a, b, randomVector(r, cols), 1, make([]float32, 64), make([]float32, 32), nil); err == nil || !strings.Contains(err.Error(), "one shape") {
		t.Errorf("pair of different shapes: got %v", err)
	}
}
