package tensor

import "unsafe"

// littleEndian is true on the machines tamp targets; the views below are only
// taken there, so stored little-endian bytes read correctly everywhere.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// viewF32 returns b as []float32 without copying when the layout allows it
// (little-endian machine, 4-byte aligned start), and nil otherwise. Model
// data is mmapped and GGUF aligns tensors to 32 bytes, so the fast path is the
// usual one.
func viewF32(b []byte) []float32 {
	if !littleEndian || len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// viewU16 is viewF32 for 16-bit elements.
func viewU16(b []byte) []uint16 {
	if !littleEndian || len(b) == 0 || uintptr(unsafe.Pointer(&b[0]))%2 != 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func dequantF32(src []byte, dst []float32) {
	if v := viewF32(src); v != nil {
		copy(dst, v)
		return
	}
	for i := range dst {
		dst[i] = f32(src[4*i:])
	}
}

func dequantF16(src []byte, dst []float32) {
	if v := viewU16(src); v != nil {
		for i, h := range v[:len(dst)] {
			dst[i] = f16Table[h]
		}
		return
	}
	for i := range dst {
		dst[i] = f16(src[2*i:])
	}
}

func dequantBF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = BF16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

// The float dot products follow ggml's scalar path: each product is rounded
// to float32 and the products are summed in float64 (ggml_float), which is
// rounded to float32 once at the end.

func dotF32(n int, row, xq []byte) float32 {
	var sum float64
	a, b := viewF32(row), viewF32(xq)
	if a != nil && b != nil {
		a, b = a[:n], b[:n]
		for i, x := range a {
			sum += float64(x * b[i])
		}
		return float32(sum)
	}
	for i := 0; i < n; i++ {
		sum += float64(f32(row[4*i:]) * f32(xq[4*i:]))
	}
	return float32(sum)
}

func dotF16(n int, row, xq []byte) float32 {
	var sum float64
	a, b := viewU16(row), viewU16(xq)
	if a != nil && b != nil {
		a, b = a[:n], b[:n]
		for i, h := range a {
			sum += float64(f16Table[h] * f16Table[b[i]])
		}
		return float32(sum)
	}
	for i := 0; i < n; i++ {
		sum += float64(f16(row[2*i:]) * f16(xq[2*i:]))
	}
	return float32(sum)
}

func dotBF16(n int, row, xq []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		a := BF16ToF32(uint16(row[2*i]) | uint16(row[2*i+1])<<8)
		b := BF16ToF32(uint16(xq[2*i]) | uint16(xq[2*i+1])<<8)
		sum += float64(a * b)
	}
	return float32(sum)
}
