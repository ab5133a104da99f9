package tensor

// ggml's "legacy" block formats: 32 elements per block with one fp16 scale
// (and for the _1 types an fp16 offset). Within a block, element j of the
// first half and element j+16 of the second half share byte j of the nibble
// array: low nibble first half, high nibble second half. The 5-bit types keep
// bit 4 of element j in bit j of a little-endian uint32.
//
//	Q4_0 (18 B): d f16 | qs[16]                 x = d·(q-8)
//	Q4_1 (20 B): d f16 | m f16 | qs[16]         x = d·q + m
//	Q5_0 (22 B): d f16 | qh[4] | qs[16]         x = d·(q-16)
//	Q5_1 (24 B): d f16 | m f16 | qh[4] | qs[16] x = d·q + m
//	Q8_0 (34 B): d f16 | qs[32] int8            x = d·q
//	Q8_1 (36 B): d f16 | s f16 | qs[32] int8    x = d·q, s = d·Σq
//
// Float expressions are written with explicit float32 conversions so that the
// Go compiler cannot fuse a multiply and an add into an FMA on some machines
// and not others: results are the same everywhere, equal to ggml's reference
// C compiled without contraction.

const qk = 32 // elements per legacy block

func dequantQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*18 : i*18+18]
		d := f16(b)
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[2:18] {
			y[j] = float32(int(q&0x0f)-8) * d
			y[j+16] = float32(int(q>>4)-8) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*20 : i*20+20]
		d, m := f16(b), f16(b[2:])
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[4:20] {
			y[j] = float32(float32(q&0x0f)*d) + m
			y[j+16] = float32(float32(q>>4)*d) + m
		}
	}
}

func qh32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func dequantQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*22 : i*22+22]
		d := f16(b)
		qh := qh32(b[2:])
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[6:22] {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(int(q&0x0f|h0)-16) * d
			y[j+16] = float32(int(q>>4|h1)-16) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*24 : i*24+24]
		d, m := f16(b), f16(b[2:])
		qh := qh32(b[4:])
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[8:24] {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(float32(q&0x0f|h0)*d) + m
			y[j+16] = float32(float32(q>>4|h1)*d) + m
		}
	}
}

func dequantQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*34 : i*34+34]
		d := f16(b)
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[2:34] {
			y[j] = float32(int8(q)) * d
		}
	}
}

func dequantQ8_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*36 : i*36+36]
		d := f16(b)
		y := dst[i*qk : i*qk+qk]
		for j, q := range b[4:36] {
			y[j] = float32(int8(q)) * d
		}
	}
}

// The dot products mirror ggml_vec_dot_<w>_<q8>_generic: an exact integer
// sum per block, then one float expression per block accumulated in float32.

func dotQ4_0(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := row[i*18 : i*18+18]
		y := xq[i*34 : i*34+34]
		yq := y[2:34]
		var s0, s1 int32
		for j, q := range x[2:18] {
			s0 += int32(int(q&0x0f)-8) * int32(int8(yq[j]))
			s1 += int32(int(q>>4)-8) * int32(int8(yq[j+16]))
		}
		// ggml: sumf += sumi*dx*dy, evaluated left to right.
		sumf += float32(float32(float32(s0+s1)*f16(x)) * f16(y))
	}
	return sumf
}

func dotQ4_1(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := row[i*20 : i*20+20]
		y := xq[i*36 : i*36+36]
		yq := y[4:36]
		var s0, s1 int32
		for j, q := range x[4:20] {
			s0 += int32(q&0x0f) * int32(int8(yq[j]))
			s1 += int32(q>>4) * int32(int8(yq[j+16]))
		}
		// ggml: sumf += (dx*dy)*sumi + mx*sy.
		a := float32(float32(f16(x)*f16(y)) * float32(s0+s1))
		b := float32(f16(x[2:]) * f16(y[2:]))
		sumf += float32(a + b)
	}
	return sumf
}

func dotQ5_0(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := row[i*22 : i*22+22]
		y := xq[i*34 : i*34+34]
		yq := y[2:34]
		qh := qh32(x[2:])
		var s0, s1 int32
		for j, q := range x[6:22] {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			s0 += int32(int(q&0x0f|h0)-16) * int32(int8(yq[j]))
			s1 += int32(int(q>>4|h1)-16) * int32(int8(yq[j+16]))
		}
		// ggml: sumf += (dx*dy)*sumi.
		sumf += float32(float32(f16(x)*f16(y)) * float32(s0+s1))
	}
	return sumf
}

func dotQ5_1(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := row[i*24 : i*24+24]
		y := xq[i*36 : i*36+36]
		yq := y[4:36]
		qh := qh32(x[4:])
		var s0, s1 int32
		for j, q := range x[8:24] {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			s0 += int32(q&0x0f|h0) * int32(int8(yq[j]))
			s1 += int32(q>>4|h1) * int32(int8(yq[j+16]))
		}
		a := float32(float32(f16(x)*f16(y)) * float32(s0+s1))
		b := float32(f16(x[2:]) * f16(y[2:]))
		sumf += float32(a + b)
	}
	return sumf
}

func dotQ8_0(n int, row, xq []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := row[i*34 : i*34+34]
		y := xq[i*34 : i*34+34]
		xs, ys := x[2:34], y[2:34]
		var s int32
		for j, q := range xs {
			s += int32(int8(q)) * int32(int8(ys[j]))
		}
		// ggml: sumf += sumi*(dx*dy).
		sumf += float32(float32(s) * float32(f16(x)*f16(y)))
	}
	return sumf
}
