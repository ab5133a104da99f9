package tensor

import (
	"fmt"
	"math"
)

// Kernel is the compute support for one element type: how to expand it to
// float32 and how to take dot products of its rows with activations.
//
// ggml's standard types have built-in kernels; tamp's own types (ids from
// TampTypeBase) get theirs through RegisterKernel.
type Kernel struct {
	// Dequantize expands whole blocks of src into dst. Callers have already
	// checked that src holds exactly len(dst) elements.
	Dequantize func(src []byte, dst []float32)
	// VecDotType is the type activations are converted to before Dot; it
	// must be one of F32, F16, BF16, Q8_0, Q8_1 or Q8_K, the types
	// ConvertActivation can produce.
	VecDotType Type
	// Dot returns the dot product of one stored row of n elements with xq,
	// n elements stored as VecDotType. Callers have already checked sizes.
	Dot func(n int, row, xq []byte) float32
}

var kernels = map[Type]Kernel{
	F32:  {dequantF32, F32, dotF32},
	F16:  {dequantF16, F16, dotF16},
	BF16: {dequantBF16, BF16, dotBF16},
	Q4_0: {dequantQ4_0, Q8_0, dotQ4_0},
	Q4_1: {dequantQ4_1, Q8_1, dotQ4_1},
	Q5_0: {dequantQ5_0, Q8_0, dotQ5_0},
	Q5_1: {dequantQ5_1, Q8_1, dotQ5_1},
	Q8_0: {dequantQ8_0, Q8_0, dotQ8_0},
	Q2_K: {dequantQ2_K, Q8_K, dotQ2_K},
	Q3_K: {dequantQ3_K, Q8_K, dotQ3_K},
	Q4_K: {dequantQ4_K, Q8_K, dotQ4_K},
	Q5_K: {dequantQ5_K, Q8_K, dotQ5_K},
	Q6_K: {dequantQ6_K, Q8_K, dotQ6_K},
}

// The activation types can be expanded but not dotted: ggml has no weight
// kernels for them either.
var dequantOnly = map[Type]func(src []byte, dst []float32){
	Q8_1: dequantQ8_1,
	Q8_K: dequantQ8_K,
}

// RegisterKernel installs the kernel for one of tamp's own types, which must
// already be known to RegisterType. Call it from an init function: the table
// is read without locking. It panics on a standard type, an unregistered or
// already-kernelled type, a nil function or an activation type tamp cannot
// produce, all of which are programming errors.
func RegisterKernel(t Type, k Kernel) {
	if t < TampTypeBase {
		panic(fmt.Sprintf("tensor: RegisterKernel(%s): only tamp's own types take registered kernels", t))
	}
	if _, ok := t.Info(); !ok {
		panic(fmt.Sprintf("tensor: RegisterKernel(%s): type not registered with RegisterType", t))
	}
	if _, dup := kernels[t]; dup {
		panic(fmt.Sprintf("tensor: RegisterKernel(%s): kernel registered twice", t))
	}
	if k.Dequantize == nil || k.Dot == nil {
		panic(fmt.Sprintf("tensor: RegisterKernel(%s): missing Dequantize or Dot", t))
	}
	switch k.VecDotType {
	case F32, F16, BF16, Q8_0, Q8_1, Q8_K:
	default:
		panic(fmt.Sprintf("tensor: RegisterKernel(%s): VecDotType %s is not an activation type", t, k.VecDotType))
	}
	kernels[t] = k
}

// Supported reports whether tamp can compute with t: dequantize it and take
// dot products of its rows.
func Supported(t Type) bool {
	_, ok := kernels[t]
	return ok
}

// VecDotType is the type ggml converts activations to before a dot product
// with weights of type t (ggml's vec_dot_type): F32, F16 and BF16 pair with
// themselves, Q4_0, Q5_0 and Q8_0 with Q8_0, Q4_1 and Q5_1 with Q8_1, and the
// K-quants with Q8_K. For a type that is not Supported it returns t itself,
// which no dot product accepts.
func VecDotType(t Type) Type {
	if k, ok := kernels[t]; ok {
		return k.VecDotType
	}
	return t
}

