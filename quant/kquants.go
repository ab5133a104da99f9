package quant

import (
	"fmt"
	"math"

	"tamp/tensor"
)

// The row quantizer behind Quantize. ggml's importance-weighted quantizers
// (quantize_row_<t>_impl, the path llama-quantize takes with an importance
// matrix) live beside the reference quantizers in package tensor
// (tensor.QuantizeWeighted); this file picks between them per row, as
// ggml_quantize_chunk does, and adds tamp's SQ types. The small float
// helpers below serve the SQ quantizer (sq.go).

// nearestInt is ggml's nearest_int: round to nearest, ties to even, through
// the 1.5·2^23 trick. ggml asserts |f| ≤ 4194303; beyond that it returns
// ggml's garbage, reproduced bit for bit.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func clampInt(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

func sqrt32(f float32) float32 { return float32(math.Sqrt(float64(f))) }

func putF16(b []byte, f float32) {
	h := tensor.F32ToF16(f)
	b[0], b[1] = byte(h), byte(h>>8)
}

func getF16(b []byte) float32 { return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }

// sumSquares is the float32 running sum of x², in order, as the C loops
// compute it.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// QuantizeRow stores one row x as type t in dst, which must hold exactly
// the row's stored size. With importance weights qw (one per element of x)
// it uses the importance-weighted quantizer for t where ggml has one, as
// llama-quantize --imatrix does; with qw nil, or for types without one, the
// reference quantizer. tamp's own SQ types take qw for their dense scales.
func QuantizeRow(t tensor.Type, x []float32, dst []byte, qw []float32) error {
	rb, err := tensor.RowBytes(t, len(x))
	if err != nil {
		return err
	}
	if len(dst) != rb {
		return fmt.Errorf("quant: row of %d elements as %s needs %d bytes, got %d", len(x), t, rb, len(dst))
	}
	if qw != nil && len(qw) != len(x) {
		return fmt.Errorf("quant: %d importance weights for a row of %d", len(qw), len(x))
	}
	if sq, ok := sqFormats[t]; ok {
		sq.quantizeRow(x, dst, qw)
		return nil
	}
	return tensor.QuantizeWeighted(t, x, dst, qw)
}
