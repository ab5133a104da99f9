// Package tensor holds tamp's tensor element types, their block layouts and the
// kernels that compute with them.
//
// Standard types keep ggml's (llama.cpp's) numeric ids and byte layouts, so GGUF
// files move between tamp and llama.cpp unchanged. tamp's own types live in the
// range [TampTypeBase, TampTypeBase+1024): ggml allocates ids upward from 0 and
// has never come near 1024, so the two ranges cannot collide. A tool without
// tamp's types sees an unknown id there and refuses the file; tamp itself names
// the type in its error message.
//
// # Kernels
//
// MatVec and MatMul convert the activations to the weight type's vec-dot
// type (Q8_0, Q8_K, F16, ...) once, as llama.cpp does, and spread the rows
// over a worker pool (SetThreads). Each weight type has a plain-Go
// reference dot product (Kernel.Dot); on amd64 with AVX2, FMA and F16C the
// products run through assembly kernels, chosen by the product's shape:
//
//   - one vector (decoding): for Q4_0 and Q4_K a decoding kernel that
//     reads activations rewritten once per product into a layout made for
//     it (decode.go); for other types the one-vector kernel;
//   - four vectors or more of Q4_0, Q8_0, Q4_K or Q6_K (prompt processing):
//     eight-row kernels over weight rows packed into L2-sized scratch
//     (gemm.go); F16 three vectors at a time (f16batch.go).
//
// Kernels of one type compute each dot product in one fixed order, so a
// result never depends on the batch it was computed in: MatMul of n
// vectors is bit-identical to n MatVecs, and the tests compare every
// assembly kernel with its reference bit for bit (integer block sums) or
// within the float rounding of a different summation order. MatMulSet runs
// several products of one input (a layer's query, key and value) as one
// pool job. Build with -tags purego to run the references everywhere.
package tensor

import "fmt"

// Type is a tensor element type; its value is the id stored in GGUF files.
type Type uint32

// ggml's type ids (ggml.h, enum ggml_type). Gaps are ids ggml has retired.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// TampTypeBase is the first id of tamp's own tensor types.
const TampTypeBase Type = 1024

// TypeInfo describes how a type stores its elements: BlockSize elements share
// one block of BlockBytes bytes. Rows of a tensor must hold whole blocks.
type TypeInfo struct {
	Name       string
	BlockSize  int
	BlockBytes int
}

// BitsPerWeight is the storage cost of one element, scales included.
func (ti TypeInfo) BitsPerWeight() float64 {
	return float64(ti.BlockBytes*8) / float64(ti.BlockSize)
}

var typeInfos = map[Type]TypeInfo{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, 18},
	Q4_1:    {"Q4_1", 32, 20},
	Q5_0:    {"Q5_0", 32, 22},
	Q5_1:    {"Q5_1", 32, 24},
	Q8_0:    {"Q8_0", 32, 34},
	Q8_1:    {"Q8_1", 32, 36},
	Q2_K:    {"Q2_K", 256, 84},
	Q3_K:    {"Q3_K", 256, 110},
	Q4_K:    {"Q4_K", 256, 144},
	Q5_K:    {"Q5_K", 256, 176},
	Q6_K:    {"Q6_K", 256, 210},
	Q8_K:    {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66},
	IQ2_XS:  {"IQ2_XS", 256, 74},
	IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S:   {"IQ1_S", 256, 50},
	IQ4_NL:  {"IQ4_NL", 32, 18},
	IQ3_S:   {"IQ3_S", 256, 110},
	IQ2_S:   {"IQ2_S", 256, 82},
	IQ4_XS:  {"IQ4_XS", 256, 136},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", 256, 56},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", 256, 54},
	TQ2_0:   {"TQ2_0", 256, 66},
	MXFP4:   {"MXFP4", 32, 17},
}

// RegisterType adds one of tamp's own types to the table. It panics on an id
// outside tamp's range or one already taken: both are programming errors.
func RegisterType(t Type, info TypeInfo) {
	if t < TampTypeBase || t >= TampTypeBase+1024 {
		panic(fmt.Sprintf("tensor: type id %d for %s is outside tamp's range [%d,%d)", t, info.Name, TampTypeBase, TampTypeBase+1024))
	}
	if _, dup := typeInfos[t]; dup {
		panic(fmt.Sprintf("tensor: type id %d registered twice", t))
	}
	if info.BlockSize <= 0 || info.BlockBytes <= 0 {
		panic(fmt.Sprintf("tensor: type %s has an empty block", info.Name))
	}
	typeInfos[t] = info
}

// Info returns the layout of t, and false for an id tamp does not know.
func (t Type) Info() (TypeInfo, bool) {
	ti, ok := typeInfos[t]
	return ti, ok
}

// String returns the type's name, or a description of an unknown id.
func (t Type) String() string {
	if ti, ok := typeInfos[t]; ok {
		return ti.Name
	}
	if t >= TampTypeBase && t < TampTypeBase+1024 {
		return fmt.Sprintf("tamp-type(%d)", uint32(t))
	}
	return fmt.Sprintf("unknown-type(%d)", uint32(t))
}

// ParseType looks a type up by its name (case-sensitive, as llama.cpp spells it).
func ParseType(name string) (Type, bool) {
	for t, ti := range typeInfos {
		if ti.Name == name {
			return t, true
		}
	}
	return 0, false
}

// RowBytes is the size of one row of n elements, or an error when n is not a
// whole number of blocks (or t is unknown).
func RowBytes(t Type, n int) (int, error) {
	ti, ok := typeInfos[t]
	if !ok {
		return 0, fmt.Errorf("tensor: unknown type id %d", uint32(t))
	}
	if n < 0 || n%ti.BlockSize != 0 {
		return 0, fmt.Errorf("tensor: row of %d elements is not a multiple of %s's block size %d", n, ti.Name, ti.BlockSize)
	}
	return n / ti.BlockSize * ti.BlockBytes, nil
}
