package tensor

import "math"

// f16BatchKernel multiplies F16 weights by several activation vectors at
// once, for prompt processing: the one-vector kernel converts a weight row
// from half precision for every vector, this one once for three, and reads
// the activations widened to float32 ahead (exactly, from the halves
// ConvertActivation rounds them to), so each result is still the
// one-vector kernel's to the bit.
type f16BatchKernel struct {
	// dot3 writes the dots of row (n halves) with y[0:n],
	// y[ystride:ystride+n] and y[2·ystride:2·ystride+n] to out[0],
	// out[ostride] and out[2·ostride].
	dot3 func(n int, row []byte, y []float32, ystride int, out []float32, ostride int)
	// widen converts len(dst) halves from src to float32.
	widen func(dst []float32, src []byte)
}

// f16Batch is this machine's batched F16 kernel, or nil.
var f16Batch *f16BatchKernel

// f16BatchFor returns the batched F16 kernel MatMul uses, or nil.
func f16BatchFor(t Type) *f16BatchKernel {
	if t != F16 || !useSIMD {
		return nil
	}
	return f16Batch
}

// quietF16AsF32 is half h as VCVTPH2PS converts it (signalling NaNs come
// out quiet).
func quietF16AsF32(h uint16) float32 { return math.Float32frombits(quietF16(h)) }