func unsupportedError(t Type) error {
	if _, ok := t.Info(); !ok {
		if t >= TampTypeBase && t < TampTypeBase+1024 {
			return fmt.Errorf("tensor: %s is not a registered type", t)
		}
		return fmt.Errorf("tensor: unknown type id %d", uint32(t))
	}
	return fmt.Errorf("tensor: type %s is not supported for computation (no kernel)", t)
}

// Dequantize converts len(dst) elements stored as t in src into dst. len(dst)
// must be a whole number of t's blocks and src exactly that many bytes;
// otherwise, or when t has no kernel (IQ*, TQ*, MXFP4, integer types, tamp
// types without a registered kernel), it returns an error naming the problem.
func Dequantize(t Type, src []byte, dst []float32) error {
	var f func(src []byte, dst []float32)
	if k, ok := kernels[t]; ok {
		f = k.Dequantize
	} else if d, ok := dequantOnly[t]; ok {
		f = d
	} else {
		return unsupportedError(t)
	}
	want, err := RowBytes(t, len(dst))
	if err != nil {
		return fmt.Errorf("tensor: dequantize %s: %w", t, err)
	}
	if len(src) != want {
		return fmt.Errorf("tensor: dequantize %d elements of %s needs %d bytes, got %d", len(dst), t, want, len(src))
	}
	f(src, dst)
	return nil
}

// DequantizeTensor expands a whole tensor into a new []float32, in storage
// order (row after row).
func DequantizeTensor(t *Tensor) ([]float32, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	out := make([]float32, t.Elements())
	if err := Dequantize(t.Type, t.Data, out); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

// DotRow returns the dot product of one stored row of n elements of type t
// with xq, the activations already converted to VecDotType(t) (see
// ConvertActivation). It computes as ggml's scalar ggml_vec_dot_<t>_<vecdot>
// does: integer sums within blocks, then scaled and summed in float in the
// same order.
//
// DotRow is the plain-Go reference: MatVec and MatMul use the machine's
// SIMD kernels where it has them (see SIMD), which agree with DotRow to
// float rounding and are tested against it. DotRow does no validation
// beyond what is needed to stay in bounds: it panics if t is not Supported or if row or xq
// do not hold exactly n elements, which are programming errors (MatVec checks
// both and returns errors instead).
func DotRow(t Type, n int, row, xq []byte) float32 {
	k, ok := kernels[t]
	if !ok {
		panic(unsupportedError(t))
	}
	rb, err := RowBytes(t, n)
	if err != nil {
		panic(err)
	}
	xb, err := RowBytes(k.VecDotType, n)
	if err != nil {
		panic(err)
	}
	if len(row) != rb || len(xq) != xb {
		panic(fmt.Sprintf("tensor: DotRow(%s, %d): row has %d bytes (want %d), activations %d (want %d)", t, n, len(row), rb, len(xq), xb))
	}
	return k.Dot(n, row, xq)
}

// f16 reads the little-endian half at b[0:2] as float32.
func f16(b []byte) float32 {
	_ = b[1]
	return f16Table[uint16(b[0])|uint16(b[1])<<8]
}

// f32 reads the little-endian float32 at b[0:4].
func f32(b []byte) float32 {
	_ = b[3]
	return math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}

func putF16(b []byte, h uint16) {
	_ = b[1]
	b[0] = byte(h)
	b[1] = byte(h >> 8)
}

func putF32(b []byte, f float32) {
	_ = b[3]
	u := math.Float32bits(f)
	b[0] = byte(u)
	b[1] = byte(u >> 8)
	b[2] = byte(u >> 16)
	b[3] = byte(u >> 24)
}
