package tensor

import (
	"fmt"
	"runtime"
	"sync"
)

// ConvertActivation converts x to VecDotType(t), the form DotRow takes for
// weights of type t: F32 as raw little-endian float bits, F16/BF16 as halves,
// Q8_0/Q8_1/Q8_K as blocks made by ggml's reference quantizers. The result is
// written into dst when it is large enough (else into a new slice) and
// returned, sliced to its exact size. It panics if len(x) is not a whole
// number of the vec-dot type's blocks or t is not Supported; MatVec checks
// both first.
func ConvertActivation(t Type, x []float32, dst []byte) []byte {
	vt := VecDotType(t)
	if !Supported(t) {
		panic(unsupportedError(t))
	}
	size, err := RowBytes(vt, len(x))
	if err != nil {
		panic(err)
	}
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	switch vt {
	case F32:
		if v := viewF32(dst); v != nil {
			copy(v, x)
		} else {
			for i, f := range x {
				putF32(dst[4*i:], f)
			}
		}
	case F16:
		for i, f := range x {
			putF16(dst[2*i:], F32ToF16(f))
		}
	case BF16:
		for i, f := range x {
			putF16(dst[2*i:], F32ToBF16(f))
		}
	case Q8_0:
		QuantizeQ8_0(x, dst)
	case Q8_1:
		QuantizeQ8_1(x, dst)
	case Q8_K:
		QuantizeQ8_K(x, dst)
	default:
		panic(fmt.Sprintf("tensor: no activation conversion to %s", vt))
	}
	return dst
}

// parallelMin is the number of multiply-adds below which a product runs on
// the calling goroutine: splitting smaller ones costs more than it saves.
const parallelMin = 1 << 16

// forRows calls f on disjoint row ranges covering [0, rows), spread over up to
// GOMAXPROCS goroutines when the work is large enough to be worth it. Rows are
// computed independently, so the split does not change any result.
func forRows(rows, work int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > rows {
		workers = rows
	}
	if work < parallelMin || workers < 2 {
		f(0, rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (rows + workers - 1) / workers
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// actBufs recycles converted-activation buffers: decoding calls MatVec for
// every weight matrix of every token, and a fresh buffer each time would
// only feed the garbage collector.
var actBufs = sync.Pool{New: func() any { return new([]byte) }}

func checkWeights(w *Tensor) (Kernel, error) {
	if err := w.Check(); err != nil {
		return Kernel{}, err
	}
	k, ok := kernels[w.Type]
	if !ok {
		return Kernel{}, fmt.Errorf("tensor %q: %w", w.Name, unsupportedError(w.Type))
	}
	if _, err := RowBytes(k.VecDotType, w.Cols()); err != nil {
		// Cannot happen for ggml's types (each shares its activation
		// type's block size) but a tamp type might pair badly.
		return Kernel{}, fmt.Errorf("tensor %q: activations: %w", w.Name, err)
	}
	return k, nil
}

// MatVec computes out[r] = (row r of w) · x for every row of w. x is converted
// once to VecDotType(w.Type) and each row is dotted with DotRow, so results
// match llama.cpp's CPU backend up to summation order. len(x) must be
// w.Cols() and len(out) w.Rows(); a size mismatch, malformed tensor or
// unsupported type returns an error.
func MatVec(w *Tensor, x []float32, out []float32) error {
	return MatMul(w, x, 1, out)
}

// MatMul applies w to n input vectors: x holds them row-major (n × w.Cols())
// and out receives n × w.Rows() results, row-major, with the same semantics as
// MatVec for each vector.
func MatMul(w *Tensor, x []float32, n int, out []float32) error {
	k, err := checkWeights(w)
	if err != nil {
		return err
	}
	cols, rows := w.Cols(), w.Rows()
	if n < 0 || len(x) != n*cols {
		return fmt.Errorf("tensor %q: input has %d values, want %d vectors of %d", w.Name, len(x), n, cols)
	}
	if len(out) != n*rows {
		return fmt.Errorf("tensor %q: output has room for %d values, want %d vectors of %d", w.Name, len(out), n, rows)
	}
	if n == 0 || rows == 0 {
		return nil
	}
	xb, _ := RowBytes(k.VecDotType, cols)
	bp := actBufs.Get().(*[]byte)
	defer actBufs.Put(bp)
	if cap(*bp) < n*xb {
		*bp = make([]byte, n*xb)
	}
	xq := (*bp)[:n*xb]
	for v := 0; v < n; v++ {
		ConvertActivation(w.Type, x[v*cols:(v+1)*cols], xq[v*xb:(v+1)*xb])
	}
	rb := w.RowBytes()
	forRows(rows, rows*cols*n, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := w.Data[r*rb : (r+1)*rb]
			for v := 0; v < n; v++ {
				out[v*rows+r] = k.Dot(cols, row, xq[v*xb:(v+1)*xb])
			}
		}
	})
	return nil
}
